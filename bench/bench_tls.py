#!/usr/bin/env python3
"""Migration throughput with and without TLS (docs/security.md), ferry to
ferry over loopback TCP, on a guest whose memory is all written, then quiet:

    /usr/bin/python3 bench/bench_tls.py [--build build] [--runs 3] [--mem 1G]
        [--ktls-config]   also run TLS with a GnuTLS configuration that enables
                          kernel TLS ("ktls = true"), to see whether it takes
        [--qemu]          QEMU's TLS migration of the same guest, side by side

Runs alternate plaintext and TLS so that a noisy machine affects both alike.
Each line: bytes moved, total time, Gbit/s, CPU seconds used by the source
and destination processes during the migration, and (TLS) the cipher and
whether the kernel did the record layer (ferry.tls.ktls in query-migrate).
Credentials are made for the run by scripts/tls-certs.sh (certtool)."""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def cpu_s(pid):
    """User + system CPU seconds of @pid so far."""
    f = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def written(vm):
    """Wait until the guest wrote every page of its working set."""
    start = vm.wait_for(r"^ferry-guest: start .*$", timeout=120)[0]
    npages = int(re.search(r"wss=(\d+)", start).group(1)) // 4096
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        p = vm.progress()
        if p and p[-1][3] >= npages:
            return
        time.sleep(0.5)
    raise TimeoutError("guest did not finish writing its memory")


def ferry_run(tmp, append, mem, creds, env=None):
    import ferrylib
    uri = f"tcp:127.0.0.1:{ferrylib.free_tcp_port()}"
    tag = time.monotonic_ns()
    tls = ["--tls-creds", str(creds)] if creds else []
    dctl, sctl = tmp / f"d{tag}.sock", tmp / f"s{tag}.sock"
    dargv = [str(ferrylib.FERRY), "run", "--incoming", uri, "--memory", mem, "--prealloc",
             "--serial", f"file:{tmp / f'dst{tag}.txt'}", "--control", str(dctl)] + tls
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        dst = ferrylib.Vm(dargv, tmp, tmp / f"dst{tag}.txt", dctl)
        src = ferrylib.Vm(ferrylib.ferry_argv(append=append, memory=mem,
                                              serial=f"file:{tmp / f'src{tag}.txt'}",
                                              control=sctl, extra=tls),
                          tmp, tmp / f"src{tag}.txt", sctl)
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        written(src)
        dst.qmp
        c0 = cpu_s(src.proc.pid), cpu_s(dst.proc.pid)
        src.qmp.cmd("migrate", uri=uri)
        st = ferrylib.wait_migration(src.qmp, 600)
        c1 = cpu_s(src.proc.pid), cpu_s(dst.proc.pid)
        return st, c1[0] - c0[0], c1[1] - c0[1]
    finally:
        src.kill()
        dst.kill()


def qemu_run(tmp, append, mem, creds):
    import ferrylib
    port = ferrylib.free_tcp_port()

    def argv(serial, qmp, incoming=None):
        a = ["qemu-system-x86_64", "-accel", "kvm", "-m", mem.rstrip("B"), "-display", "none",
             "-nodefaults", "-no-reboot", "-kernel", str(ferrylib.GUEST), "-append", append,
             "-device", "isa-debug-exit,iobase=0xf4,iosize=0x02",
             "-serial", f"file:{serial}", "-qmp", f"unix:{qmp},server=on,wait=off"]
        if creds:
            a += ["-object", f"tls-creds-x509,id=tls0,dir={creds},"
                  f"endpoint={'server' if incoming else 'client'},verify-peer=on"]
        if incoming:
            a += ["-incoming", "defer", "-mem-prealloc"]
        return a

    dq, sq = tmp / f"qd{port}.sock", tmp / f"qs{port}.sock"
    dst = ferrylib.Vm(argv(tmp / f"qdst{port}.txt", dq, True), tmp, tmp / f"qdst{port}.txt", dq)
    src = ferrylib.Vm(argv(tmp / f"qsrc{port}.txt", sq), tmp, tmp / f"qsrc{port}.txt", sq)
    try:
        written(src)
        params = {"max-bandwidth": 100 << 30}  # QEMU's default cap is 128 MiB/s
        if creds:
            dst.qmp.cmd("migrate-set-parameters", **{"tls-creds": "tls0"})
            params.update({"tls-creds": "tls0", "tls-hostname": "localhost"})
        dst.qmp.cmd("migrate-incoming", uri=f"tcp:127.0.0.1:{port}")
        src.qmp.cmd("migrate-set-parameters", **params)
        c0 = cpu_s(src.proc.pid), cpu_s(dst.proc.pid)
        src.qmp.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        st = ferrylib.wait_migration(src.qmp, 600)
        c1 = cpu_s(src.proc.pid), cpu_s(dst.proc.pid)
        return st, c1[0] - c0[0], c1[1] - c0[1]
    finally:
        src.kill()
        dst.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("FERRY_BUILD", "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mem", default="1G")
    ap.add_argument("--ktls-config", action="store_true")
    ap.add_argument("--qemu", action="store_true")
    a = ap.parse_args()
    os.environ["FERRY_BUILD"] = a.build
    import benchlib
    import ferrylib
    ferrylib.require_kvm()
    gib = int(a.mem.rstrip("G"))
    append = f"workload=dirty wss={gib * 1024 - 64}M rate=max sweeps=1 progress=500ms"

    with tempfile.TemporaryDirectory(prefix="ferry-bench-tls-") as d:
        tmp = pathlib.Path(d)
        creds = tmp / "creds"
        subprocess.run([str(HERE.parent / "scripts" / "tls-certs.sh"), str(creds)], check=True)
        ktls_conf = tmp / "gnutls-ktls.conf"
        ktls_conf.write_text("[global]\nktls = true\n")
        modes = [("plain", None, None), ("tls", creds, None)]
        if a.ktls_config:
            modes.append(("tls+ktls-config", creds,
                          {"GNUTLS_SYSTEM_PRIORITY_FILE": str(ktls_conf)}))
        print(f"{a.mem} guest, all memory written then quiet, loopback TCP, "
              f"{a.runs} run(s) per mode")
        results = {m[0]: [] for m in modes}
        for _ in range(a.runs):
            for name, c, env in modes:
                st, cs, cd = ferry_run(tmp, append, a.mem, c, env)
                assert st["status"] == "completed", st
                gbit = st["ram"]["transferred"] * 8 / (st["total-time"] / 1000) / 1e9
                results[name].append(gbit)
                tls = st["ferry"].get("tls")
                note = f", {tls['protocol']} {tls['cipher']}, kTLS {tls['ktls']}" if tls else ""
                print(f"  ferry {name:16s} {st['ram']['transferred'] / 2**30:.2f} GiB in "
                      f"{st['total-time']:5d} ms: {gbit:5.2f} Gbit/s; CPU src {cs:.2f} s, "
                      f"dst {cd:.2f} s{note}", flush=True)
        if a.qemu:
            for _ in range(a.runs):
                for name, c in (("plain", None), ("tls", creds)):
                    st, cs, cd = qemu_run(tmp, append, a.mem, c)
                    assert st["status"] == "completed", st
                    gbit = st["ram"]["transferred"] * 8 / (st["total-time"] / 1000) / 1e9
                    results.setdefault("qemu " + name, []).append(gbit)
                    print(f"  qemu  {name:16s} {st['ram']['transferred'] / 2**30:.2f} GiB in "
                          f"{st['total-time']:5d} ms: {gbit:5.2f} Gbit/s; CPU src {cs:.2f} s, "
                          f"dst {cd:.2f} s", flush=True)
        print("medians (Gbit/s):")
        base = benchlib.med(results["plain"])
        for name, xs in results.items():
            ref = benchlib.med(results.get("qemu plain", [])) if name.startswith("qemu") \
                else base
            print(f"  {name:22s} {benchlib.med(xs):5.2f}  ({benchlib.med(xs) / ref * 100:.0f}% "
                  f"of its plaintext)")


if __name__ == "__main__":
    main()
