"""Post-copy recovery (docs/postcopy.md, "Recovery").

After GO the guest runs on the destination on pages that are partly still
on the source: a broken connection must not lose it.  Connections are cut
for real: `ss -K` destroys the sockets in the kernel (both ends see a reset
or an abort, as when a middlebox drops the flow), migrate-pause cuts them on
purpose, a recovery is made to fail against a listener that hangs up, and
processes are killed.  Every recovered migration ends with the destination
owning every page and a full verify sweep of the guest's memory finding
nothing wrong."""
import re
import socket
import subprocess
import threading
import time

import pytest

from ferrylib import (free_tcp_port, read_stderr, set_params, wait_migration, wait_status)
from test_migrate_faults import pair  # noqa: F401  (fixture)
from test_postcopy import BUSY, assert_postcopy_completed, enable_postcopy


def port_of(uri):
    return int(uri.rsplit(":", 1)[1])


def cut(port):
    """Destroy every TCP connection to local port @port, in the kernel."""
    r = subprocess.run(["ss", "-K", "dst", "127.0.0.1", "dport", "=", str(port)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, f"ss -K failed: {r.stderr}"
    killed = [line for line in r.stdout.splitlines()[1:] if line.strip()]
    assert killed, f"ss -K found no connection to port {port}: the cut did not happen"
    return killed


def start_postcopy(pair, cpus=2, bulk=64 << 10):
    """A busy verify guest switched to post-copy from the start, over TCP,
    its background stream capped at @bulk B/s so that post-copy lasts until
    finish() lifts the cap (the guest's own faults are answered at once)."""
    src, dst, uri = pair(BUSY, cpus=cpus, transport="tcp")
    enable_postcopy(src.qmp, postcopy_after_passes=0, max_postcopy_bandwidth=bulk)
    src.qmp.cmd("migrate", uri=uri)
    wait_status(dst.qmp, "postcopy-active", timeout=30)
    wait_status(src.qmp, "postcopy-active", timeout=30)
    return src, dst, uri


def assert_paused(vm, role):
    st = wait_status(vm.qmp, "postcopy-paused", timeout=60)
    print(f"{role}: paused: {st.get('error-desc')}")
    assert st.get("error-desc"), f"{role} paused without saying why: {st}"
    # one line on stderr, naming the situation and the way out
    deadline = time.monotonic() + 10
    while "post-copy paused" not in read_stderr(vm) and time.monotonic() < deadline:
        time.sleep(0.05)
    line = [s for s in read_stderr(vm).splitlines() if "post-copy paused" in s]
    assert line and "migrate-recover" in line[-1], read_stderr(vm)
    return st


def finish(src, timeout=120):
    """Lift the background stream's cap; wait for the end."""
    set_params(src.qmp, max_postcopy_bandwidth=0)
    return wait_migration(src.qmp, timeout=timeout)


def recover(src, dst):
    """migrate-recover on a fresh port, migrate resume to it."""
    new = f"tcp:127.0.0.1:{free_tcp_port()}"
    dst.qmp.cmd("migrate-recover", uri=new)
    src.qmp.cmd("migrate", uri=new, resume=True)
    return new


def test_cut_mid_postcopy_then_recover(pair):
    src, dst, uri = start_postcopy(pair)
    # the figures are live while the capped stream has hardly moved (the
    # destination's loop publishes per record, a 1 MiB record per 16 s here)
    dp = dst.qmp.cmd("query-migrate")["ferry"]["postcopy"]
    assert dp["discarded"] > 0 and 0 < dp["missing"] <= dp["discarded"], dp
    assert "postcopy" in src.qmp.cmd("query-migrate")["ferry"]
    time.sleep(0.5)  # pages flow both ways: requests answered, the bulk stream
    cut(port_of(uri))
    assert_paused(src, "source")
    assert_paused(dst, "destination")
    # paused means paused: nothing may cancel the guest out of either side
    for q in (src.qmp, dst.qmp):
        r = q.execute("migrate-cancel")
        assert "error" in r and "too late" in r["error"]["desc"], r
    # each side takes only its own half of the recovery
    r = src.qmp.execute("migrate-recover", uri="tcp:127.0.0.1:0")
    assert "error" in r and "this is the source" in r["error"]["desc"], r
    r = dst.qmp.execute("migrate", uri=uri, resume=True)
    assert "error" in r and "this is the destination" in r["error"]["desc"], r
    recover(src, dst)
    st = finish(src)
    sp = st["ferry"]["postcopy"]
    assert sp["pauses"] == 1 and sp["recoveries"] == 1 and sp["paused-ns"] > 0, sp
    assert_postcopy_completed(src, dst, st, BUSY, 2)
    dp = dst.qmp.cmd("query-migrate")["ferry"]["postcopy"]
    assert dp["pauses"] == 1 and dp["recoveries"] == 1, dp


class HangUp:
    """A listener that accepts connections and closes them at once: a
    recovery made to it fails in its handshake."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()

    def close(self):
        self.sock.close()


def test_pause_failed_recovery_and_second_cut(pair):
    """migrate-pause breaks the connections on purpose; a recovery whose
    handshake fails leaves both sides paused; a second cut after a recovery
    is survived the same way."""
    src, dst, uri = start_postcopy(pair)
    r = src.qmp.execute("migrate", uri=uri, resume=True)
    assert "error" in r and "no outgoing post-copy is paused" in r["error"]["desc"], r
    src.qmp.cmd("migrate-pause")
    assert_paused(src, "source")
    assert_paused(dst, "destination")
    # a resume to something that hangs up: back to paused, with the reason
    bogus = HangUp()
    try:
        src.qmp.cmd("migrate", uri=f"tcp:127.0.0.1:{bogus.port}", resume=True)
        deadline = time.monotonic() + 30
        while True:
            st = src.qmp.cmd("query-migrate")
            if st["status"] == "postcopy-paused" and "recovery failed" in st.get("error-desc", ""):
                break
            assert time.monotonic() < deadline, st
            time.sleep(0.05)
        assert bogus.accepted >= 1
    finally:
        bogus.close()
    new = recover(src, dst)
    wait_status(dst.qmp, "postcopy-active", timeout=30)
    wait_status(src.qmp, "postcopy-active", timeout=30)
    time.sleep(0.3)
    cut(port_of(new))
    assert_paused(src, "source")
    assert_paused(dst, "destination")
    recover(src, dst)
    st = finish(src)
    sp = st["ferry"]["postcopy"]
    assert sp["pauses"] == 2 and sp["recoveries"] == 2, sp
    assert_postcopy_completed(src, dst, st, BUSY, 2)
    dp = dst.qmp.cmd("query-migrate")["ferry"]["postcopy"]
    assert dp["pauses"] == 2 and dp["recoveries"] == 2, dp


def assert_guest_lost(vm, role):
    """The survivor of a dead peer gives up after postcopy-recover-timeout:
    exit status 4 and one error line saying the guest is lost."""
    rc = vm.wait_exit(60)
    err = read_stderr(vm)
    print(f"{role}: exit {rc}:\n{err}")
    assert rc == 4, f"{role} exited {rc}, expected 4 (guest lost)"
    errors = [s for s in err.splitlines() if s.startswith("ferry: error:")]
    assert len(errors) == 1 and "the guest is lost" in errors[0], err
    assert "postcopy-recover-timeout" in errors[0], errors[0]


@pytest.mark.parametrize("victim", ["destination", "source"])
def test_peer_killed_during_postcopy(pair, victim):
    src, dst, uri = start_postcopy(pair, cpus=1)
    dead, survivor = (dst, src) if victim == "destination" else (src, dst)
    set_params(survivor.qmp, postcopy_recover_timeout=2)
    dead.proc.kill()
    dead.wait_exit(10)
    assert_paused(survivor, "survivor")
    assert_guest_lost(survivor, "survivor")


def test_cli_pause_recover_resume(pair):
    """ferry migrate --pause, --recover URI, --resume --wait URI."""
    import ferrylib
    src, dst, uri = start_postcopy(pair, cpus=1)

    def ferry_migrate(vm, *args):
        r = subprocess.run([str(ferrylib.FERRY), "migrate", "--control", str(vm.control),
                            *args], capture_output=True, text=True, timeout=120)
        print(r.args, r.returncode, r.stdout[-2000:], r.stderr)
        return r

    r = ferry_migrate(src, "--pause", uri)
    assert r.returncode == 1 and "--pause takes no URI" in r.stderr
    r = ferry_migrate(src, "--resume")
    assert r.returncode == 1 and "--resume needs the URI" in r.stderr
    r = ferry_migrate(src, "--pause")
    assert r.returncode == 0 and "post-copy paused" in r.stdout
    assert_paused(dst, "destination")
    new = f"tcp:127.0.0.1:{free_tcp_port()}"
    r = ferry_migrate(dst, "--recover", new)
    assert r.returncode == 0 and new in r.stdout
    set_params(src.qmp, max_postcopy_bandwidth=0)
    r = ferry_migrate(src, "--resume", "--wait", "--json", new)
    assert r.returncode == 0, r.stderr
    import json
    st = json.loads(r.stdout)
    assert st["status"] == "completed" and st["ferry"]["postcopy"]["recoveries"] == 1, st
    assert_postcopy_completed(src, dst, st, BUSY, 1)
    assert re.search(r"post-copy paused", read_stderr(src))
