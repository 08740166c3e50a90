package acceptance

// No credential leaks (issue 11, "Secrets"): real Terraform runs with
// TF_LOG=trace and TF_LOG_PROVIDER=trace, and neither its output nor its log
// (which holds the provider's log) contains the registration's token, the
// client key or the proxy's password; the plan shows the token as
// "(sensitive value)"; the token file is 0600; after destroy the token fails
// TokenReview.

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// tfRun runs the Terraform CLI of the tests in dir with trace logging into
// logFile and returns its combined output.
func tfRun(t *testing.T, dir, logFile string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), append(args, "-no-color")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_LOG=trace", "TF_LOG_PROVIDER=trace", "TF_LOG_PATH="+logFile,
		"TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// expectAbsent fails for each secret found in one of the texts.
func expectAbsent(t *testing.T, texts map[string]string, secrets map[string]string) {
	t.Helper()
	for what, secret := range secrets {
		if len(secret) < 16 {
			t.Fatalf("secret %s is too short to search for (%d characters)", what, len(secret))
		}
		for where, text := range texts {
			if i := strings.Index(text, secret); i >= 0 {
				start, end := max(0, i-300), min(len(text), i+len(secret)+100)
				t.Errorf("%s appears in %s: ...%s...", what, where, strings.ReplaceAll(text[start:end], secret, "<"+what+">"))
			}
		}
	}
}

// keyFragments are the parts of a PEM private key to search for: its longest
// base64 line, the whole PEM base64-encoded (as a kubeconfig holds it) and the
// key's DER in base64 (a PEM body without line breaks).
func keyFragments(keyPEM string) map[string]string {
	longest := ""
	var body strings.Builder
	for _, line := range strings.Split(keyPEM, "\n") {
		if strings.HasPrefix(line, "-----") {
			continue
		}
		body.WriteString(strings.TrimSpace(line))
		if len(line) > len(longest) {
			longest = line
		}
	}
	return map[string]string{
		"a line of the client key":          strings.TrimSpace(longest),
		"the client key (base64 PEM)":       base64.StdEncoding.EncodeToString([]byte(keyPEM))[:40],
		"the client key (PEM body, joined)": body.String(),
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestAccSecrets_neverLogged(t *testing.T) {
	testAccPreCheck(t)
	ns := testNamespace(t, "sec")
	waitForDefaultServiceAccount(t, ns)
	dir, outDir := t.TempDir(), t.TempDir()
	logFile := filepath.Join(t.TempDir(), "terraform.log")
	rest := cp.RestConfig()
	if len(rest.TLSClientConfig.KeyData) == 0 || len(rest.TLSClientConfig.CertData) == 0 {
		t.Fatal("the control plane's admin kubeconfig has no client certificate and key")
	}
	clientKey := string(rest.TLSClientConfig.KeyData)
	config := fmt.Sprintf(`terraform {
  required_providers {
    istio = {
      source  = %q
      version = %q
    }
  }
}

provider "istio" {
  host                   = %q
  cluster_ca_certificate = <<EOT
%sEOT
  client_certificate     = <<EOT
%sEOT
  client_key             = <<EOT
%sEOT
}

resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = %q
  metadata {
    labels = { app = "product" }
  }
  template {
    service_account = "default"
    ports           = { http = 8080 }
  }
}

# cluster_id is set because the default install profile does not publish it
# (the provider's default reads it from the injector values).
resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.product.id
  output_dir     = %q
  cluster_id     = %q
}
`, providerSource, providerVersion, cp.Get("KUBE_APISERVER"), apiserverCA(t), rest.TLSClientConfig.CertData, clientKey, ns, outDir, cp.Get("CLUSTER_ID"))
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	texts := map[string]string{}
	run := func(name string, args ...string) string {
		out, err := tfRun(t, dir, logFile, args...)
		texts["output of terraform "+name] = out
		if err != nil {
			t.Fatalf("terraform %s: %v\n%s", name, err, out)
		}
		return out
	}
	run("init", "init", "-input=false")
	plan := run("plan", "plan", "-input=false")
	if !strings.Contains(plan, "istio_token") || !strings.Contains(plan, "(sensitive value)") {
		t.Errorf("the plan does not show istio_token as (sensitive value):\n%s", plan)
	}
	run("apply", "apply", "-input=false", "-auto-approve")

	tokenPath := filepath.Join(outDir, "istio-token")
	info, err := os.Stat(tokenPath)
	if err != nil {
		t.Fatalf("the token file: %v", err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("the token file has mode %o, want 600", mode)
	}
	token := strings.TrimSpace(readFile(t, tokenPath))
	if err := expectTokenAccepted(t, token, ns); err != nil {
		t.Fatal(err)
	}
	run("plan after apply", "plan", "-input=false")
	run("destroy", "destroy", "-input=false", "-auto-approve")
	texts["Terraform's trace log (TF_LOG_PATH, with the provider's log)"] = readFile(t, logFile)
	if !strings.Contains(texts["Terraform's trace log (TF_LOG_PATH, with the provider's log)"], "terraform-provider-istio") {
		t.Fatal("the trace log holds no line of the provider: TF_LOG_PROVIDER did not reach it, the search proves nothing")
	}

	secrets := keyFragments(clientKey)
	secrets["the registration's token"] = token
	expectAbsent(t, texts, secrets)
	if err := expectTokenRejected(t, token); err != nil {
		t.Error(err)
	}
}

// TestAccSecrets_proxyPasswordNeverLogged runs a plan through a CONNECT proxy
// whose URL carries a password: the request goes through the proxy, and the
// password is neither in Terraform's output nor in the trace log.
func TestAccSecrets_proxyPasswordNeverLogged(t *testing.T) {
	testAccPreCheck(t)
	password := "proxy-pw-" + randomName("s3cret")
	proxy, connects := startConnectProxy(t)
	dir := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "terraform.log")
	config := fmt.Sprintf(`terraform {
  required_providers {
    istio = {
      source  = %q
      version = %q
    }
  }
}

provider "istio" {
  config_path = %q
  proxy_url   = "http://tfuser:%s@%s"
}

data "istio_mesh" "this" {}
`, providerSource, providerVersion, cp.Kubeconfig, password, proxy)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for _, args := range [][]string{{"init", "-input=false"}, {"plan", "-input=false"}} {
		out, err := tfRun(t, dir, logFile, args...)
		texts["output of terraform "+args[0]] = out
		if err != nil {
			t.Fatalf("terraform %s: %v\n%s", args[0], err, out)
		}
	}
	texts["Terraform's trace log"] = readFile(t, logFile)
	if connects.Load() == 0 {
		t.Error("the provider did not go through proxy_url: the proxy saw no CONNECT")
	}
	expectAbsent(t, texts, map[string]string{
		"the proxy password":          password,
		"the proxy password (base64)": base64.StdEncoding.EncodeToString([]byte("tfuser:" + password)),
	})
}

// startConnectProxy serves HTTP CONNECT on loopback and counts the tunnels it
// opened; it returns host:port.
func startConnectProxy(t *testing.T) (string, *atomic.Int64) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	var connects atomic.Int64
	go func() {
		for {
			client, err := listener.Accept()
			if err != nil {
				return
			}
			go tunnel(client, &connects)
		}
	}()
	return listener.Addr().String(), &connects
}

func tunnel(client net.Conn, connects *atomic.Int64) {
	defer client.Close()
	reader := bufio.NewReader(client)
	req, err := http.ReadRequest(reader)
	if err != nil || req.Method != http.MethodConnect {
		fmt.Fprint(client, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	upstream, err := net.Dial("tcp", req.Host)
	if err != nil {
		fmt.Fprint(client, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer upstream.Close()
	connects.Add(1)
	fmt.Fprint(client, "HTTP/1.1 200 Connection Established\r\n\r\n")
	go func() { _, _ = io.Copy(upstream, reader) }()
	_, _ = io.Copy(client, upstream)
}

// apiserverCA is the CA bundle that does sign the API server's certificate.
func apiserverCA(*testing.T) string { return string(clusterCA()) }
