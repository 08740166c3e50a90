#!/usr/bin/env bash
# The acceptance stage of make test: every `go test` run of the suite, ACC_JOBS at a time.
#
# Each run starts its own control plane (about 10 s), so runs do not share state and can
# overlap; most of a run's wall time is spent waiting on Terraform, kube-apiserver and istiod,
# which is why overlapping them on two cores shortens the stage. A run's output is kept in a
# file and printed in one block when the run ends, behind its "==> acceptance tests:" header,
# so the output reads (and acceptance-tests/tools/summary.py counts it) as if the runs had
# been made one after another.
#
# The runs, longest first so the slots fill evenly:
#   - Terraform 1.0.3 on the first profile of ACC_PROFILES: every package, without the fault
#     tests (ACC_FAULT_TESTS) and the long tests of ACC_SPLIT_TESTS;
#   - Terraform 1.0.3 on the same profile: the fault tests, in a run of their own, because
#     they restart kube-apiserver and stop istiod under the tests beside them;
#   - Terraform 1.0.3 on the same profile: ACC_SPLIT_TESTS, so that no run is much longer
#     than the others;
#   - every other CLI of ACC_CLI_PATHS on the first profile, without ACC_CLI_SKIP;
#   - Terraform 1.0.3 on every other profile of ACC_PROFILES: the VM tests (ACC_VM_TESTS);
#   - Terraform 1.0.3 on every profile of ACC_NAMESPACE_PROFILES: ACC_NAMESPACE_TESTS (istiod
#     outside istio-system, end to end);
#   - Terraform 1.0.3 on every profile of ACC_EXAMPLE_PROFILES: TestAccExamples only (the
#     profiles an example of examples/ is written for that ACC_PROFILES lacks).
#
# Environment: TFPI_TERRAFORM_1_0_3, ACC_CLI_PATHS, ACC_PROFILES, ACC_EXAMPLE_PROFILES,
# ACC_NAMESPACE_PROFILES, ACC_NAMESPACE_TESTS, ACC_VM_TESTS, ACC_CLI_SKIP, ACC_FAULT_TESTS, ACC_SPLIT_TESTS, ACC_JOBS, GO_TEST_FLAGS, TFPI_CACHE.
# Exits 1 when any run failed, after every run has ended.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"

# run_one INDEX CLI PROFILE PACKAGES FLAG REGEX: one go test run, printed as one block.
run_one() {
  local index="$1" cli="$2" profile="$3" packages="$4" flag="$5" regex="$6"
  local log="$RUNS_DIR/$index.log" name
  name="$("$cli" version 2>/dev/null | sed -n 1p || true)"
  {
    echo "==> acceptance tests: $name, profile $profile, $packages $flag '$regex'"
    if ! (cd "$here" && TF_ACC_TERRAFORM_PATH="$cli" TFPI_PROFILE="$profile" \
          go test $GO_TEST_FLAGS "$flag" "$regex" "$packages"); then
      echo "$name on $profile" >>"$RUNS_DIR/failed"
    fi
  } >"$log" 2>&1
  flock "$RUNS_DIR/print.lock" cat "$log"
}

if [[ "${1:-}" == --one ]]; then
  shift
  IFS='|' read -r index cli profile packages flag regex <<<"$1"
  run_one "$index" "$cli" "$profile" "$packages" "$flag" "$regex"
  exit 0
fi

: "${TFPI_TERRAFORM_1_0_3:?tools.env has no Terraform 1.0.3; run make setup}"
read -r -a profiles <<<"$ACC_PROFILES"
first="${profiles[0]}"
tf="$TFPI_TERRAFORM_1_0_3"

runs=("$tf|$first|./...|-skip|$ACC_FAULT_TESTS|$ACC_SPLIT_TESTS"
  "$tf|$first|.|-run|$ACC_FAULT_TESTS"
  "$tf|$first|.|-run|$ACC_SPLIT_TESTS")
for cli in ${ACC_CLI_PATHS:-}; do
  runs+=("$cli|$first|.|-skip|$ACC_CLI_SKIP")
done
for profile in "${profiles[@]:1}"; do
  runs+=("$tf|$profile|.|-run|$ACC_VM_TESTS")
done
for profile in ${ACC_NAMESPACE_PROFILES:-}; do
  runs+=("$tf|$profile|.|-run|$ACC_NAMESPACE_TESTS")
done
for profile in ${ACC_EXAMPLE_PROFILES:-}; do
  runs+=("$tf|$profile|.|-run|^TestAccExamples")
done

RUNS_DIR="$TFPI_CACHE/acceptance-runs"
rm -rf "$RUNS_DIR"
mkdir -p "$RUNS_DIR"
export RUNS_DIR GO_TEST_FLAGS
echo "==> ${#runs[@]} acceptance runs, ${ACC_JOBS} at a time; each run's output follows when it ends"
for i in "${!runs[@]}"; do
  printf '%s\0' "$i|${runs[$i]}"
done | xargs -0 -n 1 -P "$ACC_JOBS" "$0" --one

if [[ -s "$RUNS_DIR/failed" ]]; then
  echo "make test: acceptance tests failed with: $(paste -sd';' "$RUNS_DIR/failed")" >&2
  exit 1
fi
echo "acceptance tests passed"
