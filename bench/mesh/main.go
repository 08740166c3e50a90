// Command meshbench is the helper of bench/mesh/run.sh (`make bench-mesh`):
//
//	meshbench prepare   -kubeconfig K -namespace NS            namespace + ServiceAccount "bench", root cert published
//	meshbench drop      -kubeconfig K -namespace NS            delete a namespace and wait until it is gone
//	meshbench health    -kubeconfig K -namespace NS -record F  write Healthy=True on WorkloadEntries, as istiod does
//	                    [-hold N -settle D]                    ...only once N entries exist, D later, all at once
//	meshbench audit     -log F -windows W                      requests per command window and client, by verb and resource
//	meshbench stamp                                            prefix each stdin line with the wall clock (ns)
//	meshbench reaction  -stamped F -health F -resource ADDR    per entry: wait return − health write, ms
//
// It is benchmark plumbing: it measures, it never judges.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

const usage = "usage: meshbench prepare|drop|health|audit|stamp|reaction|waitreturn [flags] (see bench/README.md)"

func main() {
	if len(os.Args) < 2 {
		fail(usage)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the control plane")
	namespace := fs.String("namespace", "", "namespace of the workload")
	var err error
	switch cmd {
	case "prepare":
		_ = fs.Parse(args)
		err = prepare(*kubeconfig, *namespace)
	case "drop":
		_ = fs.Parse(args)
		err = drop(*kubeconfig, *namespace)
	case "health":
		record := fs.String("record", "", "file that gets one line per write: entry address sent_ns done_ns")
		hold := fs.Int("hold", 0, "write nothing until this many entries exist, then all of them at once")
		settle := fs.Duration("settle", 2*time.Second, "with -hold: pause between the last entry appearing and the writes")
		_ = fs.Parse(args)
		err = health(*kubeconfig, *namespace, *record, *hold, *settle)
	case "audit":
		log := fs.String("log", "", "audit log of the API server (AUDIT_LOG)")
		windows := fs.String("windows", "", "file of label<TAB>since_ns<TAB>until_ns<TAB>user-agent-regexp lines")
		_ = fs.Parse(args)
		err = audit(*log, *windows)
	case "stamp":
		err = stamp(os.Stdin, os.Stdout)
	case "reaction":
		stamped := fs.String("stamped", "", "terraform output from `meshbench stamp`")
		healthLog := fs.String("health", "", "record of `meshbench health`")
		resource := fs.String("resource", "", "resource address whose instances waited, e.g. istio_vm_registration.vm")
		_ = fs.Parse(args)
		err = reaction(*stamped, *healthLog, *resource)
	case "waitreturn":
		providerLog := fs.String("log", "", "Terraform's log file (TF_LOG_PROVIDER=INFO, TF_LOG_PATH) of the apply")
		healthLog := fs.String("health", "", "record of `meshbench health`")
		_ = fs.Parse(args)
		err = waitReturn(*providerLog, *healthLog)
	default:
		fail(usage)
	}
	if err != nil {
		fail(fmt.Sprintf("meshbench %s: %v", cmd, err))
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}
