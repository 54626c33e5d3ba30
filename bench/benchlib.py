"""Shared helpers for ferry's benchmarks: ferry and QEMU side by side on
the same test guest (docs/guest.md), figures printed as tables."""
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "system"))
os.environ.setdefault("FERRY_BUILD", "build")
import ferrylib  # noqa: E402,F401


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def ferry_pair(tmp, append, memory, cpus=1, hb=False, prealloc=False):
    """Source and destination ferry over loopback TCP; returns (src, dst, uri, hb_src, hb_dst)."""
    uri = f"tcp:127.0.0.1:{ferrylib.free_tcp_port()}"
    # fresh names per pair: a stale serial file from an earlier run must not be read
    tag = time.monotonic_ns()
    hs = ferrylib.HeartbeatListener(tmp / f"hbs{time.monotonic_ns()}.sock") if hb else None
    hd = ferrylib.HeartbeatListener(tmp / f"hbd{time.monotonic_ns()}.sock") if hb else None
    dctl = tmp / f"d{time.monotonic_ns()}.sock"
    dargv = [str(ferrylib.FERRY), "run", "--incoming", uri, "--memory", memory, "--cpus",
             str(cpus), "--serial", f"file:{tmp / f'dst{tag}.txt'}", "--control", str(dctl)]
    if prealloc:
        dargv.append("--prealloc")
    if hd:
        dargv += ["--debugcon", f"unix:{hd.path}"]
    dst = ferrylib.Vm(dargv, tmp, tmp / f"dst{tag}.txt", dctl)
    sctl = tmp / f"s{time.monotonic_ns()}.sock"
    src = ferrylib.Vm(ferrylib.ferry_argv(append=append, memory=memory, cpus=cpus,
                                          serial=f"file:{tmp / f'src{tag}.txt'}", control=sctl,
                                          debugcon=f"unix:{hs.path}" if hs else None),
                      tmp, tmp / f"src{tag}.txt", sctl)
    return src, dst, uri, hs, hd


def qemu_pair(tmp, append, memory, cpus=1, hb=False, prealloc=False):
    """The same guest under QEMU -accel kvm, migrating over loopback TCP.
    @prealloc: -mem-prealloc on the destination, as ferry's --prealloc."""
    port = ferrylib.free_tcp_port()
    hs = ferrylib.HeartbeatListener(tmp / f"qhbs{time.monotonic_ns()}.sock") if hb else None
    hd = ferrylib.HeartbeatListener(tmp / f"qhbd{time.monotonic_ns()}.sock") if hb else None

    def argv(serial, qmp, hbl, incoming=None):
        a = ["qemu-system-x86_64", "-accel", "kvm", "-m", memory.rstrip("B"), "-smp",
             str(cpus), "-display", "none", "-nodefaults", "-no-reboot",
             "-kernel", str(ferrylib.GUEST), "-append", append,
             "-device", "isa-debug-exit,iobase=0xf4,iosize=0x02",
             "-serial", f"file:{serial}", "-qmp", f"unix:{qmp},server=on,wait=off"]
        if hbl:
            a += ["-chardev", f"socket,id=hb,path={hbl.path}",
                  "-device", "isa-debugcon,iobase=0xe9,chardev=hb"]
        if incoming:
            a += ["-incoming", incoming]
            if prealloc:
                a.append("-mem-prealloc")
        return a

    dq, sq = tmp / f"qd{port}.sock", tmp / f"qs{port}.sock"
    dst = ferrylib.Vm(argv(tmp / f"qdst{port}.txt", dq, hd, f"tcp:127.0.0.1:{port}"), tmp,
                      tmp / f"qdst{port}.txt", dq)
    src = ferrylib.Vm(argv(tmp / f"qsrc{port}.txt", sq, hs), tmp, tmp / f"qsrc{port}.txt", sq)
    return src, dst, f"tcp:127.0.0.1:{port}", hs, hd


def iperf3_gbits(seconds=3):
    srv = subprocess.Popen(["iperf3", "-s", "-1", "-p", "5299"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", "5299", "-t", str(seconds),
                              "-J"], capture_output=True, text=True, timeout=60).stdout
        import json
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        srv.wait(timeout=10)


def gap_ms(hs, hd):
    if not hs or not hd or not hs.times or not hd.times:
        return float("nan")
    return (hd.times[0] - hs.times[-1]) * 1000
