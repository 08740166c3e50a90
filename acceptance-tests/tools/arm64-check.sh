#!/usr/bin/env bash
# Usage: arm64-check.sh VERSION
#
# The linux_arm64 release zip works, not just builds: `make test-matrix` runs this (a
# cross build takes about as long as the native release build, too long for `make test`).
#
#   1. release.sh builds the linux_arm64 zip (PLATFORMS=linux_arm64), which checks its ELF
#      machine and asks the binary its version through qemu-user;
#   2. the binary from the zip is started with --debug under qemu-aarch64, and Terraform
#      1.0.3 (amd64) talks protocol 6 to it through TF_REATTACH_PROVIDERS: init, validate
#      of a configuration using every resource and data source, and `providers schema -json`;
#   3. that schema must equal the one the native (amd64) binary from the filesystem mirror
#      serves for the same configuration.
#
# Environment: TFPI_CACHE, TF_CLI_CONFIG_FILE (the mirror's CLI config, written by
# make provider), TFPI_TERRAFORM_1_0_3. Needs apt-get for qemu-user when it is missing.
set -euo pipefail

version="$1"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${TFPI_CACHE:-$HOME/.cache/terraform-provider-istio}"
terraform="${TFPI_TERRAFORM_1_0_3:?TFPI_TERRAFORM_1_0_3 is not set (make setup writes it to tools.env)}"
die() { echo "arm64-check: $*" >&2; exit 1; }

if ! command -v qemu-aarch64 >/dev/null || [[ ! -d /usr/aarch64-linux-gnu/lib ]]; then
  command -v apt-get >/dev/null || die "qemu-aarch64 is missing and there is no apt-get to install qemu-user"
  echo "arm64-check: installing qemu-user and the arm64 C library (Debian)" >&2
  apt-get update -qq >&2 || die "apt-get update failed"
  apt-get install -y -qq qemu-user libc6-arm64-cross >&2 || die "apt-get install qemu-user libc6-arm64-cross failed"
fi

out="$cache/release-arm64"
PLATFORMS=linux_arm64 "$repo/acceptance-tests/tools/release.sh" "$version" "$out" >&2
zip="$out/terraform-provider-istio_${version}_linux_arm64.zip"
[[ -f "$zip" ]] || die "release.sh wrote no $zip"

work="$(mktemp -d)"
provider_pid=""
cleanup() {
  [[ -n "$provider_pid" ]] && kill "$provider_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$work/bin"
binary="$work/bin/terraform-provider-istio_v$version"
chmod +x "$binary"

# Every resource and data source, so validate and the schema cover them all; nothing here
# reaches a cluster.
mkdir -p "$work/config"
cat >"$work/config/main.tf" <<'TF'
terraform {
  required_providers {
    istio = { source = "terraform-provider-istio/istio" }
  }
}
provider "istio" {}
data "istio_mesh" "this" {}
resource "istio_workload_group" "app" {
  name      = "app"
  namespace = "apps"
  template {
    service_account = "app"
    ports           = { http = 8080 }
  }
}
resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.app.id
}
resource "istio_mesh_service" "app" {
  name      = "app"
  namespace = "apps"
  selector  = { app = "app" }
  ports {
    name        = "http"
    port        = 80
    target_port = "8080"
  }
}
TF

# The arm64 provider under qemu, in debug mode: it prints the line Terraform reattaches with.
qemu-aarch64 -L /usr/aarch64-linux-gnu "$binary" --debug >"$work/provider.out" 2>"$work/provider.err" &
provider_pid=$!
reattach=""
for _ in $(seq 1 300); do
  reattach="$(sed -n "s/^[[:space:]]*TF_REATTACH_PROVIDERS='\(.*\)'$/\1/p" "$work/provider.out" | head -1)"
  [[ -n "$reattach" ]] && break
  kill -0 "$provider_pid" 2>/dev/null || { cat "$work/provider.err" >&2; die "the arm64 provider exited before it was ready"; }
  sleep 0.2
done
[[ -n "$reattach" ]] || die "the arm64 provider printed no TF_REATTACH_PROVIDERS line within 60 s"

schema() {
  (cd "$work/config" && rm -rf .terraform .terraform.lock.hcl &&
    "$terraform" init -input=false -no-color >/dev/null &&
    "$terraform" validate -no-color >&2 &&
    "$terraform" providers schema -json)
}
# An empty mirror: Terraform can reach a provider only through the reattach line, so this
# cannot pass on the native binary.
mkdir -p "$work/empty-mirror"
printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' "$work/empty-mirror" >"$work/empty.tfrc"
TF_CLI_CONFIG_FILE="$work/empty.tfrc" TF_REATTACH_PROVIDERS="$reattach" schema >"$work/arm64.json" || die "Terraform could not use the arm64 provider (see above)"
(unset TF_REATTACH_PROVIDERS; schema) >"$work/amd64.json" || die "Terraform could not use the native provider from the mirror (see above)"

python3 - "$work/arm64.json" "$work/amd64.json" <<'PY'
import json, sys
arm64, amd64 = (json.load(open(p))["provider_schemas"] for p in sys.argv[1:3])
def one(schemas):
    [(address, schema)] = schemas.items()
    return address, schema
(arm_addr, arm), (amd_addr, amd) = one(arm64), one(amd64)
kinds = ("resource_schemas", "data_source_schemas")
names = {k: sorted(arm.get(k, {})) for k in kinds}
if arm != amd:
    sys.exit(f"arm64-check: the arm64 provider's schema differs from the native one ({arm_addr} vs {amd_addr})")
if not names["resource_schemas"] or not names["data_source_schemas"]:
    sys.exit(f"arm64-check: the schema has no resources or data sources: {names}")
print(f"arm64-check: linux_arm64 {arm_addr} serves the native schema through Terraform 1.0.3: "
      f"resources {', '.join(names['resource_schemas'])}; data sources {', '.join(names['data_source_schemas'])}")
PY
