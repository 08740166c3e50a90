package controlplane

// Faults the acceptance tests inject into a running control plane: the API
// server goes away and comes back (same etcd, certificates and port, so
// every client's kubeconfig stays valid), istiod is killed and started again.

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// startAPIServerProcess runs kube-apiserver with the arguments of the first
// start and records it as the current one.
func (cp *ControlPlane) startAPIServerProcess() (*process, error) {
	p, err := cp.startProcess("kube-apiserver", cp.RunDir, baseEnv(), cp.apiserverBin, cp.apiserverArgs...)
	if err != nil {
		return nil, err
	}
	cp.apiserver = p
	cp.setEnv("KUBE_APISERVER_PID", strconv.Itoa(p.cmd.Process.Pid))
	return p, nil
}

// StopAPIServer stops kube-apiserver (SIGTERM, SIGKILL after 15 s) and
// returns once it has exited. etcd and everything else keep running.
func (cp *ControlPlane) StopAPIServer() error {
	return stopProcess(cp.apiserver)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same port with the same etcd and certificates, and returns once it is ready.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	if exited, _ := cp.apiserver.exited(); !exited {
		return fmt.Errorf("kube-apiserver (pid %d) is still running", cp.apiserver.cmd.Process.Pid)
	}
	p, err := cp.startAPIServerProcess()
	if err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(cp.rest)
	if err != nil {
		return err
	}
	return cp.waitFor(ctx, p, "kube-apiserver /readyz after a restart", func() error {
		return httpOK(httpClient, cp.Get("KUBE_APISERVER")+"/readyz")
	})
}

// RestartAPIServer is StopAPIServer then StartAPIServer.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context) error {
	if err := cp.StopAPIServer(); err != nil {
		return err
	}
	return cp.StartAPIServer(ctx)
}

// KillIstiod kills every istiod (SIGKILL) and returns once they have exited:
// istiod writes nothing more, not even the release of its leader-election
// Leases, as when its Pod or node is lost. StartIstiod starts them again.
func (cp *ControlPlane) KillIstiod() error {
	for _, d := range cp.istiods {
		if err := syscall.Kill(-d.process.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("%s: %w", d.name(), err)
		}
		<-d.process.done
	}
	return nil
}

// StartIstiod starts every istiod again after KillIstiod, with the same
// addresses, and returns once each is ready.
func (cp *ControlPlane) StartIstiod(ctx context.Context) error {
	for _, d := range cp.istiods {
		if exited, _ := d.process.exited(); !exited {
			return fmt.Errorf("%s (pid %d) is still running", d.name(), d.process.cmd.Process.Pid)
		}
		if err := cp.startIstiod(ctx, cp.pilotBin, d); err != nil {
			return err
		}
	}
	return nil
}

// stopProcess stops one component's process group and waits until it has exited.
func stopProcess(p *process) error {
	if exited, _ := p.exited(); exited {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
		select {
		case <-p.done:
			return nil
		case <-time.After(15 * time.Second):
		}
	}
	return fmt.Errorf("%s (pid %d) did not exit", p.name, p.cmd.Process.Pid)
}
