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
CONTROLPLANE_SRC := $(wildcard acceptance-tests/go.mod acceptance-tests/go.sum acceptance-tests/controlplane/*.go acceptance-tests/cmd/controlplane/*.go)

.PHONY: help setup tools provider controlplane-start controlplane-stop controlplane-env test test-matrix cargo-test schema-check acceptance demo

help:
	@echo "make demo                 set up, start the local control plane, terraform apply examples/quickstart (KEEP=1 keeps it running)"
	@echo "make test                 set up, cargo test (+ tfplug-test-provider), schema snapshot check, acceptance tests"
	@echo "make test-matrix          the VM acceptance tests on every install profile ($(MATRIX_PROFILES))"
	@echo "make setup                build/fetch every tool into $(TFPI_CACHE) (cached by version)"
	@echo "make provider             cargo build --release and install into the filesystem mirror"
	@echo "make controlplane-start   start the local control plane in RUN_DIR=$(RUN_DIR) (PROFILE=revision|multi-network|...)"
	@echo "make controlplane-env     print its env file (KUBECONFIG, ISTIOD_XDS_ADDR, ...)"
	@echo "make controlplane-stop    stop it"

# ---- set-up -----------------------------------------------------------------

setup: tools $(CONTROLPLANE)

tools:
	@for tool in go cargo python3; do \
	  command -v $$tool >/dev/null || { echo "make setup: '$$tool' is required but not on PATH (see README.md, Prerequisites)" >&2; exit 1; }; \
	done
	acceptance-tests/tools/build.sh all

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

test: setup provider cargo-test schema-check acceptance

# Unit and integration tests; the tfplug test provider runs against Terraform 1.0.3.
cargo-test: setup
	set -a; . $(TOOLS_ENV); set +a; \
	cargo test; \
	if grep -q '^tfplug-test-provider' Cargo.toml; then \
	  cargo test --features tfplug-test-provider; \
	else echo "make test: Cargo feature tfplug-test-provider not defined yet, skipped"; fi

# The checked-in schema snapshot and reference docs must match the provider's models.
schema-check: provider
	$(CARGO_TARGET_DIR)/release/terraform-provider-istio --write-schema schemas/
	$(CARGO_TARGET_DIR)/release/terraform-provider-istio --write-docs docs/
	@if [[ -n "$$(git status --porcelain -- schemas/ docs/)" ]]; then \
	  git status --short -- schemas/ docs/; \
	  echo "make test: schemas/ or docs/ differ from the provider's models; run: cargo run -- --write-schema schemas/ && cargo run -- --write-docs docs/ and commit" >&2; exit 1; \
	fi; echo "schema snapshot and docs up to date"

# Acceptance tests against the real control plane. Each run starts its own
# control plane with one install profile (TFPI_PROFILE, README.md "Local
# control plane"). Terraform 1.0.3 runs every package on the first profile of
# ACC_PROFILES and the VM tests (ACC_VM_TESTS) on the others; the other CLIs
# that were built (Terraform 1.5.7, OpenTofu 1.6.3) run the acceptance
# package on the first profile.
ACC_PROFILES ?= default revision
MATRIX_PROFILES ?= default revision multi-network multi-network-hostname named-cluster
ACC_VM_TESTS := ^(TestAccVmRegistration|TestAccMeshService|TestAccOracle_(istioctlBundles|liveVMs))
ACC_ENV = set -a; . $(TOOLS_ENV); set +a; export TF_ACC=1 TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG) CHECKPOINT_DISABLE=1
# acc_run CLI PROFILE PACKAGES [-run REGEX]: one go test run; a failure is
# recorded in $$failed and the loop goes on.
acc_run = name="$$($(1) version 2>/dev/null | sed -n 1p || true)"; \
	echo "==> acceptance tests: $$name, profile $(2), $(3) $(4)"; \
	(cd acceptance-tests && TF_ACC_TERRAFORM_PATH=$(1) TFPI_PROFILE=$(2) go test $(GO_TEST_FLAGS) $(4) $(3)) || failed="$$failed; $$name on $(2)"

acceptance: setup provider
	$(ACC_ENV); failed=""; first=""; \
	for profile in $(ACC_PROFILES); do \
	  if [[ -z "$$first" ]]; then first=$$profile; $(call acc_run,$$TFPI_TERRAFORM_1_0_3,$$profile,./...); \
	  else $(call acc_run,$$TFPI_TERRAFORM_1_0_3,$$profile,.,-run '$(ACC_VM_TESTS)'); fi; \
	done; \
	for cli in $${TFPI_TERRAFORM_1_5_7:-} $${TFPI_TOFU_1_6_3:-}; do $(call acc_run,$$cli,$$first,.); done; \
	if [[ -n "$$failed" ]]; then echo "make test: acceptance tests failed with: $${failed#; }" >&2; exit 1; fi; \
	echo "acceptance tests passed"

# The VM tests on every install profile, with Terraform 1.0.3.
test-matrix: setup provider
	$(ACC_ENV); failed=""; \
	for profile in $(MATRIX_PROFILES); do $(call acc_run,$$TFPI_TERRAFORM_1_0_3,$$profile,.,-run '$(ACC_VM_TESTS)'); done; \
	if [[ -n "$$failed" ]]; then echo "make test-matrix: failed with: $${failed#; }" >&2; exit 1; fi; \
	echo "VM tests passed on every profile: $(MATRIX_PROFILES)"

# ---- demo -------------------------------------------------------------------

# The demo needs only Terraform 1.0.3: skip the optional CLIs unless asked.
demo: export TFPI_EXTRA_CLIS ?= 0
demo: setup provider
	RUN_DIR=$(RUN_DIR) CONTROLPLANE=$(CONTROLPLANE) TERRAFORM=$(TERRAFORM) \
	TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG) KEEP=$(KEEP) acceptance-tests/tools/demo.sh
