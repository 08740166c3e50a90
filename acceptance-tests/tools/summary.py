#!/usr/bin/env python3
"""The summary table at the end of `make test`, so CI cannot go green on tests that did not run.

  summary.py reset                 forget the stages of the last run
  summary.py run STAGE CMD ARGS…   run one stage, echo and keep its output, record status and wall time
  summary.py report                print the stages, the CLIs run and the tests per package (from the
                                   `go test -v` and `cargo test` output of the stages); exit 1 when a
                                   stage failed, a test skipped, a run had no tests, or (in CI) a CLI
                                   was left out

The run's files live in $TFPI_CACHE/summary (outside the clone).
"""
import os
import re
import subprocess
import sys
import time

DIR = os.path.join(os.environ.get("TFPI_CACHE", os.path.expanduser("~/.cache/terraform-provider-istio")), "summary")
STAGES = os.path.join(DIR, "stages.tsv")

GO_RESULT = re.compile(r"^(\s*)--- (PASS|FAIL|SKIP): (\S+)")
GO_PACKAGE = re.compile(r"^(ok|FAIL|\?)\s+(\S+)\s")
CARGO_TARGET = re.compile(r"^\s+(Running|Doc-tests)\s+(.+?)(\s+\(.*\))?$")
CARGO_RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
ACC_HEADER = re.compile(r"^==> acceptance tests: (.*)$")
CLI_LEFT_OUT = re.compile(r"^==> (\S+) skipped \((.*)\)$")


def reset():
    os.makedirs(DIR, exist_ok=True)
    for name in os.listdir(DIR):
        os.remove(os.path.join(DIR, name))


def run(stage, command):
    os.makedirs(DIR, exist_ok=True)
    started = time.monotonic()
    with open(os.path.join(DIR, stage + ".log"), "w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
        code = proc.wait()
    with open(STAGES, "a") as out:
        out.write(f"{stage}\t{code}\t{time.monotonic() - started:.0f}\n")
    return code


def parse(stage, lines):
    """Rows (stage, run, package, passed, failed, skipped) and the CLIs left out."""
    rows, left_out = [], []
    run_name, counts, cargo_target = "", [0, 0, 0], None
    for line in lines:
        line = line.rstrip("\n")
        if m := ACC_HEADER.match(line):
            run_name = m.group(1)
        elif m := CLI_LEFT_OUT.match(line):
            left_out.append(f"{m.group(1)} ({m.group(2)})")
        elif m := GO_RESULT.match(line):
            status = m.group(2)
            if status == "SKIP":  # a skipped subtest is a skip too
                counts[2] += 1
            elif m.group(1) == "":  # passes and failures of top-level tests
                counts[0 if status == "PASS" else 1] += 1
        elif m := GO_PACKAGE.match(line):
            if m.group(1) != "?":
                rows.append((stage, run_name, m.group(2).removeprefix("terraform-provider-istio/"), *counts))
            counts = [0, 0, 0]
        elif m := CARGO_TARGET.match(line):
            cargo_target = m.group(2) if m.group(1) == "Running" else "doc-tests " + m.group(2)
        elif (m := CARGO_RESULT.match(line)) and cargo_target:
            rows.append((stage, "cargo test", cargo_target, *map(int, m.groups())))
            cargo_target = None
    return rows, left_out


def report():
    if not os.path.exists(STAGES):
        print("summary: no stage recorded", file=sys.stderr)
        return 1
    stages = [line.rstrip("\n").split("\t") for line in open(STAGES)]
    rows, left_out = [], []
    for stage, _, _ in stages:
        r, l = parse(stage, open(os.path.join(DIR, stage + ".log"), errors="replace"))
        rows += r
        left_out += l
    problems = []
    print("\n==> make test summary\n")
    print(f"{'stage':<16} {'result':<8} {'wall time':>9}")
    for stage, code, seconds in stages:
        print(f"{stage:<16} {'ok' if code == '0' else 'FAILED':<8} {int(seconds) // 60:>5}m{int(seconds) % 60:02d}s")
        if code != "0":
            problems.append(f"stage {stage} failed (exit {code})")
    runs = sorted({r[1] for r in rows if r[1] and r[1] != "cargo test"})
    print("\nCLIs run: " + ("; ".join(runs) if runs else "none"))
    if left_out:
        print("CLIs left out: " + "; ".join(left_out))
        if os.environ.get("CI"):
            problems.append("CLIs left out in CI: " + "; ".join(left_out))
    print(f"\n{'stage':<16} {'run':<64} {'package':<40} {'passed':>6} {'failed':>6} {'skipped':>7}")
    for stage, run_name, package, passed, failed, skipped in rows:
        print(f"{stage:<16} {run_name[:64]:<64} {package[-40:]:<40} {passed:>6} {failed:>6} {skipped:>7}")
        if failed:
            problems.append(f"{failed} failed test(s) in {package} ({run_name or stage})")
        if skipped:
            problems.append(f"{skipped} skipped test(s) in {package} ({run_name or stage})")
        if passed + failed == 0 and skipped == 0 and stage == "acceptance":
            problems.append(f"no test ran in {package} ({run_name})")
    total = [sum(r[i] for r in rows) for i in (3, 4, 5)]
    print(f"{'total':<122} {total[0]:>6} {total[1]:>6} {total[2]:>7}")
    if problems:
        print("\nmake test: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def main(argv):
    if argv[1:2] == ["reset"]:
        reset()
        return 0
    if argv[1:2] == ["run"] and len(argv) > 3:
        return run(argv[2], argv[3:])
    if argv[1:2] == ["report"]:
        return report()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
