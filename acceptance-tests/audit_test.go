package acceptance

// The API server's audit log (controlplane/audit.go): the benchmark counts a
// client's requests from it, so it must hold every request of that client
// with verb, resource, user agent and field manager.

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"terraform-provider-istio/acceptance-tests/controlplane"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

func TestControlPlaneAuditLogRecordsEveryRequestOfAClient(t *testing.T) {
	ctx := context.Background()
	logPath := cp.Get("AUDIT_LOG")
	if logPath == "" {
		t.Fatal("the env file has no AUDIT_LOG")
	}
	agent := randomName("audit-probe")
	config := cp.RestConfig()
	config.UserAgent = agent
	c := kubernetes.NewForConfigOrDie(config)
	ns := testNamespace(t, "audit")
	name := randomName("cm")
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{FieldManager: "audit-test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "does-not-exist", metav1.GetOptions{}); err == nil {
		t.Fatal("GET of a missing ConfigMap succeeded")
	}

	var entries []controlplane.AuditEntry
	eventually(t, 10*time.Second, "three requests of "+agent+" in "+logPath, func() error {
		var err error
		entries, err = controlplane.ReadAuditLog(logPath, controlplane.UserAgentPrefix(agent))
		if err == nil && len(entries) < 3 {
			return fmt.Errorf("found %d", len(entries))
		}
		return err
	})
	if len(entries) != 3 {
		t.Fatalf("want exactly the 3 requests made, got %d: %+v", len(entries), entries)
	}
	want := []struct {
		verb, name, fieldManager string
		code                     int
	}{
		{"create", "", "audit-test", 201}, // a create's URI has no name
		{"get", name, "", 200},
		{"get", "does-not-exist", "", 404},
	}
	for i, w := range want {
		e := entries[i]
		if e.Verb != w.verb || e.Resource() != "configmaps" || e.ObjectRef.Namespace != ns ||
			(w.name != "" && e.ObjectRef.Name != w.name) || e.FieldManager() != w.fieldManager || e.Code() != w.code {
			t.Errorf("request %d: got verb %q resource %q namespace %q name %q fieldManager %q code %d (URI %s); want %+v",
				i, e.Verb, e.Resource(), e.ObjectRef.Namespace, e.ObjectRef.Name, e.FieldManager(), e.Code(), e.RequestURI, w)
		}
	}
}

// Issue 12's request budget, counted in the audit log: N manual registrations
// that wait for health cost at most 4 requests each at apply and at most 1 each
// at a refresh (a no-op plan), counting every request of the provider during
// the command (configure, discovery, the group and the mesh facts included).
// Request counts are deterministic; times are not asserted (bench/ measures them).
func TestAccRequestsPerRegistration(t *testing.T) {
	const n = 20
	ns := testNamespace(t, "budget")
	waitForDefaultServiceAccount(t, ns)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), terraformHeader()+fmt.Sprintf(`
resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %q
  metadata {
    labels = { app = "product" }
  }
  template {
    service_account = "default"
  }
  probe {
    http_get {
      port = 8080
    }
  }
}

resource "istio_vm_registration" "vm" {
  count            = %d
  workload_group   = istio_workload_group.product.id
  mode             = "manual"
  address          = cidrhost("10.20.0.0/16", count.index + 1)
  wait_for_healthy = true
}
`, ns, n))
	stopHealth := reportEntriesHealthy(t, ns)
	defer stopHealth()
	runTerraform(t, dir, "init", "-input=false", "-no-color")
	apply := providerRequestsDuring(t, func() {
		runTerraform(t, dir, "apply", "-auto-approve", "-input=false", "-no-color")
	})
	refresh := providerRequestsDuring(t, func() {
		runTerraform(t, dir, "plan", "-detailed-exitcode", "-input=false", "-no-color")
	})
	defer runTerraform(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
	t.Logf("apply: %d requests for %d registrations %v", apply.total(), n, apply)
	t.Logf("refresh: %d requests for %d registrations %v", refresh.total(), n, refresh)

	// One create of the token Secret (labels included, no follow-up update), one
	// TokenRequest and one apply of the entry per registration.
	for what, want := range map[string]int{
		"create secrets": n, "create serviceaccounts/token": n, "patch workloadentries": n,
		"update secrets": 0, "patch secrets": 0,
	} {
		if apply[what] != want {
			t.Errorf("apply: %d %q, want %d", apply[what], what, want)
		}
	}
	// The waits share one watch (and its initial list) instead of one each.
	for _, what := range []string{"watch workloadentries", "list workloadentries"} {
		if apply[what] > 2 {
			t.Errorf("apply: %d %q for %d waits, want at most 2 (one shared watch)", apply[what], what, n)
		}
	}
	// What every registration reads (discovery, the group, the mesh facts) is read once.
	for _, what := range []string{"get workloadgroups", "get configmaps", "get services", "get /apis/networking.istio.io/v1"} {
		if apply[what] > 3 {
			t.Errorf("apply: %d %q, want it read once or twice per provider process, not per registration", apply[what], what)
		}
	}
	if apply.total() > 4*n {
		t.Errorf("apply: %d requests for %d registrations, want at most %d", apply.total(), n, 4*n)
	}
	// A refresh finds the Secrets in one shared LIST and the entries in one shared watch.
	if refresh["get secrets"] != 0 || refresh["list secrets"] != 1 {
		t.Errorf("refresh: %d GET and %d LIST of secrets, want 0 and 1", refresh["get secrets"], refresh["list secrets"])
	}
	// Configure's connection check is the discovery the resources need: one request for both.
	if refresh["get /apis"] != 0 || refresh["get /apis/networking.istio.io/v1"] != 1 {
		t.Errorf("refresh: %d GET /apis and %d GET /apis/networking.istio.io/v1, want 0 and 1",
			refresh["get /apis"], refresh["get /apis/networking.istio.io/v1"])
	}
	// The group is read once, for itself and for every registration made from it.
	if refresh["get workloadgroups"] != 1 {
		t.Errorf("refresh: %d GET of workloadgroups, want 1", refresh["get workloadgroups"])
	}
	// None of a refresh's requests is per registration: 10 in all (discovery, the group, three
	// ConfigMaps, the revision tag, the gateway Service, the Secrets, the entries' list and
	// watch), so 10 registrations already meet 1 per registration.
	if refresh.total() > 10 {
		t.Errorf("refresh: %d requests for %d registrations, want at most 10 whatever the number of registrations", refresh.total(), n)
	}
}

// providerUserAgent starts the User-Agent of every request of the provider
// ("terraform-provider-istio/<version>", src/cluster/client.rs). Every other
// client of the control plane (client-go in these tests, istiod, the
// controller manager, the API server itself) names itself otherwise.
const providerUserAgent = "terraform-provider-istio/"

// providerRequests keeps the provider's requests received between since and until.
func providerRequests(since, until time.Time) func(controlplane.AuditEntry) bool {
	return func(e controlplane.AuditEntry) bool {
		return strings.HasPrefix(e.UserAgent, providerUserAgent) &&
			!e.RequestReceived.Before(since) && !e.RequestReceived.After(until)
	}
}

// requestCounts counts requests by "verb resource[/subresource]" (the URL path
// where there is no resource: discovery).
type requestCounts map[string]int

func (c requestCounts) total() int {
	sum := 0
	for _, n := range c {
		sum += n
	}
	return sum
}

// providerRequestsDuring runs f and counts the provider's requests received
// meanwhile. A marker request sent afterwards, once it is in the log, shows
// that every earlier request is too.
func providerRequestsDuring(t *testing.T, f func()) requestCounts {
	t.Helper()
	start := time.Now()
	f()
	end := time.Now()
	marker := randomName("audit-marker")
	config := cp.RestConfig()
	config.UserAgent = marker
	_, _ = kubernetes.NewForConfigOrDie(config).CoreV1().Namespaces().Get(context.Background(), marker, metav1.GetOptions{})
	logPath := cp.Get("AUDIT_LOG")
	eventually(t, 30*time.Second, "the marker request in "+logPath, func() error {
		found, err := controlplane.ReadAuditLog(logPath, controlplane.UserAgentPrefix(marker))
		if err == nil && len(found) == 0 {
			return fmt.Errorf("not yet")
		}
		return err
	})
	entries, err := controlplane.ReadAuditLog(logPath, providerRequests(start, end))
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	counts := requestCounts{}
	for _, e := range entries {
		what := e.Resource()
		if what == "" {
			u, _ := url.Parse(e.RequestURI)
			what = u.Path
		}
		counts[e.Verb+" "+what]++
	}
	if len(entries) == 0 {
		t.Fatalf("no request of the provider (user agent %s…) in the audit log", providerUserAgent)
	}
	return counts
}

// reportEntriesHealthy plays istiod for VMs whose agent runs: it writes
// Healthy=True on every WorkloadEntry of ns without it, until stopped.
func reportEntriesHealthy(t *testing.T, ns string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	entries := resourceClient(gvrWorkloadEntry, ns)
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list, err := entries.List(ctx, metav1.ListOptions{})
			for i := 0; err == nil && i < len(list.Items); i++ {
				if entryHealth(list.Items[i].Object) == "True" {
					continue
				}
				now := time.Now().UTC().Format(time.RFC3339)
				patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Healthy","status":"True","lastProbeTime":%q,"lastTransitionTime":%q}]}}`, now, now)
				_, _ = entries.Patch(ctx, list.Items[i].GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}
