package acceptance

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// serviceConfig: the product group, one manually registered VM (no agent runs, so
// it never reports healthy) and the Service over them.
func serviceConfig(ns, serviceBody string) string {
	return registrationConfig(ns, `
  mode    = "manual"
  address = "10.20.0.7"
`) + fmt.Sprintf(`
resource "istio_mesh_service" "product" {
  name      = "product"
  namespace = %q
  selector  = { app = "product" }
%s
  depends_on = [istio_vm_registration.vm]
}
`, ns, serviceBody)
}

const httpPort = `
  ports {
    name = "http"
    port = 8080
  }
`

func TestAccMeshService_lifecycle(t *testing.T) {
	ns := testNamespace(t, "svc")
	waitForDefaultServiceAccount(t, ns)
	twoPorts := httpPort + `
  ports {
    name         = "grpc-api"
    port         = 9090
    target_port  = "9091"
    app_protocol = "grpc"
  }
`
	accTest(t, resource.TestCase{
		CheckDestroy: checkDestroy(gvrService, "istio_mesh_service"),
		Steps: []resource.TestStep{
			{
				Config: serviceConfig(ns, httpPort),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_mesh_service.product", "hostname", "product."+ns+".svc.cluster.local"),
					resource.TestCheckResourceAttrSet("istio_mesh_service.product", "cluster_ip"),
					resource.TestCheckResourceAttr("istio_mesh_service.product", "endpoints.vms_unhealthy", "1"),
					resource.TestCheckResourceAttr("istio_mesh_service.product", "endpoints.vms_healthy", "0"),
					checkServiceSpec(t, ns, func(spec map[string]any) error {
						if nested(spec, "selector", "app") != "product" {
							return fmt.Errorf("selector = %v", spec["selector"])
						}
						return nil
					}),
				),
			},
			{
				Config: serviceConfig(ns, twoPorts),
				Check: checkServiceSpec(t, ns, func(spec map[string]any) error {
					ports, _ := spec["ports"].([]any)
					if len(ports) != 2 {
						return fmt.Errorf("ports = %v", ports)
					}
					return nil
				}),
			},
			{
				ResourceName:            "istio_mesh_service.product",
				ImportState:             true,
				ImportStateId:           ns + "/product",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"force_conflicts", "timeouts", "wait", "endpoints"},
			},
			{
				PreConfig: func() {
					svc := getObject(t, gvrService, ns, "product")
					_ = unstructured.SetNestedStringMap(svc.Object, map[string]string{"app": "other"}, "spec", "selector")
					if _, err := resourceClient(gvrService, ns).Update(context.Background(), svc, metav1.UpdateOptions{FieldManager: "oob-editor"}); err != nil {
						t.Fatalf("out-of-band edit: %v", err)
					}
				},
				Config:             serviceConfig(ns, twoPorts),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: serviceConfig(ns, twoPorts+"  force_conflicts = true\n"),
				Check: checkServiceSpec(t, ns, func(spec map[string]any) error {
					if nested(spec, "selector", "app") != "product" {
						return fmt.Errorf("selector not restored: %v", spec["selector"])
					}
					return nil
				}),
			},
			{
				PreConfig: func() {
					if err := resourceClient(gvrService, ns).Delete(context.Background(), "product", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
					if err := checkObjectGone(gvrService, ns, "product"); err != nil {
						t.Fatal(err)
					}
				},
				Config: serviceConfig(ns, twoPorts+"  force_conflicts = true\n"),
				Check:  checkObjectExists(gvrService, ns, "product"),
			},
		},
	})
}

// There is no kubelet here, so no Pod ever runs: the Pod side of the count is a
// ready EndpointSlice this test writes itself, as the EndpointSlice controller
// would for one ready Pod. The VM side is a real WorkloadEntry that istiod never
// marks healthy (no agent runs for it).
func TestAccMeshService_wait(t *testing.T) {
	ns := testNamespace(t, "svcw")
	waitForDefaultServiceAccount(t, ns)
	createReadyPodSlice(t, ns, "product", "10.1.2.3")
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				// One ready Pod satisfies min 1.
				Config: serviceConfig(ns, httpPort+`
  wait {
    min_healthy_endpoints = 1
    timeout               = "60s"
  }
`),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_mesh_service.product", "endpoints.pods_ready", "1"),
					resource.TestCheckResourceAttr("istio_mesh_service.product", "endpoints.healthy", "1"),
				),
			},
			{
				// Two are wanted but the VM never turns healthy: the error says what was found per kind.
				Config: serviceConfig(ns, httpPort+`
  wait {
    min_healthy_endpoints = 2
    timeout               = "5s"
  }
`),
				// Terraform wraps the detail, so words are matched across any white space.
				ExpectError: regexp.MustCompile(`Pods\s+1\s+ready\s+/\s+0\s+not\s+ready[\s\S]*VMs\s+0\s+healthy\s+/\s+1\s+unhealthy[\s\S]*product-vm-10\.20\.0\.7`),
			},
		},
	})
}

func TestAccMeshService_validation(t *testing.T) {
	service := func(body string) string {
		return providerConfig() + "resource \"istio_mesh_service\" \"bad\" {\n  name = \"product\"\n" + body + "\n}\n"
	}
	cases := []struct{ body, want string }{
		{`selector = {}` + httpPort, `Empty selector`},
		{`selector = { app = "p" }
  ports {
    name = "http"
    port = 70000
  }`, `port 70000 is out of range`},
		{`selector = { app = "p" }
  ports {
    name     = "http"
    port     = 80
    protocol = "ICMP"
  }`, `use TCP, UDP or SCTP`},
		{`selector = { app = "p" }` + httpPort + httpPort, `appears more than once`},
		{`selector = { app = "p" }
  type     = "External"` + httpPort, `use ClusterIP, NodePort or LoadBalancer`},
		{`selector = { app = "p" }` + httpPort + `
  wait {
    min_healthy_endpoints = 0
  }`, `min_healthy_endpoints must be at least 1`},
	}
	steps := make([]resource.TestStep, 0, len(cases))
	for _, c := range cases {
		steps = append(steps, resource.TestStep{Config: service(c.body), PlanOnly: true, ExpectError: regexp.MustCompile(c.want)})
	}
	accTest(t, resource.TestCase{Steps: steps})
	// Checked here, not in CheckDestroy: terraform-plugin-testing runs
	// CheckDestroy only when the state is non-empty, never after plan-only steps.
	if err := func() error {
		_, err := kubeClient(t).CoreV1().Services("default").Get(context.Background(), "product", metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("a failed validation created Service default/product")
		}
		return nil
	}(); err != nil {
		t.Error(err)
	}
}

func checkServiceSpec(t *testing.T, ns string, check func(spec map[string]any) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		spec, _ := getObject(t, gvrService, ns, "product").Object["spec"].(map[string]any)
		return check(spec)
	}
}

func createReadyPodSlice(t *testing.T, ns, service, address string) {
	t.Helper()
	ready := true
	port := int32(8080)
	name := "http"
	protocol := corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-pods", Namespace: ns, Labels: map[string]string{"kubernetes.io/service-name": service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{address},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "product-pod-1"},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &protocol}},
	}
	if _, err := kubeClient(t).DiscoveryV1().EndpointSlices(ns).Create(context.Background(), slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the Pod EndpointSlice: %v", err)
	}
}
