package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// healthGateCase is one WorkloadEntry: the value of the health-checks
// annotation (absent when nil) and the status of its Healthy condition ("" for
// no condition).
type healthGateCase struct {
	annotation *string
	condition  string
}

func healthGateCases() []healthGateCase {
	text := func(s string) *string { return &s }
	annotations := []*string{nil, text(""), text("true"), text("1"), text("T"), text("TRUE"),
		text("false"), text("yes"), text(" true"), text("on")}
	var out []healthGateCase
	for _, a := range annotations {
		for _, c := range []string{"True", "False", "Unknown", ""} {
			out = append(out, healthGateCase{a, c})
		}
	}
	return out
}

// TestAccOracle_healthGate asks istiod which VMs it sends traffic to. WorkloadEntries
// with every kind of health-checks annotation value and Healthy condition sit
// behind one Service; istiod's endpoint index for that Service is the verdict,
// and istio_mesh_service must count exactly those VMs healthy and list the rest.
func TestAccOracle_healthGate(t *testing.T) {
	ns := testNamespace(t, "gate")
	cases := healthGateCases()
	config := providerConfig() + fmt.Sprintf(`
resource "istio_mesh_service" "gate" {
  name      = "gate"
  namespace = %q
  selector  = { app = "gate" }
%s}
`, ns, httpPort)
	var served map[string]bool
	accTest(t, resource.TestCase{
		CheckDestroy: checkDestroy(gvrService, "istio_mesh_service"),
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					createGateEntries(t, ns, cases)
					served = istiodServedAddresses(t, ns, "gate", gateSentinel)
					checkVerdictDiscriminates(t, cases, served)
				},
				RefreshState: true,
				Check: func(s *terraform.State) error {
					return matchIstiodVerdict(s, cases, served)
				},
			},
		},
	})
}

const gateSentinel = "10.77.255.1"

func gateAddress(i int) string { return fmt.Sprintf("10.77.%d.%d", i/200, i%200+1) }

// createGateEntries writes the cases' entries, each with its status, and then
// an entry without the annotation at gateSentinel: once istiod shows it, istiod
// has seen everything written before it.
func createGateEntries(t *testing.T, ns string, cases []healthGateCase) {
	t.Helper()
	entries := resourceClient(gvrWorkloadEntry, ns)
	ctx := context.Background()
	for i, c := range cases {
		entry := gateEntry(fmt.Sprintf("gate-%d", i), gateAddress(i))
		if c.annotation != nil {
			entry.SetAnnotations(map[string]string{"proxy.istio.io/health-checks-enabled": *c.annotation})
		}
		created, err := entries.Create(ctx, entry, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating WorkloadEntry %d: %v", i, err)
		}
		if c.condition == "" {
			continue
		}
		now := time.Now().UTC().Format(time.RFC3339)
		condition := map[string]any{"type": "Healthy", "status": c.condition, "message": "set by the test: " + c.condition,
			"lastProbeTime": now, "lastTransitionTime": now}
		_ = unstructured.SetNestedSlice(created.Object, []any{condition}, "status", "conditions")
		if _, err := entries.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("writing the status of WorkloadEntry %d: %v", i, err)
		}
	}
	if _, err := entries.Create(ctx, gateEntry("gate-sentinel", gateSentinel), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the sentinel WorkloadEntry: %v", err)
	}
}

func gateEntry(name, address string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "WorkloadEntry",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{"app": "gate"}},
		"spec":       map[string]any{"address": address},
	}}
}

// istiodServedAddresses reads istiod's endpoint index (/debug/endpointShardz)
// for the Service until the sentinel is there and two reads a second apart
// agree, and returns the addresses istiod holds as healthy endpoints.
func istiodServedAddresses(t *testing.T, ns, service, sentinel string) map[string]bool {
	t.Helper()
	url := "http://" + cp.Get(istiodEnvPrefix(newestRevision())+"_HTTP_ADDR") + "/debug/endpointShardz"
	host := service + "." + ns + ".svc.cluster.local"
	var last map[string]bool
	deadline := time.Now().Add(60 * time.Second)
	for {
		now, err := readServedAddresses(url, host, ns)
		if err == nil && now[sentinel] && last != nil && maps.Equal(now, last) {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("istiod's endpoints of %s did not settle with %s in 60s (last read %v, error %v)", host, sentinel, now, err)
		}
		last = now
		time.Sleep(time.Second)
	}
}

// shardz is the part of /debug/endpointShardz the test reads: by hostname, by
// namespace, the endpoints of each shard (pilot/pkg/model/endpointshards.go).
type shardz map[string]map[string]struct {
	Shards map[string][]struct {
		Addresses    []string
		HealthStatus int
	}
}

func readServedAddresses(url, host, ns string) (map[string]bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var index shardz
	if err := json.NewDecoder(resp.Body).Decode(&index); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	served := map[string]bool{}
	for _, endpoints := range index[host][ns].Shards {
		for _, e := range endpoints {
			// model.HealthStatus: 0 (unset, as on a WorkloadEntry's endpoints) and 1 serve;
			// 2 (UnHealthy), 3 (Draining) and 4 (Terminating) do not.
			if e.HealthStatus > 1 {
				continue
			}
			for _, a := range e.Addresses {
				served[a] = true
			}
		}
	}
	return served, nil
}

// checkVerdictDiscriminates makes sure the cases tell rules apart: istiod's
// verdict differs both from "the condition decides" and from "the annotation is
// the string true", so a provider following either would fail the comparison.
func checkVerdictDiscriminates(t *testing.T, cases []healthGateCase, served map[string]bool) {
	t.Helper()
	conditionRule, stringRule := true, true
	for i, c := range cases {
		byCondition := c.condition == "True"
		byString := c.annotation == nil || *c.annotation != "true" || c.condition == "True"
		conditionRule = conditionRule && byCondition == served[gateAddress(i)]
		stringRule = stringRule && byString == served[gateAddress(i)]
	}
	if conditionRule || stringRule {
		t.Fatalf("istiod's verdict (%d of %d served) matches a naive rule (condition only: %v, annotation as a string: %v): the cases do not test the gate", len(served)-1, len(cases), conditionRule, stringRule)
	}
}

// matchIstiodVerdict compares istio_mesh_service's count and list of unhealthy
// VMs with the entries istiod serves.
func matchIstiodVerdict(s *terraform.State, cases []healthGateCase, served map[string]bool) error {
	rs := s.RootModule().Resources["istio_mesh_service.gate"]
	if rs == nil {
		return fmt.Errorf("istio_mesh_service.gate is not in state")
	}
	attrs := rs.Primary.Attributes
	var wantUnhealthy []string
	for i := range cases {
		if !served[gateAddress(i)] {
			wantUnhealthy = append(wantUnhealthy, fmt.Sprintf("gate-%d", i))
		}
	}
	wantHealthy := len(cases) + 1 - len(wantUnhealthy) // + the sentinel
	var gotUnhealthy []string
	for key, line := range attrs {
		if strings.HasPrefix(key, "endpoints.unhealthy_vms.") && key != "endpoints.unhealthy_vms.#" {
			name, _, _ := strings.Cut(line, ":")
			gotUnhealthy = append(gotUnhealthy, name)
		}
	}
	sort.Strings(wantUnhealthy)
	sort.Strings(gotUnhealthy)
	var problems []string
	if got := attrs["endpoints.vms_healthy"]; got != fmt.Sprint(wantHealthy) {
		problems = append(problems, fmt.Sprintf("vms_healthy = %s, istiod serves %d", got, wantHealthy))
	}
	if !slices.Equal(gotUnhealthy, wantUnhealthy) {
		problems = append(problems, fmt.Sprintf("unhealthy_vms names %v, istiod does not serve %v", gotUnhealthy, wantUnhealthy))
	}
	if len(problems) > 0 {
		return fmt.Errorf("istio_mesh_service disagrees with istiod: %s", strings.Join(problems, "; "))
	}
	return nil
}
