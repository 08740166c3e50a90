// Command vmsim runs a simulated VM from a bootstrap bundle (see package
// vmsim). istiod is reached through the control plane's east-west gateway.
//
//	vmsim run --bundle DIR --work-dir DIR [--ip 127.0.0.10] [--hostname vm1] [--agent PATH] [--timeout 2m]
//	          [--wait-for-bundle 5m] [--serve-app PORT]
//
// `run` starts pilot-agent (through istio-start.sh, without Envoy, in its own
// mount namespace with the bundle's hosts), waits for the workload
// certificate and the first XDS response through the agent, prints the
// SPIFFE ID, then keeps the VM running until SIGINT/SIGTERM. It needs root.
// --wait-for-bundle boots the VM only once its files exist (as a new VM whose
// user-data is being written); --serve-app runs the VM's application, an HTTP
// server answering /ready on the VM's address, for the group's probe.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"terraform-provider-istio/acceptance-tests/vmsim"
)

const usage = `usage:
  vmsim run --bundle DIR --work-dir DIR [--ip IP] [--hostname NAME] [--agent PATH] [--timeout 2m]
            [--wait-for-bundle DURATION] [--serve-app PORT]
`

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
		waitForBundle := fs.Duration("wait-for-bundle", 0, "wait up to this long for the bundle files to appear")
		appPort := fs.Int("serve-app", 0, "serve the VM's application (HTTP 200 on every path) on IP:PORT")
		_ = fs.Parse(os.Args[2:])
		if err = waitForFiles(ctx, o.BundleDir, *waitForBundle); err == nil {
			err = serveApp(o.IP, *appPort)
		}
		if err == nil {
			err = run(ctx, o, *timeout)
		}
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

// waitForFiles returns once every bundle file exists (a VM booting when its
// user-data has been written), or fails after wait.
func waitForFiles(ctx context.Context, dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		missing := ""
		for _, name := range []string{"cluster.env", "mesh.yaml", "hosts", "root-cert.pem", "istio-token"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				missing = name
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bundle file %s did not appear in %s", missing, dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serveApp starts the VM's application on ip:port in the background.
func serveApp(ip string, port int) error {
	if port == 0 {
		return nil
	}
	if ip == "" {
		ip = "127.0.0.1"
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("the VM's application cannot listen: %w", err)
	}
	fmt.Fprintf(os.Stderr, "vmsim: application serving HTTP on %s\n", listener.Addr())
	go func() {
		_ = http.Serve(listener, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	}()
	return nil
}
