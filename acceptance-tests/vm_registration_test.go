package acceptance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// registrationConfig is a group plus one registration whose body is given.
func registrationConfig(ns, body string) string {
	return providerConfig() + fmt.Sprintf(`
resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %q

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
%s
}
`, ns, body)
}

func TestAccVmRegistration_manual(t *testing.T) {
	ns := testNamespace(t, "vmm")
	waitForDefaultServiceAccount(t, ns)
	dir := t.TempDir()
	var token string
	entryName := "product-vm-10.10.0.5"
	hosts, discoveryAddress := istiodReach(cp.Get("DEFAULT_REVISION"))
	accTest(t, resource.TestCase{
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			checkDestroy(gvrWorkloadGroup, "istio_workload_group"),
			func(*terraform.State) error { return checkObjectGone(gvrWorkloadEntry, ns, entryName) },
			func(*terraform.State) error { return expectTokenRejected(t, token) },
			func(*terraform.State) error {
				if _, err := os.Stat(filepath.Join(dir, "istio-token")); !os.IsNotExist(err) {
					return fmt.Errorf("istio-token still on disk after destroy (%v)", err)
				}
				return nil
			},
		),
		Steps: []resource.TestStep{
			{
				Config: registrationConfig(ns, fmt.Sprintf(`
  mode       = "manual"
  address    = "10.10.0.5"
  labels     = { version = "v1" }
  output_dir = %q
`, dir)),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "workload_entry_name", entryName),
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "healthy", "false"),
					resource.TestCheckResourceAttrSet("istio_vm_registration.vm", "token_expires_at"),
					resource.TestCheckResourceAttrSet("istio_vm_registration.vm", "bundle_sha256"),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env", containsAll(
						"ISTIO_NAMESPACE='"+ns+"'", "SERVICE_ACCOUNT='default'", "ISTIO_INBOUND_PORTS='8080'", "ISTIO_SERVICE=")),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "mesh_config", containsAll(
						"ISTIO_META_WORKLOAD_ENTRY: "+entryName, "discoveryAddress: "+discoveryAddress, "readinessProbe:", "port: 8080")),
					// As istioctl writes it: the installed clusterName, "" when unset.
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "mesh_config", proxyMetadataIs("ISTIO_META_CLUSTER_ID", cp.Get("CLUSTER_NAME"))),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "mesh_config", containsNone("ISTIO_META_AUTO_REGISTER_GROUP")),
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "hosts", hosts),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "root_cert", sameAsConfigMap(t, ns, "istio-ca-root-cert", "root-cert.pem")),
					checkEntry(t, ns, entryName),
					func(s *terraform.State) error {
						token = s.RootModule().Resources["istio_vm_registration.vm"].Primary.Attributes["istio_token"]
						return expectTokenAccepted(t, token, ns)
					},
					checkBundleFiles(dir),
					checkSameAsIstioctl(t, "istio_vm_registration.vm"),
				),
			},
			{
				// The entry deleted out of band: the next plan shows it, the apply re-creates it.
				PreConfig: func() {
					if err := resourceClient(gvrWorkloadEntry, ns).Delete(context.Background(), entryName, metav1.DeleteOptions{}); err != nil {
						t.Fatalf("deleting the entry out of band: %v", err)
					}
				},
				Config: registrationConfig(ns, fmt.Sprintf(`
  mode       = "manual"
  address    = "10.10.0.5"
  labels     = { version = "v1" }
  output_dir = %q
`, dir)),
				Check: checkObjectExists(gvrWorkloadEntry, ns, entryName),
			},
		},
	})
}

func TestAccVmRegistration_autoAndRenewal(t *testing.T) {
	ns := testNamespace(t, "vma")
	waitForDefaultServiceAccount(t, ns)
	var firstToken string
	config := registrationConfig(ns, `
  token_duration = "10m"
  renew_before   = "9m59s"
`)
	accTest(t, resource.TestCase{
		CheckDestroy: checkDestroy(gvrWorkloadGroup, "istio_workload_group"),
		Steps: []resource.TestStep{
			{
				Config: config,
				// Renewal is due almost at once with these durations: the plan after apply shows it.
				ExpectNonEmptyPlan: true,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "mode", "auto"),
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "workload_entry_name", ""),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "mesh_config", containsAll(
						"ISTIO_META_AUTO_REGISTER_GROUP: product-vm", "ISTIO_METAJSON_LABELS", "terraform-provider-istio/registration")),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "health_message", containsAll("has not connected")),
					checkSameAsIstioctl(t, "istio_vm_registration.vm"),
					func(s *terraform.State) error {
						firstToken = s.RootModule().Resources["istio_vm_registration.vm"].Primary.Attributes["istio_token"]
						// Expiry has second precision: after a second, less than 9m59s is left for sure.
						time.Sleep(1500 * time.Millisecond)
						return expectTokenAccepted(t, firstToken, ns)
					},
				),
			},
			{
				Config:             config,
				ExpectNonEmptyPlan: true,
				Check: func(s *terraform.State) error {
					// As in step 1: let the renewed token's second-precision expiry fall due again.
					time.Sleep(1500 * time.Millisecond)
					renewed := s.RootModule().Resources["istio_vm_registration.vm"].Primary.Attributes["istio_token"]
					if renewed == "" || renewed == firstToken {
						return fmt.Errorf("the token was not renewed")
					}
					return expectTokenAccepted(t, renewed, ns)
				},
			},
		},
	})
}

// A registration for the newest installed revision (canary where the
// profile has one) reaches that revision's istiod; one with istiod_address
// uses it as discoveryAddress and keeps istiod's name for TLS.
func TestAccVmRegistration_revisionAndDNSGateway(t *testing.T) {
	ns := testNamespace(t, "vmr")
	waitForDefaultServiceAccount(t, ns)
	rev := newestRevision()
	hosts, discoveryAddress := istiodReach(rev)
	checks := []resource.TestCheckFunc{
		resource.TestCheckResourceAttr("istio_vm_registration.vm", "hosts", hosts),
		resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "mesh_config", containsAll(
			"ISTIO_META_NETWORK: vm-network", "discoveryAddress: "+discoveryAddress)),
		resource.TestCheckResourceAttr("istio_vm_registration.dns", "hosts", ""),
		resource.TestCheckResourceAttrWith("istio_vm_registration.dns", "mesh_config", containsAll(
			// No revision given: the one the default tag points at (issue "Field defects" item 6).
			"discoveryAddress: eastwest.example.com:15012", "ISTIOD_SAN: "+istiodHost(cp.Get("DEFAULT_REVISION")))),
		resource.TestCheckResourceAttrWith("istio_vm_registration.dns", "cluster_env", containsAll(
			"REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION",
			// istio-start.sh would otherwise export CA_ADDR=istiod.istio-system.svc:15012 (item 2).
			"CA_ADDR='eastwest.example.com:15012'")),
	}
	if rev != "default" {
		// istioctl's rule: a revisioned VM gets its CA from that revision's istiod.
		checks = append(checks, resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env",
			containsAll("CA_ADDR='"+istiodHost(rev)+":15012'")))
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: registrationConfig(ns, fmt.Sprintf(`
  revision = %q
  network  = "vm-network"
}

resource "istio_vm_registration" "dns" {
  workload_group = istio_workload_group.product.id
  istiod_address = "eastwest.example.com:15012"
  external_ip    = "203.0.113.7"
`, rev)),
			Check: resource.ComposeAggregateTestCheckFunc(checks...),
		}},
	})
}

func TestAccVmRegistration_validation(t *testing.T) {
	ns := testNamespace(t, "vmv")
	cases := []struct{ body, want string }{
		{`workload_group = "no-namespace"`, `Invalid workload_group`},
		{`workload_group = "default/g"
  mode = "semi"`, `use "auto" or "manual"`},
		{`workload_group = "default/g"
  mode = "manual"`, `needs .address.`},
		{`workload_group = "default/g"
  address = "10.0.0"`, `not an IPv4 or IPv6 address`},
		{`workload_group = "default/g"
  internal_ip = "10.0.0.1"
  external_ip = "1.2.3.4"`, `internal_ip. or .external_ip., not both`},
		{`workload_group = "default/g"
  ingress_ip     = "10.0.0.1"
  istiod_address = "a:1"`, `ingress_ip. or .istiod_address., not both`},
		{`workload_group = "default/g"
  token_duration = "5m"`, `minimum token lifetime`},
		{`workload_group = "default/g"
  renew_before = "2h"`, `renew_before must be shorter`},
		{`workload_group = "default/g"
  weight = -1`, `weight -1 is out of range`},
		{`workload_group = "default/g"
  network = "Net_1"`, `WorkloadEntry name`},
		{`workload_group = "default/g"
  locality = "a/b/c/d"`, `Invalid locality`},
		{`workload_group = "default/g"
  istiod_address = "istiod.example.com:15010"`, `plaintext port`},
		{`workload_group = "default/g"
  labels = { "bad key" = "x" }`, `Invalid label key`},
		{`workload_group = "default/g"
  istiod_address = "host:port"`, `must be host or host:port`},
		{`workload_group = "default/g"
  ingress_service = "Bad_Service"`, `Invalid ingress_service`},
	}
	steps := make([]resource.TestStep, 0, len(cases))
	for _, c := range cases {
		steps = append(steps, resource.TestStep{
			Config:      providerConfig() + "resource \"istio_vm_registration\" \"bad\" {\n  " + c.body + "\n}\n",
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(c.want),
		})
	}
	accTest(t, resource.TestCase{Steps: steps})
	// Checked here, not in CheckDestroy: terraform-plugin-testing runs
	// CheckDestroy only when the state is non-empty, never after plan-only steps.
	if err := func() error {
		secrets, err := kubeClient(t).CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=terraform-provider-istio"})
		if err != nil {
			return err
		}
		if len(secrets.Items) != 0 {
			return fmt.Errorf("validation failures created %d token Secret(s)", len(secrets.Items))
		}
		return nil
	}(); err != nil {
		t.Error(err)
	}
}

// ---- helpers -------------------------------------------------------------------------------

func containsAll(parts ...string) resource.CheckResourceAttrWithFunc {
	return func(value string) error {
		for _, part := range parts {
			if !strings.Contains(value, part) {
				return fmt.Errorf("missing %q in:\n%s", part, value)
			}
		}
		return nil
	}
}

func containsNone(parts ...string) resource.CheckResourceAttrWithFunc {
	return func(value string) error {
		for _, part := range parts {
			if strings.Contains(value, part) {
				return fmt.Errorf("unexpected %q in:\n%s", part, value)
			}
		}
		return nil
	}
}

// proxyMetadataIs checks one proxyMetadata value of mesh.yaml ("" = absent or empty).
func proxyMetadataIs(key, want string) resource.CheckResourceAttrWithFunc {
	return func(value string) error {
		var mesh struct {
			DefaultConfig struct {
				ProxyMetadata map[string]string `json:"proxyMetadata"`
			} `json:"defaultConfig"`
		}
		if err := yaml.Unmarshal([]byte(value), &mesh); err != nil {
			return fmt.Errorf("mesh_config is not YAML: %w", err)
		}
		if got := mesh.DefaultConfig.ProxyMetadata[key]; got != want {
			return fmt.Errorf("proxyMetadata %s = %q, want %q", key, got, want)
		}
		return nil
	}
}

// istiodReach is what a bundle for revision rev says about reaching istiod
// through the east-west gateway: a hosts line for the load balancer IP, or,
// when the load balancer only has a DNS name, no hosts line and that name as
// discoveryAddress.
func istiodReach(rev string) (hosts, discoveryAddress string) {
	if name := cp.Get("EASTWEST_GATEWAY_HOSTNAME"); name != "" {
		return "", name + ":15012"
	}
	return cp.Get("EASTWEST_GATEWAY_IP") + " " + istiodHost(rev) + "\n", istiodHost(rev) + ":15012"
}

func sameAsConfigMap(t *testing.T, ns, name, key string) resource.CheckResourceAttrWithFunc {
	return func(value string) error {
		cm, err := kubeClient(t).CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data[key] == "" || cm.Data[key] != value {
			return fmt.Errorf("%s differs from ConfigMap %s/%s key %s", key, ns, name, key)
		}
		return nil
	}
}

func checkEntry(t *testing.T, ns, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		entry := getObject(t, gvrWorkloadEntry, ns, name)
		if got := nested(entry.Object, "spec", "address"); got != "10.10.0.5" {
			return fmt.Errorf("spec.address = %v", got)
		}
		if entry.GetAnnotations()["proxy.istio.io/health-checks-enabled"] != "true" {
			return fmt.Errorf("health-checks annotation missing: %v", entry.GetAnnotations())
		}
		labels := entry.GetLabels()
		if labels["app"] != "product" || labels["version"] != "v1" {
			return fmt.Errorf("labels not merged from group and registration: %v", labels)
		}
		owners := entry.GetOwnerReferences()
		if len(owners) != 1 || owners[0].Kind != "WorkloadGroup" || owners[0].Name != "product-vm" {
			return fmt.Errorf("owner reference to the group missing: %v", owners)
		}
		return nil
	}
}

func checkBundleFiles(dir string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		attributes := s.RootModule().Resources["istio_vm_registration.vm"].Primary.Attributes
		files := map[string]string{"cluster.env": "cluster_env", "mesh.yaml": "mesh_config", "hosts": "hosts", "root-cert.pem": "root_cert", "istio-token": "istio_token"}
		for file, attribute := range files {
			path := filepath.Join(dir, file)
			content, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if string(content) != attributes[attribute] {
				return fmt.Errorf("%s differs from attribute %s", path, attribute)
			}
			info, _ := os.Stat(path)
			want := os.FileMode(0o644)
			if file == "istio-token" {
				want = 0o600
			}
			if info.Mode().Perm() != want {
				return fmt.Errorf("%s has mode %v, want %v", path, info.Mode().Perm(), want)
			}
		}
		return nil
	}
}

// tokenReview asks the API server, as istiod does, whether the token is valid for istio-ca.
func tokenReview(t *testing.T, token string) (*authenticationv1.TokenReview, error) {
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{"istio-ca"}}}
	return kubeClient(t).AuthenticationV1().TokenReviews().Create(context.Background(), review, metav1.CreateOptions{})
}

func expectTokenAccepted(t *testing.T, token, ns string) error {
	if token == "" {
		return fmt.Errorf("no token in state")
	}
	review, err := tokenReview(t, token)
	if err != nil {
		return err
	}
	if !review.Status.Authenticated {
		return fmt.Errorf("TokenReview rejected the fresh token: %s", review.Status.Error)
	}
	if want := "system:serviceaccount:" + ns + ":default"; review.Status.User.Username != want {
		return fmt.Errorf("token is for %s, want %s", review.Status.User.Username, want)
	}
	return nil
}

// expectTokenRejected waits for the API server to reject the token: it caches
// successful token authentications for 10 seconds.
func expectTokenRejected(t *testing.T, token string) error {
	if token == "" {
		return fmt.Errorf("no token was captured")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		review, err := tokenReview(t, token)
		if err != nil {
			return err
		}
		if !review.Status.Authenticated {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the token still authenticates 30s after destroy: it was not revoked")
		}
		time.Sleep(time.Second)
	}
}

// waitForDefaultServiceAccount waits for kube-controller-manager to create the
// namespace's default ServiceAccount (the group's tokens are issued for it) and
// for istiod to publish istio-ca-root-cert there (the bundle's root-cert.pem).
func waitForDefaultServiceAccount(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 240; i++ {
		_, saErr := kubeClient(t).CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		_, cmErr := kubeClient(t).CoreV1().ConfigMaps(ns).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		if saErr == nil && cmErr == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("namespace %s did not get its default ServiceAccount and istio-ca-root-cert within 60s", ns)
}
