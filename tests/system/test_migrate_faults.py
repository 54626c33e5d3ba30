"""Faults during live migration between two real ferry processes.

Whatever goes wrong, the guest must end up running in exactly one place with
its memory intact: the survivor keeps making verify progress over its whole
working set with no FAIL, and the other side is gone or never ran the guest
(not one line on its serial port).  A destination whose incoming migration
fails exits with status 1 and one "ferry: error:" line, never a crash."""
import os
import select
import signal
import socket
import struct
import threading
import time

import pytest

import ferrylib
import streamlib
from ferrylib import (assert_keeps_verifying, assert_never_ran, assert_no_sanitizer_report,
                      assert_one_error, read_stderr, set_params, wait_migration, wait_status)

PAGE = 4096
# converges at once over a unix socket; a sweep of the 8 MiB takes 0.5 s
LIGHT = "workload=verify wss=8M rate=4000 progress=200ms"
LIGHT_PAGES = (8 << 20) // PAGE
# touches its whole 48 MiB at once, so with max-bandwidth 8 MiB/s every pass
# takes seconds
BIG = "workload=verify wss=48M rate=max progress=200ms"
BIG_PAGES = (48 << 20) // PAGE
# dirties its whole working set faster than any capped link carries it.  On
# a busy host its vCPU may be starved during a pass and dirty nearly nothing,
# so a 1 ms limit makes sure no switchover can ever fit: only the timeout
# ends the migration.
HEAVY = "workload=verify wss=8M rate=max progress=200ms"
HEAVY_PAGES = (8 << 20) // PAGE
NO_CONVERGENCE = dict(max_bandwidth=8 << 20, downtime_limit=1, timeout=2)
MEM = "128M"


@pytest.fixture
def pair(tmp_path, kvm):
    """make(append) -> (src, dst, uri): a running source and a destination
    listening on a unix socket (or TCP on 127.0.0.1), both killed at the end."""
    procs = []

    def make(append, cpus=1, transport="unix"):
        n = len(procs)
        uri = ferrylib.migration_uri(tmp_path, n, transport)
        dserial = tmp_path / f"dst{n}.txt"
        dctl = tmp_path / f"dctl{n}.sock"
        dst = ferrylib.Vm(ferrylib.incoming_argv(uri, memory=MEM, cpus=cpus,
                                                 serial=f"file:{dserial}", control=dctl),
                          tmp_path, dserial, dctl)
        procs.append(dst)
        sserial = tmp_path / f"src{n}.txt"
        sctl = tmp_path / f"sctl{n}.sock"
        src = ferrylib.Vm(ferrylib.ferry_argv(append=append, memory=MEM, cpus=cpus,
                                              serial=f"file:{sserial}", control=sctl),
                          tmp_path, sserial, sctl)
        procs.append(src)
        for cpu in range(cpus):
            src.wait_for(rf"^progress cpu={cpu} .*$", count=2, timeout=60)
        dst.qmp  # listening (it listens before it serves --control)
        return src, dst, ferrylib.bound_uri(dst, uri)

    yield make
    for p in procs:
        p.kill()


def assert_source_survived(src, st, status="failed", pages=LIGHT_PAGES, cpus=1):
    """The migration ended @status and the guest runs on, intact, on the source."""
    print(f"source: {st['status']}: {st.get('error-desc')}")
    assert_no_sanitizer_report(src)
    assert st["status"] == status, st
    if status == "failed":
        assert st.get("error-desc"), f"failed without a reason: {st}"
    assert src.qmp.cmd("query-status")["status"] == "running", st
    assert_keeps_verifying(src, cpus=cpus, lines=3, pages=pages)


def assert_destination_refused(dst, *words):
    """The destination gave up: status 1, one clear line, and never ran the guest."""
    rc = dst.wait_exit(15)
    print(f"destination: exit {rc}: {read_stderr(dst).strip()}")
    line = assert_one_error(rc, read_stderr(dst), *words)
    assert_never_ran(dst)
    return line


def assert_destination_killed(dst):
    assert dst.wait_exit(10) == -signal.SIGKILL
    assert_never_ran(dst)
    assert_no_sanitizer_report(dst)


def kill_now(vm):
    os.kill(vm.proc.pid, signal.SIGKILL)


# ---- the destination dies -------------------------------------------------

def test_destination_killed_during_setup(pair):
    src, dst, uri = pair(LIGHT)
    src.qmp.cmd("migrate", uri=uri)
    kill_now(dst)
    st = wait_migration(src.qmp, timeout=30)
    assert st["ferry"]["passes"] <= 1, st
    assert_source_survived(src, st)
    assert_destination_killed(dst)



def start_slow_migration(src, uri):
    """Start a migration capped at 8 MiB/s, so that its first pass takes
    seconds, and return once it is well into that pass."""
    set_params(src.qmp, max_bandwidth=8 << 20)
    src.qmp.cmd("migrate", uri=uri)
    wait_status(src.qmp, "active", timeout=10)
    # well into the first pass: polled, not slept (a slow host may take longer)
    deadline = time.monotonic() + 30
    while True:
        st = src.qmp.cmd("query-migrate")
        assert st["status"] == "active", st
        if st["ram"]["transferred"] >= 4 << 20:
            return st
        assert time.monotonic() < deadline, f"first pass stalled: {st}"
        time.sleep(0.01)


def test_destination_killed_during_a_pass(pair):
    src, dst, uri = pair(BIG)
    st = start_slow_migration(src, uri)
    assert st["ram"]["transferred"] > 0, st
    kill_now(dst)
    t0 = time.monotonic()
    st = wait_migration(src.qmp, timeout=30)
    # the source notices a dead unix peer on its next write, not after a timeout
    assert time.monotonic() - t0 < 10 * ferrylib.SLOW, f"source took {time.monotonic() - t0:.1f} s to notice"
    assert st["ferry"]["switchover-attempts"] == 0, st
    assert_source_survived(src, st, pages=BIG_PAGES)
    assert_destination_killed(dst)


def test_destination_killed_before_its_ack(pair):
    """The source has paused its guest and sent everything; the destination
    dies while it loads (x-load-delay): the source resumes its guest."""
    src, dst, uri = pair(LIGHT)
    set_params(dst.qmp, x_load_delay=2500)
    # a limit long enough that the source is still waiting for the ACK
    set_params(src.qmp, downtime_limit=20000)
    src.qmp.cmd("migrate", uri=uri)
    wait_status(src.qmp, "device", timeout=30)
    time.sleep(0.5)  # END is on its way; the destination sits in its delay
    assert src.qmp.cmd("query-migrate")["status"] == "device"
    assert src.qmp.cmd("query-status")["status"] == "paused"
    kill_now(dst)
    t0 = time.monotonic()
    st = wait_migration(src.qmp, timeout=30)
    assert time.monotonic() - t0 < 5 * ferrylib.SLOW, "the source did not notice the lost destination"
    assert st["ferry"]["switchover-attempts"] >= 1, st
    assert_source_survived(src, st)
    assert_destination_killed(dst)


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_destination_killed_after_its_ack(pair, transport):
    """The destination ACKed the state, the source waits before GO
    (x-go-delay) and the destination dies meanwhile.  It never confirmed
    with RESUMED, so the guest must resume on the source.  Over unix the GO
    write itself fails; over TCP it may succeed into the void and only the
    missing RESUMED tells."""
    src, dst, uri = pair(LIGHT, transport=transport)
    # a limit long enough that a slow ACK on a busy host is not rolled back
    set_params(src.qmp, x_go_delay=2000, downtime_limit=20000)
    src.qmp.cmd("migrate", uri=uri)
    wait_status(src.qmp, "device", timeout=30)
    time.sleep(0.7)  # the ACK came within ms; the source sits in its GO delay
    assert src.qmp.cmd("query-migrate")["status"] == "device"
    assert dst.proc.poll() is None
    kill_now(dst)
    st = wait_migration(src.qmp, timeout=30)
    assert st["ferry"]["switchover-attempts"] >= 1, st
    assert_source_survived(src, st)
    assert_destination_killed(dst)


# ---- the connection is cut ------------------------------------------------

class Relay:
    """Forwards one unix stream connection front -> back, both ways, in a
    thread; cut() closes both sides at once, as a broken network would."""

    def __init__(self, front, back):
        self.back = back
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(front)
        self.lsock.listen(1)
        self.lsock.settimeout(30)
        self.forwarded = 0  # source -> destination bytes
        self.error = None
        self._cut = threading.Event()
        self._done = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        conns = []
        try:
            a, _ = self.lsock.accept()
            conns.append(a)
            b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conns.append(b)
            b.connect(self.back)
            peer = {a: b, b: a}
            while not self._cut.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.01)
                for s in ready:
                    data = s.recv(1 << 16)
                    if not data:
                        return
                    peer[s].sendall(data)
                    if s is a:
                        self.forwarded += len(data)
        except OSError as e:
            self.error = e
        finally:
            for s in conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._done.set()

    def cut(self):
        self._cut.set()
        assert self._done.wait(5), "relay did not stop"

    def close(self):
        self._cut.set()
        self.lsock.close()
        self._t.join(5)


def test_connection_cut_mid_pass(pair, tmp_path):
    src, dst, dst_uri = pair(BIG)
    relay = Relay(str(tmp_path / "relay.sock"), dst_uri[len("unix:"):])
    try:
        set_params(src.qmp, max_bandwidth=8 << 20)
        src.qmp.cmd("migrate", uri=f"unix:{tmp_path / 'relay.sock'}")
        wait_status(src.qmp, "active", timeout=10)
        deadline = time.monotonic() + 10
        while relay.forwarded < 20 << 20:  # past the rate limiter's initial burst
            assert time.monotonic() < deadline, f"only {relay.forwarded} bytes relayed"
            assert relay.error is None, relay.error
            time.sleep(0.01)
        assert src.qmp.cmd("query-migrate")["status"] == "active"
        relay.cut()
        st = wait_migration(src.qmp, timeout=30)
        assert st["ferry"]["switchover-attempts"] == 0, st
        assert_source_survived(src, st, pages=BIG_PAGES)
        assert_destination_refused(dst)
    finally:
        relay.close()


# ---- the source dies ------------------------------------------------------

def test_source_killed_mid_pass(pair):
    src, dst, uri = pair(BIG)
    start_slow_migration(src, uri)
    kill_now(src)
    assert src.wait_exit(10) == -signal.SIGKILL
    assert_destination_refused(dst, "incoming migration")


# ---- hostile or broken streams --------------------------------------------

@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """A valid stream of a 128 MiB, 1-vCPU guest, made with migrate file:."""
    ferrylib.require_kvm()
    d = tmp_path_factory.mktemp("faultsnap")
    serial, ctl = d / "serial.txt", d / "ctl.sock"
    vm = ferrylib.Vm(ferrylib.ferry_argv(append="workload=verify wss=4M progress=100ms",
                                         memory=MEM, cpus=1, serial=f"file:{serial}",
                                         control=ctl), d, serial, ctl)
    try:
        vm.wait_for(r"^progress cpu=0 .*$", count=3, timeout=60)
        vm.qmp.cmd("migrate", uri=f"file:{d / 'good.snap'}")
        st = wait_migration(vm.qmp, timeout=60)
        assert st["status"] == "completed", st
    finally:
        vm.kill()
    return (d / "good.snap").read_bytes()


def with_return_path(data):
    """The same stream, its header claiming a return path (as a live source's)."""
    data = bytearray(data)
    features = struct.unpack_from("<Q", data, 32)[0]
    struct.pack_into("<Q", data, 32, features | 1)
    return streamlib.reseal_header(bytes(data))


def stream_variant(snap, kind):
    hl = streamlib.header_len(snap)
    recs = list(streamlib.records(snap))
    batch = next(r for r in recs if r[2] == streamlib.REC_PAGE_BATCH and r[4] > 64 << 10)
    end = next(r for r in recs if r[2] == streamlib.REC_END)
    rnd = os.urandom(256 << 10)
    return {
        "empty": b"",
        "garbage": rnd,
        "header-only": snap[:hl],
        "header-with-return-path": with_return_path(snap)[:hl],
        "header-then-garbage": snap[:hl] + rnd,
        "mid-page-batch": snap[:batch[1] + 16 + batch[4] // 2],
        "mid-page-batch-with-return-path": with_return_path(snap)[:batch[1] + 16 + batch[4] // 2],
        "all-but-end": snap[:end[1]],
        "all-but-end-with-return-path": with_return_path(snap)[:end[1]],
    }[kind]


def socket_destination(tmp_path):
    """A destination waiting on a unix socket: (socket path, Vm)."""
    path = tmp_path / "in.sock"
    serial, ctl = tmp_path / "dst.txt", tmp_path / "dctl.sock"
    return path, ferrylib.Vm(ferrylib.incoming_argv(f"unix:{path}", memory=MEM, cpus=1,
                                                    serial=f"file:{serial}", control=ctl),
                             tmp_path, serial, ctl)


@pytest.mark.parametrize("kind", ["empty", "garbage", "header-only", "header-with-return-path",
                                  "header-then-garbage", "mid-page-batch",
                                  "mid-page-batch-with-return-path", "all-but-end",
                                  "all-but-end-with-return-path"])
def test_bad_stream_to_destination(tmp_path, kvm, snapshot, kind):
    """A client that is not a ferry source, or one that stops half-way:
    the destination exits 1 with one line, never crashes, never runs anything."""
    data = stream_variant(snapshot, kind)
    path, dst = socket_destination(tmp_path)
    try:
        dst.qmp  # listening
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(str(path))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may give up before it has read everything: fine
        # read what it answers (READY, then its ERROR) until it closes
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
        s.close()
        line = assert_destination_refused(dst, "incoming migration")
        if kind in ("garbage",):
            assert "not a ferry migration stream" in line, line
        if "return-path" in kind:
            # it said why on the return path too: READY, then ERROR (0x8004)
            assert struct.unpack_from("<I", reply, 0)[0] == 0x8001, reply[:64]
            assert struct.pack("<I", 0x8004) in reply, reply[:256]
    finally:
        dst.kill()


def test_complete_stream_without_return_path_is_not_left_in_limbo(tmp_path, kvm, snapshot):
    """A whole, valid stream without a return path (a snapshot) sent to a
    socket destination: it must either run the guest (the stream hands it
    over at END, as a file does) or refuse it and exit 1; it must not sit
    in 'inmigrate' for ever while query-migrate says 'completed'."""
    path, dst = socket_destination(tmp_path)
    try:
        dst.qmp
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(str(path))
        s.sendall(snapshot)
        s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 5
        while True:
            if dst.proc.poll() is not None:  # refused
                assert_destination_refused(dst)
                return
            if "progress" in dst.serial():  # took the guest
                assert_keeps_verifying(dst, lines=3)
                return
            assert time.monotonic() < deadline, (
                f"destination neither runs the guest nor exits: query-status "
                f"{dst.qmp.cmd('query-status')}, query-migrate status "
                f"{dst.qmp.cmd('query-migrate').get('status')}")
            time.sleep(0.05)
    finally:
        dst.kill()


# ---- the operator cancels -------------------------------------------------

def test_cancel_mid_pass(pair):
    src, dst, uri = pair(BIG)
    start_slow_migration(src, uri)
    src.qmp.cmd("migrate-cancel")
    st = wait_migration(src.qmp, timeout=10)
    assert st["ferry"]["switchover-attempts"] == 0, st
    assert_source_survived(src, st, status="cancelled", pages=BIG_PAGES)
    assert_destination_refused(dst)


def test_cancel_during_switchover(pair):
    """Cancelled while the source waits for the destination's ACK: the
    source resumes its guest at once, the destination gives up."""
    src, dst, uri = pair(LIGHT)
    set_params(dst.qmp, x_load_delay=2500)
    set_params(src.qmp, downtime_limit=20000)
    src.qmp.cmd("migrate", uri=uri)
    wait_status(src.qmp, "device", timeout=30)
    time.sleep(0.3)
    assert src.qmp.cmd("query-status")["status"] == "paused"
    t0 = time.monotonic()
    src.qmp.cmd("migrate-cancel")
    st = wait_migration(src.qmp, timeout=10)
    assert time.monotonic() - t0 < 2 * ferrylib.SLOW, f"cancel took {time.monotonic() - t0:.1f} s"
    assert st["ferry"]["switchover-attempts"] >= 1, st
    assert_source_survived(src, st, status="cancelled")
    assert_destination_refused(dst)


# ---- timeouts --------------------------------------------------------------

def test_timeout_abort_on_heavy_writer(pair):
    src, dst, uri = pair(HEAVY)
    set_params(src.qmp, on_timeout="abort", **NO_CONVERGENCE)
    t0 = time.monotonic()
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=60)
    took = time.monotonic() - t0
    assert st["ferry"]["switchover-attempts"] == 0, st  # the guest never stopped
    assert st["ferry"]["policy-reason"] == "timeout-abort", st
    assert 1.5 < took < 15 * ferrylib.SLOW, f"a 2 s timeout ended the migration after {took:.1f} s"
    assert_source_survived(src, st, pages=HEAVY_PAGES)
    assert_destination_refused(dst)
    # the operator is told why: the source's own reason, not an echo of it
    assert "timeout" in st["error-desc"], st["error-desc"]


def test_timeout_force_completes(pair):
    src, dst, uri = pair(HEAVY)
    set_params(src.qmp, on_timeout="force", **NO_CONVERGENCE)
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=60)
    assert st["status"] == "completed", st
    assert st["ferry"]["forced"] is True, st
    assert st["ferry"]["policy-reason"] == "timeout-force", st
    assert src.qmp.cmd("query-status")["status"] == "postmigrate"
    assert_keeps_verifying(dst, lines=3, pages=HEAVY_PAGES)
    # the counters continue from the source's: the same guest, not a reboot
    assert dst.progress()[-1][3] > src.progress()[-1][3]
    assert_no_sanitizer_report(src)
    assert_no_sanitizer_report(dst)


def test_timeout_postcopy_fails_cleanly(pair):
    """on-timeout postcopy without the postcopy-ram capability: no crash, the
    migration fails (or is refused) with a reason that names post-copy."""
    src, dst, uri = pair(HEAVY)
    set_params(src.qmp, **NO_CONVERGENCE)
    r = src.qmp.execute("migrate-set-parameters", **{"on-timeout": "postcopy"})
    if "error" not in r:
        r = src.qmp.execute("migrate", uri=uri)
    if "error" in r:
        reason = r["error"]["desc"]
        st = src.qmp.cmd("query-migrate")
        assert st.get("status") in (None, "failed"), st
        dst.kill()
        assert_never_ran(dst)
    else:
        st = wait_migration(src.qmp, timeout=60)
        assert st["status"] == "failed", st
        reason = st.get("error-desc", "")
        assert_destination_refused(dst)
    assert src.qmp.cmd("query-status")["status"] == "running"
    assert_keeps_verifying(src, lines=3, pages=HEAVY_PAGES)
    assert "postcopy" in reason.replace("-", "").lower(), \
        f"the reason does not say that post-copy is the problem: {reason!r}"
