package acceptance

// Every bundle variant the provider produces, applied at once with the Terraform CLI (each
// variant its own file, so an apply error names its variant), then each compared with istioctl
// run against the same cluster (oracle_istioctl_test.go). A variant that fails because of a
// provider defect of issue 10 is listed in bundleKnownDefects and printed, never skipped.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tfjson "github.com/hashicorp/terraform-json"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bundleVariant is one istio_vm_registration configuration.
type bundleVariant struct {
	Name string
	// Body of the registration (workload_group is added).
	Body string
	// IstioctlArgs are flags for what the attributes do not show (see checkSameAsIstioctl).
	IstioctlArgs []string
	// Canary variants run only where the install has the canary revision.
	Canary bool
}

// bundleVariants are every way the bundle can be shaped.
func bundleVariants() []bundleVariant {
	variants := []bundleVariant{
		{Name: "auto", Body: ``},
		{Name: "manual", Body: `mode = "manual"
  address = "10.30.0.5"
  labels = { version = "v1" }`},
		{Name: "manual-network", Body: `mode = "manual"
  address = "10.30.0.6"
  network = "vm-net"`},
		{Name: "token-duration", Body: `token_duration = "30m"`},
		{Name: "internal-ip", Body: `internal_ip = "10.30.0.7"`},
		{Name: "external-ip", Body: `external_ip = "203.0.113.9"`},
		{Name: "dns-capture-off", Body: `capture_dns = false`},
		{Name: "ingress-ip", Body: `ingress_ip = "192.0.2.50"`},
		{Name: "ipv6", Body: `internal_ip = "2001:db8::7"
  ingress_ip = "2001:db8::10"`},
		{Name: "ingress-service-lb", Body: `ingress_service = "oracle-gw-lb"`},
		{Name: "ingress-service-external-ips", Body: `ingress_service = "oracle-gw-extip"`},
		{Name: "ingress-service-with-namespace", Body: `ingress_service = "oracle-gw-lb.` + istioNamespace() + `"`},
		{Name: "ingress-service-hostname", Body: `ingress_service = "oracle-gw-dns"`},
		{Name: "istiod-address", Body: `istiod_address = "istiod.example.com:15012"`},
		{Name: "istiod-address-no-port", Body: `istiod_address = "istiod.example.com"`},
		{Name: "network-locality-labels", Body: `network = "vm-net"
  locality = "us-east1/us-east1-b"
  labels = { version = "v2", tier = "web" }`},
		{Name: "cluster-id", Body: `cluster_id = "cluster-x"`, IstioctlArgs: []string{"--clusterID", "cluster-x"}},
	}
	// Needs a canary control plane (profiles revision and named-cluster).
	return append(variants,
		bundleVariant{Name: "revision", Body: `revision = "canary"`, Canary: true},
		bundleVariant{Name: "revision-manual", Body: `revision = "canary"
  mode = "manual"
  address = "10.30.0.8"`, Canary: true})
}

// hasCanary says whether this run's install has the canary revision.
func hasCanary() bool { return strings.Contains(cp.Get("ISTIO_REVISIONS"), "canary") }

func variantNames[V any](variants []V, name func(V) string) []string {
	var names []string
	for _, v := range variants {
		names = append(names, name(v))
	}
	return names
}

func TestAccOracle_istioctlBundles(t *testing.T) {
	testAccPreCheck(t)
	istioctlBinary(t)
	started := time.Now()
	ns := testNamespace(t, "oracle-bundle")
	waitForDefaultServiceAccount(t, ns)
	createGatewayServices(t)

	all := bundleVariants()
	checkKnownDefectNames(t, bundleKnownDefects, variantNames(all, func(v bundleVariant) string { return v.Name }))
	variants := runnableVariants(all, func(v bundleVariant) bool { return v.Canary })
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "provider.tf"), terraformHeader()+fmt.Sprintf(`
resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %q
  metadata {
    labels = { app = "product" }
  }
  template {
    service_account = "default"
    ports           = { http = 8080, grpc = 9090, admin = 15000 }
  }
  probe {
    http_get {
      port = 8080
    }
  }
}
`, ns))
	for i, v := range variants {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("case_%d.tf", i)), fmt.Sprintf(
			"resource \"istio_vm_registration\" \"c%d\" {\n  workload_group = istio_workload_group.product.id\n  %s\n}\n", i, v.Body))
	}
	runTerraform(t, dir, "init", "-input=false", "-no-color")
	t.Cleanup(func() {
		if _, err := terraformOutput(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color"); err != nil {
			t.Errorf("terraform destroy: %v", err)
		}
	})
	failures, _ := applyCases(t, dir)
	states := stateAttributes(t, dir)

	results := make(map[string]error, len(variants))
	for i, v := range variants {
		if failures[i] != "" {
			results[v.Name] = fmt.Errorf("apply failed: %s", failures[i])
		} else {
			results[v.Name] = compareWithIstioctl(t, states[fmt.Sprintf("istio_vm_registration.c%d", i)], v.IstioctlArgs...)
		}
	}
	matched, known := judgeVariants(t, "bundleKnownDefects", bundleKnownDefects, variantNames(variants, func(v bundleVariant) string { return v.Name }), results)
	t.Logf("istioctl oracle: %d variants, %d match istioctl, %d known defects (issue 10) (%s)",
		len(variants), len(matched), len(known), time.Since(started).Round(time.Second))
}

// applyCases applies the configuration in dir whose case_<i>.tf files are the variants and
// returns the errors and the warnings per variant. A variant whose error stops the whole run (a
// validation or plan error) is removed and the rest applied again, so every other variant still
// applies.
func applyCases(t *testing.T, dir string) (failures, warnings map[int]string) {
	t.Helper()
	failures, warnings = map[int]string{}, map[int]string{}
	for round := 0; round < 4; round++ {
		applyJSON, _ := terraformOutput(t, dir, "apply", "-auto-approve", "-json", "-input=false", "-no-color")
		failed := map[int]bool{}
		for _, d := range planDiagnostics(t, applyJSON) {
			if d.Severity == tfjson.DiagnosticSeverityWarning && d.Range != nil && caseFile.MatchString(d.Range.Filename) {
				i := atoi(caseFile.FindStringSubmatch(d.Range.Filename)[1])
				warnings[i] += strings.Join(strings.Fields(d.Summary+": "+d.Detail), " ") + "\n"
			}
			if d.Severity != tfjson.DiagnosticSeverityError {
				continue
			}
			if d.Range == nil || !caseFile.MatchString(d.Range.Filename) {
				t.Fatalf("terraform apply: an error names no variant: %s: %s", d.Summary, d.Detail)
			}
			i := atoi(caseFile.FindStringSubmatch(d.Range.Filename)[1])
			failures[i] += oneLine(d.Summary + ": " + d.Detail)
			failed[i] = true
		}
		if len(failed) == 0 {
			return failures, warnings
		}
		for i := range failed {
			if err := os.Remove(filepath.Join(dir, fmt.Sprintf("case_%d.tf", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatalf("terraform apply still fails after removing the failing variants: %v", failures)
	return nil, nil
}

func terraformHeader() string {
	return "terraform {\n  required_providers {\n    istio = {\n      source  = \"" + providerSource + "\"\n      version = \"" + providerVersion +
		"\"\n    }\n  }\n}\n" + providerConfig()
}

// createGatewayServices adds three gateway Services in the Istio namespace: one whose load
// balancer reports an IP, one whose load balancer reports only a DNS name (istioctl finds no
// address in it), one with only spec.externalIPs (istioctl falls back to those).
func createGatewayServices(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	services := kubeClient(t).CoreV1().Services(istioNamespace())
	ports := []corev1.ServicePort{{Name: "tls-istiod", Port: 15012}}
	lb := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "oracle-gw-lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: ports}}
	created, err := services.Create(ctx, lb, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Service oracle-gw-lb: %v", err)
	}
	created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.60"}}
	if _, err := services.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting the load balancer IP of oracle-gw-lb: %v", err)
	}
	dns := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "oracle-gw-dns"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: ports}}
	created, err = services.Create(ctx, dns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Service oracle-gw-dns: %v", err)
	}
	created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "gw-dns.vm.example"}}
	if _, err := services.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting the load balancer hostname of oracle-gw-dns: %v", err)
	}
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "oracle-gw-extip"}, Spec: corev1.ServiceSpec{Ports: ports, ExternalIPs: []string{"192.0.2.61"}}}
	if _, err := services.Create(ctx, ext, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Service oracle-gw-extip: %v", err)
	}
	t.Cleanup(func() {
		_ = services.Delete(ctx, "oracle-gw-lb", metav1.DeleteOptions{})
		_ = services.Delete(ctx, "oracle-gw-extip", metav1.DeleteOptions{})
		_ = services.Delete(ctx, "oracle-gw-dns", metav1.DeleteOptions{})
	})
}

// stateAttributes reads `terraform show -json` as flat attributes per resource address, in the
// form terraform-plugin-testing's state uses (maps as "name.key", booleans as "true").
func stateAttributes(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	out := runTerraform(t, dir, "show", "-json", "-no-color")
	var state tfjson.State
	if err := json.Unmarshal(out, &state); err != nil {
		t.Fatalf("terraform show -json: %v", err)
	}
	result := map[string]map[string]string{}
	if state.Values == nil || state.Values.RootModule == nil {
		return result
	}
	for _, r := range state.Values.RootModule.Resources {
		attrs := map[string]string{}
		for k, v := range r.AttributeValues {
			flatten(attrs, k, v)
		}
		result[r.Address] = attrs
	}
	return result
}

func flatten(out map[string]string, key string, v any) {
	switch v := v.(type) {
	case nil:
	case map[string]any:
		out[key+".%"] = fmt.Sprint(len(v))
		for k, val := range v {
			flatten(out, key+"."+k, val)
		}
	case []any:
		out[key+".#"] = fmt.Sprint(len(v))
		for i, val := range v {
			flatten(out, fmt.Sprintf("%s.%d", key, i), val)
		}
	default:
		out[key] = fmt.Sprint(v)
	}
}

// runnableVariants keeps the variants this control plane can serve: those that need the
// canary revision only when the profile installs it.
func runnableVariants[V any](all []V, needsCanary func(V) bool) []V {
	var variants []V
	for _, v := range all {
		if !needsCanary(v) || hasCanary() {
			variants = append(variants, v)
		}
	}
	return variants
}
