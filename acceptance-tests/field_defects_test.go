package acceptance

// Acceptance tests of issue "Field defects": each fails on the provider as it was
// before the matching fix, on whatever install profile the control plane runs.

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
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
	wantSource := "injector_values"
	if clusterName == "" {
		wantSource = "default"
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: registrationConfig(ns, "") + `
data "istio_mesh" "this" {}
`,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env", containsAll(
					"ISTIO_META_CLUSTER_ID='"+clusterName+"'")),
				resource.TestCheckResourceAttr("data.istio_mesh.this", "cluster_id", cp.Get("CLUSTER_ID")),
				// istiod runs out of cluster here: no Deployment to read.
				resource.TestCheckResourceAttr("data.istio_mesh.this", "cluster_id_source", wantSource),
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
	host := istiod + ".istio-system.svc"
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: registrationConfig(ns, "") + `
data "istio_mesh" "this" {}
`,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("data.istio_mesh.this", "istiod_host", host),
				resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "hosts", containsAll(" "+host+"\n")),
			),
		}},
	})
}
