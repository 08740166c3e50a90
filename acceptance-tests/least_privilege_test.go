package acceptance

// Least privilege: the provider runs, in every test that uses providerConfig(), as a
// ServiceAccount bound only to the roles of examples/rbac/. TestMain applies those files
// unchanged and writes a kubeconfig holding a TokenRequest token of that ServiceAccount.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"terraform-provider-istio/acceptance-tests/controlplane"
)

const (
	// The ServiceAccount of examples/rbac/serviceaccount.yaml.
	providerSANamespace = "terraform-provider-istio"
	providerSAName      = "terraform-provider-istio"
)

// leastPrivilegeKubeconfig is the kubeconfig of the examples/rbac ServiceAccount.
var leastPrivilegeKubeconfig string

// rbacDir is examples/rbac of this repository.
func rbacDir() string { return filepath.Join("..", "examples", "rbac") }

// setUpLeastPrivilege applies examples/rbac and writes the ServiceAccount's kubeconfig into dir.
func setUpLeastPrivilege(dir string) error {
	objects, err := rbacObjects()
	if err != nil {
		return err
	}
	if err := applyObjects(objects); err != nil {
		return err
	}
	file := filepath.Join(dir, "least-privilege.kubeconfig")
	if err := writeServiceAccountKubeconfig(file, providerSANamespace, providerSAName); err != nil {
		return err
	}
	leastPrivilegeKubeconfig = file
	return nil
}

// rbacObjects are the objects of every YAML file of examples/rbac, in file order.
func rbacObjects() ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(rbacDir(), "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no YAML files in %s (%v)", rbacDir(), err)
	}
	sort.Slice(files, func(i, j int) bool { return rbacOrder(files[i]) < rbacOrder(files[j]) })
	var objects []*unstructured.Unstructured
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		for _, doc := range bytes.Split(data, []byte("\n---\n")) {
			var content map[string]any
			if err := yaml.Unmarshal(doc, &content); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if len(content) > 0 {
				objects = append(objects, inIstioNamespace(&unstructured.Unstructured{Object: content}))
			}
		}
	}
	return objects, nil
}

// inIstioNamespace moves an examples/rbac object written for istio-system to the profile's
// Istio namespace, as its comments tell such a user to: the Role and RoleBinding into that
// namespace, and the revision tag's webhook to istio-revision-tag-default-<namespace>.
func inIstioNamespace(obj *unstructured.Unstructured) *unstructured.Unstructured {
	ns := istioNamespace()
	if ns == "istio-system" {
		return obj
	}
	if obj.GetNamespace() == "istio-system" {
		obj.SetNamespace(ns)
	}
	rules, _ := obj.Object["rules"].([]any)
	for _, rule := range rules {
		r, _ := rule.(map[string]any)
		names, _ := r["resourceNames"].([]any)
		for i, name := range names {
			if name == "istio-revision-tag-default" {
				names[i] = "istio-revision-tag-default-" + ns
			}
		}
	}
	return obj
}

// rbacOrder applies the Namespace and ServiceAccount first.
func rbacOrder(file string) string {
	if strings.HasSuffix(file, "serviceaccount.yaml") {
		return "0"
	}
	return "1" + file
}

// rbacResources maps the kinds examples/rbac uses to their API resources.
var rbacResources = map[string]schema.GroupVersionResource{
	"Namespace":          {Version: "v1", Resource: "namespaces"},
	"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
	"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	"Role":               {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	"RoleBinding":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
}

// applyObjects server-side applies objects with the admin client.
func applyObjects(objects []*unstructured.Unstructured) error {
	for _, obj := range objects {
		gvr, ok := rbacResources[obj.GetKind()]
		if !ok {
			return fmt.Errorf("examples/rbac: kind %q is not one the tests know how to apply", obj.GetKind())
		}
		data, err := obj.MarshalJSON()
		if err != nil {
			return err
		}
		_, err = resourceClient(gvr, obj.GetNamespace()).Patch(context.Background(), obj.GetName(),
			types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "acceptance-tests", Force: new(true)})
		if err != nil {
			return fmt.Errorf("applying %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}

// writeServiceAccountKubeconfig writes a kubeconfig with a fresh token of the ServiceAccount.
func writeServiceAccountKubeconfig(file, namespace, name string) error {
	token, err := serviceAccountToken(namespace, name)
	if err != nil {
		return err
	}
	return os.WriteFile(file, []byte(tokenKubeconfig(token)), 0o600)
}

// serviceAccountToken is a TokenRequest token of the ServiceAccount, valid for the run.
func serviceAccountToken(namespace, name string) (string, error) {
	expiry := int64(6 * 60 * 60)
	tr, err := cp.Clientset().CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("TokenRequest for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// tokenKubeconfig is a kubeconfig for the control plane's API server with a bearer token.
func tokenKubeconfig(token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: token
  user:
    token: %s
contexts:
- name: local
  context:
    cluster: local
    user: token
current-context: local
`, cp.Get("KUBE_APISERVER"), base64.StdEncoding.EncodeToString(clusterCA()), token)
}

// clusterCA is the PEM CA bundle of the API server's certificate.
func clusterCA() []byte {
	config := cp.RestConfig()
	if len(config.TLSClientConfig.CAData) > 0 {
		return config.TLSClientConfig.CAData
	}
	data, err := os.ReadFile(config.TLSClientConfig.CAFile)
	if err != nil {
		panic(fmt.Sprintf("reading the control plane CA: %v", err))
	}
	return data
}

// grantExampleRoles creates ServiceAccount `name` (in the examples' namespace) bound to
// copies of the examples/rbac roles, each copy's rules passed through edit, and returns a
// kubeconfig for it. The copies are deleted when the test ends.
func grantExampleRoles(t *testing.T, name string, edit func(kind string, rules []any) []any) string {
	t.Helper()
	objects, err := rbacObjects()
	if err != nil {
		t.Fatal(err)
	}
	var copies []*unstructured.Unstructured
	for _, obj := range objects {
		obj = obj.DeepCopy()
		switch obj.GetKind() {
		case "Namespace":
		case "ServiceAccount":
			obj.SetName(name)
		case "ClusterRole", "Role":
			obj.SetName(obj.GetName() + "-" + name)
			rules, _, _ := unstructured.NestedSlice(obj.Object, "rules")
			if err := unstructured.SetNestedSlice(obj.Object, edit(obj.GetKind(), rules), "rules"); err != nil {
				t.Fatal(err)
			}
		case "ClusterRoleBinding", "RoleBinding":
			obj.SetName(obj.GetName() + "-" + name)
			roleRef, _, _ := unstructured.NestedString(obj.Object, "roleRef", "name")
			_ = unstructured.SetNestedField(obj.Object, roleRef+"-"+name, "roleRef", "name")
			_ = unstructured.SetNestedSlice(obj.Object, []any{map[string]any{
				"kind": "ServiceAccount", "name": name, "namespace": providerSANamespace,
			}}, "subjects")
		default:
			t.Fatalf("examples/rbac: unexpected kind %q", obj.GetKind())
		}
		copies = append(copies, obj)
	}
	if err := applyObjects(copies); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, obj := range copies {
			if obj.GetKind() != "Namespace" {
				_ = resourceClient(rbacResources[obj.GetKind()], obj.GetNamespace()).
					Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{})
			}
		}
	})
	file := filepath.Join(t.TempDir(), "kubeconfig")
	if err := writeServiceAccountKubeconfig(file, providerSANamespace, name); err != nil {
		t.Fatal(err)
	}
	return file
}

// sameRules leaves the example rules unchanged.
func sameRules(_ string, rules []any) []any { return rules }

// withoutVerb removes verb from the rules of roles of kind that cover resource (a rule left
// without verbs is dropped).
func withoutVerb(kind, resource, verb string) func(string, []any) []any {
	return func(roleKind string, rules []any) []any {
		if roleKind != kind {
			return rules
		}
		var out []any
		for _, r := range rules {
			rule := r.(map[string]any)
			resources, _, _ := unstructured.NestedStringSlice(rule, "resources")
			if slices.Contains(resources, resource) {
				verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
				verbs = slices.DeleteFunc(verbs, func(v string) bool { return v == verb })
				if len(verbs) == 0 {
					continue
				}
				_ = unstructured.SetNestedStringSlice(rule, verbs, "verbs")
			}
			out = append(out, rule)
		}
		return out
	}
}

// asUser is config (built on providerConfig()) with the provider block of another kubeconfig.
func asUser(config, kubeconfig string) string {
	if !strings.Contains(config, providerConfig()) {
		panic("asUser: the configuration does not start from providerConfig()")
	}
	return strings.Replace(config, providerConfig(), providerBlockWith(kubeconfig), 1)
}

// allResourcesConfig: a group, a manually registered VM, an auto-registered one
// (its create ends with a patch of its token Secret), a mesh Service over them
// and the istio_mesh data source; body is the Service's extra body.
func allResourcesConfig(ns, serviceBody string) string {
	return serviceConfig(ns, serviceBody) + `
resource "istio_vm_registration" "auto" {
  workload_group = istio_workload_group.product.id
}

data "istio_mesh" "this" {}
`
}

// The provider needs exactly the permissions of examples/rbac: a full lifecycle of every
// resource and the data source, as a ServiceAccount bound only to those roles, is never
// refused (no 403 in the audit log), and every permission granted is used.
func TestAccLeastPrivilege_auditShowsExactlyTheRoles(t *testing.T) {
	name := randomName("tfpi-audit")
	kubeconfig := grantExampleRoles(t, name, sameRules)
	ns := testNamespace(t, "rbac")
	waitForDefaultServiceAccount(t, ns)
	accTest(t, resource.TestCase{
		CheckDestroy: checkDestroy(gvrService, "istio_mesh_service"),
		Steps: []resource.TestStep{
			{
				Config: asUser(allResourcesConfig(ns, httpPort), kubeconfig),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("istio_mesh_service.product", "endpoints.vms_unhealthy", "1"),
					resource.TestCheckResourceAttr("data.istio_mesh.this", "trust_domain", "cluster.local"),
				),
			},
			{
				// Update in place.
				Config: asUser(allResourcesConfig(ns, httpPort+"  labels = { tier = \"backend\" }\n"), kubeconfig),
				Check:  resource.TestCheckResourceAttr("istio_mesh_service.product", "labels.tier", "backend"),
			},
			{
				ResourceName:            "istio_workload_group.product",
				ImportState:             true,
				ImportStateId:           ns + "/product-vm",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"force_conflicts", "timeouts.%", "timeouts"},
			},
			{
				// Import finds the registration's Secret among the provider's by its UID.
				ResourceName: "istio_vm_registration.vm",
				ImportState:  true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					return s.RootModule().Resources["istio_vm_registration.vm"].Primary.ID, nil
				},
			},
			{
				// A finalizer holds the group and the Service when they are deleted, as a
				// controller's would: the delete waits (list, then watch) until it is removed.
				PreConfig: func() {
					holdDeletion(t, gvrWorkloadGroup, ns, "product-vm")
					holdDeletion(t, gvrService, ns, "product")
				},
				Config:  asUser(allResourcesConfig(ns, httpPort+"  labels = { tier = \"backend\" }\n"), kubeconfig),
				Destroy: true,
			},
		},
	})

	user := "system:serviceaccount:" + providerSANamespace + ":" + name
	var entries []controlplane.AuditEntry
	entries, err := controlplane.ReadAuditLog(cp.Get("AUDIT_LOG"), func(e controlplane.AuditEntry) bool {
		return e.User.Username == user
	})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, e := range entries {
		if e.Code() == 403 {
			t.Errorf("refused: %s %s (%s)", e.Verb, e.RequestURI, e.Resource())
		}
		if e.ObjectRef == nil {
			continue // discovery (/api, /apis): every authenticated user may
		}
		used[permission(e.ObjectRef.APIGroup, e.Resource(), e.Verb)] = true
	}
	granted := grantedPermissions(t)
	for p := range used {
		if !granted[p] {
			t.Errorf("used but not in examples/rbac: %s", p)
		}
	}
	for p := range granted {
		// Server-side apply is audited as patch; a patch that creates is authorized as
		// create too (TestAccLeastPrivilege_missingPermission proves it).
		if used[p] || (strings.HasSuffix(p, " create") && used[strings.TrimSuffix(p, "create")+"patch"]) {
			continue
		}
		if why, ok := usedOnlyByAWatch[p]; ok {
			t.Logf("not used here: %s (%s)", p, why)
			continue
		}
		t.Errorf("granted by examples/rbac but never used: %s", p)
	}
	t.Logf("%d requests as %s; permissions used: %v", len(entries), user, sortedKeys(used))
}

// holdDeletion puts a finalizer on the object and removes it two seconds after the object
// is marked for deletion, in the background, as a controller that cleans up would.
func holdDeletion(t *testing.T, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	objects := resourceClient(gvr, ns)
	ctx := context.Background()
	finalizer := []byte(`{"metadata":{"finalizers":["example.com/cleanup"]}}`)
	if _, err := objects.Patch(ctx, name, types.MergePatchType, finalizer, metav1.PatchOptions{}); err != nil {
		t.Fatalf("adding a finalizer to %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	released := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			object, err := objects.Get(ctx, name, metav1.GetOptions{})
			if err == nil && object.GetDeletionTimestamp() != nil {
				time.Sleep(2 * time.Second)
				_, err = objects.Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
				released <- err
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		released <- fmt.Errorf("%s %s/%s was never marked for deletion", gvr.Resource, ns, name)
	}()
	t.Cleanup(func() {
		if err := <-released; err != nil {
			t.Errorf("releasing the finalizer: %v", err)
		}
	})
}

// usedOnlyByAWatch are the permissions a lifecycle without waiting does not use: a wait
// lists first and opens its watch only when the list does not already satisfy it. The tests
// that wait (TestAccMeshService_wait, TestAccVmRegistration_autoAndRenewal, every delete)
// run with the same roles (providerConfig), and a refused watch fails them by timeout.
var usedOnlyByAWatch = map[string]string{
	"networking.istio.io/workloadentries watch": "istio_vm_registration: waiting for health or a delete; " +
		"istio_mesh_service: waiting for endpoints",
	"discovery.k8s.io/endpointslices watch": "istio_mesh_service: waiting for endpoints",
	// Not a watch, but not used by this lifecycle either: a refresh finds the token Secrets in
	// one LIST per namespace.
	"core/secrets get": "istio_vm_registration: the token Secret on an update of the registration, " +
		"or at a refresh when the shared list misses it",
	// Used only when a health wait times out.
	"coordination.k8s.io/leases get": "istio_vm_registration: after a health wait timed out, whether istiod " +
		"renews its Leases (TestAccFaults_istiodStoppedDuringWait)",
}

// permission is "group/resource verb" ("core" for the core group).
func permission(group, resource, verb string) string {
	if group == "" {
		group = "core"
	}
	return group + "/" + resource + " " + verb
}

// grantedPermissions are the permissions the examples/rbac roles grant.
func grantedPermissions(t *testing.T) map[string]bool {
	t.Helper()
	objects, err := rbacObjects()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, obj := range objects {
		rules, _, _ := unstructured.NestedSlice(obj.Object, "rules")
		for _, r := range rules {
			rule := r.(map[string]any)
			groups, _, _ := unstructured.NestedStringSlice(rule, "apiGroups")
			resources, _, _ := unstructured.NestedStringSlice(rule, "resources")
			verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
			for _, g := range groups {
				for _, res := range resources {
					for _, v := range verbs {
						out[permission(g, res, v)] = true
					}
				}
			}
		}
	}
	return out
}

// Without one permission the provider's error names the verb and the resource it lacks.
func TestAccLeastPrivilege_missingPermission(t *testing.T) {
	cases := []struct {
		name, kind, resource, verb string
		config                     func(ns string) string
		want                       string
	}{
		{
			name: "workload_group without patch", kind: "ClusterRole", resource: "workloadgroups", verb: "patch",
			config: func(ns string) string { return groupConfig(ns, "product-vm", 8080, "") },
			want:   `cannot patch resource "workloadgroups"`,
		},
		{
			name: "workload_group without create", kind: "ClusterRole", resource: "workloadgroups", verb: "create",
			config: func(ns string) string { return groupConfig(ns, "product-vm", 8080, "") },
			want:   `cannot create resource "workloadgroups"`,
		},
		{
			name: "vm_registration without the TokenRequest", kind: "ClusterRole", resource: "serviceaccounts/token", verb: "create",
			config: func(ns string) string {
				return registrationConfig(ns, "  mode = \"manual\"\n  address = \"10.30.0.9\"\n")
			},
			want: `cannot create resource "serviceaccounts/token"`,
		},
		{
			name: "mesh_service without patch", kind: "ClusterRole", resource: "services", verb: "patch",
			config: func(ns string) string { return serviceConfig(ns, httpPort) },
			want:   `cannot patch resource "services"`,
		},
		{
			name: "istio_mesh without reading the control plane", kind: "Role", resource: "configmaps", verb: "get",
			config: func(string) string { return providerConfig() + "data \"istio_mesh\" \"this\" {}\n" },
			want:   `cannot get resource "configmaps"`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kubeconfig := grantExampleRoles(t, randomName("tfpi-less"), withoutVerb(c.kind, c.resource, c.verb))
			ns := testNamespace(t, "rbac")
			waitForDefaultServiceAccount(t, ns)
			accTest(t, resource.TestCase{
				Steps: []resource.TestStep{{
					Config:      asUser(c.config(ns), kubeconfig),
					ExpectError: regexp.MustCompile(`(?s)` + strings.ReplaceAll(regexp.QuoteMeta(c.want), " ", `\s+`)),
				}},
			})
		})
	}
}
