package acceptance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"terraform-provider-istio/acceptance-tests/vmsim"
)

// TestAccVmRegistration_live proves the bundle is live: a real pilot-agent
// starts from exactly the files the provider wrote, gets a workload certificate
// for the group's service account, auto-registers, and its HTTP probe makes the
// entry Healthy=True — which the registration's wait and the Service's wait
// both observe. Stopping the probed server turns the VM unhealthy, and the
// Service's wait then fails naming the VM and istiod's message.
func TestAccVmRegistration_live(t *testing.T) {
	ns := testNamespace(t, "live")
	waitForDefaultServiceAccount(t, ns)
	vmIP := "127.0.77." + fmt.Sprint(10+time.Now().UnixNano()%200)
	app := startProbedApp(t, vmIP)
	bundleDir := t.TempDir()
	var vm *vmsim.VM
	t.Cleanup(func() {
		if vm != nil {
			_ = vm.Stop()
		}
	})

	config := func(registrationExtra, serviceExtra string) string {
		return providerConfig() + fmt.Sprintf(`
resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %[1]q
  metadata {
    labels = { app = "product" }
  }
  template {
    service_account = "default"
    ports           = { http = %[2]d }
  }
  probe {
    period_seconds = 1
    http_get {
      path = "/ready"
      port = %[2]d
    }
  }
}

resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.product.id
  output_dir     = %[3]q
%[4]s
}

resource "istio_mesh_service" "product" {
  name      = "product"
  namespace = %[1]q
  selector  = { app = "product" }
  ports {
    name = "http"
    port = %[2]d
  }
%[5]s
  depends_on = [istio_vm_registration.vm]
}
`, ns, app.port, bundleDir, registrationExtra, serviceExtra)
	}
	entryPrefix := regexp.MustCompile(`^product-vm-` + regexp.QuoteMeta(vmIP))

	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				// Registration first; the VM boots from the files afterwards (like cloud-init).
				Config: config("", ""),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "healthy", "false"),
					func(*terraform.State) error {
						var err error
						vm, err = vmsim.Start(context.Background(), vmsim.Options{BundleDir: bundleDir, WorkDir: t.TempDir(), IP: vmIP, Logf: t.Logf, DNS: vmDNS()})
						if err != nil {
							return fmt.Errorf("starting the simulated VM from the provider's files: %w", err)
						}
						spiffe, err := vm.WaitForWorkloadCert(context.Background(), 60*time.Second)
						if err != nil {
							return fmt.Errorf("no workload certificate: %w\n%s", err, vm.LogTail(30))
						}
						if want := "spiffe://cluster.local/ns/" + ns + "/sa/default"; spiffe != want {
							return fmt.Errorf("workload certificate is for %s, want %s", spiffe, want)
						}
						return nil
					},
				),
			},
			{
				// Waiting after the VM exists: both waits return once istiod reports Healthy=True.
				Config: config("  wait_for_healthy = true\n", `
  wait {
    min_healthy_endpoints = 1
    timeout               = "2m"
  }
`),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "healthy", "true"),
					resource.TestMatchResourceAttr("istio_vm_registration.vm", "workload_entry_name", entryPrefix),
					resource.TestCheckResourceAttr("istio_mesh_service.product", "endpoints.vms_healthy", "1"),
					checkAutoRegisteredEntry(t, ns, entryPrefix),
				),
			},
			{
				// The probed server stops: istiod marks the VM unhealthy, and a refresh shows it.
				PreConfig: func() {
					app.stop()
					waitForEntryHealth(t, ns, entryPrefix, "False")
				},
				RefreshState: true,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_vm_registration.vm", "healthy", "false"),
					resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "health_message", containsAll("/ready")),
				),
			},
			{
				// A Service wait now fails and says which VM is unhealthy and why.
				Config: config("", `
  wait {
    min_healthy_endpoints = 1
    timeout               = "5s"
  }
`),
				ExpectError: regexp.MustCompile(`VMs\s+0\s+healthy\s+/\s+1\s+unhealthy[\s\S]*product-vm-`),
			},
		},
	})
}

// vmDNS is what the VM's DNS resolves: the east-west gateway's load
// balancer name, on a profile whose load balancer reports one.
func vmDNS() map[string]string {
	if name := cp.Get("EASTWEST_GATEWAY_HOSTNAME"); name != "" {
		return map[string]string{name: cp.Get("EASTWEST_GATEWAY_IP")}
	}
	return nil
}

// probedApp is the VM's application: an HTTP server on the VM's address whose
// /ready the agent probes. It answers 200, or 503 while notReady is set.
type probedApp struct {
	port     int
	server   *http.Server
	stopOnce sync.Once
	notReady atomic.Bool
}

func startProbedApp(t *testing.T, ip string) *probedApp {
	t.Helper()
	listener, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listening on the VM address %s: %v", ip, err)
	}
	app := &probedApp{port: listener.Addr().(*net.TCPAddr).Port}
	app.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if app.notReady.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, "ok")
	})}
	go func() { _ = app.server.Serve(listener) }()
	t.Cleanup(app.stop)
	return app
}

func (a *probedApp) stop() {
	a.stopOnce.Do(func() { _ = a.server.Close() })
}

func findEntry(t *testing.T, ns string, name *regexp.Regexp) (map[string]any, error) {
	list, err := resourceClient(gvrWorkloadEntry, ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, item := range list.Items {
		if name.MatchString(item.GetName()) {
			return item.Object, nil
		}
	}
	return nil, fmt.Errorf("no WorkloadEntry matching %s in %s", name, ns)
}

func entryHealth(entry map[string]any) string {
	conditions, _ := nested(entry, "status", "conditions").([]any)
	for _, c := range conditions {
		condition, _ := c.(map[string]any)
		if condition["type"] == "Healthy" {
			return fmt.Sprint(condition["status"])
		}
	}
	return ""
}

func waitForEntryHealth(t *testing.T, ns string, name *regexp.Regexp, status string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if entry, err := findEntry(t, ns, name); err == nil && entryHealth(entry) == status {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the VM's WorkloadEntry did not become Healthy=%s within 60s", status)
}

func checkAutoRegisteredEntry(t *testing.T, ns string, name *regexp.Regexp) resource.TestCheckFunc {
	return func(*terraform.State) error {
		entry, err := findEntry(t, ns, name)
		if err != nil {
			return err
		}
		annotations, _ := nested(entry, "metadata", "annotations").(map[string]any)
		if annotations["istio.io/autoRegistrationGroup"] != "product-vm" {
			return fmt.Errorf("entry was not auto-registered by istiod: annotations %v", annotations)
		}
		labels, _ := nested(entry, "metadata", "labels").(map[string]any)
		if labels["terraform-provider-istio/registration"] == nil {
			return fmt.Errorf("auto-registered entry lacks the registration label: %v", labels)
		}
		if entryHealth(entry) != "True" {
			return fmt.Errorf("entry health = %q", entryHealth(entry))
		}
		return nil
	}
}
