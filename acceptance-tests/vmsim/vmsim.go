// Package vmsim is the "simulated VM" of the acceptance tests: it proves that
// a VM bootstrap bundle (the five files `istioctl x workload entry configure`
// writes and our provider renders: cluster.env, mesh.yaml, hosts,
// root-cert.pem, istio-token) is live against a real istiod.
//
// It runs the real `pilot-agent` of the pinned Istio, without Envoy
// (DISABLE_ENVOY=true), started by the real tools/packaging/common/istio-start.sh
// from a fake VM root that holds exactly the bundle files where the VM
// install docs put them (see Layout). The agent runs in its own mount
// namespace where the VM's /etc/hosts (the host's file plus the bundle's
// `hosts` line, as the docs say to append it) is bind-mounted over /etc/hosts,
// so istiod's name resolves exactly as on the VM.
//
// With Envoy disabled the agent only opens its upstream XDS stream to istiod
// when a downstream ADS client connects to its UDS (./etc/istio/proxy/XDS),
// and only forwards probe results after that client's first LDS request
// (`pkg/istio-agent/xds_proxy.go`, `pilot/cmd/pilot-agent/options` (`DISABLE_ENVOY`)). VM plays that client: it sends the
// Node the agent wrote into its gRPC bootstrap (with the proxyless "grpc"
// generator removed, so istiod sees the node as the Envoy sidecar a real VM
// runs), requests LDS, keeps the stream open and ACKs every response. That is
// enough for istiod to auto-register the VM (WorkloadEntry) and to receive the
// agent's readinessProbe results (Healthy condition).
//
// What the environment must provide:
//   - root (CI is root): the agent runs in new mount and PID namespaces
//     (the PID namespace makes the whole VM die with its start script, and
//     Pdeathsig makes it die with the calling process);
//   - pilot-agent ($TFPI_PILOT_AGENT or tools.env) and istio-start.sh of the
//     same Istio (see Options.StartScript);
//   - istiod's secure gRPC (CA + XDS) reachable at <ip>:15012 for the ip the
//     bundle's hosts file gives istiod[-<rev>].<istio namespace>.svc (the
//     istio-eastwestgateway Service's load balancer IP), with TLS passed
//     through by SNI to the istiod of that name (the control plane's
//     east-west gateway, acceptance-tests/controlplane/gateway.go);
//   - the VM's IP (Options.IP) being a local address (any 127.0.0.0/8
//     address works) where the probed application listens.
package vmsim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"terraform-provider-istio/acceptance-tests/controlplane"
	"terraform-provider-istio/acceptance-tests/ports"
)

// BundleFiles are the five files of a VM bootstrap bundle.
var BundleFiles = []string{"cluster.env", "mesh.yaml", "hosts", "root-cert.pem", "istio-token"}

// Layout is where each bundle file goes on the VM, relative to the VM root
// (istio.io VM install docs; these are also pilot-agent's and
// istio-start.sh's defaults, relative to the working directory "/").
// "hosts" is appended to etc/hosts rather than copied.
var Layout = map[string]string{
	"root-cert.pem": "etc/certs/root-cert.pem",
	"istio-token":   "var/run/secrets/tokens/istio-token",
	"cluster.env":   "var/lib/istio/envoy/cluster.env",
	"mesh.yaml":     "etc/istio/config/mesh",
	"hosts":         "etc/hosts",
}

// Options configure Start.
type Options struct {
	// BundleDir holds the five bundle files (required).
	BundleDir string
	// WorkDir is created if needed and holds the fake VM root (WorkDir/root),
	// pilot-agent.log and xds-client.log (required).
	WorkDir string
	// AgentBinary is pilot-agent (default: $TFPI_PILOT_AGENT or tools.env).
	AgentBinary string
	// StartScript is istio-start.sh of the same Istio (default:
	// $TFPI_ISTIO_START_SH, then istio-start.sh next to AgentBinary, then the
	// istio.io/istio module source of $TFPI_ISTIO_VERSION in GOMODCACHE).
	StartScript string
	// IP is the VM's address: ISTIO_SVC_IP as `hostname --all-ip-addresses`
	// would give it (a value in cluster.env still wins, as on a VM). It
	// becomes INSTANCE_IP, the WorkloadEntry address and the probe host.
	// Default 127.0.0.1; use distinct loopback addresses (127.0.0.0/8) for
	// several VMs.
	IP string
	// Hostname is POD_NAME (`hostname -s` on a VM). Default "vm-<IP>".
	Hostname string
	// StatusPort is the agent's status port. On a VM it is 15020; 0 picks a
	// free port so several simulated VMs can run on one host. It is passed,
	// with istio-start.sh's own defaults, in PROXY_CONFIG.
	StatusPort int
	// LogLevel is pilot-agent's --log_output_level (default "default:info").
	LogLevel string
	// ReadyTimeout bounds the wait for the agent's XDS socket (default 60s).
	ReadyTimeout time.Duration
	// Env is appended to the agent's environment (KEY=value).
	Env []string
	// DNS maps names the VM's network resolves to addresses: what public
	// DNS answers on a real VM, e.g. the east-west gateway's load balancer
	// name (controlplane env EASTWEST_GATEWAY_HOSTNAME → _IP). They go into
	// the VM's /etc/hosts before the bundle's lines.
	DNS map[string]string
	// Logf receives progress lines (default: discarded).
	Logf func(format string, args ...any)
}

// VM is a running simulated VM.
type VM struct {
	// Root is the fake VM root (working directory "/" of the agent).
	Root string
	// AgentLog is pilot-agent's stdout and stderr.
	AgentLog string
	// ClientLog is the downstream ADS client's log.
	ClientLog string
	// Env is cluster.env as istio-start.sh sees it (after sourcing).
	Env map[string]string
	// IP is INSTANCE_IP.
	IP string

	opts     Options
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	cancel   context.CancelFunc
	client   *adsClient
	stopOnce sync.Once
}

func (o *Options) defaults() error {
	if o.BundleDir == "" || o.WorkDir == "" {
		return errors.New("vmsim: BundleDir and WorkDir are required")
	}
	if o.AgentBinary == "" {
		o.AgentBinary = controlplane.Tool("TFPI_PILOT_AGENT")
	}
	if o.AgentBinary == "" {
		return fmt.Errorf("vmsim: pilot-agent not found: TFPI_PILOT_AGENT is not set and not in %s (acceptance-tests/tools/build.sh istio)", controlplane.ToolsEnvFile())
	}
	if _, err := os.Stat(o.AgentBinary); err != nil {
		return fmt.Errorf("vmsim: pilot-agent: %w", err)
	}
	if o.StartScript == "" {
		s, err := findStartScript(o.AgentBinary)
		if err != nil {
			return err
		}
		o.StartScript = s
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.Hostname == "" {
		o.Hostname = "vm-" + strings.NewReplacer(".", "-", ":", "-").Replace(o.IP)
	}
	if o.LogLevel == "" {
		o.LogLevel = "default:info"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

// findStartScript locates istio-start.sh of the pinned Istio.
func findStartScript(agent string) (string, error) {
	var tried []string
	if p := controlplane.Tool("TFPI_ISTIO_START_SH"); p != "" {
		tried = append(tried, p)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p := filepath.Join(filepath.Dir(agent), "istio-start.sh")
	tried = append(tried, p)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if ver := controlplane.Tool("TFPI_ISTIO_VERSION"); ver != "" {
		modcache := os.Getenv("GOMODCACHE")
		if modcache == "" {
			if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
				modcache = strings.TrimSpace(string(out))
			}
		}
		if modcache != "" {
			p := filepath.Join(modcache, "istio.io", "istio@"+ver, "tools", "packaging", "common", "istio-start.sh")
			tried = append(tried, p)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("vmsim: istio-start.sh not found (tried %s); set TFPI_ISTIO_START_SH or run acceptance-tests/tools/build.sh istio", strings.Join(tried, ", "))
}

// Start lays out the VM root, starts pilot-agent through istio-start.sh in
// its own mount namespace, waits for the agent's XDS socket and connects the
// downstream ADS client. The VM keeps running until Stop (or ctx ends).
func Start(ctx context.Context, opts Options) (*VM, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	workDir, err := filepath.Abs(opts.WorkDir)
	if err != nil {
		return nil, err
	}
	vm := &VM{
		Root:      filepath.Join(workDir, "root"),
		AgentLog:  filepath.Join(workDir, "pilot-agent.log"),
		ClientLog: filepath.Join(workDir, "xds-client.log"),
		opts:      opts,
		done:      make(chan struct{}),
	}
	if err := vm.layout(); err != nil {
		return nil, fmt.Errorf("vmsim: laying out VM root %s: %w", vm.Root, err)
	}
	if vm.Env, err = sourceEnvFile(filepath.Join(vm.Root, Layout["cluster.env"])); err != nil {
		return nil, fmt.Errorf("vmsim: reading cluster.env: %w", err)
	}
	vm.IP = opts.IP
	if ip := vm.Env["ISTIO_SVC_IP"]; ip != "" {
		vm.IP = ip
	}
	if err := vm.startAgent(); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	vm.cancel = cancel
	go func() {
		select {
		case <-ctx.Done():
			vm.Stop()
		case <-vm.done:
		}
	}()
	if err := vm.waitForSocket(ctx); err != nil {
		vm.Stop()
		return nil, err
	}
	node, err := vm.readNode()
	if err != nil {
		vm.Stop()
		return nil, err
	}
	logf, err := os.OpenFile(vm.ClientLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		vm.Stop()
		return nil, err
	}
	vm.client = newADSClient(vm.xdsSocket(), node, logf)
	go vm.client.run(runCtx)
	opts.Logf("vmsim: VM %s (%s) started; agent log %s, ADS client log %s", opts.Hostname, vm.IP, vm.AgentLog, vm.ClientLog)
	return vm, nil
}

// layout creates the fake VM root with the bundle files in place.
func (vm *VM) layout() error {
	if err := os.RemoveAll(vm.Root); err != nil {
		return err
	}
	for _, name := range BundleFiles {
		src := filepath.Join(vm.opts.BundleDir, name)
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("bundle file: %w", err)
		}
		dst := filepath.Join(vm.Root, Layout[name])
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if name == "istio-token" {
			mode = 0o600
		}
		if name == "hosts" {
			// "appended to /etc/hosts": the VM's own hosts file first.
			base, err := os.ReadFile("/etc/hosts")
			if err != nil {
				base = []byte("127.0.0.1 localhost\n::1 localhost\n")
			}
			if len(base) > 0 && base[len(base)-1] != '\n' {
				base = append(base, '\n')
			}
			for name, addr := range vm.opts.DNS {
				base = fmt.Appendf(base, "%s %s # the VM's DNS\n", addr, name)
			}
			data = append(append(base, "# appended from the bundle's hosts file\n"...), data...)
		}
		if err := os.WriteFile(dst, data, mode); err != nil {
			return err
		}
	}
	// What the deb package installs: the binary and the start script.
	bin := filepath.Join(vm.Root, "usr", "local", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(vm.opts.AgentBinary, filepath.Join(bin, "pilot-agent")); err != nil {
		return err
	}
	script, err := os.ReadFile(vm.opts.StartScript)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bin, "istio-start.sh"), script, 0o755); err != nil {
		return err
	}
	// istio.service's ExecStartPre creates /var/run/secrets; the log dir is the deb's.
	for _, d := range []string{"var/run/secrets", "var/log/istio", "etc/istio/proxy"} {
		if err := os.MkdirAll(filepath.Join(vm.Root, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// sourceEnvFile returns the variables a file defines when sourced by bash
// with `set -a`, exactly as istio-start.sh does.
func sourceEnvFile(path string) (map[string]string, error) {
	cmd := exec.Command("/bin/bash", "-c", `set -a; . "$1"; set +a; env -0`, "bash", path)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bash . %s: %v: %s", path, err, stderr.String())
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch k {
		case "PATH", "PWD", "SHLVL", "_", "OLDPWD":
			continue
		}
		env[k] = v
	}
	return env, nil
}

func (vm *VM) startAgent() error {
	o := vm.opts
	statusPort := o.StatusPort
	if statusPort == 0 {
		p, err := ports.Take(1)
		if err != nil {
			return err
		}
		statusPort = p[0]
	}
	dns, err := ports.Take(1)
	if err != nil {
		return err
	}
	dnsPort := dns[0]
	svc := vm.Env["ISTIO_SERVICE"]
	if svc == "" {
		svc = "rawvm"
	}
	cpAuth := vm.Env["ISTIO_CP_AUTH"]
	if cpAuth == "" {
		cpAuth = "MUTUAL_TLS"
	}
	u, err := user.Current()
	if err != nil {
		return err
	}
	binBase := filepath.Join(vm.Root, "usr", "local", "bin")
	env := []string{
		"PATH=" + binBase + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + vm.Root,
		// istio-start.sh runs the agent directly when EXEC_USER is the current
		// user (otherwise it would sudo to istio-proxy).
		"USER=" + u.Username,
		"EXEC_USER=" + u.Username,
		"ISTIO_BIN_BASE=" + binBase,
		// No iptables on the host: traffic capture is not what is tested.
		"ISTIO_CUSTOM_IP_TABLES=true",
		"DISABLE_ENVOY=true",
		"POD_NAME=" + o.Hostname,
		"ISTIO_SVC_IP=" + o.IP,
		// istio-start.sh's DEFAULT_PROXY_CONFIG, plus a status port that does
		// not collide with other simulated VMs on this host.
		fmt.Sprintf("PROXY_CONFIG=serviceCluster: %s\ncontrolPlaneAuthPolicy: %s\nstatusPort: %d\n", svc, cpAuth, statusPort),
		fmt.Sprintf("DNS_PROXY_ADDR=127.0.0.1:%d", dnsPort),
		"ISTIO_AGENT_FLAGS=--log_output_level=" + o.LogLevel,
	}
	env = append(env, o.Env...)

	logFile, err := os.OpenFile(vm.AgentLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	hosts := filepath.Join(vm.Root, Layout["hosts"])
	// In a private mount namespace (Go remounts / MS_PRIVATE when
	// CLONE_NEWNS is unshared): the VM's hosts file over /etc/hosts, then the
	// start script from the VM root as working directory "/".
	shell := `mount --bind "$1" /etc/hosts || exit 97; cd "$2" || exit 98; exec /bin/bash ./usr/local/bin/istio-start.sh`
	fmt.Fprintf(logFile, "# vmsim: unshare(CLONE_NEWNS); mount --bind %s /etc/hosts; cd %s; istio-start.sh\n# env: %s\n",
		hosts, vm.Root, strings.Join(env, " | "))
	cmd := exec.Command("/bin/bash", "-c", shell, "vmsim", hosts, vm.Root)
	cmd.Dir = vm.Root
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// A PID namespace: the shell is its PID 1, so when it dies the kernel
		// kills every process of the VM (the agent is a child of the script,
		// not exec'd). With Pdeathsig the VM dies with the process that
		// started it (test binary, CLI), never outliving it.
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("vmsim: starting pilot-agent (needs root for the mount namespace): %w", err)
	}
	vm.cmd = cmd
	go func() {
		vm.waitErr = cmd.Wait()
		close(vm.done)
	}()
	return nil
}

func (vm *VM) xdsSocket() string { return filepath.Join(vm.Root, "etc", "istio", "proxy", "XDS") }

func (vm *VM) grpcBootstrap() string {
	return filepath.Join(vm.Root, "etc", "istio", "proxy", "grpc-bootstrap.json")
}

// Done is closed when the agent (the VM's process tree) has exited.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Exited reports whether the agent has exited, and why.
func (vm *VM) Exited() (bool, error) {
	select {
	case <-vm.done:
		return true, vm.waitErr
	default:
		return false, nil
	}
}

func (vm *VM) waitForSocket(ctx context.Context) error {
	deadline := time.Now().Add(vm.opts.ReadyTimeout)
	for {
		if exited, err := vm.Exited(); exited {
			return fmt.Errorf("vmsim: pilot-agent exited (%v) before its XDS socket appeared; log %s:\n%s", err, vm.AgentLog, vm.LogTail(30))
		}
		_, e1 := os.Stat(vm.grpcBootstrap())
		c, e2 := net.DialTimeout("unix", vm.xdsSocket(), time.Second)
		if e1 == nil && e2 == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vmsim: pilot-agent XDS socket %s not ready after %s (bootstrap: %v, socket: %v); log %s:\n%s",
				vm.xdsSocket(), vm.opts.ReadyTimeout, e1, e2, vm.AgentLog, vm.LogTail(30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends the ADS client and kills the agent's whole process group. It
// is safe to call more than once.
func (vm *VM) Stop() error {
	vm.stopOnce.Do(func() {
		if vm.cancel != nil {
			vm.cancel()
		}
		if vm.cmd != nil && vm.cmd.Process != nil {
			pgid := vm.cmd.Process.Pid
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-vm.done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-vm.done
			}
			// Anything left in the group (there should be nothing).
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		if vm.client != nil {
			vm.client.close()
		}
	})
	return nil
}

// LogTail returns the last n lines of the agent's log.
func (vm *VM) LogTail(n int) string { return tail(vm.AgentLog, n) }

// ClientLogTail returns the last n lines of the ADS client's log.
func (vm *VM) ClientLogTail(n int) string { return tail(vm.ClientLog, n) }

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// CertDir is OUTPUT_CERTS (./etc/certs, set by istio-start.sh).
func (vm *VM) CertDir() string { return filepath.Join(vm.Root, "etc", "certs") }

// WorkloadCertSPIFFE reads the workload certificate the agent wrote to
// OUTPUT_CERTS (cert-chain.pem) and returns its URI SAN (the SPIFFE ID).
func (vm *VM) WorkloadCertSPIFFE() (string, error) {
	data, err := os.ReadFile(filepath.Join(vm.CertDir(), "cert-chain.pem"))
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return "", errors.New("vmsim: cert-chain.pem holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	if len(cert.URIs) == 0 {
		return "", errors.New("vmsim: workload certificate has no URI SAN")
	}
	return cert.URIs[0].String(), nil
}

// WaitForWorkloadCert waits until the agent has written a workload
// certificate and returns its SPIFFE ID. It fails early if the agent exits.
func (vm *VM) WaitForWorkloadCert(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		id, err := vm.WorkloadCertSPIFFE()
		if err == nil {
			return id, nil
		}
		if exited, exitErr := vm.Exited(); exited {
			return "", fmt.Errorf("vmsim: pilot-agent exited (%v); log:\n%s", exitErr, vm.LogTail(30))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("vmsim: no workload certificate in %s after %s (%v); agent log %s:\n%s", vm.CertDir(), timeout, err, vm.AgentLog, vm.LogTail(30))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// XDS reports the downstream ADS client's view of the stream.
func (vm *VM) XDS() XDSStatus { return vm.client.status() }

// WaitForXDS waits until the stream through the agent has received at least
// one response from istiod (so istiod accepted the connection).
func (vm *VM) WaitForXDS(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st := vm.XDS()
		if st.Responses > 0 {
			return nil
		}
		if exited, exitErr := vm.Exited(); exited {
			return fmt.Errorf("vmsim: pilot-agent exited (%v); log:\n%s", exitErr, vm.LogTail(30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vmsim: no XDS response through the agent after %s (last stream error: %s); client log:\n%s\nagent log:\n%s",
				timeout, st.LastError, vm.ClientLogTail(10), vm.LogTail(30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
