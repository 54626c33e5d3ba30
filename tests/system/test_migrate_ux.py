"""What a user hit on main (issue 7, section 5): events QEMU clients wait
for, words that say what happened, mistakes refused at once."""
import time

import ferrylib
from ferrylib import assert_one_error, read_stderr, wait_migration, wait_status
from test_migrate_faults import LIGHT, LIGHT_PAGES, MEM, pair  # noqa: F401  (fixture)


def test_destination_events_for_qemu_clients(tmp_path, kvm):
    """A destination started with --incoming defer and driven over QMP says
    MIGRATION setup, active, completed, and RESUME when the guest starts."""
    sctl, dctl = tmp_path / "s.sock", tmp_path / "d.sock"
    src = ferrylib.Vm(ferrylib.ferry_argv(append=LIGHT, memory=MEM,
                                          serial=f"file:{tmp_path / 's.txt'}", control=sctl),
                      tmp_path, tmp_path / "s.txt", sctl)
    dst = ferrylib.Vm(ferrylib.incoming_argv("defer", memory=MEM,
                                             serial=f"file:{tmp_path / 'd.txt'}", control=dctl),
                      tmp_path, tmp_path / "d.txt", dctl)
    try:
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        d = dst.qmp
        assert d.cmd("query-status")["status"] == "inmigrate"
        uri = f"unix:{tmp_path / 'mig.sock'}"
        d.cmd("migrate-incoming", uri=uri)
        assert d.wait_event("MIGRATION", timeout=5)["data"]["status"] == "setup"
        src.qmp.cmd("migrate", uri=uri)
        assert wait_migration(src.qmp, timeout=30)["status"] == "completed"
        seen = []
        while "completed" not in seen:
            seen.append(d.wait_event("MIGRATION", timeout=10)["data"]["status"])
        assert seen == ["active", "completed"], seen
        d.wait_event("RESUME", timeout=10)
        assert d.cmd("query-status")["status"] == "running"
        ferrylib.assert_keeps_verifying(dst, lines=2, pages=LIGHT_PAGES)
    finally:
        src.kill()
        dst.kill()


def test_malformed_uri_refused_at_once(pair):
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    for bad, words in (("tcp:127.0.0.1", "expected tcp:HOST:PORT"),
                       ("tcp:127.0.0.1:0", "port must be a number from 1"),
                       ("udp:1.2.3.4:5", "unknown transport"),
                       ("unix:", "missing path")):
        r = q.execute("migrate", uri=bad)
        assert "error" in r, (bad, r)
        assert bad in r["error"]["desc"] and words in r["error"]["desc"], (bad, r)
    assert q.cmd("query-migrate") == {}, "a refused migrate must not start anything"
    assert q.cmd("query-status")["status"] == "running"


def test_destination_killed_mid_pass_is_named(pair):
    """The source says the destination closed the connection, and when."""
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    ferrylib.set_params(q, downtime_limit=1, max_bandwidth=4 << 20)
    q.cmd("migrate", uri=uri)
    wait_status(q, "active", timeout=10)
    time.sleep(0.3)
    dst.kill()
    st = wait_migration(q, timeout=30)
    assert st["status"] == "failed", st
    desc = st["error-desc"]
    assert "the destination closed the connection during pass" in desc, desc
    assert "READY" not in desc, desc
    assert q.cmd("query-status")["status"] == "running"


def test_missing_restore_file_named_once(tmp_path, kvm):
    path = tmp_path / "missing.snap"
    vm = ferrylib.Vm([str(ferrylib.FERRY), "run", "--incoming", f"file:{path}"], tmp_path,
                     tmp_path / "serial.txt")
    status = vm.wait_exit(15)
    err = read_stderr(vm)
    assert_one_error(status, err, "missing.snap")
    assert err.count(str(path)) == 1, err


def test_file_save_has_a_pass_table_and_phases(vms, tmp_path):
    vm = vms(append=LIGHT, memory=MEM)
    vm.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
    q = vm.qmp
    q.cmd("migrate", uri=f"file:{tmp_path / 'save.snap'}")
    st = wait_migration(q, timeout=30)
    assert st["status"] == "completed", st
    f = st["ferry"]
    assert len(f["pass-table"]) == 1, f
    p = f["pass-table"][0]
    assert p["pass"] == 1 and p["pages"] > 0 and p["bytes"] > 0 and p["duration-ns"] > 0, p
    ph = f["downtime-phases-ns"]
    assert ph["send"] > 0 and ph["pause"] > 0, ph
    assert ph["send"] <= f["downtime-ns"], f
