// Package acceptance holds the Terraform acceptance tests of the provider.
// TestMain starts one real local control plane (etcd, kube-apiserver,
// kube-controller-manager, Istio installed by istioctl with the install
// profile TFPI_PROFILE, istiod) for the whole package run and stops it at the
// end, also on failure or interrupt. See README.md "Local control plane".
package acceptance

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"terraform-provider-istio/acceptance-tests/controlplane"
)

// cp is the control plane of this package run.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	// The control plane re-executes this binary as its east-west gateway.
	controlplane.RunGatewayIfRequested()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// This package only holds acceptance tests, and it starts their control
	// plane itself: they run, never skip for want of TF_ACC.
	if os.Getenv("TF_ACC") == "" {
		os.Setenv("TF_ACC", "1")
	}
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		if tf := controlplane.Tool("TFPI_TERRAFORM_1_0_3"); tf != "" {
			os.Setenv("TF_ACC_TERRAFORM_PATH", tf)
		}
	}
	if os.Getenv("TF_CLI_CONFIG_FILE") == "" {
		os.Setenv("TF_CLI_CONFIG_FILE", filepath.Join(controlplane.CacheDir(), "terraformrc"))
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	runRoot := filepath.Join(controlplane.CacheDir(), "run")
	if err := os.MkdirAll(runRoot, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	runDir, err := os.MkdirTemp(runRoot, "acc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	started := time.Now()
	cp, err = controlplane.Start(ctx, controlplane.Options{
		RunDir:           runDir,
		KillOnParentExit: true,
		Progress:         os.Stderr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "acceptance: control plane did not start: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "acceptance: control plane with install profile %q ready in %s (run dir %s)\n",
		cp.Profile().Name, time.Since(started).Round(time.Second), runDir)
	os.Setenv("KUBECONFIG", cp.Kubeconfig)
	if err := setUpLeastPrivilege(runDir); err != nil {
		fmt.Fprintf(os.Stderr, "acceptance: applying examples/rbac: %v\n", err)
		_ = cp.Stop()
		return 1
	}

	// Stop the control plane on SIGINT/SIGTERM even while tests run.
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "acceptance: interrupted, stopping the control plane")
			_ = cp.Stop()
			os.Exit(130)
		case <-done:
		}
	}()

	code := m.Run()
	close(done)
	if err := cp.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "acceptance: stopping the control plane: %v\n", err)
		code = 1
	}
	if code == 0 && os.Getenv("TFPI_KEEP_RUN_DIR") == "" {
		_ = os.RemoveAll(runDir)
	} else {
		fmt.Fprintf(os.Stderr, "acceptance: component logs kept in %s\n", runDir)
	}
	return code
}
