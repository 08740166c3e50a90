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

.PHONY: help setup tools provider controlplane-start controlplane-stop controlplane-env test cargo-test schema-check acceptance demo bench-mesh

help:
	@echo "make demo                 set up, start the local control plane, terraform apply examples/quickstart (KEEP=1 keeps it running)"
	@echo "make test                 set up, cargo test (+ tfplug-test-provider), schema snapshot check, acceptance tests"
	@echo "make setup                build/fetch every tool into $(TFPI_CACHE) (cached by version)"
	@echo "make provider             cargo build --release and install into the filesystem mirror"
	@echo "make controlplane-start   start the local control plane in RUN_DIR=$(RUN_DIR) (REVISION=canary adds istiod-canary)"
	@echo "make controlplane-env     print its env file (KUBECONFIG, ISTIOD_XDS_ADDR, ...)"
	@echo "make controlplane-stop    stop it"
	@echo "make bench-mesh           benchmark against hashicorp/kubernetes at 10-1000 VMs -> bench/mesh-results.md"

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
	$(CONTROLPLANE) start --run-dir $(RUN_DIR)

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

# Acceptance tests against the real control plane, once per Terraform CLI that
# was built (Terraform 1.0.3 always; 1.5.7 and OpenTofu 1.6.3 when present).
acceptance: setup provider
	set -a; . $(TOOLS_ENV); set +a; \
	export TF_ACC=1 TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG) CHECKPOINT_DISABLE=1; \
	clis="$$TFPI_TERRAFORM_1_0_3 $${TFPI_TERRAFORM_1_5_7:-} $${TFPI_TOFU_1_6_3:-}"; \
	failed=""; \
	for cli in $$clis; do \
	  name="$$($$cli version 2>/dev/null | sed -n 1p || true)"; \
	  echo "==> acceptance tests with $$name ($$cli)"; \
	  (cd acceptance-tests && TF_ACC_TERRAFORM_PATH=$$cli go test $(GO_TEST_FLAGS) ./...) || failed="$$failed, $$name"; \
	done; \
	if [[ -n "$$failed" ]]; then echo "make test: acceptance tests failed with: $${failed#, }" >&2; exit 1; fi; \
	echo "acceptance tests passed with: $$(for cli in $$clis; do $$cli version 2>/dev/null | sed -n 1p || true; done | paste -sd, -)"

# ---- demo -------------------------------------------------------------------

# The demo needs only Terraform 1.0.3: skip the optional CLIs unless asked.
demo: export TFPI_EXTRA_CLIS ?= 0
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
