package controlplane

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CacheDir is the directory outside the clone that holds every built tool,
// the provider mirror and default run directories: $TFPI_CACHE, or
// ~/.cache/terraform-provider-istio.
func CacheDir() string {
	if d := os.Getenv("TFPI_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "terraform-provider-istio")
}

// ToolsEnvFile is written by acceptance-tests/tools/build.sh: one KEY=path
// line per built tool.
func ToolsEnvFile() string { return filepath.Join(CacheDir(), "tools.env") }

// Tool returns the value of a tool variable (TFPI_KUBE_TESTENV,
// TFPI_PILOT_DISCOVERY, TFPI_ISTIO_CRDS, TFPI_TERRAFORM_1_0_3, ...): the
// environment wins, then tools.env. The empty string means unknown.
func Tool(key string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	f, err := os.Open(ToolsEnvFile())
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(s.Text()), "=")
		if ok && k == key {
			return v
		}
	}
	return ""
}

// requireFile resolves a tool variable to an existing file or explains how to
// get it.
func requireFile(key, what string) (string, error) {
	p := Tool(key)
	if p == "" {
		return "", fmt.Errorf("%s not found: %s is not set and not in %s; run `make setup` (acceptance-tests/tools/build.sh)", what, key, ToolsEnvFile())
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found at %s (from %s); run `make setup` (acceptance-tests/tools/build.sh)", what, p, key)
	}
	return p, nil
}
