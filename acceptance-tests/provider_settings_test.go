package acceptance

// Every provider setting, end to end against the real API server. Each test connects with
// a fresh identity (a ServiceAccount bound to the examples/rbac roles, or a client
// certificate), reads data.istio_mesh, and checks in the audit log that the API server saw
// that identity: the setting under test, not some fallback, carried the request.

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"terraform-provider-istio/acceptance-tests/controlplane"
)

// identity is a ServiceAccount bound to the examples/rbac roles, with a token.
type identity struct {
	user, token string
}

func newIdentity(t *testing.T) identity {
	t.Helper()
	name := randomName("tfpi-set")
	grantExampleRoles(t, name, sameRules)
	token, err := serviceAccountToken(providerSANamespace, name)
	if err != nil {
		t.Fatal(err)
	}
	return identity{user: "system:serviceaccount:" + providerSANamespace + ":" + name, token: token}
}

// meshWith is the provider block with body and the istio_mesh data source.
func meshWith(body string) string {
	return fmt.Sprintf("provider %q {\n%s\n}\n\ndata \"istio_mesh\" \"this\" {}\n", providerName, body)
}

// checkMeshReadAs: the data source read the mesh, and the API server saw user read it.
func checkMeshReadAs(user string) resource.TestCheckFunc {
	return resource.ComposeAggregateTestCheckFunc(
		resource.TestCheckResourceAttr("data.istio_mesh.this", "trust_domain", "cluster.local"),
		func(*terraform.State) error { return requestsBy(user, "configmaps", "get") },
	)
}

// requestsBy fails unless the audit log has a successful verb on resource by user.
func requestsBy(user, resource, verb string) error {
	entries, err := controlplane.ReadAuditLog(cp.Get("AUDIT_LOG"), func(e controlplane.AuditEntry) bool {
		return e.User.Username == user && e.Resource() == resource && e.Verb == verb && e.Code() < 300
	})
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return fmt.Errorf("the audit log has no successful %s %s by %s", verb, resource, user)
	}
	return nil
}

// writeTempFile writes content into the test's temporary directory and returns the path.
func writeTempFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func server() string { return cp.Get("KUBE_APISERVER") }

// unreachable is an error of a provider that cannot use the API server.
var unreachable = regexp.MustCompile(`(?s)cannot reach the Kubernetes API server|rejected the provider's\s+credentials`)

func TestAccProviderSettings_hostTokenAndCA(t *testing.T) {
	id := newIdentity(t)
	ca := writeTempFile(t, "ca.crt", string(clusterCA()), 0o600)
	accTest(t, resource.TestCase{Steps: []resource.TestStep{{
		Config: meshWith(fmt.Sprintf("  host = %q\n  token = %q\n  cluster_ca_certificate = file(%q)", server(), id.token, ca)),
		Check:  checkMeshReadAs(id.user),
	}}})
}

// Without the CA the server's certificate is refused; insecure skips the check.
func TestAccProviderSettings_insecure(t *testing.T) {
	id := newIdentity(t)
	accTest(t, resource.TestCase{Steps: []resource.TestStep{
		{
			Config:      meshWith(fmt.Sprintf("  host = %q\n  token = %q", server(), id.token)),
			ExpectError: unreachable,
		},
		{
			Config: meshWith(fmt.Sprintf("  host = %q\n  token = %q\n  insecure = true", server(), id.token)),
			Check:  checkMeshReadAs(id.user),
		},
	}})
}

func TestAccProviderSettings_clientCertificate(t *testing.T) {
	user := randomName("tfpi-cert")
	certFile, keyFile, err := cp.IssueClientCert(user, []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	ca := writeTempFile(t, "ca.crt", string(clusterCA()), 0o600)
	accTest(t, resource.TestCase{Steps: []resource.TestStep{{
		Config: meshWith(fmt.Sprintf("  host = %q\n  client_certificate = file(%q)\n  client_key = file(%q)\n  cluster_ca_certificate = file(%q)",
			server(), certFile, keyFile, ca)),
		Check: checkMeshReadAs(user),
	}}})
}

// The API server's certificate names kubernetes.default.svc, not example.invalid: the
// connection to 127.0.0.1 verifies against tls_server_name.
func TestAccProviderSettings_tlsServerName(t *testing.T) {
	id := newIdentity(t)
	ca := writeTempFile(t, "ca.crt", string(clusterCA()), 0o600)
	block := func(name string) string {
		return meshWith(fmt.Sprintf("  host = %q\n  token = %q\n  cluster_ca_certificate = file(%q)\n  tls_server_name = %q",
			server(), id.token, ca, name))
	}
	accTest(t, resource.TestCase{Steps: []resource.TestStep{
		{Config: block("example.invalid"), ExpectError: unreachable},
		{Config: block("kubernetes.default.svc"), Check: checkMeshReadAs(id.user)},
	}})
}

// An exec credential plugin: a script that prints an ExecCredential with the token it gets
// through the exec block's env, and records its arguments.
func TestAccProviderSettings_exec(t *testing.T) {
	id := newIdentity(t)
	ca := writeTempFile(t, "ca.crt", string(clusterCA()), 0o600)
	ran := filepath.Join(t.TempDir(), "plugin-ran")
	plugin := writeTempFile(t, "credential-plugin.sh", `#!/bin/sh
echo "$@" >> "$PLUGIN_RAN"
printf '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"%s"}}\n' "$PLUGIN_TOKEN"
`, 0o700)
	accTest(t, resource.TestCase{Steps: []resource.TestStep{{
		Config: meshWith(fmt.Sprintf(`  host = %q
  cluster_ca_certificate = file(%q)
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = %q
    args        = ["get-token", "--cluster", "local"]
    env         = { PLUGIN_TOKEN = %q, PLUGIN_RAN = %q }
  }`, server(), ca, plugin, id.token, ran)),
		Check: resource.ComposeAggregateTestCheckFunc(
			checkMeshReadAs(id.user),
			func(*terraform.State) error {
				got, err := os.ReadFile(ran)
				if err != nil || !strings.Contains(string(got), "get-token --cluster local") {
					return fmt.Errorf("the plugin did not run with its args: %q, %v", got, err)
				}
				return nil
			},
		),
	}}})
}

// contextsKubeconfig has a broken current context and working pieces to select:
// cluster local (the API server) and broken (nothing listens), user sa (a valid token) and
// nobody (an invalid one).
func contextsKubeconfig(t *testing.T, token string) string {
	t.Helper()
	return writeTempFile(t, "contexts.kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority-data: %s
- name: broken
  cluster:
    server: https://127.0.0.1:1
users:
- name: sa
  user:
    token: %s
- name: nobody
  user:
    token: not-a-token
contexts:
- name: broken-all
  context: {cluster: broken, user: nobody}
- name: good
  context: {cluster: local, user: sa}
- name: bad-user
  context: {cluster: local, user: nobody}
- name: bad-cluster
  context: {cluster: broken, user: sa}
current-context: broken-all
`, server(), base64.StdEncoding.EncodeToString(clusterCA()), token), 0o600)
}

func TestAccProviderSettings_kubeconfigContexts(t *testing.T) {
	id := newIdentity(t)
	path := contextsKubeconfig(t, id.token)
	with := func(settings string) string { return meshWith(fmt.Sprintf("  config_path = %q\n%s", path, settings)) }
	accTest(t, resource.TestCase{Steps: []resource.TestStep{
		{Config: with(""), ExpectError: unreachable}, // the current context is broken
		{Config: with(`  config_context = "good"`), Check: checkMeshReadAs(id.user)},
		{Config: with("  config_context = \"bad-user\"\n  config_context_auth_info = \"sa\""), Check: checkMeshReadAs(id.user)},
		{Config: with("  config_context = \"bad-cluster\"\n  config_context_cluster = \"local\""), Check: checkMeshReadAs(id.user)},
	}})
}

// splitKubeconfig is one kubeconfig in two files: clusters and contexts, then users.
func splitKubeconfig(t *testing.T, token string) (clustersFile, usersFile string) {
	t.Helper()
	clustersFile = writeTempFile(t, "clusters.kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: merged
  context: {cluster: local, user: sa}
current-context: merged
`, server(), base64.StdEncoding.EncodeToString(clusterCA())), 0o600)
	usersFile = writeTempFile(t, "users.kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
users:
- name: sa
  user:
    token: %s
`, token), 0o600)
	return clustersFile, usersFile
}

func TestAccProviderSettings_configPathsMerge(t *testing.T) {
	id := newIdentity(t)
	clusters, users := splitKubeconfig(t, id.token)
	accTest(t, resource.TestCase{Steps: []resource.TestStep{
		{
			// The user lives only in the second file: without it there is no credential.
			Config:      meshWith(fmt.Sprintf("  config_paths = [%q]", clusters)),
			ExpectError: regexp.MustCompile(`(?s)Invalid provider configuration|cannot reach|rejected the provider's`),
		},
		{Config: meshWith(fmt.Sprintf("  config_paths = [%q, %q]", clusters, users)), Check: checkMeshReadAs(id.user)},
	}})
}

// Every KUBE_* variable, with an empty provider block.
func TestAccProviderSettings_environment(t *testing.T) {
	id := newIdentity(t)
	emptyBlock := meshWith("")
	t.Run("KUBE_HOST KUBE_TOKEN KUBE_CLUSTER_CA_CERT_DATA KUBE_TLS_SERVER_NAME", func(t *testing.T) {
		t.Setenv("KUBE_HOST", server())
		t.Setenv("KUBE_TOKEN", id.token)
		t.Setenv("KUBE_CLUSTER_CA_CERT_DATA", string(clusterCA()))
		t.Setenv("KUBE_TLS_SERVER_NAME", "example.invalid")
		accTest(t, resource.TestCase{Steps: []resource.TestStep{{Config: emptyBlock, ExpectError: unreachable}}})
		t.Setenv("KUBE_TLS_SERVER_NAME", "kubernetes.default.svc")
		accTest(t, resource.TestCase{Steps: []resource.TestStep{{Config: emptyBlock, Check: checkMeshReadAs(id.user)}}})
	})
	t.Run("KUBE_CONFIG_PATH KUBE_CTX KUBE_CTX_AUTH_INFO KUBE_CTX_CLUSTER", func(t *testing.T) {
		t.Setenv("KUBE_CONFIG_PATH", contextsKubeconfig(t, id.token))
		t.Setenv("KUBE_CTX", "broken-all")
		t.Setenv("KUBE_CTX_AUTH_INFO", "sa")
		t.Setenv("KUBE_CTX_CLUSTER", "local")
		accTest(t, resource.TestCase{Steps: []resource.TestStep{{Config: emptyBlock, Check: checkMeshReadAs(id.user)}}})
	})
	t.Run("KUBE_CONFIG_PATHS", func(t *testing.T) {
		clusters, users := splitKubeconfig(t, id.token)
		t.Setenv("KUBE_CONFIG_PATHS", clusters+string(os.PathListSeparator)+users)
		accTest(t, resource.TestCase{Steps: []resource.TestStep{{Config: emptyBlock, Check: checkMeshReadAs(id.user)}}})
	})
	t.Run("KUBE_CLIENT_CERT_DATA KUBE_CLIENT_KEY_DATA KUBE_INSECURE KUBE_PROXY_URL", func(t *testing.T) {
		user := randomName("tfpi-cert")
		certFile, keyFile, err := cp.IssueClientCert(user, []string{"system:masters"})
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := os.ReadFile(certFile)
		key, _ := os.ReadFile(keyFile)
		proxy, connects := startConnectProxy(t)
		t.Setenv("KUBE_HOST", server())
		t.Setenv("KUBE_CLIENT_CERT_DATA", string(cert))
		t.Setenv("KUBE_CLIENT_KEY_DATA", string(key))
		t.Setenv("KUBE_INSECURE", "true")
		t.Setenv("KUBE_PROXY_URL", "http://"+proxy)
		accTest(t, resource.TestCase{Steps: []resource.TestStep{{
			Config: emptyBlock,
			Check:  resource.ComposeAggregateTestCheckFunc(checkMeshReadAs(user), checkTunnelled(connects)),
		}}})
	})
}

func TestAccProviderSettings_proxyURL(t *testing.T) {
	id := newIdentity(t)
	proxy, connects := startConnectProxy(t)
	path := contextsKubeconfig(t, id.token)
	accTest(t, resource.TestCase{Steps: []resource.TestStep{{
		Config: meshWith(fmt.Sprintf("  config_path = %q\n  config_context = \"good\"\n  proxy_url = \"http://%s\"", path, proxy)),
		Check:  resource.ComposeAggregateTestCheckFunc(checkMeshReadAs(id.user), checkTunnelled(connects)),
	}}})
}

// checkTunnelled: the CONNECT proxy of startConnectProxy opened a tunnel.
func checkTunnelled(connects *atomic.Int64) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if connects.Load() == 0 {
			return fmt.Errorf("the proxy saw no CONNECT")
		}
		return nil
	}
}

// The provider's field_manager names the manager of what it applies: in managedFields and
// in the fieldManager of its requests.
func TestAccProviderSettings_fieldManager(t *testing.T) {
	ns := testNamespace(t, "fm")
	manager := randomName("tfpi-manager")
	config := strings.Replace(groupConfig(ns, "product-vm", 8080, ""), providerConfig(),
		fmt.Sprintf("provider %q {\n  config_path = %q\n  field_manager = %q\n}\n", providerName, leastPrivilegeKubeconfig, manager), 1)
	accTest(t, resource.TestCase{
		CheckDestroy: checkDestroy(gvrWorkloadGroup, "istio_workload_group"),
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeAggregateTestCheckFunc(
				func(*terraform.State) error {
					for _, f := range getObject(t, gvrWorkloadGroup, ns, "product-vm").GetManagedFields() {
						if f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply {
							return nil
						}
					}
					return fmt.Errorf("managedFields has no Apply by %s", manager)
				},
				func(*terraform.State) error {
					entries, err := controlplane.ReadAuditLog(cp.Get("AUDIT_LOG"), func(e controlplane.AuditEntry) bool {
						return e.Verb == "patch" && e.Resource() == "workloadgroups" && e.ObjectRef.Namespace == ns
					})
					if err != nil {
						return err
					}
					if len(entries) == 0 {
						return fmt.Errorf("no patch of workloadgroups in %s in the audit log", ns)
					}
					for _, e := range entries {
						if e.FieldManager() != manager {
							return fmt.Errorf("patch %s sent fieldManager %q, want %q", e.RequestURI, e.FieldManager(), manager)
						}
					}
					return nil
				},
			),
		}},
	})
}

// A control plane namespace other than the installed one. The test copies the installation's
// ConfigMaps (with another trust domain) into a second namespace: the data source must read them there, and a registration's bundle must send
// the VM to istiod in that namespace. An istio_namespace without Istio names the attribute.
// A VM joining through an istiod that really runs in another namespace is the install profile
// custom-namespace (ACC_NAMESPACE_TESTS in make test, the VM tests in make test-matrix).
// The provider runs as admin: the examples/rbac Role grants the installed Istio namespace only.
func TestAccProviderSettings_istioNamespace(t *testing.T) {
	alt := testNamespace(t, "istio-alt")
	copyControlPlaneConfigMaps(t, alt, "alt.example")
	empty := testNamespace(t, "no-istio")
	ns := testNamespace(t, "vmalt")
	waitForDefaultServiceAccount(t, ns)
	revision := cp.Get("DEFAULT_REVISION")
	provider := func(istioNamespace string) string {
		return fmt.Sprintf("provider %q {\n  config_path = %q\n  istio_namespace = %q\n  revision = %q\n}\n",
			providerName, cp.Kubeconfig, istioNamespace, revision)
	}
	registration := strings.Replace(registrationConfig(ns, `
  mode       = "manual"
  address    = "10.40.0.3"
  ingress_ip = "10.0.0.40"
`), providerConfig(), provider(alt), 1)
	istiod := strings.Replace(istiodHost(revision), "."+istioNamespace()+".", "."+alt+".", 1)
	accTest(t, resource.TestCase{Steps: []resource.TestStep{
		{
			Config: provider(alt) + "data \"istio_mesh\" \"this\" {}\n",
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("data.istio_mesh.this", "istio_namespace", alt),
				resource.TestCheckResourceAttr("data.istio_mesh.this", "trust_domain", "alt.example"),
				resource.TestCheckResourceAttr("data.istio_mesh.this", "istiod_host", istiod),
			),
		},
		{
			Config: registration,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("istio_vm_registration.vm", "hosts", "10.0.0.40 "+istiod+"\n"),
				resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "mesh_config", containsAll(
					"discoveryAddress: "+istiod+":15012", "TRUST_DOMAIN: alt.example")),
				resource.TestCheckResourceAttrWith("istio_vm_registration.vm", "cluster_env", containsAll(
					"ISTIO_SYSTEM_NAMESPACE='"+alt+"'")),
			),
		},
		{
			Config:      provider(empty) + "data \"istio_mesh\" \"this\" {}\n",
			ExpectError: regexp.MustCompile("(?s)" + regexp.QuoteMeta(empty) + ".*`istio_namespace`"),
		},
	}})
}

// copyControlPlaneConfigMaps copies the Istio namespace's mesh config and injector ConfigMaps into
// namespace, with trustDomain set in each mesh config.
func copyControlPlaneConfigMaps(t *testing.T, namespace, trustDomain string) {
	t.Helper()
	ctx := context.Background()
	list, err := kubeClient(t).CoreV1().ConfigMaps(istioNamespace()).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range list.Items {
		data := cm.Data
		if _, injector := data["values"]; !injector && data["mesh"] == "" {
			continue // not a mesh config or injector ConfigMap (istiod publishes the root cert itself)
		}
		if mesh, ok := data["mesh"]; ok {
			// As istioctl installs it into that namespace: istiod's address names it.
			mesh = strings.ReplaceAll(mesh, "."+istioNamespace()+".svc", "."+namespace+".svc")
			config := map[string]any{}
			if err := yaml.Unmarshal([]byte(mesh), &config); err != nil {
				t.Fatalf("ConfigMap %s/%s: %v", istioNamespace(), cm.Name, err)
			}
			config["trustDomain"] = trustDomain
			out, _ := yaml.Marshal(config)
			data["mesh"] = string(out)
		}
		copy := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cm.Name, Namespace: namespace}, Data: data}
		if _, err := kubeClient(t).CoreV1().ConfigMaps(namespace).Create(ctx, copy, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "istio-ca-root-cert in "+namespace, func() error {
		_, err := kubeClient(t).CoreV1().ConfigMaps(namespace).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		return err
	})
}

// Provider configuration unknown at plan: the provider's config_path depends on a resource
// (of a second, aliased istio provider) created in the same apply. The plan succeeds, the
// apply configures the provider with the known value and creates the group through it.
func TestAccProviderSettings_unknownAtPlan(t *testing.T) {
	ns := testNamespace(t, "unk")
	config := fmt.Sprintf(`
provider "istio" {
  alias       = "seed"
  config_path = %[1]q
}

resource "istio_workload_group" "seed" {
  provider  = istio.seed
  name      = "seed"
  namespace = %[2]q
  template {
    service_account = "default"
  }
}

provider "istio" {
  # Unknown until the seed group exists: substr(..., 0, 0) is "".
  config_path = "%[1]s${substr(istio_workload_group.seed.uid, 0, 0)}"
}

resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %[2]q
  template {
    service_account = "default"
  }
}
`, leastPrivilegeKubeconfig, ns)
	accTest(t, resource.TestCase{
		CheckDestroy: checkDestroy(gvrWorkloadGroup, "istio_workload_group"),
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttrSet("istio_workload_group.product", "uid"),
				checkObjectExists(gvrWorkloadGroup, ns, "seed"),
				checkObjectExists(gvrWorkloadGroup, ns, "product-vm"),
			),
		}},
	})
}
