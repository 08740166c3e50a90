package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"terraform-provider-istio/acceptance-tests/vmsim"
)

// appliedExample is a configuration of examples/ that TestAccExamples applies, unchanged, on
// the install profiles it is written for.
type appliedExample struct {
	dir      string
	profiles []string
	apply    func(t *testing.T, examples string)
}

// The examples applied, each on the profiles whose installation it expects. make test runs
// TestAccExamples on the profiles of ACC_PROFILES, make test-matrix on every profile of
// MATRIX_PROFILES; the test fails when an example names a profile MATRIX_PROFILES lacks.
var appliedExamples = []appliedExample{
	// Also where istiod runs outside istio-system, with the example's istio_namespace set.
	{dir: "quickstart", profiles: []string{"default", "custom-namespace"}, apply: applyQuickstart},
	{dir: "fleet", profiles: []string{"default"}, apply: applyFleet},
	// Not on multi-network-hostname: a VM reaching istiod through the load balancer's DNS name
	// gets no certificate unless istiod's certificate carries that name (the provider warns;
	// judgeCertificateWarning in oracle_live_test.go).
	{dir: "multi-network", profiles: []string{"multi-network"}, apply: applyMultiNetwork},
	{dir: "revision", profiles: []string{"named-cluster"}, apply: applyRevision},
}

// The configurations under examples/ that are not applied here, and why. Every directory of
// examples/ is in one of the two lists.
var notAppliedExamples = map[string]string{
	"existing-vm":         "needs hashicorp/null and SSH to real VMs; make examples-check validates its modules, examples/fleet and examples/fleet-service, applied here",
	"new-vm":              "needs hashicorp/aws; make examples-check validates its modules, examples/fleet and examples/fleet-service, applied here",
	"fleet-service":       "a module without a provider block: applied here by applyFleet's calling configuration, after examples/fleet",
	"resources":           "reference-page snippets; make examples-check validates them together",
	"data-sources":        "reference-page snippets; make examples-check validates them together",
	"ephemeral-resources": "reference-page snippets for istio_vm_bootstrap; make examples-check validates them with Terraform 1.13.3, TestAccVmBootstrap_tokenNeverStored applies the same hand-off",
	"new-vm-ephemeral":    "needs hashicorp/aws and Terraform >= 1.11; make examples-check checks it as it checks new-vm, TestAccVmBootstrap_tokenNeverStored applies the same hand-off",
	"rbac":                "Kubernetes roles, no Terraform: every acceptance test runs the provider under them (least_privilege_test.go), these examples included",
}

// TestAccExamples applies the examples written for this control plane's install profile, as a
// user would, with the least-privilege kubeconfig of examples/rbac: `terraform init` and `apply` in the example's directory with its variables set
// (the fleet module, which has no provider block, from a calling configuration), while
// simulated VMs (a real pilot-agent started through istio-start.sh) boot from the bundle files
// the apply writes, like new VMs from their user-data. Each example waits on an
// istio_mesh_service until its VMs serve, so an apply returns only when istiod reports them
// healthy; the plan after it must be empty, and destroy must remove the WorkloadGroup.
func TestAccExamples(t *testing.T) {
	checkEveryExampleIsAccountedFor(t)
	profile := cp.Get("PROFILE")
	for _, example := range appliedExamples {
		if !slices.Contains(example.profiles, profile) {
			t.Logf("examples/%s is applied on the profiles %v, not on %s", example.dir, example.profiles, profile)
			continue
		}
		t.Run(example.dir, func(t *testing.T) {
			example.apply(t, copyExamples(t))
		})
	}
}

// checkEveryExampleIsAccountedFor fails when a directory of examples/ is neither applied nor
// listed as not applied, or when an example is applied only on profiles no make target runs.
func checkEveryExampleIsAccountedFor(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range entries {
		if !entry.IsDir() {
			continue
		}
		applied := slices.ContainsFunc(appliedExamples, func(e appliedExample) bool { return e.dir == entry.Name() })
		if _, listed := notAppliedExamples[entry.Name()]; !applied && !listed {
			t.Errorf("examples/%s is neither in appliedExamples nor in notAppliedExamples", entry.Name())
		}
	}
	// make test must apply every example: its profile is one make test runs.
	makeTest := slices.Concat(makefileProfiles(t, "ACC_PROFILES"), makefileProfiles(t, "ACC_EXAMPLE_PROFILES"))
	if namespaceRun(t).MatchString("TestAccExamples") {
		makeTest = append(makeTest, makefileProfiles(t, "ACC_NAMESPACE_PROFILES")...)
	}
	matrix := makefileProfiles(t, "MATRIX_PROFILES")
	for _, example := range appliedExamples {
		for _, profile := range example.profiles {
			if !slices.Contains(makeTest, profile) {
				t.Errorf("examples/%s is applied on profile %s, which make test does not run (ACC_PROFILES, ACC_EXAMPLE_PROFILES, ACC_NAMESPACE_PROFILES in the Makefile)", example.dir, profile)
			}
			if !slices.Contains(matrix, profile) {
				t.Errorf("examples/%s is applied on profile %s, which MATRIX_PROFILES in the Makefile does not run", example.dir, profile)
			}
		}
	}
}

// namespaceRun is ACC_NAMESPACE_TESTS of the Makefile: the tests make test runs on
// ACC_NAMESPACE_PROFILES.
func namespaceRun(t *testing.T) *regexp.Regexp {
	return regexp.MustCompile(makefileValue(t, "ACC_NAMESPACE_TESTS :="))
}

func makefileProfiles(t *testing.T, variable string) []string {
	return strings.Fields(makefileValue(t, variable+" ?="))
}

// makefileValue is the value of the Makefile line that starts with assignment ("NAME ?=").
func makefileValue(t *testing.T, assignment string) string {
	t.Helper()
	makefile, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	match := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(assignment) + ` (.*)$`).FindSubmatch(makefile)
	if match == nil {
		t.Fatalf("no `%s ...` line in the Makefile", assignment)
	}
	return string(match[1])
}

// copyExamples copies examples/ into a fresh directory, so the bundles and Terraform files
// an apply writes stay out of the clone; it returns the copy. An example is applied in its
// directory there, so its own "../fleet" resolves inside the copy.
func copyExamples(t *testing.T) string {
	t.Helper()
	copied := filepath.Join(t.TempDir(), "examples")
	if err := os.CopyFS(copied, os.DirFS(filepath.Join("..", "examples"))); err != nil {
		t.Fatalf("copying examples/: %v", err)
	}
	return copied
}

// callingConfiguration writes a configuration that calls an example module (the fleet
// module has no provider block of its own) next to the examples copy and returns its
// directory.
func callingConfiguration(t *testing.T, examples, text string) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(examples), "caller")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	required := fmt.Sprintf("terraform {\n  required_providers {\n    %s = {\n      source  = %q\n      version = %q\n    }\n  }\n}\n\n",
		providerName, providerSource, providerVersion)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(required+text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// applyExample runs the Terraform CLI of the acceptance tests (TF_ACC_TERRAFORM_PATH, with
// the provider from TF_CLI_CONFIG_FILE's mirror) in dir as a user does: init, apply with
// vars, then a plan that must change no resource (outputs may change: an auto-registered
// VM's entry name is known only after the VM connected); then the checks; at the end
// destroy, and checkDestroy. terraform-plugin-testing is not used here: its state checks do not support
// modules, and every example is built from modules.
func applyExample(t *testing.T, dir string, vars map[string]string, checkDestroy func() error, checks ...func(outputs map[string]any) error) {
	t.Helper()
	testAccPreCheck(t)
	var varArgs []string
	for name, value := range vars {
		varArgs = append(varArgs, "-var", name+"="+value)
	}
	runTerraform(t, dir, "init", "-input=false", "-no-color")
	t.Cleanup(func() {
		if _, err := terraformOutput(t, dir, append([]string{"destroy", "-input=false", "-auto-approve", "-no-color"}, varArgs...)...); err != nil {
			t.Errorf("destroy: %v", err)
			return
		}
		if err := checkDestroy(); err != nil {
			t.Errorf("after destroy: %v", err)
		}
	})
	runTerraform(t, dir, append([]string{"apply", "-input=false", "-auto-approve", "-no-color"}, varArgs...)...)
	runTerraform(t, dir, append([]string{"plan", "-input=false", "-no-color", "-out=after-apply.tfplan"}, varArgs...)...)
	if changes := resourceChanges(t, dir, "after-apply.tfplan"); len(changes) > 0 {
		t.Errorf("the plan after apply changes resources: %v", changes)
	}
	var outputs map[string]struct {
		Value any `json:"value"`
	}
	if err := json.Unmarshal(runTerraform(t, dir, "output", "-json"), &outputs); err != nil {
		t.Fatalf("terraform output -json: %v", err)
	}
	values := map[string]any{}
	for name, output := range outputs {
		values[name] = output.Value
	}
	for _, check := range checks {
		if err := check(values); err != nil {
			t.Error(err)
		}
	}
}

// resourceChanges lists "address: actions" of every resource the saved plan would change.
func resourceChanges(t *testing.T, dir, plan string) []string {
	t.Helper()
	var shown struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(runTerraform(t, dir, "show", "-json", plan), &shown); err != nil {
		t.Fatalf("terraform show -json %s: %v", plan, err)
	}
	var changes []string
	for _, change := range shown.ResourceChanges {
		if !slices.Equal(change.Change.Actions, []string{"no-op"}) && !slices.Equal(change.Change.Actions, []string{"read"}) {
			changes = append(changes, fmt.Sprintf("%s: %v", change.Address, change.Change.Actions))
		}
	}
	return changes
}

// bootVMs starts a simulated VM for each name => IP once its bundle is in bundleDir/<name>,
// serving the application the example's probe asks for on IP:8080.
func bootVMs(t *testing.T, bundleDir string, ips map[string]string) {
	t.Helper()
	for name, ip := range ips {
		bootWhenBundleWritten(t, filepath.Join(bundleDir, name), name, ip)
	}
}

// bootWhenBundleWritten starts a simulated VM, in the background, as soon as the five
// bundle files exist in dir, as a new VM boots once its user-data is written. Its application
// on ip:8080 answers the probe only once the VM has its certificate, as in the live VM oracle
// (bootVM in oracle_live_test.go): the agent then reports its transition to healthy while
// connected; with the application ready earlier, istiod sometimes never records a manual
// entry's first health report.
func bootWhenBundleWritten(t *testing.T, dir, name, ip string) {
	t.Helper()
	appReady := startGatedApp(t, ip, 8080)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *vmsim.VM, 1)
	workDir := t.TempDir()
	go func() {
		defer close(started)
		if err := waitForBundle(ctx, dir); err != nil {
			return
		}
		vm, err := vmsim.Start(ctx, vmsim.Options{BundleDir: dir, WorkDir: workDir, IP: ip, Hostname: name, Logf: t.Logf, DNS: vmDNS()})
		if err != nil {
			t.Errorf("starting the simulated VM %s from %s: %v", name, dir, err)
			return
		}
		started <- vm
		if _, err := vm.WaitForWorkloadCert(ctx, 60*time.Second); err != nil {
			t.Errorf("VM %s: no workload certificate: %v\n%s", name, err, vm.LogTail(15))
			return
		}
		appReady.Store(true)
	}()
	t.Cleanup(func() {
		cancel()
		if vm := <-started; vm != nil {
			_ = vm.Stop()
		}
	})
}

// startGatedApp serves the VM's application on ip:port: 503 until the returned switch is on.
func startGatedApp(t *testing.T, ip string, port int) *atomic.Bool {
	t.Helper()
	listener, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		t.Fatalf("listening on the VM address %s:%d: %v", ip, port, err)
	}
	ready := &atomic.Bool{}
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })
	return ready
}

func waitForBundle(ctx context.Context, dir string) error {
	for {
		missing := slices.ContainsFunc(vmsim.BundleFiles, func(file string) bool {
			_, err := os.Stat(filepath.Join(dir, file))
			return err != nil
		})
		if !missing {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// loopbackIPs gives each VM name a distinct loopback address.
func loopbackIPs(names ...string) map[string]string {
	ips := map[string]string{}
	base := 10 + time.Now().UnixNano()%150
	for i, name := range names {
		ips[name] = fmt.Sprintf("127.0.78.%d", base+int64(i))
	}
	return ips
}

func hclMap(values map[string]string) string {
	keys := make([]string, 0, len(values))
	for key := range values {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	var pairs []string
	for _, key := range keys {
		pairs = append(pairs, fmt.Sprintf("%q = %q", key, values[key]))
	}
	return "{ " + strings.Join(pairs, ", ") + " }"
}

// applyQuickstart applies what `make demo` applies: one auto-registered VM.
func applyQuickstart(t *testing.T, examples string) {
	ns := testNamespace(t, "ex-quickstart")
	waitForDefaultServiceAccount(t, ns)
	dir := filepath.Join(examples, "quickstart")
	bootWhenBundleWritten(t, filepath.Join(dir, "bundle"), "vm-1", loopbackIPs("vm-1")["vm-1"])
	applyExample(t, dir, map[string]string{"kubeconfig": leastPrivilegeKubeconfig, "namespace": ns, "istio_namespace": istioNamespace()},
		groupGone(ns),
		healthyEntries(ns, 1),
		meshIstiodHost(istiodHost(cp.Get("DEFAULT_REVISION"))))
}

// meshIstiodHost checks the example's mesh output: the provider read the installation in the
// Istio namespace it was given (istio-vm on custom-namespace).
func meshIstiodHost(want string) func(map[string]any) error {
	return func(outputs map[string]any) error {
		if got := nested(outputs, "mesh", "istiod_host"); got != want {
			return fmt.Errorf("output mesh.istiod_host %v, want %s", got, want)
		}
		return nil
	}
}

// applyFleet calls the fleet module with one VM of known address (a WorkloadEntry the
// registration creates) and one without (auto-registration), and waits for both with the
// fleet-service module, as examples/existing-vm and examples/new-vm do.
func applyFleet(t *testing.T, examples string) {
	ns := testNamespace(t, "ex-fleet")
	waitForDefaultServiceAccount(t, ns)
	ips := loopbackIPs("vm-1", "vm-2")
	bundleDir := filepath.Join(filepath.Dir(examples), "fleet-bundles")
	bootVMs(t, bundleDir, ips)
	dir := callingConfiguration(t, examples, providerConfig()+fmt.Sprintf(`
module "product" {
  source     = "../examples/fleet"
  service    = "product"
  namespace  = %[1]q
  vms        = { "vm-1" = %[2]q, "vm-2" = "" }
  bundle_dir = %[3]q
}

module "product_service" {
  source                = "../examples/fleet-service"
  name                  = "product"
  namespace             = %[1]q
  selector              = module.product.selector
  min_healthy_endpoints = 2
  timeout               = "5m"
  depends_on            = [module.product]
}
`, ns, ips["vm-1"], bundleDir))
	applyExample(t, dir, nil,
		groupGone(ns),
		healthyEntries(ns, 2),
		manualEntryAddress(ns, ips["vm-1"]))
}

// applyMultiNetwork applies examples/multi-network: the VMs on their own network reach istiod
// through the east-west gateway the profile installed.
func applyMultiNetwork(t *testing.T, examples string) {
	ips := loopbackIPs("vm-1")
	dir := filepath.Join(examples, "multi-network")
	bootVMs(t, filepath.Join(dir, "bundle"), ips)
	applyExample(t, dir, map[string]string{"kubeconfig": leastPrivilegeKubeconfig, "vm_ips": hclMap(ips)},
		groupGone("default"),
		healthyEntries("default", 1),
		outputField("networks", "cluster", cp.Get("NETWORK")),
		outputField("networks", "vms", "vm-network"),
		entriesOnNetwork("default", "vm-network"))
}

// applyRevision applies examples/revision: vm-1 on the stable (default) revision, vm-2 moved
// to the canary; each VM's files point at its revision's istiod.
func applyRevision(t *testing.T, examples string) {
	ips := loopbackIPs("vm-1", "vm-2")
	dir := filepath.Join(examples, "revision")
	bundleDir := filepath.Join(dir, "bundle")
	bootVMs(t, bundleDir, ips)
	applyExample(t, dir, map[string]string{"kubeconfig": leastPrivilegeKubeconfig, "vm_ips": hclMap(ips)},
		groupGone("default"),
		healthyEntries("default", 2),
		outputField("istiod", "stable", istiodHost("default")),
		outputField("istiod", "canary", istiodHost("canary")),
		bundleDiscoveryAddress(filepath.Join(bundleDir, "vm-1"), istiodHost("default")),
		bundleDiscoveryAddress(filepath.Join(bundleDir, "vm-2"), istiodHost("canary")))
}

// healthyEntries: istiod's verdict, read from the cluster: n WorkloadEntries of the product
// service in ns, each with Healthy=True.
func healthyEntries(ns string, n int) func(map[string]any) error {
	return func(map[string]any) error {
		entries, err := productEntries(ns)
		if err != nil {
			return err
		}
		var healthy []string
		for _, entry := range entries {
			if entryHealth(entry) == "True" {
				healthy = append(healthy, fmt.Sprint(nested(entry, "metadata", "name")))
			}
		}
		if len(entries) != n || len(healthy) != n {
			return fmt.Errorf("%s: %d WorkloadEntries of app=product, %d healthy (%v); want %d, all healthy", ns, len(entries), len(healthy), healthy, n)
		}
		return nil
	}
}

func productEntries(ns string) ([]map[string]any, error) {
	list, err := resourceClient(gvrWorkloadEntry, ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=product"})
	if err != nil {
		return nil, err
	}
	var entries []map[string]any
	for _, item := range list.Items {
		entries = append(entries, item.Object)
	}
	return entries, nil
}

func manualEntryAddress(ns, ip string) func(map[string]any) error {
	return func(map[string]any) error {
		entries, err := productEntries(ns)
		if err != nil {
			return err
		}
		for _, entry := range entries {
			if nested(entry, "spec", "address") == ip {
				return nil
			}
		}
		return fmt.Errorf("%s: no WorkloadEntry with address %s", ns, ip)
	}
}

func entriesOnNetwork(ns, network string) func(map[string]any) error {
	return func(map[string]any) error {
		entries, err := productEntries(ns)
		if err != nil {
			return err
		}
		for _, entry := range entries {
			if got := nested(entry, "spec", "network"); got != network {
				return fmt.Errorf("WorkloadEntry %v: network %v, want %s", nested(entry, "metadata", "name"), got, network)
			}
		}
		return nil
	}
}

func outputField(output, field, want string) func(map[string]any) error {
	return func(outputs map[string]any) error {
		value, ok := outputs[output]
		if !ok {
			return fmt.Errorf("no output %s", output)
		}
		object, _ := value.(map[string]any)
		if got := fmt.Sprint(object[field]); got != want {
			return fmt.Errorf("output %s.%s = %q, want %q", output, field, got, want)
		}
		return nil
	}
}

// bundleDiscoveryAddress: the VM's mesh config names its revision's istiod.
func bundleDiscoveryAddress(dir, istiod string) func(map[string]any) error {
	return func(map[string]any) error {
		mesh, err := os.ReadFile(filepath.Join(dir, "mesh.yaml"))
		if err != nil {
			return err
		}
		if want := "discoveryAddress: " + istiod + ":15012"; !strings.Contains(string(mesh), want) {
			return fmt.Errorf("%s/mesh.yaml lacks %q:\n%s", dir, want, mesh)
		}
		return nil
	}
}

func groupGone(ns string) func() error {
	return func() error {
		return checkObjectGone(gvrWorkloadGroup, ns, "product-vm")
	}
}
