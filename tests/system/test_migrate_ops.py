"""What an operator does to a running migration (issue 12, section 3): caps
it, changes the cap, cancels it anywhere, follows its events; and ferry
migrate end to end.  Rates are judged over seconds-long windows with a 10 %
tolerance, loose enough for a shared host and tight enough to catch a cap
that is not applied."""
import os
import signal
import subprocess
import time

import ferrylib
from ferrylib import assert_keeps_verifying, set_params, wait_migration, wait_status
from test_migrate_faults import (BIG, LIGHT, LIGHT_PAGES, MEM, pair)  # noqa: F401 (fixture)

MiB = 1 << 20


def rate_over(q, seconds):
    """Bytes per second the migration put on the stream over @seconds."""
    a = q.cmd("query-migrate")["ram"]["transferred"]
    t0 = time.monotonic()
    time.sleep(seconds)
    b = q.cmd("query-migrate")["ram"]["transferred"]
    return (b - a) / (time.monotonic() - t0)


def test_max_bandwidth_is_kept_and_can_change(pair):
    src, dst, uri = pair(BIG)
    q = src.qmp
    set_params(q, max_bandwidth=8 * MiB, downtime_limit=1)  # no switchover fits: passes go on
    q.cmd("migrate", uri=uri)
    wait_status(q, "active", timeout=10)
    time.sleep(0.5)  # past the burst of the start
    r1 = rate_over(q, 3.0)
    print(f"capped at 8 MiB/s: {r1 / MiB:.2f} MiB/s")
    assert abs(r1 - 8 * MiB) <= 0.1 * 8 * MiB, r1
    set_params(q, max_bandwidth=16 * MiB)  # applies from the next 16 MiB chunk
    time.sleep(1.5)
    r2 = rate_over(q, 3.0)
    print(f"capped at 16 MiB/s: {r2 / MiB:.2f} MiB/s")
    assert abs(r2 - 16 * MiB) <= 0.1 * 16 * MiB, r2
    q.cmd("migrate-cancel")
    assert wait_migration(q, timeout=30)["status"] == "cancelled"


def test_cap_never_applies_inside_the_downtime_window(pair):
    """The cap shapes the passes; the final send, with the guest paused, goes
    at the link's speed: otherwise the cap would be added to the downtime."""
    # dirties 1000 pages (~3.9 MiB) a second, under an 8 MiB/s cap: pass 1
    # sends its 4 MiB in ~0.5 s, during which ~2 MiB are dirtied again
    append = "workload=verify wss=4M rate=1000 progress=200ms"
    src, dst, uri = pair(append)
    ferrylib.wait_total(src, 0, ferrylib.verify_pages_per_cpu(append, 1))  # all written
    q = src.qmp
    cap = 8 * MiB
    # switch at the first fit: what pass 1 left is sent in the window, which
    # at the cap would take ~250 ms
    set_params(q, max_bandwidth=cap, downtime_limit=2000, pass_gain=100)
    q.cmd("migrate", uri=uri)
    st = wait_migration(q, timeout=60)
    assert st["status"] == "completed", st
    a = st["ferry"]["switchover-table"][-1]
    sent_in_window = a["bytes"]
    capped_ns = sent_in_window / cap * 1e9
    print(f"window sent {sent_in_window} bytes in {a['phases-ns']['send'] / 1e6:.1f} ms "
          f"(at the cap: {capped_ns / 1e6:.1f} ms)")
    assert sent_in_window > 512 << 10, st  # enough for the cap to show
    assert a["phases-ns"]["send"] < capped_ns / 4, a


def events_of(q, name="MIGRATION"):
    q.execute("query-status")  # collects what is still in the socket
    return [e["data"]["status"] for e in q.events if e["event"] == name]


def test_event_sequences(pair):
    # success
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    q.events.clear()
    q.cmd("migrate", uri=uri)
    assert wait_migration(q, timeout=30)["status"] == "completed"
    assert events_of(q) == ["setup", "active", "device", "completed"], q.events
    assert [e["event"] for e in q.events if e["event"] in ("STOP", "RESUME")] == ["STOP"]
    # failure: the destination dies mid-pass
    src, dst, uri = pair(BIG)
    q = src.qmp
    set_params(q, max_bandwidth=4 * MiB, downtime_limit=1)
    q.events.clear()
    q.cmd("migrate", uri=uri)
    wait_status(q, "active", timeout=10)
    dst.kill()
    assert wait_migration(q, timeout=30)["status"] == "failed"
    assert events_of(q) == ["setup", "active", "failed"], q.events
    # cancel
    dst2 = pair(BIG)
    src, dst, uri = dst2
    q = src.qmp
    set_params(q, max_bandwidth=4 * MiB, downtime_limit=1)
    q.events.clear()
    q.cmd("migrate", uri=uri)
    wait_status(q, "active", timeout=10)
    q.cmd("migrate-cancel")
    assert wait_migration(q, timeout=30)["status"] == "cancelled"
    assert events_of(q) == ["setup", "active", "cancelled"], q.events
    # rollback then success
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    set_params(dst.qmp, x_load_delay=400)
    set_params(q, downtime_limit=200)
    q.events.clear()
    q.cmd("migrate", uri=uri)
    q.wait_event("MIGRATION_SWITCHOVER_ABORTED", timeout=30)
    set_params(dst.qmp, x_load_delay=0)
    assert wait_migration(q, timeout=60)["status"] == "completed"
    assert events_of(q) == ["setup", "active", "device", "active", "device", "completed"], \
        q.events
    vm_events = [e["event"] for e in q.events if e["event"] in ("STOP", "RESUME")]
    assert vm_events == ["STOP", "RESUME", "STOP"], vm_events


def test_source_stays_paused_when_destination_stops_after_go(pair):
    """GO went out, but the destination (SIGSTOP) does not confirm: it may
    start the guest at any moment, so the source must not resume it, and
    says so; it keeps the connection open for the confirmation.  Once the
    destination continues, the guest runs there, and only there."""
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    set_params(q, x_go_delay=1500, downtime_limit=20000)
    q.events.clear()
    q.cmd("migrate", uri=uri)
    wait_status(q, "device", timeout=30, interval=0.002)
    time.sleep(0.7)  # the destination has loaded and acknowledged; GO is not sent yet
    os.kill(dst.proc.pid, signal.SIGSTOP)
    try:
        ev = q.wait_event("MIGRATION_UNCONFIRMED", timeout=10)
        assert "stays paused here" in ev["data"]["detail"], ev
        time.sleep(1.0)  # a negative check: the source must not give up and resume
        assert q.cmd("query-migrate")["status"] == "device"
        assert q.cmd("query-status")["status"] == "paused"
        for cmd in ("cont", "quit", "migrate-cancel"):
            r = q.execute(cmd)
            assert "error" in r, (cmd, r)
        n = len(src.progress())
    finally:
        os.kill(dst.proc.pid, signal.SIGCONT)
    st = wait_migration(q, timeout=30)
    assert st["status"] == "completed", st
    assert q.cmd("query-status")["status"] == "postmigrate"
    assert_keeps_verifying(dst, lines=2, pages=LIGHT_PAGES)
    assert len(src.progress()) == n, "the source ran the guest too"


def test_cancel_without_a_migration_and_during_a_file_save(vms, tmp_path):
    vm = vms(append="workload=verify wss=64M rate=max progress=200ms", memory="256M")
    vm.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
    q = vm.qmp
    assert q.execute("migrate-cancel") == {"return": {}}  # nothing running: not an error
    set_params(q, max_bandwidth=8 * MiB)  # the save of 64 MiB takes seconds
    path = tmp_path / "save.snap"
    q.cmd("migrate", uri=f"file:{path}")
    wait_status(q, "active", timeout=10)
    assert q.cmd("query-status")["status"] == "paused"
    r = q.execute("cont")  # the snapshot holds the guest
    assert "error" in r and "snapshot is being saved" in r["error"]["desc"], r
    q.cmd("migrate-cancel")
    assert wait_migration(q, timeout=30)["status"] == "cancelled"
    assert not path.exists(), "a cancelled save must not leave a file that looks like a snapshot"
    assert q.cmd("query-status")["status"] == "running"
    assert_keeps_verifying(vm, lines=2, pages=(64 << 20) // 4096)


def test_ferry_migrate_cli_end_to_end_with_prealloc(tmp_path, kvm):
    """`ferry migrate --wait` against a real ferry whose destination
    preallocates its RAM: exit 0, the summary, the guest on the destination."""
    sctl = tmp_path / "s.sock"
    src = ferrylib.Vm(ferrylib.ferry_argv(append=LIGHT, memory=MEM,
                                          serial=f"file:{tmp_path / 's.txt'}", control=sctl),
                      tmp_path, tmp_path / "s.txt", sctl)
    uri = f"unix:{tmp_path / 'mig.sock'}"
    dst = ferrylib.Vm(ferrylib.incoming_argv(uri, memory=MEM, serial=f"file:{tmp_path / 'd.txt'}",
                                             control=tmp_path / "d.sock") + ["--prealloc"],
                      tmp_path, tmp_path / "d.txt", tmp_path / "d.sock")
    try:
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        dst.qmp
        r = subprocess.run([str(ferrylib.FERRY), "migrate", "--control", str(sctl),
                            "--downtime-limit", "300", "--wait", uri],
                           capture_output=True, text=True, timeout=90)
        print(r.stdout, r.stderr)
        assert r.returncode == 0, r.stderr
        assert "completed" in r.stdout, r.stdout
        assert src.qmp.cmd("query-status")["status"] == "postmigrate"
        assert_keeps_verifying(dst, lines=2, pages=LIGHT_PAGES)
    finally:
        src.kill()
        dst.kill()
