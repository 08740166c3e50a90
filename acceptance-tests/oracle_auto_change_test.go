package acceptance

// istiod as the judge of the plan's warning on auto-mode changes (issue 10 item 7): istiod does
// not change an auto-registered WorkloadEntry that exists. When the VM reconnects it only marks
// the entry connected again, and it creates the entry anew, from the VM's new bundle, only after
// deleting it once the VM stayed away longer than PILOT_WORKLOAD_ENTRY_GRACE_PERIOD
// (registerWorkload and the cleanup queue in pilot/pkg/autoregistration/controller.go).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"terraform-provider-istio/acceptance-tests/vmsim"
)

const connectedAtAnnotation = "istio.io/connectedAt"

func TestAccOracle_autoModeChangeNeedsNewEntry(t *testing.T) {
	ns := testNamespace(t, "oac")
	waitForDefaultServiceAccount(t, ns)
	ip := "127.0.81." + fmt.Sprint(10+time.Now().UnixNano()%200)
	bundleDir := t.TempDir()
	config := func(tier string) string {
		return registrationConfig(ns, fmt.Sprintf(`
  output_dir = %q
  labels     = { tier = %q }
`, bundleDir, tier))
	}
	var vm *vmsim.VM
	stopVM := func() {
		if vm != nil {
			_ = vm.Stop()
			vm = nil
		}
	}
	t.Cleanup(stopVM)
	bootVM := func() {
		t.Helper()
		var err error
		vm, err = vmsim.Start(context.Background(), vmsim.Options{BundleDir: bundleDir, WorkDir: t.TempDir(), IP: ip, Logf: t.Logf, DNS: vmDNS()})
		if err != nil {
			t.Fatalf("starting the simulated VM from the provider's files: %v", err)
		}
	}

	w := newTFWork(t, config("a"))
	w.must("apply", "-auto-approve", "-input=false", "-no-color")
	bootVM()
	first := waitForEntries(t, ns, 1, 90*time.Second)[0]
	expectTier(t, first, "a")

	w.setConfig(config("b"))
	out := oneSpace(w.must("apply", "-auto-approve", "-input=false", "-no-color"))
	for _, want := range []string{"istiod will not update the VM's WorkloadEntry", "the new labels reach the entry only when istiod creates it again", "PILOT_WORKLOAD_ENTRY_GRACE_PERIOD"} {
		if !strings.Contains(out, want) {
			t.Errorf("the apply's warning does not say %q:\n%s", want, out)
		}
	}
	clusterEnv, err := os.ReadFile(filepath.Join(bundleDir, "cluster.env"))
	if err != nil || !strings.Contains(string(clusterEnv), `"tier":"b"`) {
		t.Fatalf("the new bundle's cluster.env does not carry tier b (%v):\n%s", err, clusterEnv)
	}

	firstConnected, connected := connectedAt(first)
	if !connected {
		t.Fatalf("istiod's entry %s has no %s: %v", first.GetName(), connectedAtAnnotation, first.GetAnnotations())
	}

	// A quick restart from the new files: istiod marks the same entry connected again and keeps
	// its labels.
	stopVM()
	bootVM()
	reconnected := waitForEntry(t, ns, first.GetName(), "a newer "+connectedAtAnnotation, func(e *unstructured.Unstructured) bool {
		// Between the two connections istiod marks the entry disconnected (no connectedAt).
		at, connected := connectedAt(*e)
		return connected && at.After(firstConnected)
	})
	if reconnected.GetUID() != first.GetUID() {
		t.Errorf("a quick restart replaced the entry (UID %s, was %s); the warning says istiod keeps it", reconnected.GetUID(), first.GetUID())
	}
	expectTier(t, reconnected, "a")

	// Away longer than the grace period: istiod deletes the entry, and creates it from the new
	// bundle when the VM comes back.
	stopVM()
	waitForEntries(t, ns, 0, 90*time.Second)
	bootVM()
	recreated := waitForEntries(t, ns, 1, 90*time.Second)[0]
	expectTier(t, recreated, "b")

	stopVM() // before destroy: a running agent keeps its certificate and would register again
	w.expectNoChanges()
	w.destroyAndExpectNothingLeft(ns)
}

func expectTier(t *testing.T, entry unstructured.Unstructured, want string) {
	t.Helper()
	if got, _, _ := unstructured.NestedString(entry.Object, "spec", "labels", "tier"); got != want {
		t.Errorf("entry %s has tier %q, want %q (labels %v)", entry.GetName(), got, want, entry.Object["spec"])
	}
}

// connectedAt is when istiod last saw the entry's VM connect; false while the VM is
// disconnected (istiod then writes istio.io/disconnectedAt instead).
func connectedAt(entry unstructured.Unstructured) (time.Time, bool) {
	at, err := time.Parse(time.RFC3339Nano, entry.GetAnnotations()[connectedAtAnnotation])
	return at, err == nil
}

// waitForEntry polls the WorkloadEntry until done says yes, for up to 90 s.
func waitForEntry(t *testing.T, ns, name, what string, done func(*unstructured.Unstructured) bool) unstructured.Unstructured {
	t.Helper()
	var entry *unstructured.Unstructured
	eventually(t, 90*time.Second, fmt.Sprintf("WorkloadEntry %s/%s: %s", ns, name, what), func() error {
		entry = getObject(t, gvrWorkloadEntry, ns, name)
		if !done(entry) {
			return fmt.Errorf("not yet: %v", entry.GetAnnotations())
		}
		return nil
	})
	return *entry
}
