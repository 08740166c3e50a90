package acceptance

// Faults: the API server restarted or gone, istiod stopped, Terraform
// interrupted, the provider killed, objects deleted or edited out of band,
// many registrations at once. Each test ends with the state and the cluster
// in agreement (an empty plan) and, after destroy, nothing left behind.
//
// The tests that need signals or a saved plan drive the real Terraform CLI
// directly (tfWork); the others use terraform-plugin-testing. Where health
// crosses the fault (the API server restarts), a simulated VM (vmsim: the real
// pilot-agent) reports it and istiod writes it. Elsewhere, where a test needs
// a manual entry healthy only so that a wait ends, it writes the Healthy
// condition as istiod would.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"terraform-provider-istio/acceptance-tests/vmsim"
)

const registrationLabel = "terraform-provider-istio/registration"

// faultConfig is a WorkloadGroup with a probe (so a registration can wait for
// health) and a manual registration of one VM at address, with extra lines.
func faultConfig(ns, address, registrationExtra string) string {
	return providerConfig() + fmt.Sprintf(`
resource "istio_workload_group" "product" {
  name            = "product-vm"
  namespace       = %[1]q
  force_conflicts = true # takes back what is edited out of band
  metadata {
    labels = { app = "product" }
  }
  template {
    service_account = "default"
    ports           = { http = 8080 }
  }
  probe {
    http_get {
      port = 8080
    }
  }
}

resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.product.id
  mode           = "manual"
  address        = %[2]q
%[3]s
}
`, ns, address, registrationExtra)
}

// tfWork is a Terraform working directory driven with the real CLI.
type tfWork struct {
	t   *testing.T
	dir string
}

// newTFWork writes config as main.tf into a fresh directory and runs init.
func newTFWork(t *testing.T, config string) *tfWork {
	t.Helper()
	testAccPreCheck(t)
	w := &tfWork{t: t, dir: t.TempDir()}
	w.setConfig(config)
	w.must("init", "-input=false", "-no-color")
	return w
}

// setConfig writes main.tf: config, with our provider's source declared.
func (w *tfWork) setConfig(config string) {
	requiredProviders := strings.TrimSuffix(terraformHeader(), providerConfig())
	writeFile(w.t, filepath.Join(w.dir, "main.tf"), requiredProviders+config)
}

func (w *tfWork) command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	return cmd
}

// run runs the CLI to the end and returns its combined output and exit code.
func (w *tfWork) run(args ...string) (string, int) {
	w.t.Helper()
	out, err := w.command(args...).CombinedOutput()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		w.t.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	}
	return string(out), code
}

func (w *tfWork) must(args ...string) string {
	w.t.Helper()
	out, code := w.run(args...)
	if code != 0 {
		w.t.Fatalf("terraform %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// started is a CLI run in the background.
type started struct {
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the CLI in the background in its own process group, as a shell
// runs a foreground job: interrupt sends SIGINT to that group, as Ctrl-C does
// (Terraform's outer process ignores SIGINT and leaves it to the inner one).
func (w *tfWork) start(args ...string) *started {
	w.t.Helper()
	s := &started{cmd: w.command(args...), output: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		w.t.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	w.t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	return s
}

// interrupt is Ctrl-C: SIGINT to the run's process group.
func (s *started) interrupt() error { return syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT) }

// wait returns the exit code once the run ends, failing after timeout.
func (s *started) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-s.done:
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatalf("terraform: %v", err)
		}
		return 0
	case <-time.After(timeout):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("terraform did not finish within %s; output:\n%s", timeout, s.output)
		return -1
	}
}

// state is `terraform show -json`'s root module resources by address.
func (w *tfWork) state() map[string]*tfjson.StateResource {
	w.t.Helper()
	var state tfjson.State
	if err := json.Unmarshal([]byte(w.must("show", "-json")), &state); err != nil {
		w.t.Fatalf("terraform show -json: %v", err)
	}
	out := map[string]*tfjson.StateResource{}
	if state.Values != nil && state.Values.RootModule != nil {
		for _, r := range state.Values.RootModule.Resources {
			out[r.Address] = r
		}
	}
	return out
}

// expectNoChanges asserts that the state and the cluster agree.
func (w *tfWork) expectNoChanges() {
	w.t.Helper()
	out, code := w.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
	if code != 0 {
		w.t.Fatalf("state and cluster disagree: plan exited %d:\n%s", code, out)
	}
}

// destroyAndExpectNothingLeft destroys everything and checks that the
// namespace holds no object the provider makes.
func (w *tfWork) destroyAndExpectNothingLeft(ns string) {
	w.t.Helper()
	w.must("destroy", "-auto-approve", "-input=false", "-no-color")
	expectNothingLeft(w.t, ns)
}

// expectNothingLeft fails for any WorkloadGroup, WorkloadEntry, Service or
// registration Secret left in ns.
func expectNothingLeft(t *testing.T, ns string) {
	t.Helper()
	if n := len(listObjects(t, gvrWorkloadGroup, ns, "")); n != 0 {
		t.Errorf("%d WorkloadGroups left in %s", n, ns)
	}
	if n := len(listObjects(t, gvrWorkloadEntry, ns, "")); n != 0 {
		t.Errorf("%d WorkloadEntries left in %s", n, ns)
	}
	if n := len(listObjects(t, gvrService, ns, "")); n != 0 {
		t.Errorf("%d Services left in %s", n, ns)
	}
	if n := len(registrationSecrets(t, ns)); n != 0 {
		t.Errorf("%d registration token Secrets left in %s", n, ns)
	}
}

func listObjects(t *testing.T, gvr schema.GroupVersionResource, ns, selector string) []unstructured.Unstructured {
	t.Helper()
	list, err := resourceClient(gvr, ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("listing %s in %s: %v", gvr.Resource, ns, err)
	}
	return list.Items
}

// registrationSecrets are the token Secrets of registrations in ns: the
// provider's Secrets (the registration ID is a Secret's UID; the registration
// label is on entries only).
func registrationSecrets(t *testing.T, ns string) []unstructured.Unstructured {
	return listObjects(t, gvrSecret, ns, "app.kubernetes.io/managed-by=terraform-provider-istio")
}

// waitForEntries waits until ns holds n WorkloadEntries and returns them.
func waitForEntries(t *testing.T, ns string, n int, timeout time.Duration) []unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries := listObjects(t, gvrWorkloadEntry, ns, "")
		if len(entries) == n {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d WorkloadEntries in %s after %s, want %d", len(entries), ns, timeout, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reportHealthy writes the Healthy=True condition on an entry's status, as
// istiod does when the VM's probe succeeds.
func reportHealthy(t *testing.T, ns, name string) {
	t.Helper()
	client := resourceClient(gvrWorkloadEntry, ns)
	for attempt := 0; ; attempt++ {
		entry, err := client.Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			condition := map[string]any{"type": "Healthy", "status": "True",
				"lastProbeTime": time.Now().UTC().Format(time.RFC3339), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
			_ = unstructured.SetNestedSlice(entry.Object, []any{condition}, "status", "conditions")
			_, err = client.UpdateStatus(context.Background(), entry, metav1.UpdateOptions{})
		}
		if err == nil {
			return
		}
		if attempt == 20 {
			t.Fatalf("reporting WorkloadEntry %s/%s healthy: %v", ns, name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// liveVM is a simulated VM (vmsim: the real pilot-agent, started by
// istio-start.sh from the provider's files) whose application fails its
// readiness probe until ready is called, so that istiod reports it
// Healthy=False first and Healthy=True only from then on.
type liveVM struct {
	ip, bundleDir string
	app           *probedApp
	vm            *vmsim.VM
}

func newLiveVM(t *testing.T) *liveVM {
	v := &liveVM{ip: "127.0.78." + fmt.Sprint(10+time.Now().UnixNano()%200), bundleDir: t.TempDir()}
	v.app = startProbedApp(t, v.ip)
	v.app.notReady.Store(true)
	t.Cleanup(v.stop)
	return v
}

// config is a WorkloadGroup whose probe is the app's /ready, and an auto
// registration writing the VM's files into bundleDir, with extra lines.
func (v *liveVM) config(ns, registrationExtra string) string {
	return providerConfig() + fmt.Sprintf(`
resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %[1]q
  metadata {
    labels = { app = "product" }
  }
  template {
    service_account = "default"
    ports           = { http = %[2]d }
  }
  probe {
    period_seconds = 1
    http_get {
      path = "/ready"
      port = %[2]d
    }
  }
}

resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.product.id
  output_dir     = %[3]q
%[4]s
}
`, ns, v.app.port, v.bundleDir, registrationExtra)
}

// boot starts the VM from the files once the provider has written them, and
// returns once istiod has auto-registered it and reported its failing probe.
func (v *liveVM) boot(t *testing.T, ns string) {
	t.Helper()
	token := filepath.Join(v.bundleDir, "istio-token")
	eventually(t, 2*time.Minute, "the VM's files in "+v.bundleDir, func() error { _, err := os.Stat(token); return err })
	var err error
	v.vm, err = vmsim.Start(context.Background(), vmsim.Options{BundleDir: v.bundleDir, WorkDir: t.TempDir(), IP: v.ip, Logf: t.Logf, DNS: vmDNS()})
	if err != nil {
		t.Fatalf("starting the simulated VM: %v", err)
	}
	waitForEntryHealth(t, ns, v.entryName(), "False")
}

func (v *liveVM) entryName() *regexp.Regexp {
	return regexp.MustCompile(`^product-vm-` + regexp.QuoteMeta(v.ip))
}

// ready makes the probe pass: istiod then writes Healthy=True.
func (v *liveVM) ready() { v.app.notReady.Store(false) }

func (v *liveVM) stop() {
	if v.vm != nil {
		_ = v.vm.Stop()
		v.vm = nil
	}
}

// TestAccFaults_apiServerRestartDuringHealthWait restarts kube-apiserver
// while the registration waits for health: a simulated VM has connected and
// istiod reports its failing probe (Healthy=False); the API server restarts;
// then the probe passes and istiod writes Healthy=True on the restarted
// server. The wait's watch resumes there, sees it, and the apply completes.
func TestAccFaults_apiServerRestartDuringHealthWait(t *testing.T) {
	ns := testNamespace(t, "fault-restart")
	waitForDefaultServiceAccount(t, ns)
	vm := newLiveVM(t)
	w := newTFWork(t, vm.config(ns, `
  wait_for_healthy = true
  timeouts {
    create = "4m"
  }
`))
	apply := w.start("apply", "-auto-approve", "-input=false", "-no-color")
	vm.boot(t, ns)
	restartAPIServer(t)
	vm.ready()
	back := time.Now()
	if code := apply.wait(t, 4*time.Minute); code != 0 {
		t.Fatalf("apply across the API server restart exited %d:\n%s\nagent:\n%s", code, apply.output, vm.vm.LogTail(20))
	}
	t.Logf("the apply completed %s after the VM's probe started to pass", time.Since(back).Round(100*time.Millisecond))
	registration := w.state()["istio_vm_registration.vm"]
	if registration == nil || registration.AttributeValues["healthy"] != true || registration.Tainted {
		t.Fatalf("registration in state: %+v, want healthy and not tainted", registration)
	}
	if !vm.entryName().MatchString(fmt.Sprint(registration.AttributeValues["workload_entry_name"])) {
		t.Errorf("workload_entry_name %v, want the entry istiod registered for %s", registration.AttributeValues["workload_entry_name"], vm.ip)
	}
	w.expectNoChanges()
	vm.stop()
	w.destroyAndExpectNothingLeft(ns)
}

// TestAccFaults_apiServerRestartDuringMeshServiceWait restarts kube-apiserver
// while istio_mesh_service waits for a healthy endpoint: the simulated VM's
// probe passes only after the restart, and istiod's Healthy=True completes the
// wait.
func TestAccFaults_apiServerRestartDuringMeshServiceWait(t *testing.T) {
	ns := testNamespace(t, "fault-svc")
	waitForDefaultServiceAccount(t, ns)
	vm := newLiveVM(t)
	w := newTFWork(t, vm.config(ns, ""))
	w.must("apply", "-auto-approve", "-input=false", "-no-color")
	vm.boot(t, ns)
	w.setConfig(vm.config(ns, "") + fmt.Sprintf(`
resource "istio_mesh_service" "product" {
  name      = "product"
  namespace = %q
  selector  = { app = "product" }
  ports {
    name = "http"
    port = %d
  }
  wait {
    min_healthy_endpoints = 1
    timeout               = "4m"
  }
}
`, ns, vm.app.port))
	apply := w.start("apply", "-auto-approve", "-input=false", "-no-color")
	waitForObject(t, gvrService, ns, "product", 2*time.Minute)
	time.Sleep(2 * time.Second) // the wait's watch is established
	restartAPIServer(t)
	vm.ready()
	back := time.Now()
	if code := apply.wait(t, 4*time.Minute); code != 0 {
		t.Fatalf("apply across the API server restart exited %d:\n%s", code, apply.output)
	}
	t.Logf("the apply completed %s after the VM's probe started to pass", time.Since(back).Round(100*time.Millisecond))
	service := w.state()["istio_mesh_service.product"]
	if service == nil || service.Tainted {
		t.Fatalf("mesh service in state: %+v, want it present and not tainted", service)
	}
	if endpoints, _ := service.AttributeValues["endpoints"].(map[string]any); fmt.Sprint(endpoints["vms_healthy"]) != "1" {
		t.Fatalf("endpoints in state: %v, want one healthy VM", service.AttributeValues["endpoints"])
	}
	w.expectNoChanges()
	vm.stop()
	w.destroyAndExpectNothingLeft(ns)
}

// restartAPIServer restarts kube-apiserver and logs how long it was away.
func restartAPIServer(t *testing.T) {
	t.Helper()
	started := time.Now()
	if err := cp.RestartAPIServer(context.Background()); err != nil {
		t.Fatalf("restarting kube-apiserver: %v", err)
	}
	t.Logf("kube-apiserver restarted and ready in %s", time.Since(started).Round(100*time.Millisecond))
}

func waitForObject(t *testing.T, gvr schema.GroupVersionResource, ns, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for checkObjectExists(gvr, ns, name)(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s %s/%s does not exist after %s", gvr.Resource, ns, name, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAccFaults_istiodStoppedDuringWait: a health wait that times out with
// istiod running blames the VM, not istiod; with istiod killed (SIGKILL)
// during the wait, the error names istiod, says that no health was reported
// and gives the evidence: the leader-election Lease istiod stopped renewing,
// with the holder the cluster shows. The registration is kept (tainted), and
// istiod is started again afterwards.
func TestAccFaults_istiodStoppedDuringWait(t *testing.T) {
	ns := testNamespace(t, "fault-istiod")
	waitForDefaultServiceAccount(t, ns)
	config := func(timeout string) string {
		return faultConfig(ns, "10.20.0.2", fmt.Sprintf(`
  wait_for_healthy = true
  timeouts {
    create = %q
  }
`, timeout))
	}
	w := newTFWork(t, config("10s"))
	out, code := w.run("apply", "-auto-approve", "-input=false", "-no-color")
	if out = oneSpace(out); code == 0 || !strings.Contains(out, "istiod has not reported health yet") || strings.Contains(out, "not running") {
		t.Fatalf("with istiod running, apply exited %d; want a timeout that does not blame istiod:\n%s", code, out)
	}
	w.must("destroy", "-auto-approve", "-input=false", "-no-color")

	lease, err := kubeClient(t).CoordinationV1().Leases(istioNamespace()).Get(context.Background(), "istio-gateway-status-leader-default", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		t.Fatalf("istiod's per-revision Lease (pilot/pkg/leaderelection/leaderelection.go): %v %+v", err, lease)
	}
	w.setConfig(config("60s"))
	apply := w.start("apply", "-auto-approve", "-input=false", "-no-color")
	waitForEntries(t, ns, 1, 2*time.Minute)
	killed := time.Now()
	if err := cp.KillIstiod(); err != nil {
		t.Fatalf("killing istiod: %v", err)
	}
	code = apply.wait(t, 3*time.Minute)
	t.Logf("apply ended %s after istiod was killed", time.Since(killed).Round(time.Second))
	if err := cp.StartIstiod(context.Background()); err != nil {
		t.Fatalf("starting istiod again: %v", err)
	}
	output := oneSpace(apply.output.String())
	if code == 0 {
		t.Fatalf("apply succeeded while istiod was killed:\n%s", output)
	}
	for _, want := range []string{
		"waiting for istiod to report the VM",
		"istiod (namespace " + istioNamespace() + ", revision ",
		"is not running, so no health was reported",
		"Lease " + istioNamespace() + "/" + lease.Name + " was last renewed by " + *lease.Spec.HolderIdentity,
		"istiod has not reported health yet",
	} {
		if !strings.Contains(output, want) {
			t.Errorf("the error does not say %q:\n%s", want, output)
		}
	}
	if n := len(diagnosticStart.FindAllStringIndex(apply.output.String(), -1)); n != 1 {
		t.Errorf("%d errors, want one:\n%s", n, output)
	}
	if i := strings.Index(output, "Error: "); i >= 0 {
		t.Logf("the error: %s", output[i:])
	}
	registration := w.state()["istio_vm_registration.vm"]
	if registration == nil || !registration.Tainted {
		t.Fatalf("registration in state: %+v, want it kept as tainted", registration)
	}
	w.destroyAndExpectNothingLeft(ns)
}

// diagnosticStart is where Terraform starts printing an error diagnostic.
var diagnosticStart = regexp.MustCompile(`(?m)^(?:│ )?Error: `)

func oneSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestAccFaults_apiServerUnreachable stops kube-apiserver before a plan and
// before the apply of a saved plan: each fails with one error that says the
// API server cannot be reached, and the state is unchanged. With the server
// back the saved change applies.
func TestAccFaults_apiServerUnreachable(t *testing.T) {
	ns := testNamespace(t, "fault-down")
	waitForDefaultServiceAccount(t, ns)
	w := newTFWork(t, faultConfig(ns, "10.20.0.3", ""))
	w.must("apply", "-auto-approve", "-input=false", "-no-color")
	before := w.must("show", "-json")
	w.setConfig(faultConfig(ns, "10.20.0.3", `  labels = { version = "v2" }`))
	w.must("plan", "-out=tfplan", "-input=false", "-no-color")

	if err := cp.StopAPIServer(); err != nil {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = cp.StartAPIServer(context.Background())
		}
	})
	for _, args := range [][]string{
		{"plan", "-input=false", "-no-color"},
		{"apply", "-input=false", "-no-color", "tfplan"},
	} {
		raw, code := w.run(args...)
		out := oneSpace(raw)
		if code == 0 {
			t.Errorf("terraform %s succeeded without an API server:\n%s", args[0], out)
		}
		// Terraform shows the error once per resource that needs the cluster: one cause, nothing else.
		errors := diagnosticStart.Split(raw, -1)[1:]
		for _, e := range errors {
			e = oneSpace(e)
			if !strings.HasPrefix(e, "Cannot use the Kubernetes API server") || !strings.Contains(e, "cannot reach the Kubernetes API server "+cp.Get("KUBE_APISERVER")) {
				t.Errorf("terraform %s: an error that does not say the API server is unreachable: %s", args[0], e)
			}
		}
		if len(errors) == 0 {
			t.Errorf("terraform %s: no error:\n%s", args[0], out)
		}
		t.Logf("terraform %s without an API server: %d error(s), all `cannot reach the Kubernetes API server`", args[0], len(errors))
	}
	if after := w.must("show", "-json"); after != before {
		t.Errorf("the state changed while the API server was unreachable:\nbefore %s\nafter  %s", before, after)
	}

	if err := cp.StartAPIServer(context.Background()); err != nil {
		t.Fatalf("starting kube-apiserver again: %v", err)
	}
	restarted = true
	w.must("apply", "-auto-approve", "-input=false", "-no-color")
	entry := waitForEntries(t, ns, 1, 10*time.Second)[0]
	if entry.GetLabels()["version"] != "v2" {
		t.Errorf("entry labels %v after the apply, want version=v2", entry.GetLabels())
	}
	w.expectNoChanges()
	w.destroyAndExpectNothingLeft(ns)
}

// TestAccFaults_interruptDuringCreateWait sends SIGINT to Terraform while a
// registration waits for health: Terraform asks the provider to stop, the wait
// ends at once, and what was created is in the state as tainted (documented on
// the resource), so destroy (or the next apply) removes it.
func TestAccFaults_interruptDuringCreateWait(t *testing.T) {
	ns := testNamespace(t, "fault-sigint")
	waitForDefaultServiceAccount(t, ns)
	w := newTFWork(t, faultConfig(ns, "10.20.0.4", `
  wait_for_healthy = true
  timeouts {
    create = "10m"
  }
`))
	apply := w.start("apply", "-auto-approve", "-input=false", "-no-color")
	waitForEntries(t, ns, 1, 2*time.Minute)
	time.Sleep(time.Second)
	if err := apply.interrupt(); err != nil {
		t.Fatal(err)
	}
	interrupted := time.Now()
	if code := apply.wait(t, 60*time.Second); code == 0 {
		t.Fatalf("apply succeeded after SIGINT:\n%s", apply.output)
	}
	t.Logf("Terraform exited %s after SIGINT", time.Since(interrupted).Round(100*time.Millisecond))
	if out := oneSpace(apply.output.String()); !strings.Contains(out, "cancelled by Terraform while waiting for istiod") {
		t.Errorf("the error does not say the wait was cancelled:\n%s", out)
	}
	state := w.state()
	registration := state["istio_vm_registration.vm"]
	if registration == nil || !registration.Tainted {
		t.Fatalf("registration in state: %+v, want it kept as tainted", registration)
	}
	if state["istio_workload_group.product"] == nil {
		t.Fatal("the group is not in the state")
	}
	secret := fmt.Sprint(registration.AttributeValues["token_secret_name"])
	if secrets := registrationSecrets(t, ns); len(secrets) != 1 || secrets[0].GetName() != secret {
		t.Fatalf("token Secrets %v, want exactly the one in the state (%s)", names(secrets), secret)
	}
	w.destroyAndExpectNothingLeft(ns)
}

func names(objects []unstructured.Unstructured) []string {
	var out []string
	for _, o := range objects {
		out = append(out, o.GetName())
	}
	return out
}

// TestAccFaults_providerKilledDuringApply kills the provider with SIGKILL
// while a registration waits, after its token was written to output_dir:
// Terraform fails, and the next plan shows the truth (the registration is not
// in the state, so it is to be created). The apply that follows leaves exactly
// one entry (manual) and one token Secret, the state's, and the killed
// create's token no longer passes TokenReview: in manual mode the retry takes
// over the entry and revokes the Secret the entry named; in auto mode the
// killed create's Secret is still pending after its deadline, and the retry's
// create revokes it.
func TestAccFaults_providerKilledDuringApply(t *testing.T) {
	t.Run("manual", func(t *testing.T) {
		ns := testNamespace(t, "fault-kill")
		killedCreateIsRepaired(t, ns, func(extra string) string { return faultConfig(ns, "10.20.0.5", extra) }, 1)
	})
	t.Run("auto", func(t *testing.T) {
		ns := testNamespace(t, "fault-kill-auto")
		killedCreateIsRepaired(t, ns, func(extra string) string { return autoFaultConfig(ns, extra) }, 0)
	})
}

// autoFaultConfig is faultConfig with an auto registration (no VM connects).
func autoFaultConfig(ns, registrationExtra string) string {
	return strings.Replace(faultConfig(ns, "", registrationExtra), `  mode           = "manual"
  address        = ""
`, "", 1)
}

func killedCreateIsRepaired(t *testing.T, ns string, config func(extra string) string, wantEntries int) {
	waitForDefaultServiceAccount(t, ns)
	dir := t.TempDir()
	outputDir := fmt.Sprintf("  output_dir = %q\n", dir)
	w := newTFWork(t, config(outputDir+`
  wait_for_healthy = true
  timeouts {
    create = "20s"
  }
`))
	apply := w.start("apply", "-auto-approve", "-input=false", "-no-color")
	tokenFile := filepath.Join(dir, "istio-token")
	eventually(t, 2*time.Minute, "the token in "+tokenFile, func() error { _, err := os.Stat(tokenFile); return err })
	time.Sleep(time.Second) // in the wait
	provider := providerProcess(t, apply.cmd.Process.Pid)
	if err := syscall.Kill(provider, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedToken := readFile(t, tokenFile)
	if code := apply.wait(t, 60*time.Second); code == 0 {
		t.Fatalf("apply succeeded with its provider killed:\n%s", apply.output)
	}
	out, code := w.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
	if code != 2 || !strings.Contains(out, "istio_vm_registration.vm will be created") {
		t.Fatalf("plan after the kill exited %d, want the registration to be created:\n%s", code, out)
	}
	orphans := registrationSecrets(t, ns)
	if len(orphans) != 1 {
		t.Fatalf("token Secrets after the kill: %v, want the killed create's one", names(orphans))
	}
	if until, ok := orphans[0].GetAnnotations()[pendingAnnotation]; ok {
		deadline, err := time.Parse(time.RFC3339, until)
		if err != nil {
			t.Fatalf("%s = %q: %v", pendingAnnotation, until, err)
		}
		t.Logf("the killed create's Secret %s is pending until %s; waiting for it", orphans[0].GetName(), until)
		time.Sleep(time.Until(deadline) + time.Second)
	} else if wantEntries == 0 {
		t.Fatalf("the killed auto create's Secret %s has no %s annotation", orphans[0].GetName(), pendingAnnotation)
	}

	// The retry: the manual VM serves meanwhile, so its wait is met at once;
	// no VM connects in auto mode, so that retry does not wait.
	if wantEntries == 1 {
		reportHealthy(t, ns, waitForEntries(t, ns, 1, time.Second)[0].GetName())
		w.setConfig(config(outputDir + "  wait_for_healthy = true\n"))
	} else {
		w.setConfig(config(outputDir))
	}
	w.must("apply", "-auto-approve", "-input=false", "-no-color")
	registration := w.state()["istio_vm_registration.vm"]
	if registration == nil || registration.Tainted {
		t.Fatalf("registration in state: %+v, want it created", registration)
	}
	entries := listObjects(t, gvrWorkloadEntry, ns, "")
	secrets := registrationSecrets(t, ns)
	if len(entries) != wantEntries || len(secrets) != 1 || secrets[0].GetName() != registration.AttributeValues["token_secret_name"] {
		t.Errorf("after the retry: entries %v, token Secrets %v; want %d entries and only the state's Secret %v",
			names(entries), names(secrets), wantEntries, registration.AttributeValues["token_secret_name"])
	}
	if len(secrets) == 1 {
		if until, pending := secrets[0].GetAnnotations()[pendingAnnotation]; pending {
			t.Errorf("the retry's Secret %s is still pending (until %s) after its create ended", secrets[0].GetName(), until)
		}
	}
	if err := expectTokenRejected(t, killedToken); err != nil {
		t.Errorf("the killed create's token: %v", err)
	}
	if err := expectTokenAccepted(t, fmt.Sprint(registration.AttributeValues["istio_token"]), ns); err != nil {
		t.Errorf("the retry's token: %v", err)
	}
	w.expectNoChanges()
	w.destroyAndExpectNothingLeft(ns)
}

// pendingAnnotation marks the token Secret of an auto registration whose
// create has not ended (src/resources/vm_registration/mod.rs).
const pendingAnnotation = "terraform-provider-istio/pending-until"

// providerProcess is the pid of our provider in the process group of a
// Terraform run.
func providerProcess(t *testing.T, group int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, stat := range procs {
			b, err := os.ReadFile(stat)
			if err != nil {
				continue
			}
			open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
			if open < 0 || close < open {
				continue
			}
			// After the command name: state, ppid, pgrp.
			fields := strings.Fields(string(b[close+1:]))
			if len(fields) < 3 || fields[2] != strconv.Itoa(group) ||
				!strings.HasPrefix(string(b[open+1:close]), "terraform-provi") {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(stat)))
			return pid
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no provider process in the process group of terraform (%d)", group)
	return 0
}

// TestAccFaults_outOfBandChanges deletes or edits each object the provider
// manages (WorkloadGroup, WorkloadEntry, Service, the registration's token
// Secret) behind Terraform's back: the next plan shows the change, and the
// apply repairs it.
func TestAccFaults_outOfBandChanges(t *testing.T) {
	ns := testNamespace(t, "fault-oob")
	waitForDefaultServiceAccount(t, ns)
	const entryName = "product-vm-10.20.0.6"
	config := faultConfig(ns, "10.20.0.6", "") + fmt.Sprintf(`
resource "istio_mesh_service" "product" {
  name            = "product"
  namespace       = %q
  force_conflicts = true
  selector        = { app = "product" }
  ports {
    name = "http"
    port = 8080
  }
}
`, ns)
	step := func(what string, change func(), address string, action plancheck.ResourceActionType, check resource.TestCheckFunc) resource.TestStep {
		return resource.TestStep{
			PreConfig: func() {
				t.Logf("out of band: %s", what)
				change()
			},
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(address, action)},
			},
			Check: resource.ComposeAggregateTestCheckFunc(check, checkOneOfEach(t, ns)),
		}
	}
	del := func(gvr schema.GroupVersionResource, name func() string) func() {
		return func() {
			name := name()
			if err := resourceClient(gvr, ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("deleting %s %s: %v", gvr.Resource, name, err)
			}
			if err := checkObjectGone(gvr, ns, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	edit := func(gvr schema.GroupVersionResource, name string, value any, fields ...string) func() {
		return func() {
			obj := getObject(t, gvr, ns, name)
			if err := unstructured.SetNestedField(obj.Object, value, fields...); err != nil {
				t.Fatal(err)
			}
			if _, err := resourceClient(gvr, ns).Update(context.Background(), obj, metav1.UpdateOptions{FieldManager: "oob-editor"}); err != nil {
				t.Fatalf("editing %s %s: %v", gvr.Resource, name, err)
			}
		}
	}
	fixed := func(gvr schema.GroupVersionResource, name string, want any, fields ...string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			got, _, _ := unstructured.NestedFieldNoCopy(getObject(t, gvr, ns, name).Object, fields...)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("%s %s %s = %v after the apply, want %v", gvr.Resource, name, strings.Join(fields, "."), got, want)
			}
			return nil
		}
	}
	secretName := func() string {
		secrets := registrationSecrets(t, ns)
		if len(secrets) != 1 {
			t.Fatalf("token Secrets %v, want one", names(secrets))
		}
		return secrets[0].GetName()
	}
	const group, registration, service = "istio_workload_group.product", "istio_vm_registration.vm", "istio_mesh_service.product"
	update, create := plancheck.ResourceActionUpdate, plancheck.ResourceActionCreate
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{Config: config, Check: checkOneOfEach(t, ns)},
			step("edit the WorkloadGroup", edit(gvrWorkloadGroup, "product-vm", "oob", "spec", "template", "serviceAccount"),
				group, update, fixed(gvrWorkloadGroup, "product-vm", "default", "spec", "template", "serviceAccount")),
			step("delete the WorkloadGroup (the garbage collector deletes the entry it owns)", func() {
				del(gvrWorkloadGroup, func() string { return "product-vm" })()
				if err := checkObjectGone(gvrWorkloadEntry, ns, entryName); err != nil {
					t.Fatal(err)
				}
			},
				group, create, checkObjectExists(gvrWorkloadGroup, ns, "product-vm")),
			step("edit the WorkloadEntry", edit(gvrWorkloadEntry, entryName, "10.99.0.1", "spec", "address"),
				registration, update, fixed(gvrWorkloadEntry, entryName, "10.20.0.6", "spec", "address")),
			step("delete the WorkloadEntry", del(gvrWorkloadEntry, func() string { return entryName }),
				registration, update, checkObjectExists(gvrWorkloadEntry, ns, entryName)),
			step("edit the Service", edit(gvrService, "product", map[string]any{"app": "other"}, "spec", "selector"),
				service, update, fixed(gvrService, "product", map[string]any{"app": "product"}, "spec", "selector")),
			step("delete the Service", del(gvrService, func() string { return "product" }),
				service, create, checkObjectExists(gvrService, ns, "product")),
			step("delete the token Secret", del(gvrSecret, secretName),
				registration, create, resource.TestCheckResourceAttrWith(registration, "istio_token", func(token string) error {
					return expectTokenAccepted(t, token, ns)
				})),
		},
	})
	expectNothingLeft(t, ns)
}

// checkOneOfEach: one group, one entry, one Service, one token Secret in ns.
func checkOneOfEach(t *testing.T, ns string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for what, n := range map[string]int{
			"WorkloadGroups":  len(listObjects(t, gvrWorkloadGroup, ns, "")),
			"WorkloadEntries": len(listObjects(t, gvrWorkloadEntry, ns, "")),
			"Services":        len(listObjects(t, gvrService, ns, "")),
			"token Secrets":   len(registrationSecrets(t, ns)),
		} {
			if n != 1 {
				return fmt.Errorf("%d %s in %s, want 1", n, what, ns)
			}
		}
		return nil
	}
}

// TestAccFaults_manyRegistrationsInParallel applies 50 registrations at
// -parallelism=20: no conflict, and every entry and Secret is the one its
// registration's state names.
func TestAccFaults_manyRegistrationsInParallel(t *testing.T) {
	ns := testNamespace(t, "fault-many")
	waitForDefaultServiceAccount(t, ns)
	const n = 50
	config := strings.Replace(faultConfig(ns, "10.21.0.${count.index + 1}", ""),
		`resource "istio_vm_registration" "vm" {`, fmt.Sprintf(`resource "istio_vm_registration" "vm" {
  count          = %d`, n), 1)
	w := newTFWork(t, config)
	out := w.must("apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=20")
	if strings.Contains(out, "Warning") {
		t.Errorf("warnings during the parallel apply:\n%s", out)
	}
	entries := map[string]unstructured.Unstructured{}
	for _, e := range listObjects(t, gvrWorkloadEntry, ns, "") {
		entries[e.GetName()] = e
	}
	secrets := map[string]bool{}
	for _, s := range registrationSecrets(t, ns) {
		secrets[s.GetName()] = true
	}
	if len(entries) != n || len(secrets) != n {
		t.Fatalf("%d entries and %d token Secrets, want %d of each", len(entries), len(secrets), n)
	}
	state := w.state()
	for i := range n {
		r := state[fmt.Sprintf("istio_vm_registration.vm[%d]", i)]
		if r == nil {
			t.Errorf("registration %d not in the state", i)
			continue
		}
		address := fmt.Sprintf("10.21.0.%d", i+1)
		entry, ok := entries[fmt.Sprint(r.AttributeValues["workload_entry_name"])]
		id := fmt.Sprint(r.AttributeValues["id"])
		switch {
		case !ok:
			t.Errorf("registration %d: entry %v does not exist", i, r.AttributeValues["workload_entry_name"])
		case !secrets[fmt.Sprint(r.AttributeValues["token_secret_name"])]:
			t.Errorf("registration %d: token Secret %v does not exist", i, r.AttributeValues["token_secret_name"])
		case fmt.Sprint(entry.Object["spec"].(map[string]any)["address"]) != address:
			t.Errorf("registration %d: entry address %v, want %s", i, entry.Object["spec"].(map[string]any)["address"], address)
		case !strings.HasSuffix(id, "/"+entry.GetLabels()[registrationLabel]):
			t.Errorf("registration %d (%s): its entry carries registration label %q", i, id, entry.GetLabels()[registrationLabel])
		}
	}
	w.expectNoChanges()
	w.must("destroy", "-auto-approve", "-input=false", "-no-color", "-parallelism=20")
	expectNothingLeft(t, ns)
}

// TestAccFaults_autoregistrationDisabled: istiod runs with
// PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION=false, set on its Deployment and rolled
// out as `kubectl set env` would (restarting istiod is why this is a fault test). istiod
// would never create an auto-mode VM's entry, so the apply fails at once, naming the
// variable and what to do, instead of handing out a bundle whose VM never appears. The
// registration's token Secret already exists at that point: it is kept in the state as
// tainted and destroy revokes it. A manual registration needs no auto-registration and
// applies on the same istiod. (Issue "Field defects", item 9.)
func TestAccFaults_autoregistrationDisabled(t *testing.T) {
	const variable = "PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION"
	ns := testNamespace(t, "fault-noauto")
	waitForDefaultServiceAccount(t, ns)
	disabled := "false"
	previous, err := cp.SetIstiodEnv(context.Background(), variable, &disabled)
	if err != nil {
		t.Fatalf("setting %s=false on istiod: %v", variable, err)
	}
	t.Cleanup(func() {
		if _, err := cp.SetIstiodEnv(context.Background(), variable, previous); err != nil {
			t.Errorf("putting %s back on istiod: %v", variable, err)
		}
	})

	w := newTFWork(t, registrationConfig(ns, `  mode = "auto"`))
	out, code := w.run("apply", "-auto-approve", "-input=false", "-no-color")
	out = oneSpace(out)
	if code == 0 {
		t.Fatalf("auto-mode apply succeeded with auto-registration disabled on istiod:\n%s", out)
	}
	for _, want := range []string{
		"runs with " + variable + "=false",
		"it will never create the VM's WorkloadEntry",
		`Enable it on istiod, or use mode = "manual"`,
		`mode = "auto"`, // Terraform shows the attribute the diagnostic names
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
	if registration := w.state()["istio_vm_registration.vm"]; registration == nil || !registration.Tainted {
		t.Errorf("registration in state: %+v, want it kept as tainted (its token Secret exists)", registration)
	}
	if n := len(listObjects(t, gvrWorkloadEntry, ns, "")); n != 0 {
		t.Errorf("%d WorkloadEntries in %s, want none", n, ns)
	}

	w.setConfig(registrationConfig(ns, `
  mode    = "manual"
  address = "10.20.0.9"
`))
	w.must("apply", "-auto-approve", "-input=false", "-no-color")
	if err := checkObjectExists(gvrWorkloadEntry, ns, "product-vm-10.20.0.9")(nil); err != nil {
		t.Errorf("the manual registration's entry: %v", err)
	}
	if n := len(registrationSecrets(t, ns)); n != 1 {
		t.Errorf("%d token Secrets in %s after the manual registration replaced the tainted one, want 1", n, ns)
	}
	w.expectNoChanges()
	w.destroyAndExpectNothingLeft(ns)
}
