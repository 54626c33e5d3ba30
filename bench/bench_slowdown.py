#!/usr/bin/env python3
"""The downtime limit on a link that slows during the switchover (issue 7):
every cell of tests/system/test_migrate_netns.py's slowdown matrix (a 1 Gbit/s
veth dropping to RATE, AFTER ms after the pause, LIMIT ms) run RUNS times;
per cell the longest pause the guest saw in any switchover attempt, the
median, and how often the first attempt was rolled back.

    /usr/bin/python3 bench/bench_slowdown.py --build build --runs 10

Each run is one pytest invocation of the test cell (as root: namespaces and
tc), whose own assertions must hold too; the guest's pauses are parsed from
its output ("the guest saw N ms")."""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEST = "tests/system/test_migrate_netns.py::test_downtime_kept_when_link_slows_during_switchover"
RATES = ["5mbit", "50mbit", "200mbit"]
AFTERS = [0, 10, 30, 50]
LIMITS = [50, 100]
SAW = re.compile(r"attempt \d+ \((go|rolled-back)\): ferry paused ([\d.]+) ms, "
                 r"the guest saw ([\d.]+) ms")


def run_cell(build, rate, after, limit):
    cell = f"{TEST}[{rate}-{after}-{limit}]"
    env = dict(os.environ, FERRY_BUILD=build)
    p = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                        cell], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    attempts = [(m.group(1), float(m.group(2)), float(m.group(3)))
                for m in SAW.finditer(p.stdout)]
    return p.returncode == 0, attempts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    print(f"| limit | rate | after | runs | longest pause seen by the guest | median | "
          f"first attempt rolled back | test failures |")
    print("|---|---|---|---|---|---|---|---|")
    for limit in LIMITS:
        for rate in RATES:
            for after in AFTERS:
                pauses, rolled, failed = [], 0, 0
                for _ in range(args.runs):
                    ok, attempts = run_cell(args.build, rate, after, limit)
                    failed += not ok
                    if attempts:
                        rolled += attempts[0][0] == "rolled-back"
                        pauses.extend(a[2] for a in attempts)
                worst = max(pauses) if pauses else float("nan")
                med = statistics.median(pauses) if pauses else float("nan")
                print(f"| {limit} ms | {rate} | {after} ms | {args.runs} | {worst:.1f} ms | "
                      f"{med:.1f} ms | {rolled}/{args.runs} | {failed} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
