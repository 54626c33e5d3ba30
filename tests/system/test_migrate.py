"""Live pre-copy migration between two real ferry processes: the guest keeps
running on the destination and its own checks find nothing lost."""
import time

import pytest

import ferrylib
from ferrylib import wait_migration, set_params


@pytest.fixture
def pair(tmp_path, kvm):
    """Start a source VM and a destination listening on @transport."""
    procs = []

    def make(append, cpus=1, memory="256M", transport="unix", dst_memory=None, dst_cpus=None,
             src_debugcon=None, dst_debugcon=None):
        n = len(procs)
        uri = ferrylib.migration_uri(tmp_path, n, transport)
        dserial = tmp_path / f"dst{n}.txt"
        dctl = tmp_path / f"dctl{n}.sock"
        dargv = ferrylib.incoming_argv(uri, memory=dst_memory or memory, cpus=dst_cpus or cpus,
                                       serial=f"file:{dserial}", control=dctl,
                                       debugcon=dst_debugcon)
        dst = ferrylib.Vm(dargv, tmp_path, dserial, dctl)
        sserial = tmp_path / f"src{n}.txt"
        sctl = tmp_path / f"sctl{n}.sock"
        src = ferrylib.Vm(ferrylib.ferry_argv(append=append, memory=memory, cpus=cpus,
                                              serial=f"file:{sserial}", control=sctl,
                                              debugcon=src_debugcon),
                          tmp_path, sserial, sctl)
        procs.extend([src, dst])
        return src, dst, uri

    yield make
    for p in procs:
        p.kill()


def migrate(src, dst, uri, **params):
    dst.qmp  # the destination is up and listening before the source connects
    set_params(src.qmp, **params)
    src.qmp.cmd("migrate", uri=uri)
    return wait_migration(src.qmp)


def assert_continues_on_destination(src, dst, cpus):
    for cpu in range(cpus):
        dst.wait_for(rf"^progress cpu={cpu} .*$", count=3, timeout=60)
    assert "FAIL" not in dst.serial()
    assert dst.qmp.cmd("query-status")["status"] == "running"
    assert src.qmp.cmd("query-status")["status"] == "paused"
    # the guest's counters continue from the source's
    for cpu in range(cpus):
        s = [p for p in src.progress() if p[0] == cpu]
        d = [p for p in dst.progress() if p[0] == cpu]
        assert d[-1][3] > s[-1][3], (s[-1], d[-1])


WORKLOADS = {
    "verify-idle": "workload=verify wss=16M rate=100 progress=200ms",
    "verify-moderate": "workload=verify wss=32M rate=20000 progress=200ms",
    "verify-heavy": "workload=verify wss=16M rate=max progress=200ms",
    "dirty-moderate": "workload=dirty wss=64M rate=50000 pattern=random progress=200ms",
    "dirty-heavy": "workload=dirty wss=32M rate=max pattern=hotcold progress=200ms",
    "idle": "workload=idle progress=200ms",
}


@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_live_migration(pair, workload, cpus, transport):
    src, dst, uri = pair(WORKLOADS[workload], cpus=cpus, transport=transport)
    for cpu in range(cpus):
        src.wait_for(rf"^progress cpu={cpu} .*$", count=2, timeout=60)
    # heavy writers converge only with a generous limit or by force: allow both
    st = migrate(src, dst, uri, downtime_limit=1000, timeout=20, on_timeout="force")
    assert st["status"] == "completed", st
    assert st["ram"]["total"] == 256 << 20
    assert st["ferry"]["passes"] >= 1
    assert st["downtime"] >= 0
    assert_continues_on_destination(src, dst, cpus)


def test_heartbeat_continues_on_destination(pair, tmp_path):
    hb_src = ferrylib.HeartbeatListener(tmp_path / "hbs.sock")
    hb_dst = ferrylib.HeartbeatListener(tmp_path / "hbd.sock")
    try:
        src, dst, uri = pair("workload=verify wss=16M rate=10000 heartbeat=5ms progress=200ms",
                             src_debugcon=f"unix:{hb_src.path}",
                             dst_debugcon=f"unix:{hb_dst.path}")
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        st = migrate(src, dst, uri)
        assert st["status"] == "completed", st
        deadline = time.monotonic() + 10
        while len(hb_dst.times) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(hb_dst.times) >= 50, "no heartbeat from the destination"
        # the guest-observed gap: last beat on the source to first on the destination
        gap_ms = (hb_dst.times[0] - hb_src.times[-1]) * 1000
        assert gap_ms < 300 + 100, f"guest saw a {gap_ms:.1f} ms pause (limit 300 ms)"
    finally:
        hb_src.close()
        hb_dst.close()


def test_back_and_forth_20_times(tmp_path, kvm):
    """20 consecutive migrations of a verify guest, alternating direction, zero detections."""
    procs = []
    try:
        serial = tmp_path / "s0.txt"
        ctl = tmp_path / "c0.sock"
        cur = ferrylib.Vm(ferrylib.ferry_argv(append="workload=verify wss=16M rate=20000 "
                                              "progress=200ms", memory="128M", cpus=2,
                                              serial=f"file:{serial}", control=ctl),
                          tmp_path, serial, ctl)
        procs.append(cur)
        cur.wait_for(r"^progress cpu=1 .*$", count=2, timeout=60)
        for i in range(1, 21):
            uri = f"unix:{tmp_path / f'm{i}.sock'}"
            serial = tmp_path / f"s{i}.txt"
            ctl = tmp_path / f"c{i}.sock"
            nxt = ferrylib.Vm([str(ferrylib.FERRY), "run", "--incoming", uri, "--memory",
                               "128M", "--cpus", "2", "--serial", f"file:{serial}",
                               "--control", str(ctl)], tmp_path, serial, ctl)
            procs.append(nxt)
            st = migrate(cur, nxt, uri)
            assert st["status"] == "completed", f"migration {i}: {st}"
            nxt.wait_for(r"^progress cpu=1 .*$", count=2, timeout=60)
            assert "FAIL" not in nxt.serial(), f"migration {i}: guest detected a loss"
            cur.qmp.cmd("quit")
            assert cur.wait_exit(10) == 0
            cur = nxt
    finally:
        for p in procs:
            p.kill()


def test_cancel_mid_pass_keeps_vm_on_source(pair):
    src, dst, uri = pair("workload=verify wss=64M rate=max progress=200ms", memory="512M")
    src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
    dst.qmp
    set_params(src.qmp, max_bandwidth=32 << 20)  # slow enough to cancel mid-pass
    src.qmp.cmd("migrate", uri=uri)
    time.sleep(0.5)
    assert src.qmp.cmd("query-migrate")["status"] == "active"
    src.qmp.cmd("migrate-cancel")
    st = wait_migration(src.qmp)
    assert st["status"] == "cancelled", st
    assert src.qmp.cmd("query-status")["status"] == "running"
    n = len(src.progress())
    src.wait_for(r"^progress cpu=0 .*$", count=n + 3, timeout=30)
    assert "FAIL" not in src.serial()
    assert dst.wait_exit(10) == 1
    assert "ferry: error:" in dst.stderr()


def test_destination_with_wrong_size_is_refused(pair):
    for kw, word in (({"dst_memory": "128M"}, "--memory"), ({"dst_cpus": 2}, "--cpus")):
        src, dst, uri = pair("workload=verify wss=8M progress=200ms", **kw)
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        st = migrate(src, dst, uri)
        assert st["status"] == "failed"
        assert word in st["error-desc"], st
        assert src.qmp.cmd("query-status")["status"] == "running"
        assert dst.wait_exit(10) == 1
        assert word in dst.stderr()
        n = len(src.progress())
        src.wait_for(r"^progress cpu=0 .*$", count=n + 2, timeout=30)
        src.qmp.cmd("quit")


def test_downtime_limit_is_kept_by_rolling_back(pair, tmp_path):
    """A destination slower than the limit: every switchover is rolled back in
    time, the guest never pauses much longer than the limit, and stays on the source."""
    hb = ferrylib.HeartbeatListener(tmp_path / "hb.sock")
    try:
        src, dst, uri = pair("workload=verify wss=16M rate=1000 heartbeat=2ms progress=200ms",
                             src_debugcon=f"unix:{hb.path}")
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        # What the platform itself loses between beats with no migration at
        # all (a loaded host, the nested lane's emulated CPUs): the pause is
        # judged on top of that, not blamed for it.
        time.sleep(1.0)
        jitter = max(0.0, max(hb.gaps_ms()) - 2)
        print(f"heartbeat jitter before the migration: {jitter:.1f} ms")
        set_params(dst.qmp, x_load_delay=500)
        st = migrate(src, dst, uri, downtime_limit=100, switchover_attempts=2, timeout=5,
                     on_timeout="abort")
        assert st["status"] == "failed", st
        assert st["ferry"]["aborted-attempts"] >= 1, st
        assert "abandoned" in st["error-desc"], st
        assert src.qmp.cmd("query-status")["status"] == "running"
        n = len(src.progress())
        src.wait_for(r"^progress cpu=0 .*$", count=n + 3, timeout=30)
        assert "FAIL" not in src.serial()
        gaps = hb.gaps_ms()
        worst = max(gaps)
        # the limit, plus the margin measured and documented in docs/performance.md
        assert worst < 100 + 50 + jitter, \
            f"guest paused {worst:.1f} ms with a 100 ms limit (jitter before: {jitter:.1f} ms)"
    finally:
        hb.close()


def test_paused_guest_migrates_and_stays_paused(pair):
    src, dst, uri = pair("workload=verify wss=64M rate=max progress=200ms", memory="256M")
    src.wait_for(r"^progress cpu=0 .*$", count=3, timeout=60)
    src.qmp.cmd("stop")
    st = migrate(src, dst, uri)
    assert st["status"] == "completed", st
    assert st["ferry"]["aborted-attempts"] == 0, st
    assert src.qmp.cmd("query-status")["status"] == "paused"
    assert dst.qmp.cmd("query-status")["status"] == "paused"
    n = len(dst.progress())
    time.sleep(0.5)
    assert len(dst.progress()) == n, "a guest paused on the source must not run on the destination"
    dst.qmp.cmd("cont")
    dst.wait_for(r"^progress cpu=0 .*$", count=n + 3, timeout=30)
    assert "FAIL" not in dst.serial()


@pytest.mark.parametrize("cpus", [1, 2])
def test_there_and_back(pair, tmp_path, cpus):
    """Pre-copy to a second ferry and back to a third: the verify guest
    finds nothing lost either way, and keeps running on the last one."""
    src, mid, uri = pair("workload=verify wss=16M rate=20000 progress=200ms", cpus=cpus,
                         memory="128M")
    for cpu in range(cpus):
        src.wait_for(rf"^progress cpu={cpu} .*$", count=2, timeout=60)
    st = migrate(src, mid, uri)
    assert st["status"] == "completed", st
    assert_continues_on_destination(src, mid, cpus)
    src.qmp.cmd("quit")  # the guest comes back to a fresh ferry, as to a host
    uri2 = ferrylib.migration_uri(tmp_path, 99)
    back = ferrylib.Vm(ferrylib.incoming_argv(uri2, memory="128M", cpus=cpus,
                                              serial=f"file:{tmp_path / 'back.txt'}",
                                              control=tmp_path / "back.sock"),
                       tmp_path, tmp_path / "back.txt", tmp_path / "back.sock")
    try:
        st = migrate(mid, back, uri2)
        assert st["status"] == "completed", st
        assert_continues_on_destination(mid, back, cpus)
    finally:
        back.kill()
