#!/usr/bin/env python3
"""ferry's main job on a default: boot the test guest (2 vCPUs, 1 GiB, the
self-checking `verify` workload writing 20k pages/s), migrate it live to a
second ferry on loopback, and print the summary.  The guest's own checks
on the destination prove that no page was lost or stale."""
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "system"))
os.environ.setdefault("FERRY_BUILD", sys.argv[1] if len(sys.argv) > 1 else "build")
import ferrylib  # noqa: E402

APPEND = "workload=verify wss=256M rate=20000 progress=500ms heartbeat=1ms"


def show(vm, shown, tag):
    lines = vm.serial().splitlines()
    for line in lines[shown:]:
        print(f"  {tag} | {line}")
    return len(lines)


def main():
    ferrylib.require_kvm()
    with tempfile.TemporaryDirectory(prefix="ferry-demo-") as d:
        d = pathlib.Path(d)
        port = ferrylib.free_tcp_port()
        uri = f"tcp:127.0.0.1:{port}"
        hb_src = ferrylib.HeartbeatListener(d / "hb-src.sock")
        hb_dst = ferrylib.HeartbeatListener(d / "hb-dst.sock")
        dst_argv = [str(ferrylib.FERRY), "run", "--incoming", uri, "--memory", "1G",
                    "--cpus", "2", "--serial", f"file:{d / 'dst.txt'}",
                    "--debugcon", f"unix:{hb_dst.path}", "--control", str(d / "dst.sock")]
        src_argv = ferrylib.ferry_argv(append=APPEND, memory="1G", cpus=2,
                                       serial=f"file:{d / 'src.txt'}",
                                       debugcon=f"unix:{hb_src.path}", control=d / "src.sock")
        print("destination: " + " ".join(dst_argv))
        dst = ferrylib.Vm(dst_argv, d, d / "dst.txt", d / "dst.sock")
        print("source:      " + " ".join(src_argv))
        src = ferrylib.Vm(src_argv, d, d / "src.txt", d / "src.sock")
        try:
            src.wait_for(r"^progress cpu=1 .*$", count=4, timeout=60)
            shown = show(src, 0, "source")
            dst.qmp
            print(f"\nmigrating live to {uri} (downtime limit 300 ms) ...")
            src.qmp.cmd("migrate", uri=uri)
            st = ferrylib.wait_migration(src.qmp)
            show(src, shown, "source")
            if st["status"] != "completed":
                print(f"migration {st['status']}: {st.get('error-desc')}")
                return 1
            dst.wait_for(r"^progress cpu=1 .*$", count=4, timeout=60)
            show(dst, 0, "destination")
            gap = (hb_dst.times[0] - hb_src.times[-1]) * 1000 if hb_dst.times else float("nan")
            f = st["ferry"]
            ram = st["ram"]
            print("\nsummary")
            print(f"  status            {st['status']}")
            print(f"  total time        {st['total-time']} ms (setup {st.get('setup-time', 0)} ms)")
            print(f"  passes            {f['passes']}")
            print(f"  transferred       {ram['transferred'] / 2**20:.1f} MiB "
                  f"({ram['normal']} pages, {ram['duplicate']} zero, "
                  f"{f['skipped-pages']} never touched)")
            print(f"  downtime          {f['downtime-ns'] / 1e6:.2f} ms source pause-to-GO, "
                  f"{f.get('destination-resume-ns', 0) / 1e6:.2f} ms pause-to-resume, "
                  f"{gap:.2f} ms heartbeat gap seen by the guest")
            failed = "FAIL" in dst.serial()
            print(f"  guest checks      {'FAILED' if failed else 'no page lost or stale'}")
            dst.qmp.cmd("quit")
            src.qmp.cmd("quit")
            return 1 if failed else 0
        finally:
            src.kill()
            dst.kill()
            hb_src.close()
            hb_dst.close()


if __name__ == "__main__":
    sys.exit(main())
