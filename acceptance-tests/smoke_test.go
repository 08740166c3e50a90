package acceptance

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAccSmoke proves the chain: Terraform installs our provider from the
// filesystem mirror, the provider reads the real control plane through the
// kubeconfig, plan and apply succeed, and the values match what istiod and
// the installation published.
func TestAccSmoke(t *testing.T) {
	root, err := kubeClient(t).CoreV1().ConfigMaps(istioNamespace()).Get(context.Background(), "istio-ca-root-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("istio-ca-root-cert: %v", err)
	}
	rootCert := root.Data["root-cert.pem"]
	if rootCert == "" {
		t.Fatal("istio-ca-root-cert has no root-cert.pem")
	}
	sameRootCert := func(value string) error {
		if !strings.Contains(value, "BEGIN CERTIFICATE") || strings.TrimSpace(value) != strings.TrimSpace(rootCert) {
			return fmt.Errorf("root_cert is not istiod's root certificate: %.60q", value)
		}
		return nil
	}
	// One data source per installed revision; "this" has no revision, so it
	// follows the `default` revision tag.
	config := providerConfig() + `
data "istio_mesh" "this" {}

output "trust_domain" {
  value = data.istio_mesh.this.trust_domain
}
`
	checks := []resource.TestCheckFunc{
		resource.TestCheckResourceAttr("data.istio_mesh.this", "trust_domain", "cluster.local"),
		resource.TestCheckResourceAttr("data.istio_mesh.this", "cluster_id", cp.Get("CLUSTER_ID")),
		checkAttrOrUnset("data.istio_mesh.this", "network", cp.Get("NETWORK")),
		resource.TestCheckResourceAttr("data.istio_mesh.this", "istiod_host", istiodHost(cp.Get("DEFAULT_REVISION"))),
		resource.TestCheckResourceAttrWith("data.istio_mesh.this", "root_cert", sameRootCert),
		resource.TestCheckOutput("trust_domain", "cluster.local"),
	}
	for _, rev := range installedRevisions() {
		config += fmt.Sprintf("\ndata \"istio_mesh\" %q {\n  revision = %q\n}\n", "rev_"+rev, rev)
		checks = append(checks,
			resource.TestCheckResourceAttr("data.istio_mesh.rev_"+rev, "istiod_host", istiodHost(rev)),
			resource.TestCheckResourceAttr("data.istio_mesh.rev_"+rev, "cluster_id", cp.Get("CLUSTER_ID")),
		)
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: config,
			Check:  resource.ComposeAggregateTestCheckFunc(checks...),
		}},
	})
}
