#!/usr/bin/env python3
"""Save/restore benchmark: time and file size for 1 GiB and 4 GiB guests,
idle (memory never touched) and with all memory written.

    /usr/bin/python3 bench/bench_snapshot.py [--build build] [--sizes 1G,4G]
"""
import argparse
import re
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("FERRY_BUILD", "build"))
    ap.add_argument("--sizes", default="1G,4G")
    ap.add_argument("--dir", help="where to write snapshots (default: a temp dir)")
    a = ap.parse_args()
    os.environ["FERRY_BUILD"] = a.build
    import benchlib  # noqa: F401
    import ferrylib
    ferrylib.require_kvm()
    with tempfile.TemporaryDirectory(prefix="ferry-snap-", dir=a.dir) as d:
        tmp = pathlib.Path(d)
        print(f"{'guest':>6} {'memory':>8} {'save ms':>8} {'restore ms':>10} {'file MiB':>9}")
        for size in a.sizes.split(","):
            gib = int(size.rstrip("G"))
            for kind in ("idle", "written"):
                if kind == "idle":
                    append = "workload=idle"
                else:
                    append = f"workload=dirty wss={gib * 1024 - 64}M rate=max sweeps=1 progress=500ms"
                # fresh names: a stale file from the previous run must not be read
                serial, ctl = tmp / f"s-{size}-{kind}.txt", tmp / f"c-{size}-{kind}.sock"
                vm = ferrylib.Vm(ferrylib.ferry_argv(append=append, memory=size, cpus=1,
                                                     serial=f"file:{serial}", control=ctl),
                                 tmp, serial, ctl)
                snap = tmp / "vm.snap"
                try:
                    start = vm.wait_for(r"^ferry-guest: start .*$", timeout=120)[0]
                    if kind == "written":
                        # the guest clamps wss to its contiguous RAM (below the 3-4 GiB hole)
                        npages = int(re.search(r"wss=(\d+)", start).group(1)) // 4096
                        deadline = time.monotonic() + 900
                        while time.monotonic() < deadline:
                            p = vm.progress()
                            if p and p[-1][3] >= npages:
                                break
                            time.sleep(0.5)
                    t0 = time.monotonic()
                    vm.qmp.cmd("migrate", uri=f"file:{snap}")
                    st = ferrylib.wait_migration(vm.qmp, 900)
                    save_ms = (time.monotonic() - t0) * 1000
                    assert st["status"] == "completed", st
                finally:
                    vm.kill()
                serial2, ctl2 = tmp / "r.txt", tmp / "rc.sock"
                t0 = time.monotonic()
                r = ferrylib.Vm([str(ferrylib.FERRY), "run", "--incoming", f"file:{snap}",
                                 "--serial", f"file:{serial2}", "--control", str(ctl2)],
                                tmp, serial2, ctl2)
                try:
                    st = ferrylib.wait_migration(r.qmp, 900)
                    restore_ms = (time.monotonic() - t0) * 1000
                    assert st["status"] == "completed", st
                finally:
                    r.kill()
                print(f"{kind:>7} {size:>8} {save_ms:8.0f} {restore_ms:10.0f} "
                      f"{snap.stat().st_size / 2**20:9.1f}")
                snap.unlink()


if __name__ == "__main__":
    main()
