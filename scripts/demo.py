#!/usr/bin/env python3
"""ferry's main job on a default: boot the test guest (2 vCPUs, 1 GiB,
the verify workload), show its progress for a few seconds, pause and
resume it through the control socket, then quit cleanly.

(With live migration this becomes: boot, migrate to a second ferry on
loopback, print the summary.)"""
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "system"))
import os  # noqa: E402

os.environ.setdefault("FERRY_BUILD", sys.argv[1] if len(sys.argv) > 1 else "build")
import ferrylib  # noqa: E402


def main():
    ferrylib.require_kvm()
    append = "workload=verify wss=256M progress=1s"
    with tempfile.TemporaryDirectory(prefix="ferry-demo-") as d:
        d = pathlib.Path(d)
        serial, ctl = d / "serial.txt", d / "control.sock"
        argv = ferrylib.ferry_argv(append=append, memory="1G", cpus=2,
                                   serial=f"file:{serial}", control=ctl)
        print("$ " + " ".join(argv))
        t0 = time.monotonic()
        vm = ferrylib.Vm(argv, d, serial, ctl)
        try:
            vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
            print(f"guest started in {(time.monotonic() - t0) * 1000:.0f} ms")
            shown = 0

            def show():
                nonlocal shown
                lines = vm.serial().splitlines()
                for line in lines[shown:]:
                    print("  guest | " + line)
                shown = len(lines)

            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                show()
                time.sleep(0.25)
            q = vm.qmp
            print("control: stop ->", q.cmd("stop") or "ok", "| status:",
                  q.cmd("query-status")["status"])
            time.sleep(1)
            show()
            print("control: cont ->", q.cmd("cont") or "ok", "| status:",
                  q.cmd("query-status")["status"])
            time.sleep(2)
            show()
            q.cmd("quit")
            rc = vm.wait_exit(10)
            show()
            failed = "FAIL" in vm.serial()
            print(f"ferry exited with status {rc}; guest verify failures: "
                  f"{'YES' if failed else 'none'}")
            return 0 if rc == 0 and not failed else 1
        finally:
            vm.kill()


if __name__ == "__main__":
    sys.exit(main())
