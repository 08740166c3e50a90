package acceptance

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Bad credentials give one clear diagnostic that names the API server and says
// what to check, instead of an error per resource or a crash.
func TestAccProvider_badCredentials(t *testing.T) {
	server := cp.Get("KUBE_APISERVER")
	if server == "" {
		t.Fatal("the control plane env has no KUBE_APISERVER")
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: `
provider "istio" {
  host     = "` + server + `"
  token    = "not-a-valid-token"
  insecure = true
}

data "istio_mesh" "this" {}
`,
			ExpectError: regexp.MustCompile(`(?s)rejected the provider's\s+credentials.*` + regexp.QuoteMeta("token")),
		}},
	})
}

// A configuration error names the attribute at plan time.
func TestAccProvider_invalidSettings(t *testing.T) {
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: `
provider "istio" {
  config_path     = "/nonexistent/kubeconfig"
  istio_namespace = "Not_A_Namespace"
}

data "istio_mesh" "this" {}
`,
			ExpectError: regexp.MustCompile(`Invalid istio_namespace`),
		}},
	})
}
