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

        def start_dst(cpus=1, debugcon=None):
            n = len(procs)
            serial, ctl = tmp_path / f"dst{n}.txt", tmp_path / f"dctl{n}.sock"
            uri = f"tcp:{net.addr['b']}:{PORT}"
            vm = ferrylib.Vm(ferrylib.incoming_argv(uri, memory=MEM, cpus=cpus,
                                                    serial=f"file:{serial}", control=ctl,
                                                    debugcon=debugcon,
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
    assert src.qmp.cmd("query-status")["status"] == "postmigrate"
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


# The downtime guarantee on a link that slows down but keeps moving (issue 7):
# the veth runs at 1 Gbit/s while the passes converge, then drops to RATE at
# the moment the source pauses the guest for its switchover, or AFTER_MS
# later.  Whatever happens, the guest may never be paused longer than the
# limit plus SLOWDOWN_MARGIN_MS, which covers what the deadline cannot: the
# resume itself (waking the vCPUs) and the heartbeat's own 2 ms period.
# docs/policy.md gives the measured figures.
SLOWDOWN_MARGIN_MS = 10
FAST = "1gbit"


def guest_pauses(attempts, beats):
    """For every switchover attempt in ferry.switchover-table: from its t0
    (CLOCK_MONOTONIC, the first vCPU stopping, the clock time.monotonic()
    reads) to the first heartbeat after it, from either end: the pause the
    guest saw, to within one heartbeat period.  A longer gap that began
    before t0 is the host not giving the vCPU a CPU (a loaded test
    machine), which no VMM can prevent; it is printed, not judged."""
    out = []
    for a in attempts:
        t0 = a["paused-at-ns"] / 1e9
        after = [b for b in beats if b > t0]
        assert after, f"no heartbeat after attempt {a}: the guest never ran again"
        before = [b for b in beats if b <= t0]
        out.append(((after[0] - t0) * 1000,
                    (after[0] - before[-1]) * 1000 if before else None))
    return out


@pytest.mark.parametrize("limit_ms", [50, 100])
@pytest.mark.parametrize("after_ms", [0, 10, 30, 50])
@pytest.mark.parametrize("rate", ["5mbit", "50mbit", "200mbit"])
def test_downtime_kept_when_link_slows_during_switchover(hosts, tmp_path, rate, after_ms,
                                                         limit_ms):
    """A guest rewriting 2 MiB all the time migrates over 1 Gbit/s, where a
    switchover needs ~20 ms.  The passes run with an unreachable limit until
    the rate is measured; then the limit becomes @limit_ms, and @after_ms
    after the MIGRATION "device" event the link drops to @rate.  The
    switchover either completes in time or is rolled back in time; both
    ends' heartbeats (every 2 ms, one timeline) show the guest's pause in
    every switchover attempt.  Then the link comes back and the migration
    must complete, with the guest verifying its memory on the destination."""
    net, start_src, start_dst = hosts(rate=FAST)
    shaper = net.fast_shaper("a")
    hb_src = ferrylib.HeartbeatListener(tmp_path / "hb-src.sock")
    hb_dst = ferrylib.HeartbeatListener(tmp_path / "hb-dst.sock")
    try:
        src = start_src("workload=verify wss=2M rate=max heartbeat=2ms progress=200ms",
                        debugcon=f"unix:{hb_src.path}")
        dst, uri = start_dst(debugcon=f"unix:{hb_dst.path}")
        # What the platform itself loses between beats with no migration at
        # all (a loaded host, the nested lane's emulated CPUs): pauses are
        # judged on top of it, not blamed for it.
        time.sleep(0.5)
        jitter = max(0.0, max(hb_src.gaps_ms()) - 2)
        allowed = limit_ms + SLOWDOWN_MARGIN_MS + jitter
        print(f"heartbeat jitter before the migration: {jitter:.1f} ms")
        q = src.qmp
        set_params(q, downtime_limit=1, timeout=120, on_timeout="abort", switchover_attempts=100)
        q.cmd("migrate", uri=uri)
        deadline = time.monotonic() + 30
        while wait_status(q, "active", timeout=30)["ferry"]["passes"] < 2:
            assert time.monotonic() < deadline, "passes do not advance"
            time.sleep(0.01)
        q.events.clear()
        set_params(q, downtime_limit=limit_ms)
        while True:
            ev = q.wait_event("MIGRATION", timeout=60)
            if ev["data"]["status"] == "device":
                break
            assert ev["data"]["status"] == "active", ev
        if after_ms:
            time.sleep(after_ms / 1000)
        shaper.set(rate)
        st = wait_status(q, ("active", "completed"), timeout=30, interval=0.002)
        first = st["status"]
        shaper.set(FAST)
        st = wait_migration(q, timeout=60)
        f = st["ferry"]
        print(f"{rate} after {after_ms} ms, limit {limit_ms} ms: first attempt {first}; "
              f"{st['status']} after {f['switchover-attempts']} attempts "
              f"({f['aborted-attempts']} rolled back); {st.get('error-desc', '')}")
        assert st["status"] == "completed", st
        assert not f["forced"], st
        assert_keeps_verifying(dst, lines=2, pages=(2 << 20) // 4096)
        assert hb_src.times and hb_dst.times, "a heartbeat is missing"
        beats = sorted(hb_src.times + hb_dst.times)
        table = f["switchover-table"]
        assert len(table) == f["switchover-attempts"], st
        assert [a["outcome"] for a in table] == \
            ["rolled-back"] * (len(table) - 1) + ["go"], table
        pauses = guest_pauses(table, beats)
        for a, (pause, gap) in zip(table, pauses):
            print(f"attempt {a['attempt']} ({a['outcome']}): ferry paused "
                  f"{a['paused-ns'] / 1e6:.1f} ms, the guest saw {pause:.1f} ms "
                  f"(heartbeat gap {gap:.1f} ms); phases {a['phases-ns']}")
            # ferry's own figure: the deadline plus waking the vCPUs, which on a
            # loaded host includes waiting for a CPU
            assert a["paused-ns"] <= allowed * 1e6, table
            assert pause < allowed, \
                f"guest paused {pause:.1f} ms with a {limit_ms} ms limit: {a}"
        assert f["downtime-ns"] <= allowed * 1e6, st
    finally:
        hb_src.close()
        hb_dst.close()
