"""Live migration between two "hosts": each ferry runs in its own network
namespace, the stream goes over TCP across a veth pair shaped by real tc
(tbf).  The control sockets and the heartbeat socket are unix paths, reached
from the root namespace; the migration traffic never leaves the pair."""
import time

import pytest

import ferrylib
import netns
from ferrylib import (assert_keeps_verifying, assert_never_ran, assert_no_sanitizer_report,
                      assert_one_error, read_stderr, set_params, wait_migration, wait_status)

PORT = 4444  # the namespaces are ours alone: no clash possible
MEM = "128M"


@pytest.fixture
def hosts(tmp_path, kvm):
    """make(rate=...) -> (net, start_src, start_dst); everything is killed and
    deleted at the end, processes first, then the namespaces."""
    nets, procs = [], []

    def make(**shape):
        net = netns.HostPair(**shape).__enter__()
        nets.append(net)

        def start_src(append, cpus=1, debugcon=None):
            n = len(procs)
            serial, ctl = tmp_path / f"src{n}.txt", tmp_path / f"sctl{n}.sock"
            argv = net.exec_prefix("a") + ferrylib.ferry_argv(
                append=append, memory=MEM, cpus=cpus, serial=f"file:{serial}",
                control=ctl, debugcon=debugcon)
            vm = ferrylib.Vm(argv, tmp_path, serial, ctl)
            procs.append(vm)
            for cpu in range(cpus):
                vm.wait_for(rf"^progress cpu={cpu} .*$", count=2, timeout=60)
            return vm

        def start_dst(cpus=1):
            n = len(procs)
            serial, ctl = tmp_path / f"dst{n}.txt", tmp_path / f"dctl{n}.sock"
            uri = f"tcp:{net.addr['b']}:{PORT}"
            vm = ferrylib.Vm(ferrylib.incoming_argv(uri, memory=MEM, cpus=cpus,
                                                    serial=f"file:{serial}", control=ctl,
                                                    prefix=net.exec_prefix("b")),
                             tmp_path, serial, ctl)
            procs.append(vm)
            vm.qmp  # listening
            return vm, uri

        return net, start_src, start_dst

    try:
        yield make
    finally:
        for p in procs:
            p.kill()
        for net in nets:
            net.close()


def test_tc_cap_is_respected_and_guest_arrives(hosts):
    cap = "200mbit"
    # a small bucket: a burst adds at most 32 KiB to any measurement
    net, start_src, start_dst = hosts(rate=cap, burst="32kb")
    # 8 MiB/s of writes against 25 MB/s of link: converges in a few passes
    src = start_src("workload=verify wss=8M rate=2000 progress=200ms")
    # its whole working set is written once (pass 0), so the first pass
    # carries ~11 MB: long enough to measure the link
    deadline = time.monotonic() + 30
    while src.progress()[-1][3] < (8 << 20) // 4096:
        assert time.monotonic() < deadline, f"the guest is too slow: {src.progress()[-1]}"
        src.wait_for(r"^progress cpu=0 .*$", count=len(src.progress()) + 1, timeout=30)
    dst, uri = start_dst()
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=60)
    assert st["status"] == "completed", st
    cap_mbps = netns.bits_per_second(cap) / 1e6
    # the link really was capped: everything sent took at least that long
    wire_mbps = st["ram"]["transferred"] * 8 / 1e6 / (st["total-time"] / 1000)
    passes = [(p["pass"], round(p["bandwidth"] * 8 / 1e6, 1), p["bytes"], p["duration-ns"] // 1000)
              for p in st["ferry"]["pass-table"]]
    print(f"ram.mbps {st['ram']['mbps']:.1f}, transferred/total-time {wire_mbps:.1f}, "
          f"per-pass Mbit/s {passes}, downtime {st['downtime']} ms")
    assert wire_mbps < cap_mbps * 1.2, (wire_mbps, st)
    # and the stream went through the shaper: nothing took another way
    assert net.sent_bytes("a") >= st["ram"]["transferred"], net.qdisc_stats("a")
    assert src.qmp.cmd("query-status")["status"] == "paused"
    assert_keeps_verifying(dst, lines=3, pages=(8 << 20) // 4096)
    assert_no_sanitizer_report(src)
    assert_no_sanitizer_report(dst)
    # ferry's own measure of the throughput reports the cap, not memory speed
    # (docs/policy.md: bytes the peer can have received, not what write() took)
    assert st["ram"]["mbps"] < cap_mbps * 1.2, \
        f"ram.mbps {st['ram']['mbps']} over a {cap} link; passes {passes}"
    for p in st["ferry"]["pass-table"]:
        if p["bytes"] >= 1 << 20:  # long enough that no burst matters
            assert p["bandwidth"] * 8 / 1e6 < cap_mbps * 1.2, \
                f"pass {p['pass']} measured {p['bandwidth'] * 8 / 1e6:.1f} Mbit/s " \
                f"over a {cap} link: {p}"


def test_heavy_writer_under_low_cap_times_out(hosts):
    net, start_src, start_dst = hosts(rate="50mbit")
    src = start_src("workload=verify wss=32M rate=max progress=200ms")
    dst, uri = start_dst()
    set_params(src.qmp, timeout=5, on_timeout="abort")
    t0 = time.monotonic()
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=60)
    took = time.monotonic() - t0
    print(f"took {took:.1f} s: {st.get('error-desc')}")
    assert st["status"] == "failed", st
    assert st["ferry"]["policy-reason"] == "timeout-abort", st
    assert st["ferry"]["switchover-attempts"] == 0, st
    # the cap holds a 16 MiB chunk for ~2.7 s, past which the timeout acts
    assert 4.5 < took < 20, f"a 5 s timeout ended the migration after {took:.1f} s"
    assert src.qmp.cmd("query-status")["status"] == "running"
    assert_keeps_verifying(src, lines=3, pages=(32 << 20) // 4096)
    assert_no_sanitizer_report(src)
    rc = dst.wait_exit(15)
    assert_one_error(rc, read_stderr(dst))
    assert_never_ran(dst)


LIMIT_MS = 200
MARGIN_MS = 100


def test_downtime_kept_when_bandwidth_collapses_at_switchover(hosts, tmp_path):
    """A guest that rewrites its 3 MiB all the time: over 200 Mbit/s each
    switchover must send all of it (~130 ms), which fits a 200 ms limit.  The
    passes first run with an unreachable limit (1 ms); then the limit becomes
    200 ms, and the moment the source pauses the guest for the switchover
    the link collapses to 1 Mbit/s.  The final state cannot arrive in time:
    the source must roll the switchover back (or give up) and resume its
    guest within the limit, which the guest's own heartbeat (every 2 ms)
    measures from the outside."""
    net, start_src, start_dst = hosts(rate="200mbit", burst="32kb")
    hb = ferrylib.HeartbeatListener(tmp_path / "hb.sock")
    try:
        src = start_src("workload=verify wss=3M rate=max heartbeat=2ms progress=200ms",
                        debugcon=f"unix:{hb.path}")
        dst, uri = start_dst()
        q = src.qmp
        set_params(q, downtime_limit=1, timeout=30, on_timeout="abort")
        q.cmd("migrate", uri=uri)
        deadline = time.monotonic() + 20
        while wait_status(q, "active", timeout=20)["ferry"]["passes"] < 3:
            assert time.monotonic() < deadline, "passes do not advance"
            time.sleep(0.01)
        beats0 = len(hb.times)
        # What the guest loses between beats while passes run and nothing
        # pauses it (a loaded host, the nested lane's emulated CPUs): the
        # switchover's pause is judged on top of that, not blamed for it.
        jitter = max(0.0, max(hb.gaps_ms()[:max(1, beats0 - 1)], default=0.0) - 2)
        collapse = net.prepare_rate_change("a", rate="1mbit", burst="16kb", latency="100ms")
        set_params(q, downtime_limit=LIMIT_MS)
        st = wait_status(q, "device", timeout=20, interval=0)
        collapse()
        deadline = time.monotonic() + 20
        while True:
            st = q.cmd("query-migrate")
            if st["status"] != "device":
                break
            assert time.monotonic() < deadline, f"the switchover never ended: {st}"
            time.sleep(0.002)
        assert st["status"] != "completed", \
            f"the switchover completed before the collapse took effect (test too slow?): {st}"
        time.sleep(0.3)  # heartbeats after the resume
        # give the link back, end the migration, and judge
        net.shape("a", rate="200mbit", burst="32kb")
        if st["status"] not in ("failed", "cancelled"):
            q.cmd("migrate-cancel")
        st = wait_migration(q, timeout=30)
        print(f"ended {st['status']}: {st.get('error-desc')}; attempts "
              f"{st['ferry']['switchover-attempts']}, aborted {st['ferry']['aborted-attempts']}"
              f"; phases {st['ferry']['downtime-phases-ns']}")
        assert st["status"] in ("failed", "cancelled"), st
        assert st["ferry"]["switchover-attempts"] >= 1, st
        assert (st["ferry"]["aborted-attempts"] >= 1 or
                "switchover abandoned" in st.get("error-desc", "")), st
        assert q.cmd("query-status")["status"] == "running"
        assert_keeps_verifying(src, lines=3, pages=(3 << 20) // 4096)
        assert_no_sanitizer_report(src)
        assert_one_error(dst.wait_exit(15), read_stderr(dst))
        assert_never_ran(dst)
        gaps = hb.gaps_ms()[max(0, beats0 - 1):]
        worst = max(gaps)
        print(f"heartbeat: worst gap {worst:.1f} ms with a {LIMIT_MS} ms limit "
              f"(margin {worst - LIMIT_MS:+.1f} ms, jitter before {jitter:.1f} ms)")
        assert worst > 50, f"no pause seen ({worst:.1f} ms): the switchover never paused"
        assert worst < LIMIT_MS + MARGIN_MS + jitter, \
            f"guest paused {worst:.1f} ms with a {LIMIT_MS} ms limit (jitter before {jitter:.1f} ms)"
        if st["status"] == "failed":
            # mig_precopy.c has a message for exactly this case; the operator
            # should read it rather than the channel's bare timeout
            assert "switchover abandoned" in st["error-desc"], st["error-desc"]
    finally:
        hb.close()
