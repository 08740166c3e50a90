package acceptance

// Replace attributes with a provider default: removing the attribute from the
// configuration plans the default, which differs from the prior value, so the
// object must be replaced (destroyed where it was, created where the default
// puts it) and nothing may be left behind.

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// defaultNamespace is where mesh_service and workload_group go without `namespace`.
const defaultNamespace = "default"

// expectReplaced asserts the plan replaces address (destroy before create).
func expectReplaced(address string) resource.ConfigPlanChecks {
	return resource.ConfigPlanChecks{
		PreApply: []plancheck.PlanCheck{
			plancheck.ExpectResourceAction(address, plancheck.ResourceActionDestroyBeforeCreate),
		},
	}
}

// checkMoved asserts the object left the first namespace and exists in the second.
func checkMoved(gvr schema.GroupVersionResource, from, to, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if err := checkObjectGone(gvr, from, name); err != nil {
			return fmt.Errorf("orphaned after replacement: %w", err)
		}
		return checkObjectExists(gvr, to, name)(nil)
	}
}

func meshServiceConfig(name, namespaceLine string) string {
	return providerConfig() + fmt.Sprintf(`
resource "istio_mesh_service" "moved" {
  name     = %q
%s
  selector = { app = %q }
  ports {
    name = "http"
    port = 8080
  }
}
`, name, namespaceLine, name)
}

func TestAccReplaceDefaults_meshServiceNamespace(t *testing.T) {
	ns := testNamespace(t, "rdsvc")
	name := randomName("orphan-check")
	accTest(t, resource.TestCase{
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			func(*terraform.State) error { return checkObjectGone(gvrService, ns, name) },
			func(*terraform.State) error { return checkObjectGone(gvrService, defaultNamespace, name) },
		),
		Steps: []resource.TestStep{
			{
				Config: meshServiceConfig(name, fmt.Sprintf("  namespace = %q", ns)),
				Check:  checkObjectExists(gvrService, ns, name),
			},
			{
				Config:           meshServiceConfig(name, ""),
				ConfigPlanChecks: expectReplaced("istio_mesh_service.moved"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_mesh_service.moved", "namespace", defaultNamespace),
					checkMoved(gvrService, ns, defaultNamespace, name),
				),
			},
		},
	})
}

func TestAccReplaceDefaults_workloadGroupNamespace(t *testing.T) {
	ns := testNamespace(t, "rdwg")
	name := randomName("orphan-check")
	accTest(t, resource.TestCase{
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			func(*terraform.State) error { return checkObjectGone(gvrWorkloadGroup, ns, name) },
			func(*terraform.State) error { return checkObjectGone(gvrWorkloadGroup, defaultNamespace, name) },
		),
		Steps: []resource.TestStep{
			{
				Config: groupConfig(ns, name, 8080, ""),
				Check:  checkObjectExists(gvrWorkloadGroup, ns, name),
			},
			{
				// groupConfig always sets namespace; "default" here would be the config
				// value, so drop the line to get the provider default.
				Config:           groupConfigWithoutNamespace(name),
				ConfigPlanChecks: expectReplaced("istio_workload_group.product"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_workload_group.product", "namespace", defaultNamespace),
					checkMoved(gvrWorkloadGroup, ns, defaultNamespace, name),
				),
			},
		},
	})
}

func groupConfigWithoutNamespace(name string) string {
	return providerConfig() + fmt.Sprintf(`
resource "istio_workload_group" "product" {
  name = %q

  metadata {
    labels = { app = "product" }
  }

  template {
    service_account = "default"
    ports           = { http = 8080 }
  }
}
`, name)
}

func TestAccReplaceDefaults_vmRegistrationMode(t *testing.T) {
	ns := testNamespace(t, "rdvm")
	waitForDefaultServiceAccount(t, ns)
	address := "10.10.0.9"
	entryName := "product-vm-" + address
	accTest(t, resource.TestCase{
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			checkDestroy(gvrWorkloadGroup, "istio_workload_group"),
			func(*terraform.State) error { return checkObjectGone(gvrWorkloadEntry, ns, entryName) },
		),
		Steps: []resource.TestStep{
			{
				Config: registrationConfig(ns, fmt.Sprintf(`
  mode    = "manual"
  address = %q
`, address)),
				Check: checkObjectExists(gvrWorkloadEntry, ns, entryName),
			},
			{
				// Without `mode` the default is auto: the manual registration (and the
				// WorkloadEntry it created) must be replaced, not edited into auto mode.
				Config: registrationConfig(ns, fmt.Sprintf(`
  address = %q
`, address)),
				ConfigPlanChecks: expectReplaced("istio_vm_registration.vm"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "mode", "auto"),
					func(*terraform.State) error {
						if err := checkObjectGone(gvrWorkloadEntry, ns, entryName); err != nil {
							return fmt.Errorf("manual WorkloadEntry orphaned after replacement: %w", err)
						}
						return nil
					},
				),
			},
		},
	})
}
