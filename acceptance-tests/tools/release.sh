#!/usr/bin/env bash
# Usage: release.sh VERSION OUT_DIR
#
# Builds the release of terraform-provider-istio VERSION into OUT_DIR, in the layout the
# public registry and Terraform's provider mirrors expect:
#
#   terraform-provider-istio_<v>_linux_amd64.zip      the binary terraform-provider-istio_v<v>
#   terraform-provider-istio_<v>_linux_arm64.zip      (cross-compiled, see build_linux_arm64)
#   terraform-provider-istio_<v>_manifest.json        protocol versions the registry announces
#   terraform-provider-istio_<v>_SHA256SUMS           sha256sum of the zips and the manifest
#   terraform-provider-istio_<v>_SHA256SUMS.sig       its detached GPG signature, when GPG_KEY_ID names
#                                                     a secret key of gpg's keyring (the registry needs it)
#   mirror/<host>/terraform-provider-istio/istio/     for registry.terraform.io and registry.opentofu.org:
#       terraform-provider-istio_<v>_<os>_<arch>.zip  a packed filesystem mirror, and beside it
#       index.json, <v>.json                          a network-mirror index (h1: and zh: hashes)
#                                                     that any static file server can serve.
#
# PLATFORMS (default "linux_amd64 linux_arm64") narrows the platforms. Zips are
# reproducible: fixed timestamps and modes, so the same binary gives the same zh: hash.
# Needs: cargo, python3; for linux_arm64 also apt-get (Debian) and root, see below.
set -euo pipefail

readonly NAME=terraform-provider-istio
readonly ADDR_PATH=terraform-provider-istio/istio
readonly MIRROR_HOSTS="registry.terraform.io registry.opentofu.org"
readonly PROTOCOL_VERSIONS='["6.0"]'

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${TFPI_CACHE:-$HOME/.cache/terraform-provider-istio}"
target_dir="${CARGO_TARGET_DIR:-$cache/cargo-target}"
platforms="${PLATFORMS:-linux_amd64 linux_arm64}"

die() { echo "release: $*" >&2; exit 1; }

# ---- checks -------------------------------------------------------------------

check_version() {
  local version="$1"
  [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "VERSION '$version' is not x.y.z"
  local cargo_version
  cargo_version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)"
  [[ "$cargo_version" == "$version" ]] ||
    die "Cargo.toml has version $cargo_version, not $version: the binary reports Cargo.toml's version; set it to $version first"
  local heading
  heading="$(grep -m1 '^## ' "$repo/CHANGELOG.md" || true)"
  [[ "$heading" =~ ^##\ \[?${version//./\\.}\]?([^0-9.]|$) ]] ||
    die "CHANGELOG.md must start with a '## $version' section (its first section is '${heading:-none}')"
}

# The binary must say the version it is released as. A binary for this machine's
# architecture is asked; a foreign one is asked through qemu-user when installed, else
# its ELF machine and the version string it carries are checked.
check_binary() {
  local binary="$1" version="$2" arch="$3"
  local machine expected_machine
  machine="$(od -An -tu2 -j18 -N2 "$binary" | tr -d ' ')"
  case "$arch" in
    amd64) expected_machine=62 ;;
    arm64) expected_machine=183 ;;
    *) die "unknown architecture $arch" ;;
  esac
  [[ "$machine" == "$expected_machine" ]] || die "$binary is not a linux_$arch executable (ELF machine $machine)"
  local said
  if [[ "$arch" == "$(host_arch)" ]]; then
    said="$("$binary" --version)"
  elif [[ "$arch" == arm64 ]] && command -v qemu-aarch64 >/dev/null && [[ -d /usr/aarch64-linux-gnu ]]; then
    said="$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$binary" --version)"
  else
    echo "release: no way to run a linux_$arch binary here (install qemu-user); checking the version string it carries" >&2
    said="$(grep -a -o -m1 "$NAME $version" "$binary" | head -1 || true)"
  fi
  [[ "$said" == "$NAME $version" ]] || die "$binary --version says '$said', expected '$NAME $version'"
}

host_arch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# ---- builds ---------------------------------------------------------------------

# Prints the path of the built binary for one platform.
build() {
  local platform="$1"
  if [[ "$platform" == "linux_$(host_arch)" ]]; then
    build_native
  else
    case "$platform" in
      linux_arm64) build_linux_arm64 ;;
      *) die "no cross build for $platform (supported: linux_amd64, linux_arm64)" ;;
    esac
  fi
}

build_native() {
  (cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release --locked --bin "$NAME" >&2)
  echo "$target_dir/release/$NAME"
}

# Rust's aarch64 standard library normally comes from rustup's download server, which
# is not a package registry. Debian's packages have one: Debian's rustc with its
# libstd-rust-dev for arm64, from the newest Debian suite (its rustc must be at least
# Cargo.toml's rust-version). They are unpacked into the cache, not installed, and
# Debian's rustc runs on its own C library through its own loader. Linking and aws-lc's
# C code use Debian's aarch64 cross gcc from this machine's own suite.
readonly DEBIAN_RUST_SUITE="${DEBIAN_RUST_SUITE:-sid}"
readonly ARM64_TRIPLE=aarch64-unknown-linux-gnu

build_linux_arm64() {
  local rustc
  rustc="$(debian_rustc_for_arm64)"
  ensure_cross_gcc
  (cd "$repo" &&
    CARGO_TARGET_DIR="$cache/cargo-target-aarch64" RUSTC="$rustc" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    cargo build --release --locked --target "$ARM64_TRIPLE" --bin "$NAME" >&2)
  echo "$cache/cargo-target-aarch64/$ARM64_TRIPLE/release/$NAME"
}

ensure_cross_gcc() {
  command -v aarch64-linux-gnu-gcc >/dev/null && return
  command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]] ||
    die "linux_arm64 needs Debian's aarch64 cross compiler: apt-get install gcc-aarch64-linux-gnu (or PLATFORMS=linux_amd64)"
  echo "release: installing Debian's gcc-aarch64-linux-gnu" >&2
  apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross >&2
}

# Prints the path of a rustc wrapper for Debian's rustc, unpacking it first if needed.
debian_rustc_for_arm64() {
  command -v apt-get >/dev/null ||
    die "linux_arm64: Rust's aarch64 standard library comes from Debian's packages here and this machine has no apt-get (or PLATFORMS=linux_amd64)"
  local apt_dir="$cache/debian-$DEBIAN_RUST_SUITE-apt"
  local apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir/cache" -o APT::Architectures::=amd64 -o APT::Architectures::=arm64
    -o APT::Sandbox::User=root -q
  )
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  touch "$apt_dir/status"
  echo "deb http://deb.debian.org/debian $DEBIAN_RUST_SUITE main" >"$apt_dir/sources.list"
  # The package lists are refreshed whenever the rustc they list is not unpacked yet, so a
  # fresh cache never asks for a version the suite has dropped.
  local version
  version="$(apt-cache "${apt_opts[@]}" show rustc 2>/dev/null | sed -n 's/^Version: //p' | head -1 || true)"
  if [[ -z "$version" || ! -f "$cache/debian-rust-$version/.complete" ]]; then
    apt-get "${apt_opts[@]}" update >&2 ||
      die "linux_arm64: cannot read Debian $DEBIAN_RUST_SUITE's package lists (apt-get update failed; see above)"
    version="$(apt-cache "${apt_opts[@]}" show rustc | sed -n 's/^Version: //p' | head -1 || true)"
  fi
  [[ -n "$version" ]] || die "linux_arm64: Debian $DEBIAN_RUST_SUITE has no rustc package"
  local root="$cache/debian-rust-$version"
  if [[ ! -f "$root/.complete" ]]; then
    echo "release: unpacking Debian's rustc $version and its arm64 standard library into $root" >&2
    rm -rf "$root" "$apt_dir/debs"
    mkdir -p "$root" "$apt_dir/debs"
    # rustc itself, the libraries it loads (the closure of the amd64 libstd-rust-dev,
    # which brings LLVM and a C library matching them), and the arm64 standard library.
    local packages
    packages="$(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
      --no-conflicts --no-breaks --no-replaces --no-enhances libstd-rust-dev:amd64 |
      grep -v '^ ' | grep -v '^<' | sort -u | tr '\n' ' ')"
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download rustc:amd64 $packages \
      libstd-rust-dev:arm64 >&2) || die "linux_arm64: apt-get download of Debian's rustc $version failed (see above)"
    local deb
    for deb in "$apt_dir/debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
    rm -rf "$apt_dir/debs"
    touch "$root/.complete"
  fi
  local wrapper="$root/rustc"
  cat >"$wrapper" <<EOF
#!/usr/bin/env bash
# Debian's rustc $version on its own C library, with its own sysroot (written by release.sh).
exec "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu" \\
  "$root/usr/bin/rustc" --sysroot "$root/usr" "\$@"
EOF
  chmod +x "$wrapper"
  "$wrapper" --version >&2 || die "linux_arm64: Debian's rustc $version does not run here"
  [[ -d "$root/usr/lib/rustlib/$ARM64_TRIPLE/lib" ]] || die "linux_arm64: Debian's libstd-rust-dev:arm64 brought no $ARM64_TRIPLE standard library"
  echo "$wrapper"
}

# ---- packaging ------------------------------------------------------------------

# A zip with one member, the binary as Terraform names it, with a fixed time and mode.
package() {
  local binary="$1" zip="$2" member="$3"
  python3 - "$binary" "$zip" "$member" <<'PY'
import sys, zipfile
binary, zip_path, member = sys.argv[1:4]
info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
info.create_system = 3  # unix, so the mode below is honoured
info.external_attr = 0o100755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(binary, "rb") as source, zipfile.ZipFile(zip_path + ".tmp", "w") as archive:
    archive.writestr(info, source.read())
PY
  mv "$zip.tmp" "$zip"
}

write_manifest() {
  printf '{\n  "version": 1,\n  "metadata": {\n    "protocol_versions": %s\n  }\n}\n' "$PROTOCOL_VERSIONS" >"$1"
}

# The packed filesystem mirror and the network-mirror index of every version in it.
# The <v>.json hashes are zh: (the zip's SHA-256) and h1: (Terraform's hash of the
# unpacked files: SHA-256 over the sorted "sha256  name" lines of the zip's files).
write_mirror() {
  local out="$1" version="$2" host dir zip
  for host in $MIRROR_HOSTS; do
    dir="$out/mirror/$host/$ADDR_PATH"
    mkdir -p "$dir"
    rm -f "$dir/${NAME}_${version}_"*.zip
    for zip in "$out/${NAME}_${version}_"*.zip; do
      cp "$zip" "$dir/"
    done
    python3 - "$dir" "$version" "$NAME" <<'PY'
import base64, glob, hashlib, json, os, sys, zipfile
mirror_dir, version, name = sys.argv[1:4]

def h1(path):
    lines = []
    with zipfile.ZipFile(path) as archive:
        for member in sorted(archive.namelist()):
            if not member.endswith("/"):
                lines.append("%s  %s\n" % (hashlib.sha256(archive.read(member)).hexdigest(), member))
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()

def zh(path):
    with open(path, "rb") as f:
        return "zh:" + hashlib.sha256(f.read()).hexdigest()

prefix = "%s_%s_" % (name, version)
archives = {}
for path in sorted(glob.glob(os.path.join(mirror_dir, prefix + "*.zip"))):
    platform = os.path.basename(path)[len(prefix):-len(".zip")]
    archives[platform] = {"url": os.path.basename(path), "hashes": [h1(path), zh(path)]}
with open(os.path.join(mirror_dir, version + ".json"), "w") as f:
    json.dump({"archives": archives}, f, indent=2)
    f.write("\n")
versions = sorted(p[:-len(".json")] for p in os.listdir(mirror_dir)
                  if p.endswith(".json") and p != "index.json")
with open(os.path.join(mirror_dir, "index.json"), "w") as f:
    json.dump({"versions": {v: {} for v in versions}}, f, indent=2)
    f.write("\n")
PY
  done
}

# The registry verifies SHA256SUMS with the public key registered for the namespace.
sign() {
  local sums="$1"
  if [[ -z "${GPG_KEY_ID:-}" ]]; then
    echo "release: GPG_KEY_ID is not set: SHA256SUMS is not signed (mirrors do not need it; the public registry does)" >&2
    return
  fi
  rm -f "$sums.sig"
  gpg --batch --yes --local-user "$GPG_KEY_ID" --detach-sign --output "$sums.sig" "$sums" ||
    die "gpg could not sign $sums with key $GPG_KEY_ID"
  gpg --batch --verify "$sums.sig" "$sums" 2>/dev/null || die "the signature of $sums does not verify"
}

# ---- main -------------------------------------------------------------------------

main() {
  [[ $# -eq 2 ]] || die "usage: release.sh VERSION OUT_DIR"
  local version="$1" out="$2"
  check_version "$version"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  rm -f "$out/${NAME}_${version}_"*  # a platform left out now must not linger from an earlier run
  local platform binary built=()
  for platform in $platforms; do
    echo "release: building $NAME $version for $platform" >&2
    binary="$(build "$platform")"
    check_binary "$binary" "$version" "${platform#*_}"
    package "$binary" "$out/${NAME}_${version}_${platform}.zip" "${NAME}_v${version}"
    built+=("$platform")
  done
  write_manifest "$out/${NAME}_${version}_manifest.json"
  (cd "$out" && sha256sum "${NAME}_${version}_"*.zip "${NAME}_${version}_manifest.json" >"${NAME}_${version}_SHA256SUMS")
  sign "$out/${NAME}_${version}_SHA256SUMS"
  write_mirror "$out" "$version"
  echo "release: $NAME $version for ${built[*]} in $out"
  (cd "$out" && cat "${NAME}_${version}_SHA256SUMS")
}

main "$@"
