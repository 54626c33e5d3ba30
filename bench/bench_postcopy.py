#!/usr/bin/env python3
"""Post-copy and auto-converge benchmarks (issue 8, section 5), ferry and
QEMU side by side on loopback TCP, the same test guest (docs/guest.md):

  latency   a 1 GiB guest writing 512 MiB at random flat out, post-copy
            from the start, the background stream uncapped: page-fault
            latency (ferry: every fault timed, p50/p99/max; QEMU 7.2 reports
            only blocked time, postcopy-blocktime) and total time
  writer    a 2 GiB guest writing 1 GiB flat out under a 1 Gbit/s cap
            (max-bandwidth and max-postcopy-bandwidth 125 MB/s), one
            pre-copy pass then post-copy: total time against
            1.3 x (guest memory / bandwidth), and the pauses the guest
            sees (its 1 ms heartbeat: the gap across the switch, and the
            longest gap on the destination while pages were still arriving)
  throttle  the same writer with auto-converge, post-copy off: total time,
            passes, the highest throttle, and the guest's write rate while
            throttled against before the migration

    /usr/bin/python3 bench/bench_postcopy.py [--build build] [--runs 3] [--only latency]
"""
import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

BW = 125_000_000  # 1 Gbit/s, in bytes/s


def caps(q, *names):
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": n, "state": True} for n in names])


def progress_rate(vm, t0, t1):
    """Pages/s CPU 0 wrote between monotonic-ish guest times @t0..@t1 (ms)."""
    pts = [(t, total) for cpu, t, work, total in vm.progress() if cpu == 0 and t0 <= t <= t1]
    if len(pts) < 2:
        return float("nan")
    (ta, a), (tb, b) = pts[0], pts[-1]
    return (b - a) / ((tb - ta) / 1000) if tb > ta else float("nan")


def guest_ms(vm):
    p = [t for cpu, t, work, total in vm.progress() if cpu == 0]
    return p[-1] if p else 0


def run(kind, make, tmp, append, memory, setup, after=None, hb=True, timeout=300):
    """One migration; returns (source result, destination result or None,
    wall s, heartbeat gap across the switch ms, longest destination gap ms,
    src, dst) with the VMs still alive: the caller kills them."""
    import benchlib
    import ferrylib
    src, dst, uri, hs, hd = make(tmp, append, memory, 1, hb, False)
    src.wait_for(r"^progress cpu=0 .*$", count=3, timeout=120)
    dst.qmp
    setup(src.qmp, dst.qmp)
    t0 = time.monotonic()
    src.qmp.cmd("migrate", uri=uri)
    if after:
        after(src.qmp)
    st = ferrylib.wait_migration(src.qmp, timeout)
    wall = time.monotonic() - t0
    ds = None
    if kind == "ferry":
        try:
            ds = ferrylib.wait_migration(dst.qmp, 60)
        except Exception:
            ds = None
    else:
        ds = dst.qmp.cmd("query-migrate")
    time.sleep(1)
    gap = benchlib.gap_ms(hs, hd)
    dmax = max((b - a for a, b in zip(hd.times, hd.times[1:])), default=0) * 1000 if hd else 0
    for h in (hs, hd):
        if h:
            h.close()
    return st, ds, wall, gap, dmax, src, dst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("FERRY_BUILD", "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=["latency", "writer", "throttle"])
    ap.add_argument("--no-qemu", action="store_true")
    a = ap.parse_args()
    os.environ["FERRY_BUILD"] = a.build
    import benchlib
    import ferrylib
    ferrylib.require_kvm()
    makers = {"ferry": benchlib.ferry_pair}
    if not a.no_qemu:
        makers["qemu"] = benchlib.qemu_pair

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as d:
        tmp = pathlib.Path(d)
        if a.only in (None, "latency"):
            append = ("workload=dirty wss=512M pattern=random rate=max heartbeat=1ms "
                      "progress=500ms")
            print("latency: 1 GiB guest, 512 MiB written at random flat out, post-copy from "
                  "the start, background stream uncapped")
            for kind, make in makers.items():
                for _ in range(a.runs):
                    if kind == "ferry":
                        def setup(s, dq):
                            caps(s, "postcopy-ram")
                            ferrylib.set_params(s, postcopy_after_passes=0)
                        after = None
                    else:
                        def setup(s, dq):
                            caps(s, "postcopy-ram", "postcopy-preempt")
                            caps(dq, "postcopy-ram", "postcopy-preempt", "postcopy-blocktime")
                            s.cmd("migrate-set-parameters", **{"max-bandwidth": 100 << 30})

                        def after(s):
                            s.cmd("migrate-start-postcopy")
                    st, ds, wall, gap, dmax, src, dst = run(kind, make, tmp, append, "1G",
                                                            setup, after)
                    try:
                        assert st["status"] == "completed", st
                        if kind == "ferry":
                            p = ds["ferry"]["postcopy"]
                            print(f"  ferry  total {st['total-time']} ms, faults {p['faults']}, "
                                  f"latency p50 {p['latency-p50-ns'] / 1e3:.0f} us, p99 "
                                  f"{p['latency-p99-ns'] / 1e3:.0f} us, max "
                                  f"{p['latency-max-ns'] / 1e3:.0f} us, mean "
                                  f"{ds['postcopy-latency'] / 1e3:.0f} us, blocked "
                                  f"{ds['postcopy-blocktime']} ms, owned after "
                                  f"{p['owned-ns'] / 1e6:.0f} ms; heartbeat gap at the "
                                  f"switch {gap:.1f} ms, longest after {dmax:.1f} ms")
                        else:
                            print(f"  qemu   total {st['total-time']} ms, blocked "
                                  f"{ds.get('postcopy-blocktime', 'n/a')} ms (7.2 reports no "
                                  f"per-fault latency); heartbeat gap at the switch "
                                  f"{gap:.1f} ms, longest after {dmax:.1f} ms")
                    finally:
                        src.kill()
                        dst.kill()
        writer = "workload=dirty wss=1G pattern=seq rate=max heartbeat=1ms progress=200ms"
        if a.only in (None, "writer"):
            print("writer: 2 GiB guest writing 1 GiB flat out, 1 Gbit/s cap, one pre-copy pass "
                  f"then post-copy; target total <= 1.3 x 2 GiB / 125 MB/s = "
                  f"{1.3 * (2 << 30) / BW:.1f} s, guest pause < 10 ms")
            for kind, make in makers.items():
                for _ in range(a.runs):
                    if kind == "ferry":
                        def setup(s, dq):
                            caps(s, "postcopy-ram")
                            ferrylib.set_params(s, postcopy_after_passes=1, max_bandwidth=BW,
                                                max_postcopy_bandwidth=BW)
                        after = None
                    else:
                        def setup(s, dq):
                            caps(s, "postcopy-ram", "postcopy-preempt")
                            caps(dq, "postcopy-ram", "postcopy-preempt")
                            s.cmd("migrate-set-parameters",
                                  **{"max-bandwidth": BW, "max-postcopy-bandwidth": BW})

                        def after(s):
                            # one pass, then post-copy: QEMU counts a sync per pass
                            end = time.monotonic() + 120
                            while time.monotonic() < end:
                                r = s.cmd("query-migrate")
                                if r.get("ram", {}).get("dirty-sync-count", 0) >= 2:
                                    break
                                time.sleep(0.05)
                            s.cmd("migrate-start-postcopy")
                    st, ds, wall, gap, dmax, src, dst = run(kind, make, tmp, writer, "2G",
                                                            setup, after)
                    try:
                        assert st["status"] == "completed", st
                        print(f"  {kind:6s} total {st['total-time'] / 1000:.1f} s "
                              f"({st['total-time'] / 1000 / ((2 << 30) / BW):.2f} x memory/"
                              f"bandwidth), sent {st['ram']['transferred'] / 2**30:.2f} GiB; "
                              f"heartbeat gap at the switch {gap:.1f} ms, longest after "
                              f"{dmax:.1f} ms")
                    finally:
                        src.kill()
                        dst.kill()
        if a.only in (None, "throttle"):
            print("throttle: the same writer with auto-converge, post-copy off, 300 ms limit, "
                  "1 Gbit/s cap")
            for kind, make in makers.items():
                for _ in range(a.runs):
                    def setup(s, dq):
                        caps(s, "auto-converge")
                        s.cmd("migrate-set-parameters", **{"max-bandwidth": BW})
                    src_before = {}

                    def after(s, src_before=src_before):
                        src_before["t"] = time.monotonic()
                    st, ds, wall, gap, dmax, src, dst = run(kind, make, tmp, writer, "2G",
                                                            setup, after, timeout=600)
                    try:
                        ok = st["status"] == "completed"
                        prog = src.progress()
                        cpu0 = [(t, total) for c, t, w, total in prog if c == 0]
                        # before the migration: the first few seconds of progress;
                        # throttled: the last 2 s the source ran
                        free = progress_rate(src, cpu0[0][0], cpu0[0][0] + 2000) if cpu0 else 0
                        last = cpu0[-1][0] if cpu0 else 0
                        thr = progress_rate(src, last - 2000, last)
                        peak = (st.get("ferry", {}).get("throttle", {}).get("peak")
                                if kind == "ferry" else st.get("cpu-throttle-percentage"))
                        print(f"  {kind:6s} {st['status']} in {st['total-time'] / 1000:.1f} s, "
                              f"{st.get('ferry', {}).get('passes', st['ram'].get('dirty-sync-count'))}"
                              f" passes, throttle peak {peak}%, downtime {st.get('downtime')} ms; "
                              f"guest writes {free:.0f} pages/s free, {thr:.0f} pages/s in the "
                              f"last 2 s throttled ({thr / free * 100 if free else 0:.0f}%)")
                        if not ok:
                            print(f"    {st.get('error-desc')}")
                    finally:
                        src.kill()
                        dst.kill()


if __name__ == "__main__":
    main()
