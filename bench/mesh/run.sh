#!/usr/bin/env bash
# `make bench-mesh`: our provider (A) against what a user would pick instead (B: hashicorp/kubernetes
# v3.2.1 + hashicorp/local) and Terraform's own cost (the floor), on the local control plane, at
# N = 10, 100, 1000 VMs. Method and knobs: bench/README.md, "Mesh benchmark".
# Writes bench/mesh-results.md, bench/mesh-results.png and bench/mesh-results-raw.tsv.
set -euo pipefail

MESH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$MESH/../.." && pwd)
TFPI_CACHE=${TFPI_CACHE:-$HOME/.cache/terraform-provider-istio}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TFPI_CACHE/cargo-target}
SIZES=${SIZES:-10 100 1000}
ROUNDS=${ROUNDS:-3}             # alternating rounds at every N below LARGE
LARGE=${LARGE:-1000}            # from this N on, ROUNDS_LARGE rounds (time budget)
ROUNDS_LARGE=${ROUNDS_LARGE:-1}
CAP=${CAP:-300}                 # seconds one of B's terraform commands may take; past it, it is stopped
LIMIT=${LIMIT:-1800}            # the same bound for A and the floor: a safety net, not a cap to report
REACT_SIZES=${REACT_SIZES:-1 100}
REACT_SAMPLES=${REACT_SAMPLES:-3}  # reaction applies per N: enough for this many waits (N=1: 3, N=100: 1)
WHICH=${WHICH:-a b floor}       # configurations to run (a quicker check of one of them)
PEER_RAW=${PEER_RAW:-}          # with WHICH without b: B's rows from this earlier raw data file
TERRAFORM=${TERRAFORM:-$TFPI_CACHE/terraform-1.5.7/terraform}
CONTROLPLANE=${CONTROLPLANE:-$TFPI_CACHE/bin/controlplane}
PEER_B=${PEER_B:-$TFPI_CACHE/bench-mesh/bin/terraform-provider-kubernetes_v3.2.1}
LOCAL_VERSION=1.4.0
LOCAL_BIN=$TFPI_CACHE/bench-mesh/local-$LOCAL_VERSION/terraform-provider-local
RESULTS=${RESULTS:-$ROOT/bench/mesh-results.md}
RAW=${RESULTS%.md}-raw.tsv
PLOT=${RESULTS%.md}.png
KEEP=${KEEP:-0}
# User agents in the audit log: A sends "terraform-provider-istio/<version>"; B's SDKv2 half
# sends "HashiCorp/1.0 Terraform/…", its kubernetes_manifest half client-go's default (the
# binary's name) and, for /openapi/v2, Go's plain HTTP client. Nothing else on the control plane
# sends a Go-http-client agent while a command runs (the helper sends "meshbench").
AGENT_A='^terraform-provider-istio/'
AGENT_B='^(HashiCorp/|terraform-provider-kubernetes|Go-http-client/)'

log() { printf '[bench-mesh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ns() { local t=$EPOCHREALTIME; echo "${t/./}000"; }

# ---- tools -------------------------------------------------------------------------------------
[[ -x $TERRAFORM ]] || die "Terraform 1.5.7 not found at $TERRAFORM (acceptance-tests/tools/build.sh terraform-1.5.7)"
[[ -x $CONTROLPLANE ]] || die "controlplane CLI not found at $CONTROLPLANE (make setup)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed for peak RSS: apt-get install -y time"
[[ -z $PEER_RAW || -r $PEER_RAW ]] || die "PEER_RAW=$PEER_RAW is not readable"
[[ -z $PEER_RAW || " $WHICH " != *" b "* ]] || die "PEER_RAW replaces B's runs: leave b out of WHICH"
PEER_ROWS=$(if [[ -n $PEER_RAW ]]; then awk -F'\t' '$1 != "meta" && $2 == "b"' "$PEER_RAW"; fi)
PEER_FROM=$(if [[ -n $PEER_RAW ]]; then awk -F'\t' '$1 == "meta" && $2 == "date" { d = $3 } $1 == "meta" && $2 == "load" { l = $3 } END { print d " (load " l ")" }' "$PEER_RAW"; fi)
[[ -x $PEER_B ]] || die "peer B not found at $PEER_B: build hashicorp/terraform-provider-kubernetes v3.2.1 from its tagged source (bench/README.md, \"Peer B\") and put the binary there, or set PEER_B"
for tool in go cargo python3 timeout; do command -v $tool >/dev/null || die "$tool is needed"; done

WORK=$(mktemp -d "$TFPI_CACHE/run/bench-mesh.XXXXXX" 2>/dev/null || { mkdir -p "$TFPI_CACHE/run" && mktemp -d "$TFPI_CACHE/run/bench-mesh.XXXXXX"; })
mkdir -p "$WORK"/{bin,tf,log,rss,health,bundles,plugins}
HEALTH_PID=
cleanup() {
  [[ -n $HEALTH_PID ]] && kill "$HEALTH_PID" 2>/dev/null || true
  "$CONTROLPLANE" stop --run-dir "$WORK/controlplane" >/dev/null 2>&1 || true
  if [[ $KEEP == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
unset TF_LOG TF_LOG_CORE TF_LOG_PROVIDER TF_LOG_PATH TF_CLI_ARGS TF_DATA_DIR TF_PLUGIN_CACHE_DIR
: >"$WORK/terraformrc"
export TF_CLI_CONFIG_FILE=$WORK/terraformrc
T_START=$EPOCHREALTIME
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- builds (all cached) -----------------------------------------------------------------------
if [[ ${SKIP_CARGO:-0} == 1 ]]; then
  log "SKIP_CARGO=1: the floor's test provider in $CARGO_TARGET_DIR/release as it is"
else
  log "cargo build: tfplug test provider (the floor); the provider itself comes from make provider"
  (cd "$ROOT" && cargo build --release --features tfplug-test-provider --bin terraform-provider-tfplugtest)
fi
if [[ ! -x $LOCAL_BIN ]]; then
  log "go install hashicorp/local v$LOCAL_VERSION from the Go module proxy (once)"
  GOBIN=$(dirname "$LOCAL_BIN") go install -p 2 -trimpath "github.com/terraform-providers/terraform-provider-local@v$LOCAL_VERSION"
fi
(cd "$MESH" && go build -o "$WORK/bin/meshbench" .)
VENV=$TFPI_CACHE/bench-mesh/venv
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  log "python venv with matplotlib (PyPI) for the plot, once"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q matplotlib
fi
MB=$WORK/bin/meshbench
# Copies, so a concurrent build cannot swap a binary mid-run.
cp "$CARGO_TARGET_DIR/release/terraform-provider-istio" "$CARGO_TARGET_DIR/release/terraform-provider-tfplugtest" \
  "$PEER_B" "$LOCAL_BIN" "$WORK/bin/"

# Each provider Terraform starts is a wrapper: GNU time records the provider's ru_maxrss (its
# VmHWM at exit, KiB) and its user and system CPU seconds into $BENCH_RSS_DIR/<provider>, one
# line per launch.
install_provider() { # host-path binary-name version real-binary
  local dir=$WORK/plugins/registry.terraform.io/$1/$3/linux_amd64 name
  name=$(basename "$1")
  mkdir -p "$dir"
  printf '#!/bin/sh\nexec /usr/bin/time -a -o "${BENCH_RSS_DIR:-/tmp}/%s" -f "%%M %%U %%S" %q "$@"\n' "$name" "$4" >"$dir/$2"
  chmod +x "$dir/$2"
}
install_provider terraform-provider-istio/istio terraform-provider-istio_v0.1.0 0.1.0 "$WORK/bin/terraform-provider-istio"
install_provider hashicorp/kubernetes terraform-provider-kubernetes_v3.2.1 3.2.1 "$WORK/bin/$(basename "$PEER_B")"
install_provider hashicorp/local terraform-provider-local_v$LOCAL_VERSION $LOCAL_VERSION "$WORK/bin/terraform-provider-local"
install_provider tfplug/tfplugtest terraform-provider-tfplugtest_v0.1.0 0.1.0 "$WORK/bin/terraform-provider-tfplugtest"

# ---- control plane ------------------------------------------------------------------------------
log "starting the local control plane"
"$CONTROLPLANE" start --run-dir "$WORK/controlplane" >"$WORK/log/controlplane-start.log" 2>&1 \
  || { tail -30 "$WORK/log/controlplane-start.log"; die "control plane did not start"; }
set -a; . "$WORK/controlplane/env"; set +a
[[ -n ${AUDIT_LOG:-} ]] || die "the control plane's env file has no AUDIT_LOG"

# ---- raw data -------------------------------------------------------------------------------------
DATA=$WORK/data.tsv
WINDOWS=$WORK/windows.tsv
: >"$DATA"
: >"$WINDOWS"
record() { local IFS=$'\t'; echo "$*" >>"$DATA"; }
agent_of() { case $1 in a) echo "$AGENT_A" ;; b) echo "$AGENT_B" ;; *) echo '^-none-$' ;; esac; }

# ---- workloads ------------------------------------------------------------------------------------
namespace_of() { echo "bench-$1-$2"; }
# workdir WHICH N [SUFFIX]: a Terraform working directory for one configuration at one N.
workdir() {
  local which=$1 n=$2 dir=$WORK/tf/$1-$2${3:-}
  if [[ ! -d $dir ]]; then
    mkdir -p "$dir"
    cp "$MESH/configs/$which/main.tf" "$dir/"
    cat >"$dir/terraform.tfvars" <<EOF
n          = $n
namespace  = "$(namespace_of "$which" "$n")"
kubeconfig = "$KUBECONFIG"
bundle_dir = "$WORK/bundles/$which-$n${3:-}"
EOF
    if [[ $which == floor ]]; then mkdir -p "$WORK/store-$n"; else "$MB" prepare -namespace "$(namespace_of "$which" "$n")"; fi
    (cd "$dir" && "$TERRAFORM" init -input=false -no-color -plugin-dir="$WORK/plugins" >"$dir/init.log" 2>&1) \
      || { cat "$dir/init.log"; die "terraform init failed for $which"; }
  fi
  echo "$dir"
}

# run_tf DIR LABEL WHICH N ROUND CMD WANT_RC terraform-args...: one timed command. Records
# wall time and exit code, peak RSS per provider, and the audit window for the API counts.
# Returns 0, or 124 when the command hit the time cap.
run_tf() {
  local dir=$1 label=$2 which=$3 n=$4 round=$5 cmd=$6 want=$7 rc=0 t0 t1 rss f
  shift 7
  rss=$WORK/rss/$label
  mkdir -p "$rss"
  t0=$(now_ns)
  (cd "$dir" && TFPLUGTEST_STORE=$WORK/store-$n BENCH_RSS_DIR=$rss \
    timeout --signal=INT --kill-after=60 "$(cap_of "$which")" "$TERRAFORM" "$@" -input=false -no-color >"$WORK/log/$label.out" 2>&1) || rc=$?
  t1=$(now_ns)
  record time "$which" "$n" "$round" "$cmd" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" "$rc"
  for f in "$rss"/*; do
    [[ -e $f ]] || continue
    record rss "$which" "$n" "$round" "$cmd" "$(basename "$f")" \
      "$(awk '/^[0-9]+ / && $1 + 0 > m { m = $1 + 0 } END { print m + 0 }' "$f")" "$(grep -cE '^[0-9]+ ' "$f" || true)"
    # CPU of every launch of that provider during the command: what the provider itself costs.
    record cpu "$which" "$n" "$round" "$cmd" "$(basename "$f")" \
      "$(awk '/^[0-9]+ / { s += $2 + $3 } END { printf "%.2f", s }' "$f")"
  done
  printf '%s\t%s\t%s\t%s\n' "$which|$n|$round|$cmd" "$t0" "$t1" "$(agent_of "$which")" >>"$WINDOWS"
  if [[ $rc == 124 || $rc == 137 ]]; then
    log "$label: stopped at the time cap of $(cap_of "$which") s"
    record capped "$which" "$n" "$round" "$cmd" "$(cap_of "$which")"
    return 124
  fi
  if [[ $rc != "$want" ]]; then
    tail -30 "$WORK/log/$label.out" >&2
    die "$label: terraform $* exited $rc (expected $want)"
  fi
}

# The time cap is B's (the issue allows stopping B at N = 1000); A and the floor only have a
# safety bound, so their figures are always complete.
cap_of() { if [[ $1 == b ]]; then echo "$CAP"; else echo "$LIMIT"; fi; }

start_health() { # namespace record [hold]
  "$MB" health -namespace "$1" -record "$2" ${3:+-hold "$3" -settle 2s} 2>>"$WORK/log/health.log" &
  HEALTH_PID=$!
}
stop_health() {
  [[ -n $HEALTH_PID ]] || return 0
  kill "$HEALTH_PID" 2>/dev/null || true
  wait "$HEALTH_PID" 2>/dev/null || true
  HEALTH_PID=
}

files_in() { find "$1" -type f 2>/dev/null | wc -l; }

# After a command stopped at the cap: throw the namespace, state and files away.
reset_workload() { # which n dir
  stop_health
  [[ $1 == floor ]] || { "$MB" drop -namespace "$(namespace_of "$1" "$2")" && "$MB" prepare -namespace "$(namespace_of "$1" "$2")"; }
  rm -rf "$3"/terraform.tfstate* "$WORK/bundles/$1-$2" "$WORK/store-$2"
  mkdir -p "$WORK/store-$2"
}

declare -A CAPPED
# cycle WHICH N ROUND: apply (waits on), no-op plan (refresh), destroy.
cycle() {
  local which=$1 n=$2 round=$3 dir label
  dir=$(workdir "$which" "$n")
  label=$which-$n-$round
  log "round $round, N=$n: $which"
  [[ $which == floor ]] || start_health "$(namespace_of "$which" "$n")" "$WORK/health/$label.tsv"
  if ! run_tf "$dir" "$label-apply" "$which" "$n" "$round" apply 0 apply -auto-approve; then
    CAPPED[$which-$n]=1
    reset_workload "$which" "$n" "$dir"
    return
  fi
  # Terraform writes the whole state file after every resource it applies: its size per
  # resource is part of what apply costs at large N, whoever the provider is.
  record state "$which" "$n" "$round" "$(stat -c %s "$dir/terraform.tfstate")"
  if [[ $which != floor ]]; then
    local files
    files=$(files_in "$WORK/bundles/$which-$n")
    [[ $files == $((5 * n)) ]] || die "$label: $files bundle files after apply, want $((5 * n))"
  fi
  run_tf "$dir" "$label-plan" "$which" "$n" "$round" plan 0 plan -detailed-exitcode \
    || { CAPPED[$which-$n]=1; reset_workload "$which" "$n" "$dir"; return; }
  run_tf "$dir" "$label-destroy" "$which" "$n" "$round" destroy 0 destroy -auto-approve \
    || { CAPPED[$which-$n]=1; reset_workload "$which" "$n" "$dir"; return; }
  stop_health
  [[ $which == floor || $(files_in "$WORK/bundles/$which-$n") == 0 ]] || die "$label: bundle files left after destroy"
}

# ---- timed rounds -----------------------------------------------------------------------------------
ORDERS=("a b floor" "b floor a" "floor a b")
for n in $SIZES; do
  rounds=$ROUNDS
  ((n >= LARGE)) && rounds=$ROUNDS_LARGE
  for round in $(seq "$rounds"); do
    for which in ${ORDERS[$(((round - 1) % 3))]}; do
      [[ " $WHICH " == *" $which "* ]] || continue
      [[ -z ${CAPPED[$which-$n]:-} ]] || { log "round $round, N=$n: $which skipped (stopped at the cap before)"; continue; }
      cycle "$which" "$n" "$round"
    done
  done
done

# ---- health-wait reaction ----------------------------------------------------------------------------
# All waits of one apply run at once (-parallelism above the number of resources); the helper
# holds back until every entry exists and the waits have started, then writes Healthy=True on
# each; reaction = "Creation complete" line of that instance − instant its write was sent.
for n in $REACT_SIZES; do
  for round in $(seq $(((REACT_SAMPLES + n - 1) / n))); do
    for which in a b; do
      [[ " $WHICH " == *" $which "* && -z ${CAPPED[$which-$n]:-} ]] || continue
      dir=$(workdir "$which" "$n" -react)
      label=$which-$n-$round-react
      log "reaction round $round, N=$n: $which"
      start_health "$(namespace_of "$which" "$n")" "$WORK/health/$label.tsv" "$n"
      mkdir -p "$WORK/rss/$label"
      rc=0
      # A logs the instant each wait returns at INFO (with its own timestamp), so its
      # reaction is also measured at the wait itself, before Terraform handles the result.
      tflog=(); [[ $which == a ]] && tflog=(TF_LOG_PROVIDER=INFO "TF_LOG_PATH=$WORK/log/$label.tflog")
      (cd "$dir" && set -o pipefail && env "${tflog[@]}" BENCH_RSS_DIR="$WORK/rss/$label" timeout --signal=INT "$(cap_of "$which")" \
        "$TERRAFORM" apply -auto-approve -input=false -no-color -parallelism=$((7 * n + 10)) 2>&1 | "$MB" stamp >"$WORK/log/$label.out") || rc=$?
      stop_health
      [[ $rc == 0 ]] || { tail -20 "$WORK/log/$label.out" >&2; die "$label: apply exited $rc"; }
      resource=istio_vm_registration.vm
      [[ $which == b ]] && resource=kubernetes_manifest.entry
      "$MB" reaction -stamped "$WORK/log/$label.out" -health "$WORK/health/$label.tsv" -resource "$resource" |
        while IFS=$'\t' read -r index ms; do record react "$which" "$n" "$round" "$index" "$ms"; done
      if [[ $which == a ]]; then
        "$MB" waitreturn -log "$WORK/log/$label.tflog" -health "$WORK/health/$label.tsv" |
          while IFS=$'\t' read -r index ms; do record react_wait "$which" "$n" "$round" "$index" "$ms"; done
      fi
      run_tf "$dir" "$label-destroy" "$which" "$n" "$round" react_destroy 0 destroy -auto-approve -parallelism=$((7 * n + 10))
    done
  done
done
T_END=$EPOCHREALTIME
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- API requests from the audit log -----------------------------------------------------------------
sleep 2 # the last watches' ResponseComplete events
"$MB" audit -log "$AUDIT_LOG" -windows "$WINDOWS" | while IFS=$'\t' read -r key verb what count; do
  IFS='|' read -r which n round cmd <<<"$key"
  record api "$which" "$n" "$round" "$cmd" "$verb" "$what" "$count"
done

# ---- facts about this run ------------------------------------------------------------------------------
meta() { record meta "$1" "$2"; }
meta date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
meta cpu "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
meta kernel "$(uname -sr)"
meta memory "$(free -g | awk '/^Mem:/ { printf "total %s GiB, available %s GiB", $2, $7 }')"
meta load "start $LOAD_START, end $LOAD_END"
meta terraform "$("$TERRAFORM" version | head -1)"
meta provider_a "terraform-provider-istio $(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
meta peer_b "$(go version -m "$PEER_B" | awk 'NR == 2 { print $2 }') built with $(go version "$PEER_B" | awk '{ print $2 }'), sha256 $(sha256sum "$PEER_B" | cut -c1-16)…"
meta peer_b_deps "$(go version -m "$PEER_B" | awk '$1 == "dep" && ($2 ~ /terraform-plugin-(framework|go|sdk)/ || $2 == "k8s.io/client-go") { printf "%s %s; ", $2, $3 }')"
meta local "hashicorp/local v$LOCAL_VERSION (Go module proxy)"
meta sizes "$SIZES"
meta rounds "$ROUNDS (N ≥ $LARGE: $ROUNDS_LARGE)"
meta react "N = $REACT_SIZES; ≥ $REACT_SAMPLES waits per N (one apply each round)"
meta cap "$CAP"
meta runtime "$(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.0f", b - a }')"

if [[ -n $PEER_RAW ]]; then
  # B's code is not ours and did not change: its figures may come from an earlier run on this
  # machine. The page says so; ratios to B then compare medians of two runs.
  printf '%s\n' "$PEER_ROWS" >>"$DATA"
  meta peer_from "$PEER_FROM"
fi
cp "$DATA" "$RAW"
log "raw data: $RAW"
"$VENV/bin/python" "$MESH/report.py" "$RAW" "$RESULTS" "$PLOT"
log "wrote $RESULTS and $PLOT in $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
