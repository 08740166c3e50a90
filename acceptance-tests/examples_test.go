package acceptance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
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
	{dir: "quickstart", profiles: []string{"default"}, apply: applyQuickstart},
	{dir: "fleet", profiles: []string{"default"}, apply: applyFleet},
	{dir: "multi-network", profiles: []string{"multi-network", "multi-network-hostname"}, apply: applyMultiNetwork},
	{dir: "revision", profiles: []string{"named-cluster"}, apply: applyRevision},
}

// The configurations under examples/ that are not applied here, and why. Every directory of
// examples/ is in one of the two lists.
var notAppliedExamples = map[string]string{
	"existing-vm":  "needs hashicorp/null and SSH to real VMs; make examples-check validates its module, examples/fleet, applied here",
	"new-vm":       "needs hashicorp/aws; make examples-check validates its module, examples/fleet, applied here",
	"resources":    "reference-page snippets; make examples-check validates them together",
	"data-sources": "reference-page snippets; make examples-check validates them together",
}

// TestAccExamples applies the examples written for this control plane's install profile, as a
// user would: the example's own files, called as a module with its variables set, while
// simulated VMs (a real pilot-agent started through istio-start.sh) boot from the bundle files
// the apply writes, like new VMs from their user-data. Each example waits on an
// istio_mesh_service until its VMs serve, so an apply returns only when istiod reports them
// healthy.
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
	matrix := makefileProfiles(t, "MATRIX_PROFILES")
	for _, example := range appliedExamples {
		for _, profile := range example.profiles {
			if !slices.Contains(matrix, profile) {
				t.Errorf("examples/%s is applied on profile %s, which MATRIX_PROFILES in the Makefile does not run", example.dir, profile)
			}
		}
	}
}

func makefileProfiles(t *testing.T, variable string) []string {
	t.Helper()
	makefile, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	match := regexp.MustCompile(`(?m)^` + variable + ` \?= (.*)$`).FindSubmatch(makefile)
	if match == nil {
		t.Fatalf("no `%s ?= ...` line in the Makefile", variable)
	}
	return strings.Fields(string(match[1]))
}

// copyExamples copies examples/ into a fresh directory, so the bundles an example writes under
// its path.module stay out of the clone; it returns the copy. Terraform's working directory is
// a subdirectory of its parent (exampleCase), so a configuration there calls an example as
// "../examples/<dir>" and the example's own "../fleet" resolves inside the copy.
func copyExamples(t *testing.T) string {
	t.Helper()
	copied := filepath.Join(t.TempDir(), "examples")
	if err := os.CopyFS(copied, os.DirFS(filepath.Join("..", "examples"))); err != nil {
		t.Fatalf("copying examples/: %v", err)
	}
	return copied
}

// exampleCase is one apply of config next to the examples copy, then a destroy. The
// configurations output nothing that changes when the VMs turn healthy: the post-apply plan
// must stay empty; health is checked in the cluster, where istiod reports it.
func exampleCase(examples, config string, check resource.TestCheckFunc, checkDestroy resource.TestCheckFunc) resource.TestCase {
	return resource.TestCase{
		WorkingDir:   filepath.Dir(examples),
		CheckDestroy: checkDestroy,
		Steps:        []resource.TestStep{{Config: config, Check: check}},
	}
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
// bundle files exist in dir, as a new VM boots once its user-data is written.
func bootWhenBundleWritten(t *testing.T, dir, name, ip string) {
	t.Helper()
	startProbedAppOn(t, ip, 8080)
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
	}()
	t.Cleanup(func() {
		cancel()
		if vm := <-started; vm != nil {
			_ = vm.Stop()
		}
	})
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
	bootWhenBundleWritten(t, filepath.Join(examples, "quickstart", "bundle"), "vm-1", loopbackIPs("vm-1")["vm-1"])
	config := fmt.Sprintf(`
module "example" {
  source     = "../examples/quickstart"
  kubeconfig = %q
  namespace  = %q
}
`, cp.Kubeconfig, ns)
	accTest(t, exampleCase(examples, config,
		checkHealthyEntries(ns, 1),
		checkGroupGone(ns)))
}

// applyFleet calls the fleet module with one VM of known address (a WorkloadEntry the
// registration creates) and one without (auto-registration), and waits for both as the
// fleet guide's calling configuration does.
func applyFleet(t *testing.T, examples string) {
	ns := testNamespace(t, "ex-fleet")
	waitForDefaultServiceAccount(t, ns)
	ips := loopbackIPs("vm-1", "vm-2")
	bundleDir := filepath.Join(filepath.Dir(examples), "fleet-bundles")
	bootVMs(t, bundleDir, ips)
	config := providerConfig() + fmt.Sprintf(`
module "product" {
  source     = "../examples/fleet"
  service    = "product"
  namespace  = %[1]q
  vms        = { "vm-1" = %[2]q, "vm-2" = "" }
  bundle_dir = %[3]q
}

resource "istio_mesh_service" "product" {
  name      = "product"
  namespace = %[1]q
  selector  = module.product.selector
  ports {
    name = "http"
    port = 8080
  }
  wait {
    min_healthy_endpoints = 2
    timeout               = "5m"
  }
  depends_on = [module.product]
}
`, ns, ips["vm-1"], bundleDir)
	accTest(t, exampleCase(examples, config,
		resource.ComposeAggregateTestCheckFunc(
			checkHealthyEntries(ns, 2),
			checkManualEntryAddress(ns, ips["vm-1"]),
		),
		checkGroupGone(ns)))
}

// applyMultiNetwork applies examples/multi-network: the VMs on their own network reach istiod
// through the east-west gateway the profile installed.
func applyMultiNetwork(t *testing.T, examples string) {
	ips := loopbackIPs("vm-1")
	bootVMs(t, filepath.Join(examples, "multi-network", "bundle"), ips)
	config := fmt.Sprintf(`
module "example" {
  source     = "../examples/multi-network"
  kubeconfig = %q
  vm_ips     = %s
}

output "networks" {
  value = module.example.networks
}
`, cp.Kubeconfig, hclMap(ips))
	accTest(t, exampleCase(examples, config,
		resource.ComposeAggregateTestCheckFunc(
			checkHealthyEntries("default", 1),
			checkOutputField("networks", "cluster", cp.Get("NETWORK")),
			checkOutputField("networks", "vms", "vm-network"),
			checkEntriesOnNetwork("default", "vm-network"),
		),
		checkGroupGone("default")))
}

// applyRevision applies examples/revision: vm-1 on the stable (default) revision, vm-2 moved
// to the canary; each VM's files point at its revision's istiod.
func applyRevision(t *testing.T, examples string) {
	ips := loopbackIPs("vm-1", "vm-2")
	bundleDir := filepath.Join(examples, "revision", "bundle")
	bootVMs(t, bundleDir, ips)
	config := fmt.Sprintf(`
module "example" {
  source     = "../examples/revision"
  kubeconfig = %q
  vm_ips     = %s
}

output "istiod" {
  value = module.example.istiod
}
`, cp.Kubeconfig, hclMap(ips))
	accTest(t, exampleCase(examples, config,
		resource.ComposeAggregateTestCheckFunc(
			checkHealthyEntries("default", 2),
			checkOutputField("istiod", "stable", istiodHost("default")),
			checkOutputField("istiod", "canary", istiodHost("canary")),
			checkBundleDiscoveryAddress(filepath.Join(bundleDir, "vm-1"), istiodHost("default")),
			checkBundleDiscoveryAddress(filepath.Join(bundleDir, "vm-2"), istiodHost("canary")),
		),
		checkGroupGone("default")))
}

// checkHealthyEntries: istiod's verdict, read from the cluster: n WorkloadEntries of the
// product service in ns, each with Healthy=True.
func checkHealthyEntries(ns string, n int) resource.TestCheckFunc {
	return func(*terraform.State) error {
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

func checkManualEntryAddress(ns, ip string) resource.TestCheckFunc {
	return func(*terraform.State) error {
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

func checkEntriesOnNetwork(ns, network string) resource.TestCheckFunc {
	return func(*terraform.State) error {
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

func checkOutputField(output, field, want string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		value, ok := s.RootModule().Outputs[output]
		if !ok {
			return fmt.Errorf("no output %s", output)
		}
		object, _ := value.Value.(map[string]any)
		if got := fmt.Sprint(object[field]); got != want {
			return fmt.Errorf("output %s.%s = %q, want %q", output, field, got, want)
		}
		return nil
	}
}

// checkBundleDiscoveryAddress: the VM's mesh config names its revision's istiod.
func checkBundleDiscoveryAddress(dir, istiod string) resource.TestCheckFunc {
	return func(*terraform.State) error {
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

func checkGroupGone(ns string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		return checkObjectGone(gvrWorkloadGroup, ns, "product-vm")
	}
}
