package acceptance

// The token out of state (issue 14, item 6): the ephemeral istio_vm_bootstrap
// issues a VM's token and renders its five files for one run, and a
// registration with issue_token = false keeps no token. Real Terraform /
// OpenTofu runs with TF_LOG=trace; the token the VM gets (written to disk by a
// provisioner, the one place an ephemeral value may go) passes TokenReview, and
// it appears in none of: the state file, `show -json` of the state and of a
// saved plan, the CLI's output, the trace log. Destroying the registration
// revokes it. A control registration with issue_token left at its default
// keeps its token in state, and the same search finds it there.
//
// Ephemeral resources need Terraform >= 1.10 or OpenTofu >= 1.11. This test
// is limited to those CLIs: on older ones (Terraform 1.0.3, 1.5.7, OpenTofu
// 1.6.3) it checks instead what the docs promise there, that the CLI itself
// refuses the `ephemeral` block before the provider is asked anything.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// cliSupportsEphemeral reports whether the CLI of the tests knows ephemeral
// resources, and its version line.
func cliSupportsEphemeral(t *testing.T) (bool, string) {
	t.Helper()
	out, err := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", os.Getenv("TF_ACC_TERRAFORM_PATH"), err)
	}
	line := strings.SplitN(string(out), "\n", 2)[0]
	match := regexp.MustCompile(`^(Terraform|OpenTofu) v(\d+)\.(\d+)\.`).FindStringSubmatch(line)
	if match == nil {
		t.Fatalf("cannot read the CLI's version from %q", line)
	}
	major, _ := strconv.Atoi(match[2])
	minor, _ := strconv.Atoi(match[3])
	floor := map[string]int{"Terraform": 10, "OpenTofu": 11}[match[1]]
	return major > 1 || (major == 1 && minor >= floor), line
}

func bootstrapConfig(ns, outDir string) string {
	return fmt.Sprintf(`terraform {
  required_providers {
    istio = {
      source  = %[1]q
      version = %[2]q
    }
  }
}

provider "istio" {
  config_path = %[3]q
}

resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %[4]q
  metadata {
    labels = { app = "product" }
  }
  template {
    service_account = "default"
    ports           = { http = 8080 }
  }
}

# cluster_id is set because the default install profile does not publish it.
resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.product.id
  cluster_id     = %[5]q
  labels         = { vm = "vm-1" }
  issue_token    = false
}

# The control: a registration that keeps its token, which the search below must find.
resource "istio_vm_registration" "control" {
  workload_group = istio_workload_group.product.id
  cluster_id     = %[5]q
}

ephemeral "istio_vm_bootstrap" "vm" {
  registration = istio_vm_registration.vm.id
  cluster_id   = istio_vm_registration.vm.cluster_id
  labels       = istio_vm_registration.vm.labels
}

# The VM's side: the five files, as a provisioner would copy them.
resource "terraform_data" "deliver" {
  triggers_replace = [istio_vm_registration.vm.bundle_sha256]
  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = "printf '%%s' \"$TOKEN\" > %[6]s/istio-token && printf '%%s' \"$CLUSTER_ENV\" > %[6]s/cluster.env && printf '%%s' \"$MESH\" > %[6]s/mesh.yaml && printf '%%s' \"$ROOT_CERT\" > %[6]s/root-cert.pem && printf '%%s' \"$HOSTS\" > %[6]s/hosts && printf '%%s' \"$FILES_SHA\" > %[6]s/bundle_sha256"
    environment = {
      TOKEN       = ephemeral.istio_vm_bootstrap.vm.istio_token
      CLUSTER_ENV = ephemeral.istio_vm_bootstrap.vm.cluster_env
      MESH        = ephemeral.istio_vm_bootstrap.vm.mesh_config
      ROOT_CERT   = ephemeral.istio_vm_bootstrap.vm.root_cert
      HOSTS       = ephemeral.istio_vm_bootstrap.vm.hosts
      FILES_SHA   = ephemeral.istio_vm_bootstrap.vm.files["istio-token"] == ephemeral.istio_vm_bootstrap.vm.istio_token ? ephemeral.istio_vm_bootstrap.vm.bundle_sha256 : "files disagree"
    }
  }
}
`, providerSource, providerVersion, cp.Kubeconfig, ns, cp.Get("CLUSTER_ID"), outDir)
}

func TestAccVmBootstrap_tokenNeverStored(t *testing.T) {
	testAccPreCheck(t)
	supported, cli := cliSupportsEphemeral(t)
	dir, outDir := t.TempDir(), t.TempDir()
	logFile := filepath.Join(t.TempDir(), "terraform.log")
	ns := testNamespace(t, "boot")
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(bootstrapConfig(ns, outDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := tfRun(t, dir, logFile, args...)
		texts["output of "+name] = out
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return out
	}
	if !supported {
		// Older CLIs: the limitation the docs state, checked rather than skipped.
		out, err := tfRun(t, dir, logFile, "init", "-input=false")
		if err == nil {
			out, err = tfRun(t, dir, logFile, "validate")
		}
		if err == nil || !strings.Contains(out, `"ephemeral"`) {
			t.Fatalf("%s should refuse the ephemeral block itself (it predates ephemeral resources): err=%v\n%s", cli, err, out)
		}
		t.Logf("%s refuses `ephemeral` blocks, as documented; the token-out-of-state checks need Terraform >= 1.10 / OpenTofu >= 1.11", cli)
		return
	}
	run("init", "init", "-input=false")
	waitForDefaultServiceAccount(t, ns)

	run("apply", "apply", "-input=false", "-auto-approve")
	token := strings.TrimSpace(readFile(t, filepath.Join(outDir, "istio-token")))
	if err := expectTokenAccepted(t, token, ns); err != nil {
		t.Fatalf("the ephemeral token: %v", err)
	}
	if got := readFile(t, filepath.Join(outDir, "bundle_sha256")); len(got) != 64 {
		t.Errorf("files[\"istio-token\"] and istio_token disagree, or bundle_sha256 is not a SHA-256: %q", got)
	}

	state := run("show -json", "show", "-json")
	registration := stateResource(t, state, "istio_vm_registration.vm")
	for _, name := range []string{"istio_token", "token_expires_at"} {
		if value, present := registration[name]; !present || value != nil {
			t.Errorf("registration %s = %#v in state, want null (issue_token = false)", name, value)
		}
	}
	// The registration's files are rendered by the same code: all but the token agree.
	for file, attribute := range map[string]string{"cluster.env": "cluster_env", "mesh.yaml": "mesh_config", "root-cert.pem": "root_cert", "hosts": "hosts"} {
		if got, want := readFile(t, filepath.Join(outDir, file)), registration[attribute]; got != want {
			t.Errorf("the ephemeral %s differs from the registration's %s:\n%s\nvs\n%v", file, attribute, got, want)
		}
	}
	if strings.Contains(state, `"address":"ephemeral.`) {
		t.Errorf("the ephemeral resource is stored in the state:\n%s", state)
	}
	texts["the state file"] = readFile(t, filepath.Join(dir, "terraform.tfstate"))
	texts["show -json (state)"] = state
	// The search works: a token kept in state (the default) is found where it is.
	control, _ := stateResource(t, state, "istio_vm_registration.control")["istio_token"].(string)
	if err := expectTokenAccepted(t, control, ns); err != nil {
		t.Fatalf("the control registration's token: %v", err)
	}
	for _, where := range []string{"the state file", "show -json (state)"} {
		if !strings.Contains(texts[where], control) {
			t.Fatalf("the control registration's token is not found in %s: the search proves nothing", where)
		}
	}

	// A plan that opens the ephemeral resource again (a new token) and replaces
	// the delivery: its saved plan must not hold either token.
	run("plan -replace", "plan", "-input=false", "-out=tfplan", "-replace=terraform_data.deliver")
	texts["show -json tfplan"] = run("show -json tfplan", "show", "-json", "tfplan")
	run("apply tfplan", "apply", "-input=false", "tfplan")
	second := strings.TrimSpace(readFile(t, filepath.Join(outDir, "istio-token")))
	if second == token {
		t.Error("the second run delivered the first run's token: the ephemeral resource was not opened again")
	}
	texts["show -json (state after the second apply)"] = run("show -json again", "show", "-json")

	run("destroy", "destroy", "-input=false", "-auto-approve")
	log := readFile(t, logFile)
	if !strings.Contains(log, "terraform-provider-istio") || !strings.Contains(log, "istio_vm_bootstrap") {
		t.Fatal("the trace log holds no line of the provider about istio_vm_bootstrap: the search below proves nothing")
	}
	texts["the trace log (TF_LOG=trace, with the provider's log)"] = log
	expectAbsent(t, texts, map[string]string{"the first ephemeral token": token, "the second ephemeral token": second})
	for what, tok := range map[string]string{"first": token, "second": second} {
		if err := expectTokenRejected(t, tok); err != nil {
			t.Errorf("the %s token after destroying the registration: %v", what, err)
		}
	}
}

// stateResource is the values of one resource in `show -json` output.
func stateResource(t *testing.T, showJSON, address string) map[string]any {
	t.Helper()
	var state struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string         `json:"address"`
					Values  map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(showJSON), &state); err != nil {
		t.Fatalf("show -json: %v", err)
	}
	for _, resource := range state.Values.RootModule.Resources {
		if resource.Address == address {
			return resource.Values
		}
	}
	t.Fatalf("%s is not in the state", address)
	return nil
}
