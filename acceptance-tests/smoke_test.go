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
	root, err := kubeClient(t).CoreV1().ConfigMaps("istio-system").Get(context.Background(), "istio-ca-root-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("istio-ca-root-cert: %v", err)
	}
	rootCert := root.Data["root-cert.pem"]
	sameRootCert := func(value string) error {
		if !strings.Contains(value, "BEGIN CERTIFICATE") || strings.TrimSpace(value) != strings.TrimSpace(rootCert) {
			return fmt.Errorf("root_cert is not istiod's root certificate: %.60q", value)
		}
		return nil
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: providerConfig() + `
data "istio_mesh" "this" {}

data "istio_mesh" "canary" {
  revision = "canary"
}

output "trust_domain" {
  value = data.istio_mesh.this.trust_domain
}
`,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("data.istio_mesh.this", "trust_domain", "cluster.local"),
				resource.TestCheckResourceAttr("data.istio_mesh.this", "cluster_id", cp.Get("CLUSTER_ID")),
				resource.TestCheckResourceAttr("data.istio_mesh.this", "network", cp.Get("NETWORK")),
				resource.TestCheckResourceAttr("data.istio_mesh.this", "istiod_host", "istiod.istio-system.svc"),
				resource.TestCheckResourceAttrWith("data.istio_mesh.this", "root_cert", sameRootCert),
				resource.TestCheckResourceAttr("data.istio_mesh.canary", "istiod_host", "istiod-canary.istio-system.svc"),
				resource.TestCheckResourceAttr("data.istio_mesh.canary", "cluster_id", cp.Get("CLUSTER_ID")),
				resource.TestCheckOutput("trust_domain", "cluster.local"),
			),
		}},
	})
}
