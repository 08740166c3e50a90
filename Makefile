# terraform-provider-istio — the two commands a newcomer needs:
#   make demo   set everything up, start the local control plane, apply examples/quickstart
#   make test   set everything up, run cargo tests and the acceptance tests
# Everything built lands in $(TFPI_CACHE), outside the clone, keyed by version.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

TFPI_CACHE ?= $(HOME)/.cache/terraform-provider-istio
export TFPI_CACHE
# Cargo builds outside the clone too, so a fresh clone (CI) reuses earlier builds.
CARGO_TARGET_DIR ?= $(TFPI_CACHE)/cargo-target
export CARGO_TARGET_DIR

GOOS_GOARCH      := $(shell go env GOOS 2>/dev/null || echo linux)_$(shell go env GOARCH 2>/dev/null || echo amd64)
PROVIDER_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
PROVIDER_ADDR    := terraform-provider-istio/istio
MIRROR           := $(TFPI_CACHE)/mirror
PROVIDER_BIN     := terraform-provider-istio_v$(PROVIDER_VERSION)
MIRROR_ADDRS     := "registry.terraform.io/$(PROVIDER_ADDR)", "registry.opentofu.org/$(PROVIDER_ADDR)"
TOOLS_ENV        := $(TFPI_CACHE)/tools.env
TERRAFORM        := $(TFPI_CACHE)/terraform-1.0.3/terraform
TF_CLI_CONFIG    := $(TFPI_CACHE)/terraformrc
CONTROLPLANE     := $(TFPI_CACHE)/bin/controlplane
RUN_DIR          ?= $(TFPI_CACHE)/run/controlplane
KEEP             ?= 0
GO_TEST_FLAGS    ?= -count=1 -v -timeout 60m
RELEASE_DIR      ?= $(TFPI_CACHE)/release
VERSION          ?= $(PROVIDER_VERSION)
# The Terraform/OpenTofu CLIs (build.sh targets) that `make setup` builds and
# `make acceptance` runs: the oldest and the newest of each family.
# `make test-matrix` takes every CLI, `make demo` Terraform 1.0.3 only.
CLIS             := terraform-1.0.3 terraform-1.13.3 tofu-1.6.3 tofu-1.12.6
MATRIX_CLIS      := terraform-1.0.3 terraform-1.5.7 terraform-1.13.3 tofu-1.6.3 tofu-1.12.6
CONTROLPLANE_SRC := $(wildcard acceptance-tests/go.mod acceptance-tests/go.sum acceptance-tests/controlplane/*.go acceptance-tests/ports/*.go acceptance-tests/cmd/controlplane/*.go)

.PHONY: help setup tools provider controlplane-start controlplane-stop controlplane-env test test-matrix lint cargo-test acceptance demo \
        examples-check release release-check release-check-arm64 bench-mesh

help:
	@echo "make demo                 set up, start the local control plane, terraform apply examples/quickstart (KEEP=1 keeps it running)"
	@echo "make test                 set up, fmt + clippy, cargo test (+ tfplug-test-provider, schema and docs snapshots), examples check, release install check, acceptance tests"
	@echo "                          (Terraform 1.0.3 and 1.13.3, OpenTofu 1.6.3 and 1.12.6; install profiles $(ACC_PROFILES));"
	@echo "                          ends with a summary table (stage wall times, CLIs run, tests per package) and fails on any failed or skipped test"
	@echo "make test-matrix          make test with every CLI (adds Terraform 1.5.7) and the VM tests on every install profile ($(MATRIX_PROFILES))"
	@echo "make lint                 cargo fmt --check, cargo clippy -D warnings (with and without tfplug-test-provider)"
	@echo "make setup                build/fetch every tool into $(TFPI_CACHE) (cached by version)"
	@echo "make provider             cargo build --release and install into the filesystem mirror"
	@echo "make release VERSION=x.y.z  release zips (linux_amd64, linux_arm64), SHA256SUMS, manifest, mirrors into RELEASE_DIR=$(RELEASE_DIR)"
	@echo "make controlplane-start   start the local control plane in RUN_DIR=$(RUN_DIR) (PROFILE=revision|multi-network|...)"
	@echo "make controlplane-env     print its env file (KUBECONFIG, ISTIOD_XDS_ADDR, ...)"
	@echo "make controlplane-stop    stop it"
	@echo "make bench-mesh           benchmark against hashicorp/kubernetes at 10-1000 VMs -> bench/mesh-results.md"

# ---- set-up -----------------------------------------------------------------

setup: tools $(CONTROLPLANE)

tools:
	@for tool in go cargo python3; do \
	  command -v $$tool >/dev/null || { echo "make setup: '$$tool' is required but not on PATH (see README.md, Prerequisites)" >&2; exit 1; }; \
	done
	acceptance-tests/tools/build.sh core $(CLIS)

$(CONTROLPLANE): $(CONTROLPLANE_SRC)
	cd acceptance-tests && go build -o $(CONTROLPLANE) ./cmd/controlplane

# The provider in an unpacked filesystem mirror (HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/),
# for registry.terraform.io (Terraform) and registry.opentofu.org (OpenTofu), and a
# CLI config that installs only from it, so `terraform init [-upgrade]` works offline.
provider:
	cargo build --release --bin terraform-provider-istio
	for host in registry.terraform.io registry.opentofu.org; do \
	  dir="$(MIRROR)/$$host/$(PROVIDER_ADDR)/$(PROVIDER_VERSION)/$(GOOS_GOARCH)"; \
	  mkdir -p "$$dir"; \
	  install -m 0755 $(CARGO_TARGET_DIR)/release/terraform-provider-istio "$$dir/$(PROVIDER_BIN).tmp"; \
	  mv "$$dir/$(PROVIDER_BIN).tmp" "$$dir/$(PROVIDER_BIN)"; \
	done
	printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = [%s]\n  }\n  direct {\n    exclude = [%s]\n  }\n}\n' \
	  "$(MIRROR)" '$(MIRROR_ADDRS)' '$(MIRROR_ADDRS)' > $(TF_CLI_CONFIG)
	@echo "provider $(PROVIDER_ADDR) $(PROVIDER_VERSION) installed in $(MIRROR); TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG)"

# ---- local control plane ----------------------------------------------------

controlplane-start: setup
	$(CONTROLPLANE) start --run-dir $(RUN_DIR) $(if $(PROFILE),--profile $(PROFILE))

controlplane-stop:
	@if [[ -x $(CONTROLPLANE) ]]; then $(CONTROLPLANE) stop --run-dir $(RUN_DIR); \
	 else cd acceptance-tests && go run ./cmd/controlplane stop --run-dir $(RUN_DIR); fi

controlplane-env:
	@$(CONTROLPLANE) env --run-dir $(RUN_DIR)

# ---- tests ------------------------------------------------------------------

# Each stage runs as its own make under the summary script, which ends with a table of the
# stages' wall times, the CLIs run and the tests per package, and fails on any failed or
# skipped test (acceptance-tests/tools/summary.py).
TEST_STAGES := lint setup provider cargo-test examples-check release-check release-check-arm64 acceptance
SUMMARY     := acceptance-tests/tools/summary.py
test:
	@$(SUMMARY) reset
	@for stage in $(TEST_STAGES); do \
	  $(SUMMARY) run $$stage $(MAKE) --no-print-directory $$stage CLIS="$(CLIS)" ACC_PROFILES="$(ACC_PROFILES)" ACC_EXAMPLE_PROFILES="$(ACC_EXAMPLE_PROFILES)" ACC_NAMESPACE_PROFILES="$(ACC_NAMESPACE_PROFILES)" ACC_CLI_SKIP='$(ACC_CLI_SKIP)' \
	    || { $(SUMMARY) report; exit 1; }; \
	done; $(SUMMARY) report

# Formatting and lints, with and without the test provider's feature.
lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features tfplug-test-provider -- -D warnings

# Unit and integration tests; the tfplug test provider runs against Terraform 1.0.3.
# tests/generated_files.rs checks that schemas/ and docs/ match the models (no release build).
cargo-test: setup
	set -a; . $(TOOLS_ENV); set +a; \
	cargo test; \
	if grep -q '^tfplug-test-provider' Cargo.toml; then \
	  cargo test --features tfplug-test-provider; \
	else echo "make test: Cargo feature tfplug-test-provider not defined yet, skipped"; fi

# Every configuration under examples/ is formatted and, unless it needs another provider,
# validates with Terraform 1.0.3 and the provider from the mirror; the snippets of the
# reference pages validate together (the ephemeral-resource ones with Terraform 1.13.3);
# docs/guides/ shows the example files unchanged.
examples-check: setup provider
	set -a; . $(TOOLS_ENV); set +a; \
	TERRAFORM=$(TERRAFORM) TERRAFORM_EPHEMERAL=$${TFPI_TERRAFORM_1_13_3:-} TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG) acceptance-tests/tools/examples-check.sh

# Acceptance tests against the real control plane, run by acceptance-tests/tools/acceptance.sh
# (the list of runs is there): ACC_JOBS go test runs at a time, each with its own control
# plane and install profile (TFPI_PROFILE, README.md "Local control plane"). Terraform 1.0.3
# runs every package on the first profile of ACC_PROFILES (the fault tests, ACC_FAULT_TESTS,
# and the long tests of ACC_SPLIT_TESTS in runs of their own) and the VM tests (ACC_VM_TESTS) on the others; every other CLI of
# $(CLIS) runs the acceptance package on the first profile without the tests of ACC_CLI_SKIP:
# the oracle, fault and example tests always (they judge the provider, not the CLI: Terraform
# 1.0.3 runs them), and in make test also the bad-input, provider-setting, least-privilege and
# plan-time validation tests, whose verdicts come from the provider alone (make test-matrix
# runs those with every CLI; keeps a warm make test within its budget).
# TestAccExamples applies each example of examples/ on the profiles it is written for
# (appliedExamples in acceptance-tests/examples_test.go): make test applies those of
# ACC_PROFILES and, in runs of TestAccExamples alone, of ACC_EXAMPLE_PROFILES; make test-matrix
# those of every profile. It fails when an example's profile is in none of the lists.
# ACC_NAMESPACE_PROFILES (custom-namespace: istiod installed in istio-vm) get a run of
# ACC_NAMESPACE_TESTS, so that make test proves a non-default istio_namespace end to end: VMs
# booted from the bundles get their certificate from that istiod and turn healthy. A CLI missing
# from tools.env fails; TFPI_EXTRA_CLIS=0 (refused in CI by build.sh) runs Terraform 1.0.3 only.
# Never write a dollar sign in these regexps: the sub-make of `make test` would expand it.
ACC_PROFILES ?= default revision
ACC_EXAMPLE_PROFILES ?= multi-network named-cluster
ACC_NAMESPACE_PROFILES ?= custom-namespace
MATRIX_PROFILES ?= default revision multi-network multi-network-hostname named-cluster custom-namespace
ACC_JOBS ?= 3
ACC_CLI_SKIP ?= ^(TestAccOracle_|TestAccFaults_|TestAccExamples|TestAccBadInput|TestAccProviderSettings_|TestAccLeastPrivilege_|TestAcc[A-Za-z]+_validation)
MATRIX_CLI_SKIP := ^(TestAccOracle_|TestAccFaults_|TestAccExamples)
ACC_FAULT_TESTS := ^TestAccFaults_
ACC_SPLIT_TESTS := ^(TestAccBadInput|TestAccOracle_|TestAccProviderSettings_|TestAccLeastPrivilege_)
ACC_VM_TESTS := ^(TestAccVmRegistration|TestAccMeshService|TestAccOracle_(istioctlBundles|liveVMs|manualEntryMatchesAutoRegistered)|TestAccFieldDefects_defaultRevisionTag|TestAccExamples)
ACC_NAMESPACE_TESTS := ^(TestAccVmRegistration_live|TestAccProviderSettings_istioNamespace|TestAccExamples)
ACC_ENV = set -a; . $(TOOLS_ENV); set +a; export TF_ACC=1 TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG) CHECKPOINT_DISABLE=1

acceptance: setup provider
	$(ACC_ENV); clis=""; \
	for t in $(CLIS); do \
	  if [[ "$$t" == terraform-1.0.3 ]]; then continue; fi; \
	  var="TFPI_$$(tr a-z.- A-Z__ <<<"$$t")"; \
	  if [[ "$${TFPI_EXTRA_CLIS:-1}" == 0 ]]; then echo "==> $$t skipped (TFPI_EXTRA_CLIS=0)"; \
	  elif [[ -z "$${!var:-}" ]]; then echo "make test: $$t is not built ($$var missing in $(TOOLS_ENV)); run make setup" >&2; exit 1; \
	  else clis="$$clis $${!var}"; fi; \
	done; \
	ACC_CLI_PATHS="$$clis" ACC_PROFILES="$(ACC_PROFILES)" ACC_EXAMPLE_PROFILES="$(ACC_EXAMPLE_PROFILES)" \
	  ACC_NAMESPACE_PROFILES="$(ACC_NAMESPACE_PROFILES)" ACC_NAMESPACE_TESTS='$(ACC_NAMESPACE_TESTS)' \
	  ACC_VM_TESTS='$(ACC_VM_TESTS)' ACC_CLI_SKIP='$(ACC_CLI_SKIP)' ACC_FAULT_TESTS='$(ACC_FAULT_TESTS)' ACC_SPLIT_TESTS='$(ACC_SPLIT_TESTS)' \
	  ACC_JOBS=$(ACC_JOBS) GO_TEST_FLAGS="$(GO_TEST_FLAGS)" acceptance-tests/tools/acceptance.sh

# make test with every CLI, and the VM tests on every install profile.
test-matrix: CLIS := $(MATRIX_CLIS)
test-matrix: ACC_PROFILES := $(MATRIX_PROFILES)
test-matrix: ACC_CLI_SKIP := $(MATRIX_CLI_SKIP)
test-matrix: ACC_EXAMPLE_PROFILES :=
test-matrix: ACC_NAMESPACE_PROFILES :=
test-matrix: test

# ---- release ----------------------------------------------------------------

# The release of VERSION (default: Cargo.toml's; CHANGELOG.md must start with it) into
# RELEASE_DIR: zips for linux_amd64 and linux_arm64 (PLATFORMS=... narrows), SHA256SUMS,
# the registry manifest, a packed filesystem mirror and a network-mirror index.
release:
	acceptance-tests/tools/release.sh $(VERSION) $(RELEASE_DIR)

# The release for this platform, signed with a throwaway key, installed the way users install
# it: Terraform 1.0.3 and the newest OpenTofu of tools.env run init offline from the packed
# filesystem mirror and from the network-mirror index served over loopback HTTPS; the lock
# file's hashes, a tampered zip refused, SHA256SUMS and its signature checked.
release-check: setup
	set -a; . $(TOOLS_ENV); set +a; \
	tofu_var="$$(sed -n 's/^\(TFPI_TOFU_[0-9_]*\)=.*/\1/p' $(TOOLS_ENV) | sort -V | tail -1)"; \
	if [[ -z "$$tofu_var" ]]; then echo "make release-check: no OpenTofu in $(TOOLS_ENV); run make setup without TFPI_EXTRA_CLIS=0" >&2; exit 1; fi; \
	export GNUPGHOME="$$(mktemp -d)"; trap 'gpgconf --kill gpg-agent; rm -rf "$$GNUPGHOME"' EXIT; \
	gpg --batch --quiet --passphrase '' --quick-gen-key "release-check <release-check@example.invalid>" ed25519 sign 1d; \
	GPG_KEY_ID=release-check@example.invalid PLATFORMS=$(GOOS_GOARCH) \
	  acceptance-tests/tools/release.sh $(PROVIDER_VERSION) $(TFPI_CACHE)/release-check; \
	cd acceptance-tests/install && \
	TFPI_RELEASE_DIR=$(TFPI_CACHE)/release-check TFPI_RELEASE_VERSION=$(PROVIDER_VERSION) \
	TFPI_INSTALL_CLIS="$$TFPI_TERRAFORM_1_0_3 $${!tofu_var}" go test -count=1 -v ./...

# The linux_arm64 zip works, not just builds: under qemu-user, Terraform 1.0.3 talks protocol 6
# to the binary from the zip and gets the same schema as from the native one
# (acceptance-tests/tools/arm64-check.sh). A stage of make test: the arm64 zip is released too, so
# it is verified on every run (the cross build is cached like the native one).
release-check-arm64: setup provider
	set -a; . $(TOOLS_ENV); set +a; export TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG) CHECKPOINT_DISABLE=1; \
	acceptance-tests/tools/arm64-check.sh $(PROVIDER_VERSION)

# ---- demo -------------------------------------------------------------------

# The demo needs only Terraform 1.0.3.
demo: CLIS := terraform-1.0.3
demo: setup provider
	RUN_DIR=$(RUN_DIR) CONTROLPLANE=$(CONTROLPLANE) TERRAFORM=$(TERRAFORM) \
	TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG) KEEP=$(KEEP) acceptance-tests/tools/demo.sh

# ---- benchmarks -------------------------------------------------------------

# This provider against hashicorp/kubernetes v3.2.1 and Terraform's floor at 10-1000 VMs on the
# local control plane; writes bench/mesh-results.md (bench/README.md, "Mesh benchmark").
# It runs Terraform 1.5.7 (hashicorp/kubernetes v3.2.1's plans fail under 1.0.3; bench/README.md).
bench-mesh: export TFPI_EXTRA_CLIS ?= 0
bench-mesh: setup provider
	acceptance-tests/tools/build.sh terraform-1.5.7
	bench/mesh/run.sh
