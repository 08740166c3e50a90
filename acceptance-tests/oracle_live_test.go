package acceptance

// A live VM from every bundle variant (issue 9 item 7): the simulated VM (vmsim: the real
// pilot-agent started by the real istio-start.sh) boots from the files each registration wrote
// and must get its workload certificate, register (its WorkloadEntry exists: created by istiod
// in auto mode, by the provider in manual mode) and turn Healthy=True from its HTTP probe.
// All variants are applied at once with the Terraform CLI and their VMs run side by side.
// A variant that fails because of a defect of issue 10 is listed in liveKnownDefects and
// printed, never skipped. A variant the provider warned about (istiod's certificate lacks the
// name the VM dials) must fail to get its certificate: the VM judges the warning.
//
// A non-default Istio namespace is the profile custom-namespace: istiod runs in istio-vm and
// every variant's provider block sets istio_namespace (providerBlockWith).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"terraform-provider-istio/acceptance-tests/vmsim"
)

// liveVariant is one registration booted as a VM.
type liveVariant struct {
	Name string
	// Body of the registration; {ip} is the VM's IP.
	Body string
	// DNS are names the VM's own DNS (not the bundle) resolves to the gateway IP.
	DNS []string
	// Canary variants run only where the install has the canary revision.
	Canary bool
}

// liveDNSName is the DNS name the VM reaches istiod by in the istiod_address and hostname
// gateway variants: the profile's gateway load balancer name where it has one, else a test
// name. Either way istiod's certificate must carry it (ISTIOD_CUSTOM_HOST), because the CA
// connection checks istiod's certificate against CA_ADDR's host.
func liveDNSName() string {
	if name := cp.Get("EASTWEST_GATEWAY_HOSTNAME"); name != "" {
		return name
	}
	return "gw.vm.example"
}

func liveVariants() []liveVariant {
	liveIstiodName, liveGatewayName := liveDNSName(), liveDNSName()
	variants := []liveVariant{
		{Name: "auto", Body: ``},
		{Name: "manual", Body: `mode = "manual"
  address = "{ip}"`},
		{Name: "internal-ip", Body: `internal_ip = "{ip}"`},
		{Name: "external-ip", Body: `external_ip = "{ip}"`},
		{Name: "dns-capture-off", Body: `capture_dns = false`},
		{Name: "istiod-address", Body: `istiod_address = "` + liveIstiodName + `:15012"`, DNS: []string{liveIstiodName}},
		{Name: "gateway-hostname", Body: `ingress_service = "oracle-gw-hostname"`, DNS: []string{liveGatewayName}},
	}
	return append(variants, liveVariant{Name: "revision", Body: `revision = "canary"`, Canary: true})
}

func TestAccOracle_liveVMs(t *testing.T) {
	testAccPreCheck(t)
	started := time.Now()
	ns := testNamespace(t, "oracle-live")
	waitForDefaultServiceAccount(t, ns)
	createHostnameGateway(t)

	all := liveVariants()
	checkKnownDefectNames(t, liveKnownDefects, variantNames(all, func(v liveVariant) string { return v.Name }))
	variants := runnableVariants(all, func(v liveVariant) bool { return v.Canary })
	ips := make([]string, len(variants))
	base := 20 + time.Now().UnixNano()%200
	for i := range variants {
		ips[i] = fmt.Sprintf("127.0.%d.%d", 80+i, base)
	}
	// 127.0.0.1 too: with external_ip the agent probes localhost
	// (REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION), where a VM's application also listens.
	port, ready := startLiveApps(t, append([]string{"127.0.0.1"}, ips...))

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
    ports           = { http = %d }
  }
  probe {
    period_seconds = 1
    http_get {
      path = "/ready"
      port = %d
    }
  }
}
`, ns, port, port))
	bundles := make([]string, len(variants))
	for i, v := range variants {
		bundles[i] = filepath.Join(dir, "bundle-"+v.Name)
		writeFile(t, filepath.Join(dir, fmt.Sprintf("case_%d.tf", i)), fmt.Sprintf(
			"resource \"istio_vm_registration\" \"c%d\" {\n  workload_group = istio_workload_group.product.id\n  output_dir = %q\n  %s\n}\n",
			i, bundles[i], strings.ReplaceAll(v.Body, "{ip}", ips[i])))
	}
	runTerraform(t, dir, "init", "-input=false", "-no-color")
	t.Cleanup(func() {
		if _, err := terraformOutput(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color"); err != nil {
			t.Errorf("terraform destroy: %v", err)
		}
	})
	failures, warnings := applyCases(t, dir)
	states := stateAttributes(t, dir)

	results := make([]error, len(variants))
	var wg sync.WaitGroup
	for i, v := range variants {
		if failures[i] != "" {
			results[i] = fmt.Errorf("apply failed: %s", failures[i])
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			attrs := states[fmt.Sprintf("istio_vm_registration.c%d", i)]
			appReady := ready[ips[i]]
			if v.Name == "external-ip" {
				appReady = ready["127.0.0.1"]
			}
			results[i] = judgeCertificateWarning(v, warnings[i], bootVM(t, ns, v, ips[i], bundles[i], attrs, appReady))
		}()
	}
	wg.Wait()

	byName := make(map[string]error, len(variants))
	for i, v := range variants {
		byName[v.Name] = results[i]
	}
	var warned []string
	for i, v := range variants {
		if certificateWarned(warnings[i]) && results[i] == nil {
			warned = append(warned, v.Name)
			t.Logf("variant %s: the provider warned, and the VM indeed got no certificate: %s", v.Name, strings.TrimSpace(warnings[i]))
		}
	}
	passed, known := judgeVariants(t, "liveKnownDefects", liveKnownDefects, variantNames(variants, func(v liveVariant) string { return v.Name }), byName)
	healthy := slices.DeleteFunc(passed, func(name string) bool { return slices.Contains(warned, name) })
	t.Logf("live VM oracle: %d variants, %d got a certificate, registered and turned healthy (%s), %d got none as the provider warned %v, %d known defects %v (%s)",
		len(variants), len(healthy), strings.Join(healthy, ", "), len(warned), warned, len(known), known, time.Since(started).Round(time.Second))
}

// bootVM starts a simulated VM from the variant's bundle and waits for its certificate, its
// entry and Healthy=True.
//
// The application turns ready only once the VM has its certificate: the agent reports a
// transition to healthy after it is connected. (With the application ready before the agent
// connects, istiod sometimes never records the manual entry's first health report.)
func bootVM(t *testing.T, ns string, v liveVariant, ip, bundle string, attrs map[string]string, appReady *atomic.Bool) error {
	dns := map[string]string{}
	for _, name := range v.DNS {
		dns[name] = cp.Get("EASTWEST_GATEWAY_IP")
	}
	// A load balancer that reports a DNS name has that name in public DNS, which every VM uses:
	// every bundle of such a profile reaches istiod by it.
	if name := cp.Get("EASTWEST_GATEWAY_HOSTNAME"); name != "" {
		dns[name] = cp.Get("EASTWEST_GATEWAY_IP")
	}
	vm, err := vmsim.Start(context.Background(), vmsim.Options{BundleDir: bundle, WorkDir: t.TempDir(), IP: ip, Hostname: "vm-" + v.Name, DNS: dns, Logf: t.Logf})
	if err != nil {
		return fmt.Errorf("starting the VM: %w", err)
	}
	defer vm.Stop()
	spiffe, err := vm.WaitForWorkloadCert(context.Background(), 45*time.Second)
	if err != nil {
		return fmt.Errorf("%w: %w\nCA_ADDR as istio-start.sh exports it: %q\n%s", errNoCertificate, err, startScriptCAAddr(vm), vm.LogTail(15))
	}
	if want := "spiffe://cluster.local/ns/" + ns + "/sa/default"; spiffe != want {
		return fmt.Errorf("workload certificate for %s, want %s", spiffe, want)
	}
	appReady.Store(true)
	entry := attrs["workload_entry_name"]
	if attrs["mode"] != "manual" {
		network := attrs["network"]
		entry = entryName("product-vm", ip, network)
	}
	deadline := time.Now().Add(45 * time.Second)
	last := "no WorkloadEntry " + entry
	for time.Now().Before(deadline) {
		obj, err := resourceClient(gvrWorkloadEntry, ns).Get(context.Background(), entry, metav1.GetOptions{})
		if err == nil {
			if h := entryHealth(obj.Object); h == "True" {
				return nil
			} else {
				last = fmt.Sprintf("WorkloadEntry %s has Healthy=%q", entry, h)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("%s after 45s\n%s", last, vm.LogTail(15))
}

// errNoCertificate marks a VM that never got its workload certificate.
var errNoCertificate = errors.New("no workload certificate")

// judgeCertificateWarning lets the VM judge the provider's warning that istiod's certificate
// lacks the name the VM dials (`values.pilot.env.ISTIOD_CUSTOM_HOST`): a warned variant passes
// when its VM got no certificate, and fails when it got one anyway; an unwarned one must boot.
func judgeCertificateWarning(v liveVariant, warnings string, booted error) error {
	warned := certificateWarned(warnings)
	attribute := "istiod_address"
	if v.Name != "istiod-address" {
		attribute = "ingress_service"
	}
	switch {
	case !warned:
		return booted
	case booted == nil:
		return fmt.Errorf("the provider warned that the VM would get no certificate, yet it booted: %s", warnings)
	case !errors.Is(booted, errNoCertificate):
		return fmt.Errorf("the provider warned that the VM would get no certificate; it got one but failed later: %w", booted)
	case !strings.Contains(warnings, "`"+attribute+"`"):
		return fmt.Errorf("the warning does not name %s: %s", attribute, warnings)
	}
	return nil
}

// certificateWarned: the provider's warnings of a variant include the one that istiod's
// certificate lacks the name its VM dials.
func certificateWarned(warnings string) bool {
	return strings.Contains(warnings, "values.pilot.env.ISTIOD_CUSTOM_HOST")
}

// startScriptCAAddr is the CA address the agent was started with (istio-start.sh's default
// when cluster.env has none), from the agent log's environment dump if present.
func startScriptCAAddr(vm *vmsim.VM) string {
	if v := vm.Env["CA_ADDR"]; v != "" {
		return v + " (from cluster.env)"
	}
	return "unset in cluster.env: istio-start.sh exports istiod.<ISTIO_SYSTEM_NAMESPACE>.svc:15012"
}

// createHostnameGateway adds a gateway Service whose load balancer reports only a hostname
// (as on AWS), which the VM resolves to the east-west gateway's IP.
func createHostnameGateway(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	services := kubeClient(t).CoreV1().Services(istioNamespace())
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "oracle-gw-hostname"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Name: "tls-istiod", Port: 15012}}},
	}
	created, err := services.Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Service oracle-gw-hostname: %v", err)
	}
	t.Cleanup(func() { _ = services.Delete(ctx, "oracle-gw-hostname", metav1.DeleteOptions{}) })
	created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: liveDNSName()}}
	if _, err := services.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting the load balancer hostname of oracle-gw-hostname: %v", err)
	}
}

// startLiveApps serves /ready on the same port at every VM address and returns the port and,
// per address, the switch that makes /ready answer 200 (503 before).
func startLiveApps(t *testing.T, ips []string) (int, map[string]*atomic.Bool) {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		first, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatalf("listening on the VM address %s: %v", ips[0], err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		listeners := []net.Listener{first}
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
			if err != nil {
				break
			}
			listeners = append(listeners, l)
		}
		if len(listeners) < len(ips) {
			for _, l := range listeners {
				l.Close()
			}
			continue
		}
		ready := map[string]*atomic.Bool{}
		for i, l := range listeners {
			flag := &atomic.Bool{}
			ready[ips[i]] = flag
			server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if !flag.Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				fmt.Fprintln(w, flag.Load())
			})}
			go func() { _ = server.Serve(l) }()
			t.Cleanup(func() { _ = server.Close() })
		}
		return port, ready
	}
	t.Fatal("no port free on every VM address")
	return 0, nil
}
