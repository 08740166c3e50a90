// Command vmsim runs a simulated VM from a bootstrap bundle (see package
// vmsim), or the SNI passthrough gateway that stands in for the east-west
// gateway in front of istiod.
//
//	vmsim run --bundle DIR --work-dir DIR [--ip 127.0.0.10] [--hostname vm1] [--agent PATH] [--timeout 2m]
//	vmsim gateway --listen 127.0.0.2:15012 --route istiod.istio-system.svc=127.0.0.1:PORT [--route ...]
//
// `run` starts pilot-agent (through istio-start.sh, without Envoy, in its own
// mount namespace with the bundle's hosts), waits for the workload
// certificate and the first XDS response through the agent, prints the
// SPIFFE ID, then keeps the VM running until SIGINT/SIGTERM. It needs root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"terraform-provider-istio/acceptance-tests/vmsim"
)

const usage = `usage:
  vmsim run --bundle DIR --work-dir DIR [--ip IP] [--hostname NAME] [--agent PATH] [--timeout 2m]
  vmsim gateway --listen ADDR --route SNI=HOST:PORT [--route ...]
`

type routes map[string]string

func (r routes) String() string { return fmt.Sprint(map[string]string(r)) }
func (r routes) Set(v string) error {
	sni, backend, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("--route wants SNI=HOST:PORT, got %q", v)
	}
	r[sni] = backend
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		fs := flag.NewFlagSet("run", flag.ExitOnError)
		var o vmsim.Options
		fs.StringVar(&o.BundleDir, "bundle", "", "directory with cluster.env, mesh.yaml, hosts, root-cert.pem, istio-token")
		fs.StringVar(&o.WorkDir, "work-dir", "", "work directory (VM root, logs)")
		fs.StringVar(&o.IP, "ip", "", "VM address (ISTIO_SVC_IP unless cluster.env sets it; default 127.0.0.1)")
		fs.StringVar(&o.Hostname, "hostname", "", "VM host name (POD_NAME)")
		fs.StringVar(&o.AgentBinary, "agent", "", "pilot-agent binary (default $TFPI_PILOT_AGENT or tools.env)")
		timeout := fs.Duration("timeout", 2*time.Minute, "wait for the certificate and the first XDS response")
		_ = fs.Parse(os.Args[2:])
		err = run(ctx, o, *timeout)
	case "gateway":
		fs := flag.NewFlagSet("gateway", flag.ExitOnError)
		listen := fs.String("listen", "", "listen address, e.g. 127.0.0.2:15012")
		r := routes{}
		fs.Var(r, "route", "SNI=HOST:PORT (repeatable)")
		_ = fs.Parse(os.Args[2:])
		err = gateway(ctx, *listen, r)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o vmsim.Options, timeout time.Duration) error {
	o.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	vm, err := vmsim.Start(ctx, o)
	if err != nil {
		return err
	}
	defer vm.Stop()
	id, err := vm.WaitForWorkloadCert(ctx, timeout)
	if err != nil {
		return err
	}
	fmt.Printf("workload certificate: %s\n", id)
	if err := vm.WaitForXDS(ctx, timeout); err != nil {
		return err
	}
	st := vm.XDS()
	fmt.Printf("xds: connected=%v responses=%d types=%v\n", st.Connected, st.Responses, st.Types)
	fmt.Fprintf(os.Stderr, "vmsim: VM %s running (agent log %s); Ctrl-C stops it\n", vm.IP, vm.AgentLog)
	select {
	case <-ctx.Done():
	case <-vm.Done():
		_, exitErr := vm.Exited()
		return fmt.Errorf("pilot-agent exited (%v); log %s:\n%s", exitErr, vm.AgentLog, vm.LogTail(20))
	}
	return nil
}

func gateway(ctx context.Context, listen string, r routes) error {
	if listen == "" || len(r) == 0 {
		return fmt.Errorf("gateway needs --listen and at least one --route")
	}
	g, err := vmsim.StartGateway(listen, r)
	if err != nil {
		return err
	}
	defer g.Close()
	fmt.Fprintf(os.Stderr, "vmsim: gateway on %s routing %v\n", g.Addr, r)
	<-ctx.Done()
	return nil
}
