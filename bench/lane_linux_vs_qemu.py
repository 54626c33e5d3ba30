"""Benchmark in the hardware-KVM lane (issue 9 section 3): Debian's kernel
under ferry and under QEMU -M microvm, in the same L1, on the same kernel
(its vmlinux through the PVH entry, which both boot directly) and the
same busybox initramfs:

  boot      ferry/QEMU process start to the init's first line, and the
            kernel's own uptime at that line (1 vCPU, 256 MiB)
  downtime  pre-copy migration over a unix socket of an idle guest (a
            shell waiting) and a busy one (tmpfs writer, checksum reader,
            clock checker on 2 vCPUs), downtime limit 100 ms: the
            downtime each VMM reports

It is a pytest module so that the lane runs it (prints with -s):

    scripts/nested/lane.sh -s bench/lane_linux_vs_qemu.py
    BENCH_RUNS=5 scripts/nested/lane.sh -s bench/lane_linux_vs_qemu.py

The figures go to docs/performance.md by hand, with the command.
"""
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "system"))
import ferrylib  # noqa: E402
import test_linux  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
APPEND = "console=ttyS0 loglevel=1 panic=0"
INIT_LINE = rb"ferry-linux: init uptime=([0-9.]+)"

BOOT_INIT = """#!/bin/sh
/bin/busybox mount -t proc proc /proc
echo "ferry-linux: init uptime=$(/bin/busybox cut -d' ' -f1 /proc/uptime)"
/bin/busybox poweroff -f
"""

IDLE_INIT = """#!/bin/sh
/bin/busybox mount -t proc proc /proc
echo "ferry-linux: work ready"
while :; do /bin/busybox sleep 1; done
"""

# test_linux's busy workload, without its console loop (no input here)
BUSY_INIT = test_linux.WORK_INIT.split('echo "ferry-linux: work ready"')[0] + \
    'echo "ferry-linux: work ready"\nwhile :; do /bin/busybox sleep 1; done\n'


def qemu_argv(kernel, rd, serial, qmp, cpus=1, incoming=None):
    argv = ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host",
            "-smp", str(cpus), "-m", "256M", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-serial", f"file:{serial}",
            "-qmp", f"unix:{qmp},server=on,wait=off",
            "-kernel", str(kernel), "-initrd", str(rd), "-append", APPEND]
    return argv + (["-incoming", incoming] if incoming else [])


def ferry_argv(kernel, rd, serial, ctl, cpus=1):
    return ferrylib.ferry_argv(kernel=kernel, memory="256M", cpus=cpus,
                               serial=f"file:{serial}", control=ctl, append=APPEND,
                               extra=["--initrd", str(rd)])


def wait_line(path, pattern, proc, timeout):
    import re
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            m = rx.search(pathlib.Path(path).read_bytes())
        except FileNotFoundError:
            m = None
        if m:
            return m, time.monotonic()
        assert proc.poll() is None, f"{proc.args[0]} exited {proc.returncode} before {pattern}"
        time.sleep(0.01)
    raise AssertionError(f"{pattern} not seen in {timeout} s")


def boot_once(tmp, kind, kernel, rd, i):
    serial = tmp / f"boot-{kind}-{i}.txt"
    ctl = tmp / f"boot-{kind}-{i}.sock"
    argv = (ferry_argv(kernel, rd, serial, ctl) if kind == "ferry"
            else qemu_argv(kernel, rd, serial, ctl))
    t0 = time.monotonic()
    vm = ferrylib.Vm(argv, tmp, serial)
    try:
        m, t1 = wait_line(serial, INIT_LINE, vm.proc, 240)
        assert vm.wait_exit(60) == 0, f"{kind}: poweroff did not end it with 0"
    finally:
        vm.kill()
    return t1 - t0, float(m.group(1))


def migrate_once(tmp, kind, kernel, rd, init_name, i, cpus):
    s1, s2 = tmp / f"m-{kind}-{init_name}-{i}-src.txt", tmp / f"m-{kind}-{init_name}-{i}-dst.txt"
    c1, c2 = tmp / f"m-{kind}-{init_name}-{i}-src.sock", tmp / f"m-{kind}-{init_name}-{i}-dst.sock"
    uri = f"unix:{tmp}/m-{kind}-{init_name}-{i}.mig"
    if kind == "ferry":
        src = ferrylib.Vm(ferry_argv(kernel, rd, s1, c1, cpus), tmp, s1, c1)
        dst = ferrylib.Vm(ferrylib.incoming_argv(uri, memory="256M", cpus=cpus,
                                                 serial=f"file:{s2}", control=c2),
                          tmp, s2, c2)
    else:
        src = ferrylib.Vm(qemu_argv(kernel, rd, s1, c1, cpus), tmp, s1, c1)
        dst = ferrylib.Vm(qemu_argv(kernel, rd, s2, c2, cpus, incoming=uri), tmp, s2, c2)
    try:
        wait_line(s1, rb"ferry-linux: work ready", src.proc, 240)
        time.sleep(2)  # the workload runs a while before the move
        src.qmp.cmd("migrate-set-parameters", **{"downtime-limit": 100})
        dst.qmp
        src.qmp.cmd("migrate", uri=uri)
        st = ferrylib.wait_migration(src.qmp, timeout=300)
        assert st["status"] == "completed", f"{kind}: {st}"
        assert dst.qmp.cmd("query-status")["status"] == "running"
        out = s1.read_bytes()
        assert b"FAIL" not in out, out[-500:]
        print(f"  {kind} {init_name} run {i}: downtime {st['downtime']} ms", flush=True)
        return st["downtime"], st.get("total-time")
    except Exception as e:
        raise AssertionError(f"{kind} {init_name} run {i}: {e!r}\nsource (exit {src.proc.poll()}) "
                             f"stderr:\n{src.stderr()[-1500:]}\ndestination (exit "
                             f"{dst.proc.poll()}) stderr:\n{dst.stderr()[-1500:]}") from e
    finally:
        src.kill()
        dst.kill()


def fmt(xs):
    return (f"median {statistics.median(xs):7.2f}  min {min(xs):7.2f}  max {max(xs):7.2f}"
            if xs else "-")


def test_linux_ferry_vs_qemu_microvm(tmp_path):
    assert os.environ.get("FERRY_LANE") == "svm", \
        "a stock kernel needs hardware KVM: scripts/nested/lane.sh -s bench/lane_linux_vs_qemu.py"
    kernel = test_linux.extract_vmlinux(test_linux.debian_kernel(), tmp_path / "vmlinux")
    rows = []
    boot_rd = test_linux.busybox_initrd(tmp_path / "boot" / "initrd.gz", BOOT_INIT)
    for kind in ("ferry", "qemu"):
        walls, ups = [], []
        for i in range(RUNS):
            w, u = boot_once(tmp_path, kind, kernel, boot_rd, i)
            print(f"  {kind} boot {i}: init after {w:.2f} s, kernel uptime {u:.2f} s", flush=True)
            walls.append(w)
            ups.append(u)
        rows.append(f"boot to init, {kind:5}: wall {fmt(walls)} s | kernel uptime {fmt(ups)} s")
    for name, init, cpus in (("idle", IDLE_INIT, 1), ("busy", BUSY_INIT, 2)):
        rd = test_linux.busybox_initrd(tmp_path / name / "initrd.gz", init)
        for kind in ("ferry", "qemu"):
            downs = []
            for i in range(RUNS):
                d, _ = migrate_once(tmp_path, kind, kernel, rd, name, i, cpus)
                downs.append(float(d))
            rows.append(f"downtime {name} ({cpus} vCPU), {kind:5}: {fmt(downs)} ms "
                        f"(runs: {', '.join(str(int(x)) for x in downs)})")
    print(f"\nLinux {test_linux.debian_kernel().name} (PVH vmlinux), 256 MiB, {RUNS} runs each:")
    for r in rows:
        print("  " + r)
