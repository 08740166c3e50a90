#!/usr/bin/env bash
# Usage: TERRAFORM=... TF_CLI_CONFIG_FILE=... examples-check.sh
#
# Every configuration under examples/ is checked with the Terraform CLI in TERRAFORM and the
# provider from the mirror in TF_CLI_CONFIG_FILE (make provider), offline:
#   - all of examples/ passes `terraform fmt -check`;
#   - a configuration that needs only this provider (and Terraform's built-ins) passes
#     `terraform init` + `terraform validate`;
#   - one that needs another provider (a cloud's, null, ...) cannot be installed offline: it
#     must call a local module (its non-cloud part, e.g. ../fleet) that validates itself;
#   - the per-resource snippets (examples/resources/*, examples/data-sources/*, shown on the
#     reference pages) validate together as one configuration; with the ephemeral-resource
#     snippets (examples/ephemeral-resources/*) they validate again with TERRAFORM_EPHEMERAL,
#     a CLI that knows ephemeral resources (Terraform >= 1.11);
#   - the guides in docs/guides/ show the example files they name, unchanged (guides.sh).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
: "${TERRAFORM:?TERRAFORM must name the Terraform CLI (make examples-check sets it)}"
: "${TF_CLI_CONFIG_FILE:?TF_CLI_CONFIG_FILE must name the CLI config of the provider mirror (make provider)}"
export TF_CLI_CONFIG_FILE CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
readonly OUR_SOURCE="terraform-provider-istio/istio"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
passed=0

fail() { echo "FAIL $1: $2" >&2; failed+=("$1"); }
pass() { echo "ok   $1: $2"; passed=$((passed + 1)); }

# init + validate in the copy under $work (the clone stays clean of .terraform/ and lock files),
# with the CLI in $3 (default $TERRAFORM).
validate() {
  local dir="$1" label="$2" cli="${3:-$TERRAFORM}" out
  if ! out="$(cd "$work/$dir" && "$cli" init -backend=false -input=false -no-color 2>&1)"; then
    fail "$label" "terraform init failed"; echo "$out" >&2; return
  fi
  if ! out="$(cd "$work/$dir" && "$cli" validate -no-color 2>&1)"; then
    fail "$label" "terraform validate failed"; echo "$out" >&2; return
  fi
  pass "$label" "validates"
}

# The provider sources a configuration requires, other than ours: the `source` values shaped
# like a provider address ([host/]namespace/type), not module paths or provisioner files.
other_providers() {
  grep -ho 'source *= *"[^"]*"' "$1"/*.tf | sed 's/.*"\(.*\)"/\1/' |
    grep -E '^([A-Za-z0-9.-]+/)?[A-Za-z0-9_-]+/[A-Za-z0-9_-]+$' | grep -v "^$OUR_SOURCE\$" || true
}

check_configuration() {
  local dir="$1" others modules
  others="$(other_providers "$repo/$dir" | sort -u | paste -sd, -)"
  if [[ -z "$others" ]]; then
    validate "$dir" "$dir"
    return
  fi
  modules="$(grep -ho 'source *= *"\.[^"]*"' "$repo/$dir"/*.tf | sed 's/.*"\(.*\)"/\1/' || true)"
  if [[ -z "$modules" ]]; then
    fail "$dir" "needs $others, which cannot be installed offline, and calls no local module to validate its non-cloud part"
    return
  fi
  local module
  for module in $modules; do
    [[ -d "$repo/$dir/$module" ]] || { fail "$dir" "calls module $module, which does not exist"; continue; }
  done
  pass "$dir" "needs $others: fmt only; its non-cloud part is module(s) $(echo $modules | tr ' ' ,), validated on their own"
}

# The reference-page snippets, merged into one configuration with the provider required.
check_snippets() {
  local merged="$work/snippets" file
  mkdir -p "$merged"
  printf 'terraform {\n  required_providers {\n    istio = { source = "%s" }\n  }\n}\n' "$OUR_SOURCE" >"$merged/versions.tf"
  for file in "$repo"/examples/resources/*/*.tf "$repo"/examples/data-sources/*/*.tf; do
    cp "$file" "$merged/$(basename "$(dirname "$file")")_$(basename "$file")"
  done
  validate snippets "examples/resources + examples/data-sources (reference-page snippets, together)"

  # Terraform 1.0.3 does not know `ephemeral` blocks: these validate with a newer CLI.
  [[ -n "$(ls "$repo"/examples/ephemeral-resources/*/*.tf 2>/dev/null)" ]] || return 0
  if [[ -z "${TERRAFORM_EPHEMERAL:-}" ]]; then
    fail "examples/ephemeral-resources" "TERRAFORM_EPHEMERAL must name a Terraform >= 1.11 to validate them"
    return
  fi
  cp -R "$merged" "$work/snippets-ephemeral"
  rm -rf "$work/snippets-ephemeral/.terraform" "$work/snippets-ephemeral/.terraform.lock.hcl"
  for file in "$repo"/examples/ephemeral-resources/*/*.tf; do
    cp "$file" "$work/snippets-ephemeral/$(basename "$(dirname "$file")")_$(basename "$file")"
  done
  validate snippets-ephemeral "examples/ephemeral-resources with the other snippets ($("$TERRAFORM_EPHEMERAL" version | sed -n 1p))" "$TERRAFORM_EPHEMERAL"
}

main() {
  cp -R "$repo/examples" "$work/"

  if out="$("$TERRAFORM" fmt -check -recursive -diff -no-color "$repo/examples" 2>&1)"; then
    pass "examples/" "terraform fmt -check"
  else
    fail "examples/" "terraform fmt -check (run: terraform fmt -recursive examples)"; echo "$out" >&2
  fi

  local dir
  while IFS= read -r dir; do
    case "$dir" in examples/resources/* | examples/data-sources/* | examples/ephemeral-resources/*) continue ;; esac
    check_configuration "$dir"
  done < <(cd "$repo" && find examples -name '*.tf' -printf '%h\n' | sort -u)
  check_snippets

  if out="$("$repo/acceptance-tests/tools/guides.sh" --check 2>&1)"; then
    pass "docs/guides/" "code blocks match the example files they name"
  else
    fail "docs/guides/" "out of date with examples/ (run: acceptance-tests/tools/guides.sh --write)"; echo "$out" >&2
  fi

  echo "examples-check: ${passed} passed, ${#failed[@]} failed"
  [[ ${#failed[@]} -eq 0 ]]
}

main
