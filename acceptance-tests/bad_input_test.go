package acceptance

// Bad input is refused early and clearly, with nothing written (issue 11,
// "Bad input"). Every case is one Terraform run against the control plane:
//   - the diagnostic says what is wrong (want) and points at the attribute:
//     Terraform prints the source line of the diagnostic's attribute path
//     ("  3:   config_path = ..."), so the case matches that line (attr);
//   - the API server's audit log holds no write (create, update, patch,
//     delete, dry-run included) from the provider during the case;
//   - the cluster holds no object of the case afterwards (listed explicitly:
//     CheckDestroy does not run when the state is empty), and a registration
//     that fails at apply leaves no token Secret and no bundle file.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"terraform-provider-istio/acceptance-tests/controlplane"
)

// badInput is one refused configuration.
type badInput struct {
	name   string
	config string // the whole configuration, provider block included
	want   string // regular expression for the diagnostic's wording
	// attr is the attribute the diagnostic must point at (its source line
	// "N:   attr = ..." or "N:   attr {"); where the fault is in another
	// block than the one failing (the provider's settings seen by a data
	// source), block is the "with ..." address Terraform must name instead.
	attr, block string
	apply       bool // fails only at apply (a plan cannot know)
}

// writeVerbs are the audit verbs that change the cluster; a dry-run request
// has the same verb, so it counts as well.
var writeVerbs = map[string]bool{"create": true, "update": true, "patch": true, "delete": true, "deletecollection": true}

// expectNoProviderWrites fails when the audit log shows a write of the
// provider between since and until, and returns how many requests it made.
func expectNoProviderWrites(t *testing.T, since, until time.Time) int {
	t.Helper()
	entries, err := controlplane.ReadAuditLog(cp.Get("AUDIT_LOG"), providerRequests(since, until))
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	for _, e := range entries {
		if writeVerbs[e.Verb] {
			t.Errorf("the provider wrote to the cluster: %s %s (%s) -> %d", e.Verb, e.Resource(), e.RequestURI, e.Code())
		}
	}
	return len(entries)
}

// expectNothingIn fails when the namespace holds an object of the kinds the
// provider creates: WorkloadGroups, WorkloadEntries, Services or Secrets.
func expectNothingIn(t *testing.T, ns string) {
	t.Helper()
	for _, gvr := range []schema.GroupVersionResource{gvrWorkloadGroup, gvrWorkloadEntry, gvrService, gvrSecret} {
		list, err := resourceClient(gvr, ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("listing %s in %s: %v", gvr.Resource, ns, err)
		}
		for _, item := range list.Items {
			t.Errorf("refused input left %s %s/%s behind", gvr.Resource, ns, item.GetName())
		}
	}
}

// expectEmptyDir fails when dir holds a file (a partial VM bundle).
func expectEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("refused input left %s in the output directory", e.Name())
	}
}

// attrLine matches the source line Terraform prints for an attribute or a
// nested block named attr.
func attrLine(attr string) string {
	return `\d+:\s+` + regexp.QuoteMeta(attr) + `\s*(=|\{)`
}

// expectedError is one regular expression that needs both the wording and
// the location, in either order. A space of the wording matches any run of
// white space: Terraform wraps a diagnostic's detail at the terminal width
// (internal/command/format/diagnostic.go), so a phrase can span two lines.
func expectedError(c badInput) *regexp.Regexp {
	where := attrLine(c.attr)
	if c.block != "" {
		where = `with ` + regexp.QuoteMeta(c.block) + `,`
	}
	want := `(?:` + acrossWrapping(c.want) + `)`
	return regexp.MustCompile(`(?s)(` + want + `.*` + where + `|` + where + `.*` + want + `)`)
}

// runBadInput runs one case in its own Terraform working directory.
func runBadInput(t *testing.T, c badInput) {
	t.Helper()
	accTest(t, resource.TestCase{Steps: []resource.TestStep{{
		Config:      c.config,
		PlanOnly:    !c.apply,
		ExpectError: expectedError(c),
	}}})
}

func TestAccBadInput(t *testing.T) {
	ns := testNamespace(t, "bad")
	waitForDefaultServiceAccount(t, ns)
	outDir := t.TempDir()

	// The audit filter must see the provider at all, or zero writes proves nothing.
	t.Run("control: the provider's reads are in the audit log", func(t *testing.T) {
		start := time.Now()
		accTest(t, resource.TestCase{Steps: []resource.TestStep{{
			Config: providerConfig() + `data "istio_mesh" "this" {}` + "\n",
			Check:  resource.TestCheckResourceAttrSet("data.istio_mesh.this", "root_cert"),
		}}})
		if n := expectNoProviderWrites(t, start, time.Now()); n == 0 {
			t.Fatal("no request with the provider's user agent during a data source read: the audit filter is wrong")
		}
	})

	cases := append(providerBadInputs(t), workloadGroupBadInputs(ns)...)
	cases = append(cases, registrationBadInputs(ns, outDir)...)
	cases = append(cases, meshServiceBadInputs(ns)...)
	cases = append(cases, meshDataSourceBadInputs()...)
	if len(cases) < 40 {
		t.Fatalf("only %d bad-input cases; the issue asks for at least 40", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Deferred: a wrong diagnostic stops the case (t.Fatal), and the
			// cluster and the audit log are still checked.
			start := time.Now()
			defer func() {
				expectNoProviderWrites(t, start, time.Now())
				expectNothingIn(t, ns)
				expectEmptyDir(t, outDir)
			}()
			runBadInput(t, c)
		})
	}
}

// ---- the provider block -------------------------------------------------------------------

// mesh reads the data source, so the provider must reach the cluster.
const mesh = "\ndata \"istio_mesh\" \"this\" {}\n"

func providerBlock(body string) string { return "provider \"istio\" {\n" + body + "\n}\n" + mesh }

func providerBadInputs(t *testing.T) []badInput {
	server := cp.Get("KUBE_APISERVER")
	if server == "" {
		t.Fatal("the control plane env has no KUBE_APISERVER")
	}
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.yaml")
	if err := os.WriteFile(garbage, []byte("this: is: not a kubeconfig: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	kubeconfig := fmt.Sprintf("  config_path = %q\n", cp.Kubeconfig)
	hostToken := func(token string) string {
		return fmt.Sprintf("  host     = %q\n  token    = %q\n  insecure = true\n", server, token)
	}
	otherCA := selfSignedPEM(t, "not-the-cluster-ca")
	rightCA := apiserverCA(t)
	realToken := adminToken(t)
	exec := func(command, args, apiVersion string) string {
		return fmt.Sprintf("  host = %q\n  insecure = true\n  exec {\n    api_version = %q\n    command     = %q\n    args        = %s\n  }\n",
			server, apiVersion, command, args)
	}
	const v1beta1 = "client.authentication.k8s.io/v1beta1"
	const dataSource = "data.istio_mesh.this"
	return []badInput{
		{name: "provider: kubeconfig missing", config: providerBlock(`  config_path = "/nonexistent/kubeconfig"`),
			want: `/nonexistent/kubeconfig`, attr: "config_path"},
		{name: "provider: kubeconfig not YAML", config: providerBlock(fmt.Sprintf("  config_path = %q", garbage)),
			want: regexp.QuoteMeta(garbage), attr: "config_path"},
		{name: "provider: kubeconfig missing in config_paths", config: providerBlock(`  config_paths = ["/nonexistent/a", "/nonexistent/b"]`),
			want: `/nonexistent/a`, attr: "config_paths"},
		{name: "provider: unknown context", config: providerBlock(kubeconfig + `  config_context = "no-such-context"`),
			want: `no-such-context`, attr: "config_context"},
		{name: "provider: unknown context cluster", config: providerBlock(kubeconfig + `  config_context_cluster = "no-such-cluster"`),
			want: `no-such-cluster`, attr: "config_context_cluster"},
		{name: "provider: unknown context user", config: providerBlock(kubeconfig + `  config_context_auth_info = "no-such-user"`),
			want: `no-such-user`, attr: "config_context_auth_info"},
		{name: "provider: config_path with config_paths", config: providerBlock(kubeconfig + fmt.Sprintf("  config_paths = [%q]", cp.Kubeconfig)),
			want: `either .config_path. or .config_paths.`, attr: "config_paths"},
		{name: "provider: unreachable host", config: providerBlock(`  host = "https://127.0.0.1:1"
  token = "x"
  insecure = true`), want: `cannot reach the Kubernetes API server`, attr: "host"},
		{name: "provider: host not a URL", config: providerBlock(`  host = "not a url"
  token = "x"`), want: `is not a URL`, attr: "host"},
		{name: "provider: wrong CA", config: providerBlock(fmt.Sprintf("  host = %q\n  token = %q\n  cluster_ca_certificate = <<EOT\n%sEOT", server, realToken, otherCA)),
			want: `(?i)certificate`, attr: "cluster_ca_certificate"},
		{name: "provider: CA not PEM", config: providerBlock(fmt.Sprintf("  host = %q\n  token = %q\n  cluster_ca_certificate = \"not a certificate\"", server, realToken)),
			want: `(?i)PEM|certificate`, attr: "cluster_ca_certificate"},
		{name: "provider: wrong tls_server_name", config: providerBlock(fmt.Sprintf("  host = %q\n  token = %q\n  tls_server_name = \"wrong.example.com\"\n  cluster_ca_certificate = <<EOT\n%sEOT", server, realToken, rightCA)),
			want: `wrong\.example\.com`, attr: "tls_server_name"},
		{name: "provider: foreign token", config: providerBlock(hostToken(foreignJWT())),
			want: `rejected the provider's\s+credentials`, attr: "token"},
		{name: "provider: revoked token", config: providerBlock(hostToken(revokedToken(t))),
			want: `rejected the provider's\s+credentials`, attr: "token"},
		// Terraform shows the source line of a diagnostic's attribute only when the
		// attribute is in the configuration, else the enclosing block's first line
		// (ElaborateFromConfigBody in internal/tfdiags/contextual.go): these two
		// cases and "exec with token" point at the attribute that is set.
		{name: "provider: client_certificate without client_key", config: providerBlock(fmt.Sprintf("  host = %q\n  client_certificate = <<EOT\n%sEOT", server, otherCA)),
			want: `must be set together`, attr: "client_certificate"},
		{name: "provider: client_key without client_certificate", config: providerBlock(fmt.Sprintf("  host = %q\n  client_key = \"key\"", server)),
			want: `must be set together`, attr: "client_key"},
		{name: "provider: client certificate not PEM", config: providerBlock(fmt.Sprintf("  host = %q\n  client_certificate = \"not pem\"\n  client_key = \"not pem\"\n  insecure = true", server)),
			want: `(?i)PEM|certificate`, attr: "client_certificate"},
		{name: "provider: exec command missing", config: providerBlock(exec("/nonexistent/credential-plugin", "[]", v1beta1)),
			want: `/nonexistent/credential-plugin`, attr: "command"},
		{name: "provider: exec command fails", config: providerBlock(exec("false", "[]", v1beta1)),
			want: `(?i)exit|status`, attr: "command"},
		{name: "provider: exec prints no ExecCredential", config: providerBlock(exec("echo", `["not json"]`, v1beta1)),
			want: `(?i)ExecCredential|json|parse`, attr: "command"},
		{name: "provider: exec unknown api_version", config: providerBlock(exec("echo", `["{}"]`, "client.authentication.k8s.io/v0")),
			want: `client\.authentication\.k8s\.io/v0`, attr: "api_version"},
		{name: "provider: exec with token", config: providerBlock(exec("echo", "[]", v1beta1) + `  token = "x"`),
			want: `do not mix an .exec. block with .token.`, attr: "token"},
		{name: "provider: proxy_url scheme", config: providerBlock(kubeconfig + `  proxy_url = "ftp://proxy:21"`),
			want: `must start with http://, https:// or socks5://`, attr: "proxy_url"},
		{name: "provider: proxy unreachable", config: providerBlock(kubeconfig + `  proxy_url = "http://127.0.0.1:1"`),
			want: `(?i)proxy`, attr: "proxy_url"},
		{name: "provider: istio_namespace invalid", config: providerBlock(kubeconfig + `  istio_namespace = "Not_A_Namespace"`),
			want: `Invalid istio_namespace`, attr: "istio_namespace"},
		{name: "provider: istio_namespace without Istio", config: providerBlock(kubeconfig + `  istio_namespace = "no-istio-here"`),
			want: `no-istio-here[\s\S]*istio_namespace`, block: dataSource},
		{name: "provider: revision invalid", config: providerBlock(kubeconfig + `  revision = "Bad_Rev"`),
			want: `Invalid revision`, attr: "revision"},
		{name: "provider: revision not installed", config: providerBlock(kubeconfig + `  revision = "not-installed"`),
			want: `not-installed`, block: dataSource},
		{name: "provider: empty field_manager", config: providerBlock(kubeconfig + `  field_manager = ""`),
			want: `field manager must not be empty`, attr: "field_manager"},
	}
}

// ---- istio_workload_group -----------------------------------------------------------------

func workloadGroupBadInputs(ns string) []badInput {
	group := func(body string) string {
		if !strings.Contains(body, "namespace") {
			body = fmt.Sprintf("  namespace = %q\n%s", ns, body)
		}
		return providerConfig() + "resource \"istio_workload_group\" \"bad\" {\n" + body + "\n}\n"
	}
	return []badInput{
		{name: "workload_group: name", config: group(`  name = "Product_VM"`), want: `Invalid name`, attr: "name"},
		{name: "workload_group: namespace", config: group(`  name = "g"
  namespace = "Bad_NS"`), want: `Invalid namespace`, attr: "namespace"},
		{name: "workload_group: label key", config: group(`  name = "g"
  labels = { "bad key" = "v" }`), want: `Invalid label key`, attr: "labels"},
		{name: "workload_group: port range", config: group(`  name = "g"
  template {
    ports = { http = 70000 }
  }`), want: `port 70000 is out of range`, attr: "ports"},
		// A path that ends at a block resolves to the enclosing block's first line
		// (internal/tfdiags/contextual.go), so the diagnostic points into the
		// second handler's block: its line is the one shown.
		{name: "workload_group: two probe handlers", config: group(`  name = "g"
  probe {
    tcp_socket {
      port = 80
    }
    http_get {
      port = 80
    }
  }`), want: `exactly one handler`, attr: "tcp_socket"},
		{name: "workload_group: probe scheme", config: group(`  name = "g"
  probe {
    http_get {
      port   = 80
      scheme = "FTP"
    }
  }`), want: `use "HTTP" or "HTTPS"`, attr: "scheme"},
		// Istio accepts weight 0 (validateWorkloadEntry in
		// pkg/config/validation/validation.go checks no weight; the webhook
		// oracle case template.weight/0 is accepted), so -1 is the bad weight.
		{name: "workload_group: weight", config: group(`  name = "g"
  template {
    weight = -1
  }`), want: `weight -1 is out of range`, attr: "weight"},
		{name: "workload_group: timeout", config: group(`  name = "g"
  timeouts {
    create = "soon"
  }`), want: `Invalid timeout`, attr: "create"},
		{name: "workload_group: namespace that does not exist", apply: true, config: group(`  name = "g"
  namespace = "no-such-namespace"`), want: `no-such-namespace`, attr: "namespace"},
	}
}

// ---- istio_vm_registration ----------------------------------------------------------------

func registrationBadInputs(ns, outDir string) []badInput {
	reg := func(body string) string {
		return providerConfig() + fmt.Sprintf("resource \"istio_vm_registration\" \"bad\" {\n  workload_group = \"%s/product-vm\"\n  output_dir = %q\n%s\n}\n", ns, outDir, body)
	}
	return []badInput{
		{name: "vm_registration: workload_group without namespace", config: providerConfig() + "resource \"istio_vm_registration\" \"bad\" {\n  workload_group = \"no-namespace\"\n}\n",
			want: `Invalid workload_group`, attr: "workload_group"},
		{name: "vm_registration: mode", config: reg(`  mode = "semi"`), want: `use "auto" or "manual"`, attr: "mode"},
		{name: "vm_registration: manual without address", config: reg(`  mode = "manual"`), want: `needs .address.`, attr: "mode"},
		{name: "vm_registration: address", config: reg(`  address = "10.0.0"`), want: `not an IPv4 or IPv6 address`, attr: "address"},
		{name: "vm_registration: internal_ip with external_ip", config: reg(`  internal_ip = "10.0.0.1"
  external_ip = "1.2.3.4"`), want: `internal_ip. or .external_ip., not both`, attr: "external_ip"},
		{name: "vm_registration: ingress_ip with istiod_address", config: reg(`  ingress_ip = "10.0.0.1"
  istiod_address = "a:1"`), want: `ingress_ip. or .istiod_address., not both`, attr: "istiod_address"},
		{name: "vm_registration: ingress_ip", config: reg(`  ingress_ip = "ten.0.0.1"`), want: `ten\.0\.0\.1`, attr: "ingress_ip"},
		{name: "vm_registration: token_duration too short", config: reg(`  token_duration = "5m"`), want: `minimum token lifetime`, attr: "token_duration"},
		{name: "vm_registration: token_duration not a duration", config: reg(`  token_duration = "soon"`), want: `soon`, attr: "token_duration"},
		{name: "vm_registration: renew_before too long", config: reg(`  renew_before = "2h"`), want: `renew_before must be shorter`, attr: "renew_before"},
		{name: "vm_registration: weight", config: reg(`  weight = -1`), want: `weight -1 is out of range`, attr: "weight"},
		{name: "vm_registration: label key", config: reg(`  labels = { "bad key" = "x" }`), want: `Invalid label key`, attr: "labels"},
		{name: "vm_registration: istiod_address", config: reg(`  istiod_address = "host:port"`), want: `must be host or host:port`, attr: "istiod_address"},
		{name: "vm_registration: ingress_service", config: reg(`  ingress_service = "Bad_Service"`), want: `Invalid ingress_service`, attr: "ingress_service"},
		{name: "vm_registration: renew_before not a duration", config: reg(`  renew_before = "soon"`), want: `soon`, attr: "renew_before"},
		{name: "vm_registration: timeout", config: reg(`  timeouts {
    create = "soon"
  }`), want: `Invalid timeout`, attr: "create"},
		{name: "vm_registration: group that does not exist", apply: true, config: reg(""),
			want: regexp.QuoteMeta(ns + "/product-vm"), attr: "workload_group"},
	}
}

// ---- istio_mesh_service -------------------------------------------------------------------

func meshServiceBadInputs(ns string) []badInput {
	service := func(body string) string {
		return providerConfig() + fmt.Sprintf("resource \"istio_mesh_service\" \"bad\" {\n  name = \"product\"\n  namespace = %q\n%s\n}\n", ns, body)
	}
	const selector = `  selector = { app = "p" }` + "\n"
	return []badInput{
		{name: "mesh_service: name", config: providerConfig() + "resource \"istio_mesh_service\" \"bad\" {\n  name = \"Product_Svc\"\n" + selector + httpPort + "}\n",
			want: `Invalid name`, attr: "name"},
		{name: "mesh_service: empty selector", config: service(`  selector = {}` + httpPort), want: `Empty selector`, attr: "selector"},
		{name: "mesh_service: selector label", config: service(`  selector = { app = "has space" }` + httpPort), want: `Invalid label value`, attr: "selector"},
		{name: "mesh_service: port range", config: service(selector + `  ports {
    name = "http"
    port = 70000
  }`), want: `port 70000 is out of range`, attr: "port"},
		{name: "mesh_service: protocol", config: service(selector + `  ports {
    name     = "http"
    port     = 80
    protocol = "ICMP"
  }`), want: `use TCP, UDP or SCTP`, attr: "protocol"},
		{name: "mesh_service: duplicate port name", config: service(selector + httpPort + httpPort), want: `appears more than once`, attr: "name"},
		{name: "mesh_service: two ports without names", config: service(selector + `  ports {
    port = 80
  }
  ports {
    port = 81
  }`), want: `(?i)name`, attr: "ports"},
		{name: "mesh_service: type", config: service(selector + `  type = "External"` + httpPort), want: `use ClusterIP, NodePort or LoadBalancer`, attr: "type"},
		{name: "mesh_service: session_affinity", config: service(selector + `  session_affinity = "Sticky"` + httpPort), want: `Sticky`, attr: "session_affinity"},
		{name: "mesh_service: min_healthy_endpoints", config: service(selector + httpPort + `  wait {
    min_healthy_endpoints = 0
  }`), want: `min_healthy_endpoints must be at least 1`, attr: "min_healthy_endpoints"},
		{name: "mesh_service: wait timeout", config: service(selector + httpPort + `  wait {
    min_healthy_endpoints = 1
    timeout = "soon"
  }`), want: `soon`, attr: "timeout"},
		{name: "mesh_service: namespace that does not exist", apply: true,
			config: providerConfig() + "resource \"istio_mesh_service\" \"bad\" {\n  name = \"product\"\n  namespace = \"no-such-namespace\"\n" + selector + httpPort + "}\n",
			want:   `no-such-namespace`, attr: "namespace"},
	}
}

// ---- data.istio_mesh ----------------------------------------------------------------------

func meshDataSourceBadInputs() []badInput {
	return []badInput{
		{name: "data istio_mesh: revision invalid", config: providerConfig() + "data \"istio_mesh\" \"this\" {\n  revision = \"Bad_Rev\"\n}\n",
			want: `Invalid revision`, attr: "revision"},
		{name: "data istio_mesh: revision not installed", config: providerConfig() + "data \"istio_mesh\" \"this\" {\n  revision = \"not-installed\"\n}\n",
			want: `not-installed`, attr: "revision"},
	}
}

// ---- credentials the API server must refuse -----------------------------------------------

// selfSignedPEM is a CA certificate that signed nothing of the cluster's.
func selfSignedPEM(t *testing.T, name string) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// adminToken is a valid token, so a case fails for its TLS setting alone.
func adminToken(t *testing.T) string {
	return badInputToken(t, "bad-input-admin", false)
}

// revokedToken is a token the API server issued for a ServiceAccount that was
// deleted since: it no longer authenticates.
func revokedToken(t *testing.T) string {
	return badInputToken(t, "bad-input-revoked", true)
}

func badInputToken(t *testing.T, name string, deleteAfter bool) string {
	ctx := context.Background()
	ns := "default"
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: randomName(name)}}
	if _, err := kubeClient(t).CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tr, err := kubeClient(t).CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	remove := func() { _ = kubeClient(t).CoreV1().ServiceAccounts(ns).Delete(ctx, sa.Name, metav1.DeleteOptions{}) }
	if deleteAfter {
		remove()
	} else {
		t.Cleanup(remove)
	}
	return tr.Status.Token
}

// foreignJWT is shaped like a ServiceAccount token but signed by nobody the
// cluster trusts.
func foreignJWT() string {
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"RS256","kid":"foreign"}`))
	claims := enc([]byte(fmt.Sprintf(`{"iss":"https://foreign.example.com","sub":"system:serviceaccount:default:default","aud":["https://kubernetes.default.svc"],"exp":%d}`,
		time.Now().Add(time.Hour).Unix())))
	sig := make([]byte, 256)
	_, _ = rand.Read(sig)
	return header + "." + claims + "." + enc(sig)
}
