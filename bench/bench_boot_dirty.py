#!/usr/bin/env python3
"""Benchmark: (1) time from `ferry run` to the guest's start line, 1 GiB /
2 vCPUs; (2) the guest's user-mode page-write rate (dirty workload, rate=max)
with KVM dirty logging off and on (harvested every 100 ms, as migration
passes do).  Prints a table; --json writes the figures.

    /usr/bin/python3 bench/bench_boot_dirty.py [--build build] [--runs 10]
"""
import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "system"))


def boot_time(ferrylib, tmp, runs):
    times = []
    for i in range(runs):
        serial = tmp / f"boot{i}.txt"
        argv = ferrylib.ferry_argv(append="workload=idle progress=0", memory="1G", cpus=2,
                                   serial=f"file:{serial}")
        t0 = time.monotonic()
        vm = ferrylib.Vm(argv, tmp, serial)
        try:
            # poll the file tightly: this is the figure being measured
            while "ferry-guest: start" not in vm.serial():
                if vm.proc.poll() is not None:
                    raise RuntimeError(vm.stderr())
                time.sleep(0.0005)
            times.append((time.monotonic() - t0) * 1000)
        finally:
            vm.kill()
    return times


def write_rate(ferrylib, tmp, wss, seconds, dirty_log, cpus=1):
    serial = tmp / f"rate-{dirty_log}.txt"
    ctl = tmp / f"rate-{dirty_log}.sock"
    argv = ferrylib.ferry_argv(append=f"workload=dirty wss={wss} rate=max progress=500ms",
                               memory="1G", cpus=cpus, serial=f"file:{serial}", control=ctl)
    vm = ferrylib.Vm(argv, tmp, serial, ctl)
    try:
        vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
        if dirty_log:
            vm.qmp.cmd("x-ferry-dirty-log", enable=True, **{"interval-ms": 100})
        n0 = len(vm.progress())
        time.sleep(seconds)
        lines = vm.progress()[n0 + cpus:]  # drop the first, partial interval
        stats = vm.qmp.cmd("x-ferry-dirty-log", enable=False) if dirty_log else None
    finally:
        vm.kill()
    per_cpu_rates = [w / 0.5 for (_, _, w, _) in lines]
    return statistics.median(per_cpu_rates), stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("FERRY_BUILD", "build"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--wss", default="256M")
    ap.add_argument("--json")
    a = ap.parse_args()
    os.environ["FERRY_BUILD"] = a.build
    import ferrylib
    ferrylib.require_kvm()
    res = {}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as d:
        tmp = pathlib.Path(d)
        bt = boot_time(ferrylib, tmp, a.runs)
        res["boot_ms"] = {"median": statistics.median(bt), "min": min(bt), "max": max(bt),
                          "runs": len(bt)}
        off, _ = write_rate(ferrylib, tmp, a.wss, a.seconds, False)
        on, st = write_rate(ferrylib, tmp, a.wss, a.seconds, True)
        res["write_rate_pages_per_s"] = {"dirty_log_off": off, "dirty_log_on": on,
                                         "ratio": on / off if off else None,
                                         "harvest": st, "wss": a.wss}
    print(f"ferry run -> start line (1 GiB, 2 vCPUs), {res['boot_ms']['runs']} runs: "
          f"median {res['boot_ms']['median']:.1f} ms "
          f"(min {res['boot_ms']['min']:.1f}, max {res['boot_ms']['max']:.1f})")
    w = res["write_rate_pages_per_s"]
    print(f"guest page writes, 1 vCPU, wss {a.wss}, rate=max:")
    print(f"  dirty logging off: {w['dirty_log_off'] / 1e6:8.3f} M pages/s")
    print(f"  dirty logging on : {w['dirty_log_on'] / 1e6:8.3f} M pages/s "
          f"({w['ratio'] * 100:.1f}% of off; harvest every 100 ms: {w['harvest']})")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
