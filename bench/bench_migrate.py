#!/usr/bin/env python3
"""Live migration benchmarks, ferry and QEMU side by side on loopback TCP:

  idle      a 1 GiB guest that never touched its memory: total migration time
  bulk      a guest with all of its memory written, then quiet: throughput
            (compared with iperf3 on loopback in the same run)
  dirty     a dirty guest at a moderate rate, default downtime limit: the
            pause the guest itself sees (heartbeat gap), and the reported downtime

    /usr/bin/python3 bench/bench_migrate.py [--build build] [--runs 5] [--bulk-mem 4G]
"""
import argparse
import re
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def run_one(kind, make, tmp, append, memory, cpus, settle, hb=False, prealloc=False):
    import benchlib
    import ferrylib
    src, dst, uri, hs, hd = make(tmp, append, memory, cpus, hb, prealloc)
    try:
        settle(src)
        dst.qmp
        if kind == "qemu":
            # QEMU caps migrations at 128 MiB/s by default; ferry does not
            src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 100 << 30})
        t0 = time.monotonic()
        src.qmp.cmd("migrate", uri=uri)
        st = ferrylib.wait_migration(src.qmp, 600)  # QEMU's query-migrate has the same shape
        wall = (time.monotonic() - t0) * 1000
        if hb:
            end = time.monotonic() + 3
            while not hd.times and time.monotonic() < end:
                time.sleep(0.01)
        return st, wall, benchlib.gap_ms(hs, hd)
    finally:
        src.kill()
        dst.kill()
        for h in (hs, hd):
            if h:
                h.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("FERRY_BUILD", "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bulk-mem", default="4G")
    ap.add_argument("--only", choices=["idle", "bulk", "dirty"])
    ap.add_argument("--no-qemu", action="store_true")
    a = ap.parse_args()
    os.environ["FERRY_BUILD"] = a.build
    import benchlib
    import ferrylib
    ferrylib.require_kvm()
    makers = {"ferry": benchlib.ferry_pair}
    if not a.no_qemu:
        makers["qemu"] = benchlib.qemu_pair

    def started(vm):
        vm.wait_for(r"^ferry-guest: start .*$", timeout=120)

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as d:
        tmp = pathlib.Path(d)
        if a.only in (None, "idle"):
            print("idle 1 GiB guest, 1 vCPU: total migration time (ms)")
            for kind, make in makers.items():
                tt, dt = [], []
                for _ in range(a.runs):
                    st, wall, _ = run_one(kind, make, tmp, "workload=idle", "1G", 1, started)
                    assert st["status"] == "completed", st
                    tt.append(st["total-time"])
                    dt.append(st.get("downtime", 0))
                print(f"  {kind:6s} total-time median {benchlib.med(tt):7.1f} ms "
                      f"(min {min(tt)}, max {max(tt)}), downtime median {benchlib.med(dt)} ms")
        if a.only in (None, "bulk"):
            mem = a.bulk_mem
            gib = int(mem.rstrip("G"))
            wss = f"{gib * 1024 - 64}M"
            append = f"workload=dirty wss={wss} rate=max sweeps=1 progress=500ms"

            def written(vm):
                # idle once every page is written: progress work drops to wakeups
                start = vm.wait_for(r"^ferry-guest: start .*$", timeout=120)[0]
                deadline = time.monotonic() + 600
                # the guest clamps wss to its contiguous RAM (below the 3-4 GiB hole)
                npages = int(re.search(r"wss=(\d+)", start).group(1)) // 4096
                while time.monotonic() < deadline:
                    p = vm.progress()
                    if p and p[-1][3] >= npages:
                        return
                    time.sleep(0.5)
                raise TimeoutError("guest did not finish writing its memory")

            ip = benchlib.iperf3_gbits()
            print(f"{mem} guest, all memory written then quiet: throughput "
                  f"(iperf3 loopback: {ip:.1f} Gbit/s)")
            for kind, make in makers.items():
                for _ in range(max(1, a.runs // 2)):
                    # destinations preallocate (--prealloc / -mem-prealloc): on this
                    # host a first touch costs ~13 us per page, more than the copy
                    st, wall, _ = run_one(kind, make, tmp, append, mem, 1, written,
                                          prealloc=True)
                    assert st["status"] == "completed", st
                    gbit = st["ram"]["transferred"] * 8 / (st["total-time"] / 1000) / 1e9
                    print(f"  {kind:6s} {st['ram']['transferred'] / 2**30:.2f} GiB in "
                          f"{st['total-time']} ms: {gbit:.2f} Gbit/s = "
                          f"{gbit / ip * 100:.0f}% of iperf3, downtime {st.get('downtime')} ms")
        if a.only in (None, "dirty"):
            append = "workload=dirty wss=256M rate=20000 pattern=random heartbeat=1ms progress=500ms"
            print("dirty guest (256 MiB set, 20k pages/s random), default limit: "
                  "guest-observed pause (heartbeat gap, ms)")
            for kind, make in makers.items():
                gaps, downs = [], []
                for _ in range(a.runs):
                    st, wall, gap = run_one(kind, make, tmp, append, "1G", 1,
                                            lambda vm: vm.wait_for(r"^progress cpu=0 .*$",
                                                                   count=3, timeout=120),
                                            hb=True)
                    assert st["status"] == "completed", st
                    gaps.append(gap)
                    downs.append(st.get("downtime", 0))
                print(f"  {kind:6s} heartbeat gap median {benchlib.med(gaps):6.2f} ms "
                      f"(min {min(gaps):.2f}, max {max(gaps):.2f}); reported downtime median "
                      f"{benchlib.med(downs)} ms")


if __name__ == "__main__":
    main()
