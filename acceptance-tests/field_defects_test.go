package acceptance

// Acceptance tests of issue "Field defects": each fails on the provider as it was
// before the matching fix, on whatever install profile the control plane runs.

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Item 1: a default install (clusterName "") must not fail the registration, the
// VM's cluster ID is what istioctl writes, and data.istio_mesh reports the ID istiod
// was started with.
func TestAccFieldDefects_clusterID(t *testing.T) {
	ns := testNamespace(t, "fdc")
	waitForDefaultServiceAccount(t, ns)
	// global.multiCluster.clusterName as installed: what istioctl writes into
	// ISTIO_META_CLUSTER_ID ("" on a default install).
	clusterName := cp.Get("CLUSTER_NAME")
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: registrationConfig(ns, "") + `
data "istio_mesh" "this" {}
`,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env", containsAll(
					"ISTIO_META_CLUSTER_ID='"+clusterName+"'")),
				resource.TestCheckResourceAttr("data.istio_mesh.this", "cluster_id", cp.Get("CLUSTER_ID")),
				// istiod's Deployment is applied (without Pods), as in a cluster.
				resource.TestCheckResourceAttr("data.istio_mesh.this", "cluster_id_source", "istiod_deployment"),
			),
		}},
	})
}

// Item 3: a group without a probe never gets a Healthy condition, so waiting for
// one fails at plan instead of timing out at apply.
func TestAccFieldDefects_waitNeedsProbe(t *testing.T) {
	ns := testNamespace(t, "fdw")
	waitForDefaultServiceAccount(t, ns)
	group := providerConfig() + fmt.Sprintf(`
resource "istio_workload_group" "noprobe" {
  name      = "noprobe"
  namespace = %q
  template {
    service_account = "default"
  }
}
`, ns)
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{Config: group},
			{
				Config: group + `
resource "istio_vm_registration" "vm" {
  workload_group   = istio_workload_group.noprobe.id
  wait_for_healthy = true
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)wait_for_healthy cannot succeed.*has no probe`),
			},
		},
	})
}

// Item 4: in manual mode the entry name contains the network; changing the network
// replaces the entry instead of leaking the old one, and the bundle names the
// entry that exists. The entry carries the canonical labels an auto-registered
// one gets from the VM.
func TestAccFieldDefects_manualNetworkChange(t *testing.T) {
	ns := testNamespace(t, "fdn")
	waitForDefaultServiceAccount(t, ns)
	config := func(network string) string {
		return registrationConfig(ns, fmt.Sprintf(`
  mode    = "manual"
  address = "10.10.0.9"
  network = %q
`, network))
	}
	oldEntry, newEntry := "product-vm-10.10.0.9-net-a", "product-vm-10.10.0.9-net-b"
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				Config: config("net-a"),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkObjectExists(gvrWorkloadEntry, ns, oldEntry),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env", containsAll(
						"ISTIO_SVC_IP='10.10.0.9'", "ISTIO_META_WORKLOAD_ENTRY='"+oldEntry+"'")),
					func(*terraform.State) error {
						labels := getObject(t, gvrWorkloadEntry, ns, oldEntry).GetLabels()
						if labels["service.istio.io/canonical-name"] != "product" || labels["service.istio.io/canonical-revision"] != "latest" {
							return fmt.Errorf("manual entry lacks the canonical labels the VM presents: %v", labels)
						}
						return nil
					},
				),
			},
			{
				Config: config("net-b"),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkObjectExists(gvrWorkloadEntry, ns, newEntry),
					func(*terraform.State) error { return checkObjectGone(gvrWorkloadEntry, ns, oldEntry) },
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "workload_entry_name", newEntry),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env", containsAll(
						"ISTIO_META_WORKLOAD_ENTRY='"+newEntry+"'", "ISTIO_META_NETWORK='net-b'")),
				),
			},
		},
	})
}

// Item 8: import by <namespace>/<group>/<registration-id> adopts the token Secret
// and the entry. The token cannot be read back; the plan after an import renews it
// (no token_expires_at in state).
func TestAccFieldDefects_importRegistration(t *testing.T) {
	ns := testNamespace(t, "fdi")
	waitForDefaultServiceAccount(t, ns)
	config := registrationConfig(ns, `
  mode    = "manual"
  address = "10.10.0.11"
`)
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{Config: config},
			{
				ResourceName:      "istio_vm_registration.vm",
				ImportState:       true,
				ImportStateVerify: true,
				// The token is a credential the cluster never returns; the digest covers it.
				ImportStateVerifyIgnore: []string{"istio_token", "token_expires_at", "bundle_sha256"},
			},
		},
	})
}

// Item 6: with no revision set, the provider follows the `default` revision tag
// (the istio.io/rev label of webhook istio-revision-tag-default, as istioctl 1.28+
// reads it). On a revision-only install this is the only way to find the mesh.
func TestAccFieldDefects_defaultRevisionTag(t *testing.T) {
	ns := testNamespace(t, "fdt")
	waitForDefaultServiceAccount(t, ns)
	istiod := "istiod"
	webhook, err := kubeClient(t).AdmissionregistrationV1().MutatingWebhookConfigurations().Get(
		context.Background(), "istio-revision-tag-default", metav1.GetOptions{})
	if err == nil {
		if rev := webhook.Labels["istio.io/rev"]; rev != "" && rev != "default" {
			istiod = "istiod-" + rev
		}
	}
	host := istiod + "." + istioNamespace() + ".svc"
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: registrationConfig(ns, "") + `
data "istio_mesh" "this" {}
`,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("data.istio_mesh.this", "istiod_host", host),
				bundleNamesIstiod(host),
			),
		}},
	})
}

// bundleNamesIstiod checks that the registration's bundle points the VM at istiod host: a
// hosts line through the gateway's IP or, where the gateway has only a hostname (the VM dials
// the gateway's name), ISTIOD_SAN.
func bundleNamesIstiod(host string) resource.TestCheckFunc {
	if cp.Get("EASTWEST_GATEWAY_HOSTNAME") != "" {
		return resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env", containsAll("ISTIOD_SAN='"+host+"'"))
	}
	return resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "hosts", containsAll(" "+host+"\n"))
}

// Item 8, after the import: the cluster never returns the token, so `terraform import`
// leaves it empty and the next apply must mint a new one, bound to the adopted Secret.
// The re-issued bundle is the one istioctl writes for the same group, and destroying the
// imported registration revokes the new token.
func TestAccFieldDefects_importReissuesToken(t *testing.T) {
	testAccPreCheck(t)
	istioctlBinary(t)
	ns := testNamespace(t, "fdr")
	waitForDefaultServiceAccount(t, ns)
	dir := t.TempDir()
	const address = "istio_vm_registration.vm"
	writeFile(t, filepath.Join(dir, "main.tf"), terraformHeader()+strings.TrimPrefix(registrationConfig(ns, `
  mode    = "manual"
  address = "10.10.0.12"
`), providerConfig()))
	runTerraform(t, dir, "init", "-input=false", "-no-color")
	runTerraform(t, dir, "apply", "-auto-approve", "-input=false", "-no-color")
	created := stateAttributes(t, dir)[address]

	runTerraform(t, dir, "state", "rm", "-no-color", address)
	runTerraform(t, dir, "import", "-input=false", "-no-color", address, created["id"])
	imported := stateAttributes(t, dir)[address]
	if imported["istio_token"] != "" {
		t.Fatalf("the import recovered a token; the cluster never returns one, so the test proves nothing")
	}
	if imported["token_secret_name"] != created["token_secret_name"] || imported["workload_entry_name"] != created["workload_entry_name"] {
		t.Fatalf("the import adopted other objects: Secret %q entry %q, want %q and %q",
			imported["token_secret_name"], imported["workload_entry_name"], created["token_secret_name"], created["workload_entry_name"])
	}
	if plan := string(runTerraform(t, dir, "plan", "-input=false", "-no-color")); !strings.Contains(plan, "istio_token") {
		t.Fatalf("the plan after the import does not re-issue the token:\n%s", plan)
	}

	runTerraform(t, dir, "apply", "-auto-approve", "-input=false", "-no-color")
	reissued := stateAttributes(t, dir)[address]
	token := reissued["istio_token"]
	if token == "" || token == created["istio_token"] {
		t.Fatalf("the apply after the import did not mint a new token (empty: %v)", token == "")
	}
	if err := expectTokenAccepted(t, token, ns); err != nil {
		t.Fatal(err)
	}
	if err := compareWithIstioctl(t, reissued); err != nil {
		t.Errorf("the re-issued bundle differs from istioctl's: %v", err)
	}
	for _, file := range []string{"cluster_env", "mesh_config", "hosts", "root_cert"} {
		if reissued[file] != created[file] {
			t.Errorf("%s changed across the import:\nbefore: %s\nafter:  %s", file, created[file], reissued[file])
		}
	}
	if plan := string(runTerraform(t, dir, "plan", "-input=false", "-no-color")); !strings.Contains(plan, "No changes") {
		t.Errorf("the plan after the re-issue is not empty:\n%s", plan)
	}

	runTerraform(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
	if err := expectTokenRejected(t, token); err != nil {
		t.Errorf("destroying the imported registration did not revoke the re-issued token: %v", err)
	}
}

// Item 9: a gateway Service that does not expose istiod's port 15012 (an ingress gateway
// picked instead of the east-west one: it serves 80 and 443) can never carry the VM's
// certificate request or its discovery stream. The apply says so, naming
// `ingress_service`, instead of writing a bundle that points the VM at it.
func TestAccFieldDefects_gatewayWithout15012(t *testing.T) {
	ns := testNamespace(t, "fdg")
	waitForDefaultServiceAccount(t, ns)
	gateway := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ingress-only", Labels: map[string]string{"istio": "ingressgateway"}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"istio": "ingressgateway"},
			Ports: []corev1.ServicePort{
				{Name: "status-port", Port: 15021},
				{Name: "http2", Port: 80},
				{Name: "https", Port: 443},
			},
		},
	}
	if _, err := kubeClient(t).CoreV1().Services(ns).Create(context.Background(), gateway, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Service %s/ingress-only: %v", ns, err)
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config:      registrationConfig(ns, fmt.Sprintf(`  ingress_service = "ingress-only.%s"`, ns)),
			ExpectError: wrappedPhrases(`ingress_service = "ingress-only.`+ns+`"`, "Service "+ns+"/ingress-only does not expose port 15012", "expose-istiod"),
		}},
	})
}

// Item 4: in manual mode the entry name contains the network, and without the
// registration's own `network` that is the group's `template.network`. When the group
// moves to another network the registration, which reads the group at refresh, replaces
// the entry at the next apply; until then its bundle keeps naming the entry that exists,
// never one that does not.
func TestAccFieldDefects_groupNetworkChange(t *testing.T) {
	ns := testNamespace(t, "fdgn")
	waitForDefaultServiceAccount(t, ns)
	// registrationConfig's group, on a network.
	groupPorts := "ports           = { http = 8080 }"
	config := func(network string) string {
		config := registrationConfig(ns, `
  mode    = "manual"
  address = "10.10.0.7"
`)
		if !strings.Contains(config, groupPorts) {
			t.Fatalf("registrationConfig's group has no line %q to put the network after", groupPorts)
		}
		return strings.Replace(config, groupPorts, groupPorts+fmt.Sprintf("\n    network         = %q", network), 1)
	}
	oldEntry, newEntry := "product-vm-10.10.0.7-net-a", "product-vm-10.10.0.7-net-b"
	bundleNames := func(entry, network string) resource.TestCheckFunc {
		return resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env", containsAll(
			"ISTIO_META_WORKLOAD_ENTRY='"+entry+"'", "ISTIO_META_NETWORK='"+network+"'"))
	}
	accTest(t, resource.TestCase{
		CheckDestroy: func(*terraform.State) error { return checkObjectGone(gvrWorkloadEntry, ns, newEntry) },
		Steps: []resource.TestStep{
			{
				Config: config("net-a"),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkObjectExists(gvrWorkloadEntry, ns, oldEntry),
					bundleNames(oldEntry, "net-a"),
				),
			},
			{
				// The group changes; the registration learns of it at the refresh after.
				Config:             config("net-b"),
				ExpectNonEmptyPlan: true,
				Check: resource.ComposeAggregateTestCheckFunc(
					checkObjectExists(gvrWorkloadEntry, ns, oldEntry),
					bundleNames(oldEntry, "net-a"),
				),
			},
			{
				Config: config("net-b"),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkObjectExists(gvrWorkloadEntry, ns, newEntry),
					func(*terraform.State) error { return checkObjectGone(gvrWorkloadEntry, ns, oldEntry) },
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "workload_entry_name", newEntry),
					bundleNames(newEntry, "net-b"),
				),
			},
		},
	})
}

// Item 9: a group whose template.service_account does not exist can never give its VMs a
// token. The apply says so, naming the ServiceAccount, instead of failing on the bare 404 of
// the TokenRequest.
func TestAccFieldDefects_missingServiceAccount(t *testing.T) {
	ns := testNamespace(t, "fdsa")
	waitForDefaultServiceAccount(t, ns)
	config := registrationConfig(ns, "")
	const account = `service_account = "default"`
	if !strings.Contains(config, account) {
		t.Fatalf("registrationConfig's group has no line %q", account)
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config:      strings.Replace(config, account, `service_account = "nobody"`, 1),
			ExpectError: wrappedPhrases("ServiceAccount " + ns + "/nobody (the group's template.service_account) does not exist; create it before registering VMs"),
		}},
	})
}
