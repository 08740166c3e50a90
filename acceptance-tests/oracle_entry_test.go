package acceptance

// istiod as the oracle of the manual WorkloadEntry (issue 10 item 4): one simulated VM (the real
// pilot-agent started by istio-start.sh) at one address boots first from an auto-mode bundle, and
// istiod writes its WorkloadEntry (pilot/pkg/autoregistration/controller.go, workloadEntryFromGroup);
// then, from a manual-mode registration with the same group, address, network, locality and
// labels, the same VM boots again against the entry the provider wrote. The two entries, each
// read once its VM is connected and Healthy=True, must be equal field by field except for the
// rows of entryDifferences (also in docs/guides/istioctl-differences.md).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"terraform-provider-istio/acceptance-tests/vmsim"
)

// entryDifference is a deliberate difference between the manual entry and istiod's.
type entryDifference struct {
	// Field as entryFields names it, e.g. metadata.annotations["istio.io/autoRegistrationGroup"].
	Field string
	// What we do instead and why.
	Reason string
}

// entryDifferences are every difference the comparison accepts; anything else fails.
var entryDifferences = []entryDifference{
	{`metadata.annotations["istio.io/autoRegistrationGroup"]`,
		"istiod's only: it marks the entry as auto-registered, and istiod deletes such an entry once its VM has stayed disconnected for the grace period (`pilot/pkg/autoregistration/controller.go`, cleanup). A manual entry must outlive its VM's restarts; without the annotation istiod treats it as health-checked (`isHealthCheckedWorkloadEntry`) and still takes the VM's health reports for it."},
}

// entryServerFields are assigned by the API server or by istiod for each object and connection;
// they are not part of what either writer chooses, so they are compared as present, not by value.
var entryServerFields = []string{
	"metadata.uid", "metadata.resourceVersion", "metadata.generation", "metadata.creationTimestamp", "metadata.managedFields",
	"metadata.ownerReferences[0].uid",
	`metadata.annotations["istio.io/connectedAt"]`, `metadata.annotations["istio.io/workloadController"]`,
}

// The value of registrationLabel is each registration's own ID: it is checked against the state
// (checkRegistrationLabel) instead of between the two entries.

func TestAccOracle_manualEntryMatchesAutoRegistered(t *testing.T) {
	testAccPreCheck(t)
	ns := testNamespace(t, "oracle-entry")
	waitForDefaultServiceAccount(t, ns)
	ip := "127.0.79." + fmt.Sprint(20+time.Now().UnixNano()%200)
	app := startProbedApp(t, ip)
	const network = "vm-net"
	name := entryName("product-vm", ip, network)

	group := providerConfig() + fmt.Sprintf(`
resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %[1]q
  metadata {
    labels      = { app = "product", version = "v1" }
    annotations = { team = "shop" }
  }
  template {
    service_account = "default"
    ports           = { http = %[2]d }
    labels          = { tier = "backend" }
    weight          = 3
  }
  probe {
    period_seconds = 1
    http_get {
      path = "/ready"
      port = %[2]d
    }
  }
}
`, ns, app.port)
	registration := func(mode, dir string) string {
		address := ""
		if mode == "manual" {
			address = fmt.Sprintf("address = %q", ip)
		}
		return group + fmt.Sprintf(`
resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.product.id
  mode           = %q
  %s
  network        = %q
  locality       = "eu-west/zone-a/rack-1"
  labels         = { role = "checkout" }
  output_dir     = %q
}
`, mode, address, network, dir)
	}

	var auto, manual map[string]any
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				Config: registration("auto", filepath.Join(t.TempDir(), "auto")),
				Check:  connectAndReadEntry(t, app, ns, name, ip, &auto),
			},
			{
				// The auto registration goes (and its entry with it), so the manual one can take the name.
				Config: group,
				Check: func(*terraform.State) error {
					return waitForGone(ns, name)
				},
			},
			{
				Config: registration("manual", filepath.Join(t.TempDir(), "manual")),
				Check: resource.ComposeTestCheckFunc(
					connectAndReadEntry(t, app, ns, name, ip, &manual),
					func(*terraform.State) error {
						if problems := entryFieldDifferences(auto, manual); len(problems) > 0 {
							return fmt.Errorf("the manual WorkloadEntry differs from the one istiod auto-registered for the same VM:\n  %s", strings.Join(problems, "\n  "))
						}
						t.Logf("manual WorkloadEntry %s/%s equals istiod's auto-registered one for the same VM (%d fields; deliberate differences aside)", ns, name, len(entryFields(manual)))
						return nil
					},
				),
			},
		},
	})
}

// connectAndReadEntry boots the VM from the registration's bundle, waits until entry name is
// Healthy=True, keeps it in *entry and stops the VM. The app turns ready only once istiod has
// the VM's connection on the entry, as an app that starts after the agent does: a probe that
// passes before the agent reaches istiod can leave istiod without a health event on a fresh
// manual entry (seen once in make test), which is not what this oracle is about.
func connectAndReadEntry(t *testing.T, app *probedApp, ns, name, ip string, entry *map[string]any) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		app.notReady.Store(true)
		rs := s.RootModule().Resources["istio_vm_registration.vm"]
		if rs == nil {
			return fmt.Errorf("istio_vm_registration.vm not in state")
		}
		vm, err := vmsim.Start(context.Background(), vmsim.Options{BundleDir: rs.Primary.Attributes["output_dir"], WorkDir: t.TempDir(), IP: ip, Logf: t.Logf, DNS: vmDNS()})
		if err != nil {
			return fmt.Errorf("starting the VM: %w", err)
		}
		defer vm.Stop()
		if _, err := vm.WaitForWorkloadCert(context.Background(), 60*time.Second); err != nil {
			return fmt.Errorf("no workload certificate: %w\n%s", err, vm.LogTail(20))
		}
		exact := regexp.MustCompile("^" + regexp.QuoteMeta(name) + "$")
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			found, err := findEntry(t, ns, exact)
			connected := err == nil && nested(found, "metadata", "annotations", connectedAtAnnotation) != nil
			if connected {
				app.notReady.Store(false)
			}
			if connected && entryHealth(found) == "True" {
				*entry = found
				return checkRegistrationLabel(found, rs.Primary.Attributes["id"])
			}
			time.Sleep(500 * time.Millisecond)
		}
		found, err := findEntry(t, ns, exact)
		return fmt.Errorf("WorkloadEntry %s not connected and Healthy=True within 60s (%v, %v)\n%s", name, found, err, vm.LogTail(20))
	}
}

// checkRegistrationLabel: the entry carries the registration's ID (the last part of its
// Terraform ID) as label and as spec label, as every entry of a registration must.
func checkRegistrationLabel(entry map[string]any, id string) error {
	want := id[strings.LastIndex(id, "/")+1:]
	for _, place := range []string{"metadata", "spec"} {
		if got := nested(entry, place, "labels", registrationLabel); got != want {
			return fmt.Errorf("WorkloadEntry %v: %s.labels[%q] = %v, want the registration's ID %q", nested(entry, "metadata", "name"), place, registrationLabel, got, want)
		}
	}
	return nil
}

func waitForGone(ns, name string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := resourceClient(gvrWorkloadEntry, ns).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("WorkloadEntry %s/%s still exists 60s after its registration was destroyed", ns, name)
}

// entryFieldDifferences lists every field where manual differs from istiod's entry, except the
// deliberate differences; server-assigned fields must be present in both.
func entryFieldDifferences(istiod, manual map[string]any) []string {
	theirs, ours := entryFields(istiod), entryFields(manual)
	for _, fields := range []map[string]any{theirs, ours} {
		for _, key := range []string{"metadata.labels", "spec.labels"} {
			delete(fields, fmt.Sprintf("%s[%q]", key, registrationLabel))
		}
	}
	deliberate := map[string]bool{}
	for _, d := range entryDifferences {
		deliberate[d.Field] = true
	}
	server := map[string]bool{}
	for _, f := range entryServerFields {
		server[f] = true
	}
	keys := map[string]bool{}
	for k := range theirs {
		keys[k] = true
	}
	for k := range ours {
		keys[k] = true
	}
	var problems []string
	for key := range keys {
		t, inTheirs := theirs[key]
		o, inOurs := ours[key]
		switch {
		case deliberate[key]:
			if reflect.DeepEqual(t, o) && inTheirs == inOurs {
				problems = append(problems, fmt.Sprintf("%s: a deliberate difference, yet equal: delete its row from entryDifferences", key))
			}
		case server[key] || strings.HasPrefix(key, "metadata.managedFields"):
			if inTheirs != inOurs {
				problems = append(problems, fmt.Sprintf("%s: istiod's entry has it: %v, ours: %v", key, inTheirs, inOurs))
			}
		case !reflect.DeepEqual(t, o):
			problems = append(problems, fmt.Sprintf("%s: istiod %s, ours %s", key, show(t, inTheirs), show(o, inOurs)))
		}
	}
	sort.Strings(problems)
	return problems
}

func show(v any, present bool) string {
	if !present {
		return "(absent)"
	}
	return fmt.Sprintf("%q", fmt.Sprint(v))
}

// entryFields flattens an object into field path → scalar: maps by key (quoted where the key is
// not a plain identifier: labels, annotations), lists by index; managedFields and status
// timestamps count as one field each.
func entryFields(object map[string]any) map[string]any {
	fields := map[string]any{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch value := v.(type) {
		case map[string]any:
			if path == "metadata.managedFields" || len(value) == 0 {
				fields[path] = fmt.Sprint(value)
				return
			}
			for k, child := range value {
				walk(fieldPath(path, k), child)
			}
		case []any:
			if path == "metadata.managedFields" || len(value) == 0 {
				fields[path] = "<list>"
				return
			}
			for i, child := range value {
				walk(fmt.Sprintf("%s[%d]", path, i), child)
			}
		default:
			fields[path] = value
		}
	}
	walk("", object)
	for key := range fields {
		// When istiod last wrote a condition differs between two entries by nature.
		if strings.HasPrefix(key, "status.conditions[") && (strings.HasSuffix(key, "].lastTransitionTime") || strings.HasSuffix(key, "].lastProbeTime")) {
			fields[key] = "<time>"
		}
	}
	return fields
}

func fieldPath(parent, key string) string {
	if parent == "" {
		return key
	}
	if regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`).MatchString(key) {
		return parent + "." + key
	}
	return fmt.Sprintf("%s[%q]", parent, key)
}

// TestOracle_entryDifferencesDocumented keeps the deliberate differences of the entry and the
// docs page in step.
func TestOracle_entryDifferencesDocumented(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "docs", "guides", "istioctl-differences.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entryDifferences {
		row := fmt.Sprintf("| `%s` | %s |", d.Field, d.Reason)
		if !strings.Contains(string(page), row) {
			t.Errorf("docs/guides/istioctl-differences.md lacks the row:\n%s", row)
		}
	}
}

// TestOracle_entryDifferencesFindChanges shows the comparison can fail: a change outside the
// deliberate differences is reported, a deliberate one and server-assigned values are not.
func TestOracle_entryDifferencesFindChanges(t *testing.T) {
	entry := func() map[string]any {
		return map[string]any{
			"metadata": map[string]any{
				"name": "g-10.0.0.1", "uid": "u1", "resourceVersion": "1",
				"labels":      map[string]any{"app": "a", registrationLabel: "r1"},
				"annotations": map[string]any{"istio.io/connectedAt": "t1", "istio.io/autoRegistrationGroup": "g"},
			},
			"spec":   map[string]any{"address": "10.0.0.1", "ports": map[string]any{"http": int64(80)}, "weight": int64(3)},
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Healthy", "status": "True", "lastTransitionTime": "t1"}}},
		}
	}
	ours := entry()
	nested(ours, "metadata").(map[string]any)["uid"] = "u2"
	nested(ours, "metadata", "labels").(map[string]any)[registrationLabel] = "r2"
	nested(ours, "metadata", "annotations").(map[string]any)["istio.io/connectedAt"] = "t2"
	delete(nested(ours, "metadata", "annotations").(map[string]any), "istio.io/autoRegistrationGroup")
	nested(ours, "status", "conditions").([]any)[0].(map[string]any)["lastTransitionTime"] = "t2"
	if problems := entryFieldDifferences(entry(), ours); len(problems) != 0 {
		t.Fatalf("deliberate and server-assigned differences only, yet reported: %v", problems)
	}
	changes := map[string]func(map[string]any){
		"label value": func(e map[string]any) { nested(e, "metadata", "labels").(map[string]any)["app"] = "b" },
		"extra label": func(e map[string]any) { nested(e, "metadata", "labels").(map[string]any)["x"] = "y" },
		"spec field":  func(e map[string]any) { nested(e, "spec").(map[string]any)["weight"] = int64(1) },
		"port":        func(e map[string]any) { nested(e, "spec", "ports").(map[string]any)["http"] = int64(81) },
		"missing uid": func(e map[string]any) { delete(nested(e, "metadata").(map[string]any), "uid") },
		"health": func(e map[string]any) {
			nested(e, "status", "conditions").([]any)[0].(map[string]any)["status"] = "False"
		},
		"name":             func(e map[string]any) { nested(e, "metadata").(map[string]any)["name"] = "g-10.0.0.2" },
		"extra annotation": func(e map[string]any) { nested(e, "metadata", "annotations").(map[string]any)["k"] = "v" },
	}
	for name, change := range changes {
		changed := entry()
		change(changed)
		if problems := entryFieldDifferences(entry(), changed); len(problems) == 0 {
			t.Errorf("%s: a change to the manual entry was not reported", name)
		}
	}
}
