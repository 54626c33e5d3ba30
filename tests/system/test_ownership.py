"""Every command that could run, stop, quit or move the guest, in every
migration status (issue 7): one process owns the guest at a time, and a
command that would run it twice or lose it is refused with the reason.

Source statuses reached on purpose: setup (a destination that never
answers), active (a limit no switchover meets), device before the
destination's ACK (x-load-delay) and after it (x-go-delay), completed,
failed, cancelled; destination: waiting, loading, completed."""
import socket

import pytest

import ferrylib
from ferrylib import assert_keeps_verifying, set_params, wait_migration, wait_status
from test_migrate_faults import LIGHT, LIGHT_PAGES, pair  # noqa: F401  (fixture)


def run(q, name, **args):
    """A command's outcome: "ok", or the error text."""
    r = q.execute(name, **args)
    return "ok" if "return" in r else r["error"]["desc"]


def refused(outcome, *words):
    assert outcome != "ok", "the command was accepted"
    for w in words:
        assert w in outcome, f"{w!r} not in {outcome!r}"


def silent_destination(tmp_path):
    """A unix socket that accepts and never answers: the source stays in setup."""
    path = tmp_path / "silent.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    return s, f"unix:{path}"


def test_commands_in_setup_and_active(pair, tmp_path):
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    lsock, silent = silent_destination(tmp_path)
    try:
        q.cmd("migrate", uri=silent)
        wait_status(q, "setup", timeout=5)
        refused(run(q, "migrate", uri=uri), "already in progress")
        # the guest is still the operator's: stop and cont work
        assert run(q, "stop") == "ok"
        assert q.cmd("query-status")["status"] == "paused"
        assert run(q, "cont") == "ok"
        assert q.cmd("query-status")["status"] == "running"
        assert run(q, "migrate-cancel") == "ok"
        assert wait_migration(q, timeout=15)["status"] == "cancelled"
    finally:
        lsock.close()
    # active: passes run, no switchover can meet a 1 ms limit
    set_params(q, downtime_limit=1, max_bandwidth=4 << 20)
    q.cmd("migrate", uri=uri)
    wait_status(q, "active", timeout=10)
    refused(run(q, "migrate", uri=uri), "already in progress")
    assert run(q, "stop") == "ok"
    assert run(q, "cont") == "ok"
    assert run(q, "migrate-cancel") == "ok"
    assert wait_migration(q, timeout=15)["status"] == "cancelled"
    assert q.cmd("query-status")["status"] == "running"
    assert_keeps_verifying(src, lines=2, pages=LIGHT_PAGES)


@pytest.mark.parametrize("hold", ["before-ack", "after-ack"])
def test_commands_while_handing_over(pair, hold):
    """In the switchover the engine owns the guest: cont, stop and quit are
    refused with the reason; migrate-cancel keeps the guest here."""
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    if hold == "before-ack":
        set_params(dst.qmp, x_load_delay=3000)
    else:
        set_params(q, x_go_delay=3000)
    set_params(q, downtime_limit=20000)
    q.cmd("migrate", uri=uri)
    wait_status(q, "device", timeout=20, interval=0.002)
    for cmd in ("cont", "stop", "quit"):
        refused(run(q, cmd), "switchover is handing the guest over")
    refused(run(q, "migrate", uri=uri), "cannot migrate", "handing the guest over")
    assert q.cmd("query-migrate")["ferry"]["guest-owner"] == "handing-over"
    assert q.cmd("query-status")["status"] == "paused"
    assert run(q, "migrate-cancel") == "ok"
    st = wait_migration(q, timeout=15)
    assert st["status"] == "cancelled", st
    assert q.cmd("query-status")["status"] == "running"
    assert q.cmd("query-migrate")["ferry"]["guest-owner"] == "here"
    assert_keeps_verifying(src, lines=2, pages=LIGHT_PAGES)
    # the destination never ran it, and says why it ended
    assert dst.wait_exit(15) == 1
    ferrylib.assert_never_ran(dst)


def test_commands_after_completion(pair):
    """Migrated away, the guest belongs to the destination: the source
    refuses to run, stop, migrate or cancel it, and quits cleanly."""
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    q.cmd("migrate", uri=uri)
    assert wait_migration(q, timeout=30)["status"] == "completed"
    assert q.cmd("query-status")["status"] == "postmigrate"
    assert q.cmd("query-migrate")["ferry"]["guest-owner"] == "away"
    refused(run(q, "cont"), "runs on the destination", "twice")
    refused(run(q, "stop"), "runs on the destination")
    refused(run(q, "migrate", uri=uri), "cannot migrate", "runs on the destination")
    refused(run(q, "migrate-cancel"), "too late", "completed")
    assert q.cmd("query-status")["status"] == "postmigrate"
    # the destination owns it and acts normally
    d = dst.qmp
    assert wait_migration(d, timeout=30)["ferry"]["guest-owner"] == "here"
    assert run(d, "migrate-cancel") == "ok"  # nothing to cancel: not an error (as QEMU)
    assert run(d, "stop") == "ok"
    assert run(d, "cont") == "ok"
    assert_keeps_verifying(dst, lines=2, pages=LIGHT_PAGES)
    assert run(q, "quit") == "ok"
    assert src.wait_exit(15) == 0


def test_commands_after_failure(pair):
    """A failed migration leaves the guest here, the operator's again."""
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    set_params(q, downtime_limit=1, max_bandwidth=4 << 20)
    q.cmd("migrate", uri=uri)
    wait_status(q, "active", timeout=10)
    dst.kill()
    st = wait_migration(q, timeout=30)
    assert st["status"] == "failed", st
    assert q.cmd("query-migrate")["ferry"]["guest-owner"] == "here"
    assert run(q, "migrate-cancel") == "ok"  # nothing to cancel
    assert run(q, "stop") == "ok"
    assert run(q, "cont") == "ok"
    assert_keeps_verifying(src, lines=2, pages=LIGHT_PAGES)


def test_commands_on_a_waiting_destination(pair):
    """The guest has not arrived: the destination refuses to run or stop it
    and says why; cancelling the incoming migration ends it."""
    src, dst, uri = pair(LIGHT)
    d = dst.qmp
    assert d.cmd("query-status")["status"] == "inmigrate"
    refused(run(d, "cont"), "not arrived")
    refused(run(d, "stop"), "not arrived")
    refused(run(d, "migrate", uri="unix:/nonexistent"), "cannot migrate", "not arrived")
    assert run(d, "migrate-cancel") == "ok"
    assert dst.wait_exit(15) == 1
    ferrylib.assert_never_ran(dst)
    # the source never lost its guest
    assert src.qmp.cmd("query-status")["status"] == "running"


def test_cancel_on_a_loading_destination(pair):
    """Cancelled while it loads (its ACK held back), the destination ends and
    the source resumes its guest."""
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    set_params(dst.qmp, x_load_delay=3000)
    set_params(q, downtime_limit=20000)
    q.cmd("migrate", uri=uri)
    wait_status(q, "device", timeout=20, interval=0.002)
    assert run(dst.qmp, "migrate-cancel") == "ok"
    st = wait_migration(q, timeout=15)
    assert st["status"] == "failed", st
    assert q.cmd("query-status")["status"] == "running"
    assert_keeps_verifying(src, lines=2, pages=LIGHT_PAGES)
    assert dst.wait_exit(15) == 1
    ferrylib.assert_never_ran(dst)
