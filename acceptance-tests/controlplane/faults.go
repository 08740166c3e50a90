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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// same port with the same etcd and certificates, and returns once it is ready
// and kube-controller-manager and istiod watch it again.
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
	if err := cp.waitFor(ctx, p, "kube-apiserver /readyz after a restart", func() error {
		return httpOK(httpClient, cp.Get("KUBE_APISERVER")+"/readyz")
	}); err != nil {
		return err
	}
	return cp.waitForWatchersToResume(ctx)
}

// waitForWatchersToResume returns once kube-controller-manager and istiod act on
// the restarted kube-apiserver again. Both lost their watches with it, and
// client-go's reflectors relist only after an exponential backoff with jitter
// (up to a minute once the server was away for a while), so /readyz alone does
// not mean the cluster works: until they are back, a new namespace gets no
// default ServiceAccount (kube-controller-manager) and no istio-ca-root-cert
// (istiod), and the next test fails on a cluster that is still recovering. A
// throwaway namespace shows both are back; if one never comes back, the error
// names it and shows its log.
func (cp *ControlPlane) waitForWatchersToResume(ctx context.Context) error {
	started := time.Now()
	probe := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tfpi-restart-probe-"}}
	probe, err := cp.client.CoreV1().Namespaces().Create(ctx, probe, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating a namespace on the restarted kube-apiserver: %w", err)
	}
	defer func() {
		_ = cp.client.CoreV1().Namespaces().Delete(context.Background(), probe.Name, metav1.DeleteOptions{})
	}()
	if err := cp.waitFor(ctx, cp.kcm, "ServiceAccount "+probe.Name+"/default after a restart of kube-apiserver", func() error {
		_, err := cp.client.CoreV1().ServiceAccounts(probe.Name).Get(ctx, "default", getOpts)
		return err
	}); err != nil {
		return err
	}
	if err := cp.waitFor(ctx, cp.istiods[0].process, "ConfigMap "+probe.Name+"/istio-ca-root-cert after a restart of kube-apiserver", func() error {
		_, err := cp.client.CoreV1().ConfigMaps(probe.Name).Get(ctx, "istio-ca-root-cert", getOpts)
		return err
	}); err != nil {
		return err
	}
	cp.progress("kube-controller-manager and istiod act on the restarted kube-apiserver again (%s after it was ready)", time.Since(started).Round(100*time.Millisecond))
	return nil
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

// SetIstiodEnv sets one env variable of every istiod, as `kubectl set env` and the
// rollout that follows would: in the Deployment in the cluster (which the provider
// reads) and in the running process (started again with the Deployment's new env).
// A nil value removes the variable. It returns the value the first istiod had before,
// so that a test can put it back.
func (cp *ControlPlane) SetIstiodEnv(ctx context.Context, name string, value *string) (*string, error) {
	var previous *string
	for i, d := range cp.istiods {
		c, err := d.container()
		if err != nil {
			return nil, err
		}
		before := setEnvVar(c, name, value)
		if i == 0 {
			previous = before
		}
		deployments := cp.client.AppsV1().Deployments(d.deployment.Namespace)
		live, err := deployments.Get(ctx, d.name(), getOpts)
		if err != nil {
			return nil, fmt.Errorf("reading Deployment %s: %w", d.name(), err)
		}
		for j := range live.Spec.Template.Spec.Containers {
			if live.Spec.Template.Spec.Containers[j].Name == c.Name {
				setEnvVar(&live.Spec.Template.Spec.Containers[j], name, value)
			}
		}
		if _, err := deployments.Update(ctx, live, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("updating Deployment %s: %w", d.name(), err)
		}
		if err := stopProcess(d.process); err != nil {
			return nil, fmt.Errorf("stopping %s: %w", d.name(), err)
		}
		if err := cp.startIstiod(ctx, cp.pilotBin, d); err != nil {
			return nil, err
		}
	}
	return previous, nil
}

// setEnvVar sets (or, for nil, removes) one plain env variable of c and returns its
// value before.
func setEnvVar(c *corev1.Container, name string, value *string) *string {
	var before *string
	env := c.Env[:0:0]
	for _, e := range c.Env {
		if e.Name == name {
			v := e.Value
			before = &v
			continue
		}
		env = append(env, e)
	}
	if value != nil {
		env = append(env, corev1.EnvVar{Name: name, Value: *value})
	}
	c.Env = env
	return before
}
