package vmsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"terraform-provider-istio/acceptance-tests/controlplane"
	"terraform-provider-istio/acceptance-tests/vmsim"
)

var (
	wgGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadgroups"}
	weGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"}
)

// controlPlaneEnv is the env file of the control plane these tests run
// against: the one TestMain started, or the running one whose env file
// TFPI_CONTROLPLANE_ENV names.
var controlPlaneEnv map[string]string

func TestMain(m *testing.M) {
	// The control plane re-executes this binary as its network processes.
	controlplane.RunGatewayIfRequested()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var vars []controlplane.EnvVar
	if path := os.Getenv("TFPI_CONTROLPLANE_ENV"); path != "" {
		var err error
		if vars, err = controlplane.ReadEnvFile(filepath.Dir(path)); err != nil {
			fmt.Fprintf(os.Stderr, "vmsim tests: reading the control plane env file %s: %v\n", path, err)
			return 1
		}
	} else {
		runRoot := filepath.Join(controlplane.CacheDir(), "run")
		if err := os.MkdirAll(runRoot, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		runDir, err := os.MkdirTemp(runRoot, "vmsim-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cp, err := controlplane.Start(ctx, controlplane.Options{RunDir: runDir, KillOnParentExit: true, Progress: os.Stderr})
		if err != nil {
			fmt.Fprintf(os.Stderr, "vmsim tests: control plane did not start: %v\n", err)
			return 1
		}
		defer func() { _ = cp.Stop() }()
		vars = cp.Env
	}
	controlPlaneEnv = map[string]string{}
	for _, v := range vars {
		controlPlaneEnv[v.Key] = v.Value
	}
	for _, k := range []string{"KUBECONFIG", "EASTWEST_GATEWAY_IP", "ISTIO_REVISIONS", "ISTIO_NAMESPACE"} {
		if controlPlaneEnv[k] == "" {
			fmt.Fprintf(os.Stderr, "vmsim tests: the control plane env has no %s\n", k)
			return 1
		}
	}
	return m.Run()
}

// fixture is a namespace with a ServiceAccount, a WorkloadGroup whose
// httpGet probe targets an HTTP app on the VM's own loopback address, and a
// bundle for that group.
type fixture struct {
	env                    map[string]string
	kc                     kubernetes.Interface
	dc                     dynamic.Interface
	ns, sa, group, network string
	vmIP, bundle, workDir  string
	app                    *http.Server
}

// newFixture makes the fixture; the bundle's token is issued for tokenSA
// (the group's ServiceAccount unless a test breaks the bundle on purpose).
// rev is the istiod revision the bundle targets ("default" or "" for the
// unrevisioned one).
func newFixture(ctx context.Context, t *testing.T, rev, tokenSA string) *fixture {
	t.Helper()
	env := controlPlaneEnv
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, kc: kubernetes.NewForConfigOrDie(cfg), dc: dynamic.NewForConfigOrDie(cfg)}

	// The VM: a loopback address of its own and an HTTP app on it.
	suffix := fmt.Sprintf("%04x", rand.IntN(0xffff))
	f.vmIP = fmt.Sprintf("127.0.%d.%d", 100+rand.IntN(100), 2+rand.IntN(250))
	appListener, err := net.Listen("tcp", net.JoinHostPort(f.vmIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	appPort := appListener.Addr().(*net.TCPAddr).Port
	f.app = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" {
			fmt.Fprintln(w, "ok")
			return
		}
		http.NotFound(w, r)
	})}
	go f.app.Serve(appListener)
	t.Cleanup(func() { f.app.Close() })

	// Namespace, ServiceAccounts, WorkloadGroup with an httpGet probe.
	f.ns, f.sa, f.group = "vmsim-"+suffix, "vm-sa", "vmsim-group"
	if _, err := f.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.kc.CoreV1().Namespaces().Delete(context.Background(), f.ns, metav1.DeleteOptions{})
	})
	for _, sa := range []string{f.sa, tokenSA} {
		_, err := f.kc.CoreV1().ServiceAccounts(f.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	f.network = env["NETWORK"]
	labels := map[string]string{"app": "vmsim-app", "version": "v1"}
	probe := map[string]any{
		"httpGet":          map[string]any{"path": "/ready", "port": appPort},
		"periodSeconds":    2,
		"timeoutSeconds":   1,
		"failureThreshold": 1,
		"successThreshold": 1,
	}
	wg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "WorkloadGroup",
		"metadata":   map[string]any{"name": f.group, "namespace": f.ns},
		"spec": map[string]any{
			"metadata": map[string]any{"labels": toAny(labels)},
			"template": map[string]any{"serviceAccount": f.sa, "network": f.network},
			"probe":    probe,
		},
	}}
	if _, err := f.dc.Resource(wgGVR).Namespace(f.ns).Create(ctx, wg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The five bundle files, made as istioctl x workload entry configure
	// --autoregister makes them (`istioctl/pkg/workload/workload.go` (`createMeshConfig`, `createClusterEnv`, `createCertsTokens`, `createHosts`)).
	f.bundle, f.workDir = testDirs(t)
	writeBundle(ctx, t, f.kc, env, f.bundle, bundleSpec{
		rev: rev, ns: f.ns, sa: f.sa, tokenSA: tokenSA, group: f.group, network: f.network, labels: labels, probe: probe,
	})
	return f
}

// entryName is the auto-registered WorkloadEntry's name: <group>-<ip>[-<network>] (`pilot/pkg/autoregistration/controller.go` (`autoregisteredWorkloadEntryName`)).
func (f *fixture) entryName() string {
	n := f.group + "-" + f.vmIP
	if f.network != "" {
		n += "-" + f.network
	}
	return n
}

// startVM starts the simulated VM from the fixture's bundle.
func (f *fixture) startVM(ctx context.Context, t *testing.T) *vmsim.VM {
	t.Helper()
	vm, err := vmsim.Start(ctx, vmsim.Options{BundleDir: f.bundle, WorkDir: f.workDir, IP: f.vmIP, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Stop()
		if t.Failed() {
			t.Logf("agent log (%s) tail:\n%s\nADS client log tail:\n%s", vm.AgentLog, vm.LogTail(60), vm.ClientLogTail(20))
		}
	})
	return vm
}

// TestSimulatedVMAutoRegistersAndReportsHealth proves the simulator against a
// running control plane with a bundle made by hand from the reference
// (`istioctl/pkg/workload/workload.go`): the agent gets a workload certificate with the group's
// SPIFFE identity, auto-registers a WorkloadEntry, and its readinessProbe
// against a local HTTP server drives the entry's Healthy condition True, then
// False when the server stops.
func TestSimulatedVMAutoRegistersAndReportsHealth(t *testing.T) {
	for _, rev := range strings.Split(controlPlaneEnv["ISTIO_REVISIONS"], ",") {
		t.Run("revision="+rev, func(t *testing.T) { testAutoRegistersAndReportsHealth(t, rev) })
	}
}

func testAutoRegistersAndReportsHealth(t *testing.T, rev string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, rev, "vm-sa")
	vm := f.startVM(ctx, t)

	// 1. Workload certificate with the group's identity.
	id, err := vm.WaitForWorkloadCert(ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", f.ns, f.sa)
	if id != want {
		t.Fatalf("workload certificate SPIFFE ID = %q, want %q", id, want)
	}
	t.Logf("workload certificate SPIFFE ID: %s", id)

	// 2. istiod accepted the stream and auto-registered the VM.
	if err := vm.WaitForXDS(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	weName := f.entryName()
	we := waitEntry(ctx, t, f.dc, f.ns, weName, 60*time.Second, "exists", func(*unstructured.Unstructured) bool { return true })
	if addr, _, _ := unstructured.NestedString(we.Object, "spec", "address"); addr != f.vmIP {
		t.Errorf("WorkloadEntry %s spec.address = %q, want %q", weName, addr, f.vmIP)
	}
	if a := we.GetAnnotations(); a["istio.io/autoRegistrationGroup"] != f.group || a["proxy.istio.io/health-checks-enabled"] != "true" {
		t.Errorf("WorkloadEntry %s annotations = %v, want istio.io/autoRegistrationGroup=%s and proxy.istio.io/health-checks-enabled=true", weName, a, f.group)
	}
	t.Logf("WorkloadEntry %s/%s auto-registered (address %s, istio.io/workloadController %q)", f.ns, weName, f.vmIP, we.GetAnnotations()["istio.io/workloadController"])

	// 3. The probe against the app makes it Healthy=True ...
	waitEntry(ctx, t, f.dc, f.ns, weName, 60*time.Second, "Healthy=True", func(u *unstructured.Unstructured) bool {
		s, _ := healthy(u)
		return s == "True"
	})
	t.Logf("WorkloadEntry %s Healthy=True", weName)

	// 4. ... and stopping the app makes it Healthy=False.
	f.app.Close()
	we = waitEntry(ctx, t, f.dc, f.ns, weName, 60*time.Second, "Healthy=False", func(u *unstructured.Unstructured) bool {
		s, _ := healthy(u)
		return s == "False"
	})
	_, msg := healthy(we)
	t.Logf("WorkloadEntry %s Healthy=False after the app stopped (message %q)", weName, msg)

	// 5. Stop ends the VM's stream: istiod marks the entry disconnected and
	// deletes it after PILOT_WORKLOAD_ENTRY_GRACE_PERIOD (10s, `pilot/pkg/autoregistration/controller.go` (disconnect and cleanup)).
	vm.Stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := f.dc.Resource(weGVR).Namespace(f.ns).Get(ctx, weName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WorkloadEntry %s still present 60s after the VM stopped (err %v)", weName, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("WorkloadEntry %s deleted by istiod after the VM stopped", weName)
}

// TestSimulatedVMRejectsWrongIdentity shows the simulator fails a broken
// bundle: the token belongs to another ServiceAccount than the group's, so
// the certificate carries that identity and istiod rejects the XDS stream
// (identity check, `pilot/pkg/autoregistration/controller.go` (identity check)): no response, no WorkloadEntry.
func TestSimulatedVMRejectsWrongIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, controlPlaneEnv["DEFAULT_REVISION"], "intruder")
	vm := f.startVM(ctx, t)

	id, err := vm.WaitForWorkloadCert(ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/intruder", f.ns); id != want {
		t.Fatalf("workload certificate SPIFFE ID = %q, want %q", id, want)
	}
	err = vm.WaitForXDS(ctx, 15*time.Second)
	if err == nil {
		t.Fatalf("istiod answered a VM whose identity is not the group's ServiceAccount (xds %+v)", vm.XDS())
	}
	st := vm.XDS()
	t.Logf("as expected, no XDS response; last stream error: %s", st.LastError)
	if st.LastError == "" {
		t.Errorf("no stream error recorded")
	}
	if _, err := f.dc.Resource(weGVR).Namespace(f.ns).Get(ctx, f.entryName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("WorkloadEntry %s: got err=%v, want NotFound", f.entryName(), err)
	}
}

// testDirs returns the bundle and work directories: temporary, or under
// $TFPI_VMSIM_KEEP_DIR (kept after the test, for reading the logs).
func testDirs(t *testing.T) (string, string) {
	keep := os.Getenv("TFPI_VMSIM_KEEP_DIR")
	if keep == "" {
		return t.TempDir(), t.TempDir()
	}
	base := filepath.Join(keep, t.Name()+"-"+time.Now().Format("150405"))
	for _, d := range []string{"bundle", "work"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("bundle and work directories kept under %s", base)
	return filepath.Join(base, "bundle"), filepath.Join(base, "work")
}

type bundleSpec struct {
	rev, ns, sa, tokenSA, group, network string
	labels                               map[string]string
	probe                                map[string]any
}

// shellQuote quotes like github.com/kballard/go-shellquote (istioctl's
// shellescape.Quote): bare when safe, else single quotes.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./-_", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

func writeBundle(ctx context.Context, t *testing.T, kc kubernetes.Interface, env map[string]string, dir string, b bundleSpec) {
	t.Helper()
	// mesh.yaml: defaultConfig of ConfigMap <istio namespace>/istio key mesh,
	// readinessProbe = group probe, proxyMetadata (`istioctl/pkg/workload/workload.go` (`createMeshConfig`)).
	// Revisioned: ConfigMap istio-<rev>, discoveryAddress and CA_ADDR
	// istiod-<rev>.<istio namespace>.svc:15012, hosts for that name.
	// The Istio namespace is the profile's (istioctl's --istioNamespace).
	istioNS := env["ISTIO_NAMESPACE"]
	istiod, meshCM := "istiod", "istio"
	if b.rev != "" && b.rev != "default" {
		istiod, meshCM = "istiod-"+b.rev, "istio-"+b.rev
	}
	cm, err := kc.CoreV1().ConfigMaps(istioNS).Get(ctx, meshCM, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mesh map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["mesh"]), &mesh); err != nil {
		t.Fatal(err)
	}
	defaultConfig, _ := mesh["defaultConfig"].(map[string]any)
	if defaultConfig == nil {
		defaultConfig = map[string]any{}
	}
	if istiod != "istiod" && defaultConfig["discoveryAddress"] == nil {
		defaultConfig["discoveryAddress"] = istiod + "." + istioNS + ".svc:15012"
	}
	trustDomain, _ := mesh["trustDomain"].(string)
	meshID, _ := defaultConfig["meshId"].(string)
	labelsJSON := map[string]string{}
	for k, v := range b.labels {
		labelsJSON[k] = v
	}
	canonical, revision := b.labels["app"], b.labels["version"]
	labelsJSON["service.istio.io/canonical-name"] = canonical
	labelsJSON["service.istio.io/canonical-revision"] = revision
	lj, _ := json.Marshal(labelsJSON)
	meta := map[string]string{
		"CANONICAL_SERVICE":              canonical,
		"CANONICAL_REVISION":             revision,
		"POD_NAMESPACE":                  b.ns,
		"SERVICE_ACCOUNT":                b.sa,
		"TRUST_DOMAIN":                   trustDomain,
		"ISTIO_META_CLUSTER_ID":          env["CLUSTER_NAME"], // istioctl: the installed clusterName, "" when unset
		"ISTIO_META_MESH_ID":             meshID,
		"ISTIO_META_NETWORK":             b.network,
		"ISTIO_META_WORKLOAD_NAME":       b.group,
		"ISTIO_METAJSON_LABELS":          string(lj),
		"ISTIO_META_DNS_CAPTURE":         "true",
		"ISTIO_META_AUTO_REGISTER_GROUP": b.group,
	}
	pm, _ := defaultConfig["proxyMetadata"].(map[string]any)
	if pm == nil {
		pm = map[string]any{}
	}
	for k, v := range meta {
		pm[k] = v
	}
	defaultConfig["proxyMetadata"] = pm
	defaultConfig["readinessProbe"] = b.probe
	meshYAML, err := yaml.Marshal(map[string]any{"defaultConfig": defaultConfig})
	if err != nil {
		t.Fatal(err)
	}

	// cluster.env: every proxyMetadata entry plus the overrides (`istioctl/pkg/workload/workload.go` (`createClusterEnv`)).
	ce := map[string]string{}
	for k, v := range pm {
		ce[k] = fmt.Sprint(v)
	}
	ce["ISTIO_INBOUND_PORTS"] = "*"
	ce["ISTIO_NAMESPACE"] = b.ns
	ce["ISTIO_SERVICE"] = b.group + "." + b.ns
	ce["ISTIO_SERVICE_CIDR"] = "*"
	ce["ISTIO_LOCAL_EXCLUDE_PORTS"] = "22,15090,15021,15020"
	ce["SERVICE_ACCOUNT"] = b.sa
	if istiod != "istiod" {
		ce["CA_ADDR"] = istiod + "." + istioNS + ".svc:15012"
	}
	// Not istioctl's: istio-start.sh derives CA_ADDR from ISTIO_SYSTEM_NAMESPACE (default
	// istio-system), so outside istio-system a VM needs it to find its CA (the provider writes it;
	// docs/guides/istioctl-differences.md).
	if istioNS != "istio-system" {
		ce["ISTIO_SYSTEM_NAMESPACE"] = istioNS
	}
	var keys []string
	for k := range ce {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var clusterEnv strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&clusterEnv, "%s=%s\n", k, shellQuote(ce[k]))
	}

	// root-cert.pem from the group namespace's istio-ca-root-cert (`istioctl/pkg/workload/workload.go` (`createCertsTokens`, root-cert.pem)),
	// created by istiod shortly after the namespace.
	var rootCert string
	deadline := time.Now().Add(60 * time.Second)
	for {
		cm, err := kc.CoreV1().ConfigMaps(b.ns).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		if err == nil && cm.Data["root-cert.pem"] != "" {
			rootCert = cm.Data["root-cert.pem"]
			break
		}
		if err != nil && !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s/istio-ca-root-cert: %v", b.ns, err)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// istio-token: TokenRequest for the group's ServiceAccount, audience
	// istio-ca (`istioctl/pkg/workload/workload.go` (`createCertsTokens`, istio-token)).
	exp := int64(3600)
	tr, err := kc.CoreV1().ServiceAccounts(b.ns).CreateToken(ctx, b.tokenSA, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{Audiences: []string{"istio-ca"}, ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// hosts: the east-west gateway's load balancer IP for istiod (`istioctl/pkg/workload/workload.go` (`createHosts`)).
	svc, err := kc.CoreV1().Services(istioNS).Get(ctx, "istio-eastwestgateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Status.LoadBalancer.Ingress) == 0 || svc.Status.LoadBalancer.Ingress[0].IP == "" {
		t.Fatalf("Service %s/istio-eastwestgateway has no load balancer IP", istioNS)
	}
	hosts := svc.Status.LoadBalancer.Ingress[0].IP + " " + istiod + "." + istioNS + ".svc\n"

	for name, content := range map[string]string{
		"mesh.yaml":     string(meshYAML),
		"cluster.env":   clusterEnv.String(),
		"root-cert.pem": rootCert,
		"istio-token":   tr.Status.Token,
		"hosts":         hosts,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("bundle %s: hosts %q; cluster.env:\n%s", dir, strings.TrimSpace(hosts), clusterEnv.String())
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// healthy returns the status and message of the Healthy condition.
func healthy(u *unstructured.Unstructured) (string, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Healthy" {
			s, _ := m["status"].(string)
			msg, _ := m["message"].(string)
			return s, msg
		}
	}
	return "", ""
}

// waitEntry polls a WorkloadEntry until cond holds.
func waitEntry(ctx context.Context, t *testing.T, dc dynamic.Interface, ns, name string, timeout time.Duration, what string, cond func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *unstructured.Unstructured
	var lastErr error
	for {
		u, err := dc.Resource(weGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = u
			if cond(u) {
				return u
			}
		}
		lastErr = err
		if time.Now().After(deadline) || ctx.Err() != nil {
			var state string
			if last != nil {
				b, _ := yaml.Marshal(last.Object)
				state = string(b)
			}
			list, _ := dc.Resource(weGVR).Namespace(ns).List(context.Background(), metav1.ListOptions{})
			var names []string
			if list != nil {
				for _, i := range list.Items {
					names = append(names, i.GetName())
				}
			}
			t.Fatalf("WorkloadEntry %s/%s: not %s after %s (last error %v; entries in namespace: %v); last seen:\n%s", ns, name, what, timeout, lastErr, names, state)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
