// Package controlplane starts and stops a real local control plane for the
// acceptance tests, `make demo` and manual use: etcd, kube-apiserver and
// kube-controller-manager (one multi-call binary built from k8s.io/kubernetes),
// Istio installed as users install it with istioctl, one install profile
// (profile.go) at a time (install.go), and istiod (pilot-discovery) run
// from its rendered Deployment (istiod.go), all on loopback with free ports
// and a fresh run directory. README.md "Local control plane" lists every
// difference from a real cluster.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"terraform-provider-istio/acceptance-tests/ports"
)

const (
	// envFileName is the machine-readable result of a start, in RUN_DIR.
	envFileName = "env"
	// marker identifies a directory as a control-plane run directory, so a
	// stale one may be wiped.
	marker = ".tfpi-controlplane"
)

// Options configure Start. The zero value is usable.
type Options struct {
	// RunDir is the run directory (default $TFPI_CACHE/run/controlplane). A
	// stale run directory (no live process) is wiped; a live one is an error.
	RunDir string
	// Profile names how Istio is installed (profile.go; default
	// $TFPI_PROFILE, else DefaultProfile).
	Profile string
	// GatewayIP is the load balancer address of the istio-eastwestgateway
	// Service, where the gateway process routes 15012/15017 to istiod by SNI
	// (default: a free loopback address 127.1.x.y).
	GatewayIP string
	// ReadyTimeout bounds the wait for each component (default 3m).
	ReadyTimeout time.Duration
	// KillOnParentExit makes the components die with the calling process
	// (tests). The CLI leaves it false so the control plane outlives `start`.
	KillOnParentExit bool
	// Progress receives one line per step (default: discarded).
	Progress io.Writer
}

// ControlPlane is a started control plane.
type ControlPlane struct {
	RunDir     string
	Kubeconfig string
	// Env holds the values also written to RUN_DIR/env, in order.
	Env []EnvVar
	// Skipped lists the rendered objects not applied (skippedKinds).
	Skipped []string

	opts         Options
	profile      Profile
	istioctlBin  string
	samplesDir   string
	gatewayIP    string
	egressSocket string
	istiods      []*istiod
	pki          *pki
	procs        []*process
	// apiserver is the running kube-apiserver and apiserverArgs how it was
	// started, so RestartAPIServer runs it again exactly so (faults.go).
	apiserver     *process
	apiserverBin  string
	apiserverArgs []string
	// pilotBin is istiod's binary, so StartIstiod starts it again (faults.go).
	pilotBin string
	// kcm is kube-controller-manager, whose watches must resume after a restart of
	// kube-apiserver (faults.go, waitForWatchersToResume).
	kcm    *process
	rest   *rest.Config
	client kubernetes.Interface
}

// EnvVar is one line of the env file.
type EnvVar struct{ Key, Value string }

// Get returns the value of an env entry ("" if absent).
func (cp *ControlPlane) Get(key string) string {
	for _, e := range cp.Env {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

// RestConfig returns a client configuration for the admin user.
func (cp *ControlPlane) RestConfig() *rest.Config { return rest.CopyConfig(cp.rest) }

// Clientset returns a typed client for the admin user.
func (cp *ControlPlane) Clientset() kubernetes.Interface { return cp.client }

// Dynamic returns a dynamic client for the admin user.
func (cp *ControlPlane) Dynamic() dynamic.Interface { return dynamic.NewForConfigOrDie(cp.rest) }

// Profile is the install profile this control plane runs.
func (cp *ControlPlane) Profile() Profile { return cp.profile }

// DefaultRunDir is used when Options.RunDir is empty.
func DefaultRunDir() string { return filepath.Join(CacheDir(), "run", "controlplane") }

func (o *Options) defaults() {
	if o.RunDir == "" {
		o.RunDir = DefaultRunDir()
	}
	if o.Profile == "" {
		o.Profile = os.Getenv("TFPI_PROFILE")
	}
	if o.Profile == "" {
		o.Profile = DefaultProfile
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Start brings up the whole control plane and returns once it is ready. On
// error everything it started is stopped again and the error names the
// component and its log file.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	opts.defaults()
	profile, err := LookupProfile(opts.Profile)
	if err != nil {
		return nil, err
	}
	kubeBin, err := requireFile("TFPI_KUBE_TESTENV", "kube-testenv (etcd, kube-apiserver, kube-controller-manager)")
	if err != nil {
		return nil, err
	}
	pilotBin, err := requireFile("TFPI_PILOT_DISCOVERY", "pilot-discovery (istiod)")
	if err != nil {
		return nil, err
	}
	istioctlBin, err := requireFile("TFPI_ISTIOCTL", "istioctl")
	if err != nil {
		return nil, err
	}
	samplesDir, err := requireFile("TFPI_ISTIO_SAMPLES", "Istio samples (samples/multicluster)")
	if err != nil {
		return nil, err
	}
	runDir, err := filepath.Abs(opts.RunDir)
	if err != nil {
		return nil, err
	}
	if err := prepareRunDir(runDir); err != nil {
		return nil, err
	}
	cp := &ControlPlane{RunDir: runDir, opts: opts, profile: profile, istioctlBin: istioctlBin, samplesDir: samplesDir}
	if err := cp.start(ctx, kubeBin, pilotBin); err != nil {
		if stopErr := cp.Stop(); stopErr != nil {
			err = fmt.Errorf("%w (and stopping failed: %v)", err, stopErr)
		}
		return nil, err
	}
	return cp, nil
}

// prepareRunDir makes runDir a fresh, empty run directory.
func prepareRunDir(runDir string) error {
	if running := runningPids(runDir); len(running) > 0 {
		var names []string
		for _, p := range running {
			names = append(names, fmt.Sprintf("%s (pid %d)", p.name, p.pid))
		}
		return fmt.Errorf("a control plane is already running in %s: %s; stop it first (go run ./cmd/controlplane stop --run-dir %s, or make controlplane-stop)",
			runDir, strings.Join(names, ", "), runDir)
	}
	entries, err := os.ReadDir(runDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(runDir, marker)); err != nil {
			return fmt.Errorf("run directory %s is not empty and is not a control-plane run directory; choose another --run-dir", runDir)
		}
		// Stale run directory of a control plane that is gone.
		if err := os.RemoveAll(runDir); err != nil {
			return fmt.Errorf("removing stale run directory %s: %w", runDir, err)
		}
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(runDir, marker), []byte("run directory of acceptance-tests/controlplane\n"), 0o644)
}

// Stop kills every process of this control plane (also after a failed
// start). The run directory and its logs stay.
func (cp *ControlPlane) Stop() error {
	err := StopRunDir(cp.RunDir)
	for _, p := range cp.procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	return err
}

func (cp *ControlPlane) progress(format string, args ...any) {
	fmt.Fprintf(cp.opts.Progress, "controlplane: "+format+"\n", args...)
}

func (cp *ControlPlane) setEnv(key, value string) {
	for i, e := range cp.Env {
		if e.Key == key {
			cp.Env[i].Value = value
			return
		}
	}
	cp.Env = append(cp.Env, EnvVar{key, value})
}

func (cp *ControlPlane) start(ctx context.Context, kubeBin, pilotBin string) error {
	started := time.Now()
	cp.pilotBin = pilotBin
	var err error
	if cp.pki, err = newPKI(filepath.Join(cp.RunDir, "pki")); err != nil {
		return fmt.Errorf("generating certificates: %w", err)
	}
	if cp.egressSocket, err = egressSocketPath(cp.RunDir); err != nil {
		return err
	}
	addrs, err := ports.Loopback(3)
	if err != nil {
		return err
	}
	etcdURL := "http://" + addrs[0]
	peerURL := "http://" + addrs[1]
	apiserverAddr := addrs[2]
	apiserverURL := "https://" + apiserverAddr
	cp.setEnv("RUN_DIR", cp.RunDir)
	cp.gatewayIP = cp.opts.GatewayIP
	if cp.gatewayIP == "" {
		if cp.gatewayIP, err = pickGatewayIP(); err != nil {
			return err
		}
	}

	// istioctl renders the install while the cluster starts.
	renderCtx, cancelRender := context.WithCancel(ctx)
	defer cancelRender()
	waitForRender := cp.renderInBackground(renderCtx)

	// Certificates: apiserver serving, admin (system:masters); istiod's in startIstiod.
	if err := cp.pki.issue("apiserver", "kube-apiserver", nil, []string{
		"127.0.0.1", "localhost", "10.0.0.1", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
	}); err != nil {
		return err
	}
	if err := cp.pki.issue("admin", "admin", []string{"system:masters"}, nil); err != nil {
		return err
	}
	cp.Kubeconfig = filepath.Join(cp.RunDir, "kubeconfig")
	if err := cp.pki.kubeconfig(cp.Kubeconfig, apiserverURL, "admin"); err != nil {
		return err
	}
	egressConfig := filepath.Join(cp.RunDir, "egress-selector.yaml")
	if err := os.WriteFile(egressConfig, []byte(egressSelectorConfig(cp.egressSocket)), 0o644); err != nil {
		return err
	}
	cp.setEnv("KUBECONFIG", cp.Kubeconfig)
	cp.setEnv("KUBE_APISERVER", apiserverURL)
	cp.setEnv("ETCD_ENDPOINT", etcdURL)

	// etcd
	cp.progress("starting etcd on %s", etcdURL)
	etcd, err := cp.startProcess("etcd", cp.RunDir, baseEnv(), kubeBin, "etcd",
		"--name=controlplane",
		"--data-dir="+filepath.Join(cp.RunDir, "etcd-data"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=controlplane="+peerURL,
		"--unsafe-no-fsync=true", "--log-level=warn",
	)
	if err != nil {
		return err
	}
	if err := cp.waitFor(ctx, etcd, "etcd /health", func() error {
		return httpOK(http.DefaultClient, etcdURL+"/health")
	}); err != nil {
		return err
	}
	cp.setEnv("ETCD_PID", strconv.Itoa(etcd.cmd.Process.Pid))

	// kube-apiserver
	pk := cp.pki.path
	cp.progress("starting kube-apiserver on %s", apiserverURL)
	host, port, _ := net.SplitHostPort(apiserverAddr)
	if err := cp.writeAuditPolicy(); err != nil {
		return err
	}
	cp.apiserverBin = kubeBin
	cp.apiserverArgs = []string{"kube-apiserver",
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + host, "--secure-port=" + port,
		// Loopback is not a valid endpoint for the `kubernetes` Service, so
		// the endpoint reconciler is off (required from 1.37 on).
		"--advertise-address=" + host, "--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(cp.RunDir, "pki", "apiserver-generated"),
		"--tls-cert-file=" + pk("apiserver.crt"), "--tls-private-key-file=" + pk("apiserver.key"),
		"--client-ca-file=" + pk("ca.crt"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-signing-key-file=" + pk("sa.key"),
		"--service-account-key-file=" + pk("sa.pub"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		// Webhook calls to Service ClusterIPs go through the cluster-network process.
		"--egress-selector-config-file=" + egressConfig,
		"--profiling=false",
		"--v=1",
		"--audit-policy-file=" + cp.auditPolicyPath(), "--audit-log-path=" + cp.auditLogPath(),
	}
	apiserver, err := cp.startAPIServerProcess()
	if err != nil {
		return err
	}
	admin, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		return err
	}
	admin.QPS, admin.Burst = 100, 200
	cp.rest = admin
	httpClient, err := rest.HTTPClientFor(admin)
	if err != nil {
		return err
	}
	if err := cp.waitFor(ctx, apiserver, "kube-apiserver /readyz", func() error {
		return httpOK(httpClient, apiserverURL+"/readyz")
	}); err != nil {
		return err
	}
	if cp.client, err = kubernetes.NewForConfig(admin); err != nil {
		return err
	}

	// kube-controller-manager (uses the admin identity).
	cp.progress("starting kube-controller-manager")
	kcm, err := cp.startProcess("kube-controller-manager", cp.RunDir, baseEnv(), kubeBin, "kube-controller-manager",
		"--kubeconfig="+cp.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=namespace,serviceaccount,serviceaccount-token,garbagecollector,endpoint,endpointslice,endpointslicemirroring,root-ca-cert-publisher,clusterrole-aggregation",
		"--root-ca-file="+pk("ca.crt"),
		"--service-account-private-key-file="+pk("sa.key"),
		"--use-service-account-credentials=false",
		"--concurrent-gc-syncs=5",
		"--v=1",
	)
	if err != nil {
		return err
	}
	cp.kcm = kcm
	cp.setEnv("KUBE_CONTROLLER_MANAGER_PID", strconv.Itoa(kcm.cmd.Process.Pid))

	// Istio, as istioctl install would put it in the cluster.
	steps, err := waitForRender()
	if err != nil {
		return fmt.Errorf("rendering the Istio install: %w", err)
	}
	if err := cp.install(ctx, steps, apiserver); err != nil {
		return fmt.Errorf("installing Istio: %w", err)
	}
	if err := cp.waitFor(ctx, kcm, "kube-controller-manager (ServiceAccount default/default)", func() error {
		_, err := cp.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", getOpts)
		return err
	}); err != nil {
		return err
	}
	if err := cp.startIstio(ctx, steps, pilotBin); err != nil {
		return err
	}
	cp.setProfileEnv()
	if err := cp.writeEnvFile(); err != nil {
		return err
	}
	cp.progress("ready in %s; env file %s", time.Since(started).Round(100*time.Millisecond), filepath.Join(cp.RunDir, envFileName))
	return nil
}

// renderInBackground runs renderInstalls while the caller goes on; the
// returned function waits for its result.
func (cp *ControlPlane) renderInBackground(ctx context.Context) func() ([]rendered, error) {
	type result struct {
		steps []rendered
		err   error
	}
	done := make(chan result, 1)
	cp.progress("rendering profile %q with %s", cp.profile.Name, cp.istioctlBin)
	go func() {
		if err := os.MkdirAll(filepath.Join(cp.RunDir, "install"), 0o755); err != nil {
			done <- result{nil, err}
			return
		}
		steps, err := cp.renderInstalls(ctx)
		done <- result{steps, err}
	}()
	return func() ([]rendered, error) {
		r := <-done
		return r.steps, r.err
	}
}

// startIstio runs istiod for each rendered istiod Deployment, reachable from
// kube-apiserver through its Services, waits until its webhooks are live,
// then exposes it through the east-west gateway as the VM guide does.
func (cp *ControlPlane) startIstio(ctx context.Context, steps []rendered, pilotBin string) error {
	var err error
	if cp.istiods, err = istiodsFrom(steps, cp.profile.IstioNamespace()); err != nil {
		return err
	}
	if len(cp.istiods) == 0 {
		return fmt.Errorf("istioctl rendered no istiod Deployment (see %s)", filepath.Join(cp.RunDir, "install"))
	}
	if err := pickListenAddrs(cp.istiods); err != nil {
		return err
	}
	if err := cp.startClusterNetwork(ctx); err != nil {
		return err
	}
	for _, d := range cp.istiods {
		if err := cp.startIstiod(ctx, pilotBin, d); err != nil {
			return err
		}
	}
	rootCertFile := filepath.Join(cp.RunDir, "istio-root-cert.pem")
	var rootCert string
	if err := cp.waitFor(ctx, cp.istiods[0].process, "ConfigMap default/istio-ca-root-cert (created by istiod)", func() error {
		cm, err := cp.client.CoreV1().ConfigMaps("default").Get(ctx, "istio-ca-root-cert", getOpts)
		if err != nil {
			return err
		}
		rootCert = cm.Data["root-cert.pem"]
		return os.WriteFile(rootCertFile, []byte(rootCert), 0o644)
	}); err != nil {
		return err
	}
	cp.setEnv("ISTIO_ROOT_CERT", rootCertFile)
	if err := cp.waitForWebhooks(ctx, rootCert); err != nil {
		return err
	}
	// Applied once the webhook is live, so istiod validates them.
	expose, err := cp.exposeIstiod()
	if err != nil {
		return err
	}
	if err := cp.applyObjects(ctx, expose.objects); err != nil {
		return fmt.Errorf("exposing istiod: %w", err)
	}
	return cp.startEastWestGateway(ctx)
}

func istiodName(rev string) string {
	if rev == "default" || rev == "" {
		return "istiod"
	}
	return "istiod-" + rev
}

// envPrefix is ISTIOD or ISTIOD_<REV> for env keys.
func envPrefix(rev string) string {
	return strings.ToUpper(strings.ReplaceAll(istiodName(rev), "-", "_"))
}

// waitFor polls check until it succeeds, the process exits, ctx ends or the
// timeout passes. Errors name the component and its log.
func (cp *ControlPlane) waitFor(ctx context.Context, p *process, what string, check func() error) error {
	deadline := time.Now().Add(cp.opts.ReadyTimeout)
	var last error
	for {
		if exited, exitErr := p.exited(); exited {
			return fmt.Errorf("%s exited (%v) while waiting for %s; log %s:\n%s", p.name, exitErr, what, p.log, tail(p.log, 25))
		}
		if last = check(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready after %s (last error: %v); log %s:\n%s", p.name, what, cp.opts.ReadyTimeout, last, p.log, tail(p.log, 25))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: interrupted while waiting for %s: %w; log %s", p.name, what, ctx.Err(), p.log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func httpOK(c *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// baseEnv is the environment of every component: ours without anything that
// would point a component at another cluster.
func baseEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "KUBECONFIG" || strings.HasPrefix(k, "KUBERNETES_") ||
			k == "POD_NAME" || k == "POD_NAMESPACE" || k == "REVISION" || k == "CLUSTER_ID"
	})
}

// setProfileEnv records the facts of the install that tests and VMs read.
func (cp *ControlPlane) setProfileEnv() {
	p := cp.profile
	cp.setEnv("PROFILE", p.Name)
	cp.setEnv("ISTIO_NAMESPACE", p.IstioNamespace())
	cp.setEnv("ISTIO_REVISIONS", strings.Join(p.Revisions, ","))
	cp.setEnv("DEFAULT_REVISION", p.DefaultRevision())
	// CLUSTER_ID is what istiod runs with; CLUSTER_NAME is clusterName as installed ("" = unset).
	cp.setEnv("CLUSTER_ID", cp.istiods[0].env["CLUSTER_ID"])
	cp.setEnv("CLUSTER_NAME", p.ClusterName)
	cp.setEnv("NETWORK", p.Network)
	cp.setEnv("MESH_ID", p.MeshID)
	cp.setEnv("EASTWEST_GATEWAY_IP", cp.gatewayIP)
	cp.setEnv("EASTWEST_GATEWAY_HOSTNAME", p.GatewayHostname)
	cp.setEnv("ISTIOCTL", cp.istioctlBin)
	cp.setEnv("ISTIO_SAMPLES", cp.samplesDir)
	cp.setEnv("ISTIO_INSTALL_DIR", filepath.Join(cp.RunDir, "install"))
}

// writeEnvFile writes RUN_DIR/env: KEY=value lines, sourceable by sh
// (set -a; . env) and readable by make and by ReadEnvFile.
func (cp *ControlPlane) writeEnvFile() error {
	var b strings.Builder
	for _, e := range cp.Env {
		fmt.Fprintf(&b, "%s=%s\n", e.Key, e.Value)
	}
	return os.WriteFile(filepath.Join(cp.RunDir, envFileName), []byte(b.String()), 0o644)
}

// EnvFile is the env file of a run directory.
func EnvFile(runDir string) string { return filepath.Join(runDir, envFileName) }

// ReadEnvFile reads the env file of a started run directory.
func ReadEnvFile(runDir string) ([]EnvVar, error) {
	b, err := os.ReadFile(EnvFile(runDir))
	if err != nil {
		return nil, err
	}
	var out []EnvVar
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out = append(out, EnvVar{k, v})
		}
	}
	return out, nil
}

// Running reports the live processes of a run directory.
func Running(runDir string) []string {
	var out []string
	for _, p := range runningPids(runDir) {
		out = append(out, fmt.Sprintf("%s (pid %d)", p.name, p.pid))
	}
	return out
}
