package acceptance

// Helpers shared by every acceptance test. Resource tests live next to this
// file as <resource>_test.go and use:
//
//	accTest(t, resource.TestCase{Steps: []resource.TestStep{{Config: providerConfig() + `...`}}})
//	  (providerConfig: least privilege, examples/rbac; adminProviderConfig: cluster admin)
//	kubeClient(t), dynamicClient(t), getObject(t, gvr, ns, name)
//	checkObjectExists(gvr, ns, name), checkDestroy(gvr, "istio_workload_group")
//	testNamespace(t, prefix) — a namespace deleted when the test ends
//	installedRevisions(), istioNamespace(), istiodHost(rev) — facts of the install profile (TFPI_PROFILE)

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"terraform-provider-istio/acceptance-tests/controlplane"
)

const (
	// Provider address, version and local name as in the filesystem mirror.
	providerSource  = "terraform-provider-istio/istio"
	providerVersion = "0.1.0"
	providerName    = "istio"
)

// GroupVersionResources the tests look at.
var (
	gvrWorkloadGroup = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadgroups"}
	gvrWorkloadEntry = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"}
	gvrServiceEntry  = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"}
	gvrConfigMap     = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrSecret        = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrService       = schema.GroupVersionResource{Version: "v1", Resource: "services"}
)

var _ = []any{gvrWorkloadGroup, gvrWorkloadEntry, gvrServiceEntry, gvrConfigMap, gvrSecret, gvrService}

// installedRevisions are the istiod revisions of the install profile, in
// install order ("default" = installed without --revision).
func installedRevisions() []string { return strings.Split(cp.Get("ISTIO_REVISIONS"), ",") }

// newestRevision is the last revision installed: canary where the profile
// has one, else default.
func newestRevision() string {
	revs := installedRevisions()
	return revs[len(revs)-1]
}

// istioNamespace is where the profile installed istiod (istio-system unless
// the profile says otherwise).
func istioNamespace() string { return cp.Get("ISTIO_NAMESPACE") }

// istiodHost is a revision's istiod Service host, as in its certificate and
// a VM's hosts file.
func istiodHost(rev string) string {
	if rev == "" || rev == "default" {
		return "istiod." + istioNamespace() + ".svc"
	}
	return "istiod-" + rev + "." + istioNamespace() + ".svc"
}

// istiodEnvPrefix starts the control plane's env keys of a revision's istiod
// (ISTIOD_XDS_ADDR, ISTIOD_CANARY_HTTP_ADDR, ...).
func istiodEnvPrefix(rev string) string {
	if rev == "" || rev == "default" {
		return "ISTIOD"
	}
	return "ISTIOD_" + strings.ToUpper(strings.ReplaceAll(rev, "-", "_"))
}

// providerConfig is the provider block pointing at the control plane as the
// ServiceAccount bound only to the roles of examples/rbac (least_privilege_test.go).
func providerConfig() string { return providerBlockWith(leastPrivilegeKubeconfig) }

// adminProviderConfig is the provider block with the control plane's admin
// kubeconfig, for tests of what the provider does beyond examples/rbac (for
// example another istio_namespace).
func adminProviderConfig() string { return providerBlockWith(cp.Kubeconfig) }

// providerBlockWith is the provider block for a kubeconfig file. On a profile
// that installs Istio outside istio-system it sets istio_namespace, as such a
// user must.
func providerBlockWith(kubeconfig string) string {
	namespace := ""
	if ns := istioNamespace(); ns != "istio-system" {
		namespace = fmt.Sprintf("  istio_namespace = %q\n", ns)
	}
	return fmt.Sprintf("provider %q {\n  config_path = %q\n%s}\n", providerName, kubeconfig, namespace)
}

// externalProviders makes Terraform install our provider from the mirror
// configured by TF_CLI_CONFIG_FILE (make provider).
func externalProviders() map[string]resource.ExternalProvider {
	return map[string]resource.ExternalProvider{
		providerName: {Source: providerSource, VersionConstraint: providerVersion},
	}
}

// mirrorBinary is where `make provider` installs the provider.
func mirrorBinary() string {
	return filepath.Join(controlplane.CacheDir(), "mirror", "registry.terraform.io", providerSource, providerVersion,
		runtime.GOOS+"_"+runtime.GOARCH, "terraform-provider-istio_v"+providerVersion)
}

// testAccPreCheck fails early, with the command to run, when the Terraform
// CLI or the provider is missing.
func testAccPreCheck(t *testing.T) {
	t.Helper()
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH is not set and no Terraform is in tools.env: run `make setup`")
	}
	if _, err := os.Stat(tf); err != nil {
		t.Fatalf("TF_ACC_TERRAFORM_PATH=%s: %v (run `make setup`)", tf, err)
	}
	if _, err := os.Stat(mirrorBinary()); err != nil {
		t.Fatalf("provider not installed in the filesystem mirror (%v): run `make provider`", err)
	}
	if _, err := os.Stat(os.Getenv("TF_CLI_CONFIG_FILE")); err != nil {
		t.Fatalf("TF_CLI_CONFIG_FILE=%q: %v (run `make provider`)", os.Getenv("TF_CLI_CONFIG_FILE"), err)
	}
}

// accTest runs a Terraform acceptance test case against the control plane,
// filling in the external provider and the pre-check.
func accTest(t *testing.T, tc resource.TestCase) {
	t.Helper()
	if tc.ExternalProviders == nil && tc.ProviderFactories == nil && tc.ProtoV6ProviderFactories == nil {
		tc.ExternalProviders = externalProviders()
	}
	if tc.PreCheck == nil {
		tc.PreCheck = func() { testAccPreCheck(t) }
	}
	resource.Test(t, tc)
}

// checkAttrOrUnset is TestCheckResourceAttr, except that want "" also
// accepts an unset (null) attribute: a profile without, e.g., a network.
func checkAttrOrUnset(name, key, want string) resource.TestCheckFunc {
	if want != "" {
		return resource.TestCheckResourceAttr(name, key, want)
	}
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[name]
		if !ok {
			return fmt.Errorf("%s not in the state", name)
		}
		if got := rs.Primary.Attributes[key]; got != "" {
			return fmt.Errorf("%s: %s = %q, want it unset or empty", name, key, got)
		}
		return nil
	}
}

// randomName returns prefix-<random> (a valid DNS label).
func randomName(prefix string) string {
	return acctest.RandomWithPrefix(prefix)
}

func kubeClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	return cp.Clientset()
}

func dynamicClient(t testing.TB) dynamic.Interface {
	t.Helper()
	return cp.Dynamic()
}

// testNamespace creates a fresh namespace, deleted (without waiting) when the
// test ends.
func testNamespace(t *testing.T, prefix string) string {
	t.Helper()
	name := randomName(prefix)
	_, err := kubeClient(t).CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = kubeClient(t).CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// getObject returns an object or fails the test.
func getObject(t testing.TB, gvr schema.GroupVersionResource, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	obj, err := resourceClient(gvr, namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, namespace, name, err)
	}
	return obj
}

func resourceClient(gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return cp.Dynamic().Resource(gvr)
	}
	return cp.Dynamic().Resource(gvr).Namespace(namespace)
}

// checkObjectExists is a Check that the object exists in the cluster.
func checkObjectExists(gvr schema.GroupVersionResource, namespace, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		_, err := resourceClient(gvr, namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", gvr.Resource, namespace, name, err)
		}
		return nil
	}
}

// checkObjectGone is a Check that the object is absent, waiting up to 30s
// (finalizers, garbage collection).
func checkObjectGone(gvr schema.GroupVersionResource, namespace, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := resourceClient(gvr, namespace).Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", gvr.Resource, namespace, name, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s/%s still exists after destroy", gvr.Resource, namespace, name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkDestroy is a CheckDestroy for every resource of tfType in the state:
// its object (namespace/name from the attributes namespace+name or
// metadata.0.*, else from an id "namespace/name" or "name") must be gone.
func checkDestroy(gvr schema.GroupVersionResource, tfType string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		for _, rs := range s.RootModule().Resources {
			if rs.Type != tfType {
				continue
			}
			namespace, name := objectKey(rs)
			if name == "" {
				return fmt.Errorf("%s: cannot tell the object name from the state (id %q)", tfType, rs.Primary.ID)
			}
			if err := checkObjectGone(gvr, namespace, name); err != nil {
				return err
			}
		}
		return nil
	}
}

func objectKey(rs *terraform.ResourceState) (namespace, name string) {
	a := rs.Primary.Attributes
	for _, prefix := range []string{"", "metadata.0."} {
		if a[prefix+"name"] != "" {
			return a[prefix+"namespace"], a[prefix+"name"]
		}
	}
	if ns, n, ok := strings.Cut(rs.Primary.ID, "/"); ok {
		return ns, n
	}
	return "", rs.Primary.ID
}

// wrappedPhrases matches the phrases in this order, across Terraform's line wrapping: it wraps
// a diagnostic's detail at the terminal width (internal/command/format/diagnostic.go), so a
// phrase can span two lines.
func wrappedPhrases(phrases ...string) *regexp.Regexp {
	quoted := make([]string, len(phrases))
	for i, p := range phrases {
		quoted[i] = acrossWrapping(regexp.QuoteMeta(p))
	}
	return regexp.MustCompile(`(?s)` + strings.Join(quoted, ".*"))
}

// acrossWrapping lets each space of a pattern match any run of white space, so the pattern
// matches text Terraform wrapped.
func acrossWrapping(pattern string) string { return strings.ReplaceAll(pattern, " ", `\s+`) }
