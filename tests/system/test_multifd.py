"""Parallel data channels (capability multifd, parameter multifd-channels).

A verify guest migrates over 1, 2 and 4 data channels (unix and tcp) and
keeps verifying on the destination; a data channel cut mid-pass fails the
migration with the guest intact on the source; a rolled-back switchover
leaves every channel usable; and a destination refuses a data connection
of another migration (wrong session id) or a duplicate channel index,
crafted here byte by byte (docs/stream-format.md, "Parallel channels")."""
import socket
import struct
import time

import pytest
import xxhash

import ferrylib
import streamlib
from ferrylib import assert_keeps_verifying, set_params, wait_migration
from test_migrate_faults import (LIGHT, LIGHT_PAGES, assert_destination_refused,  # noqa: F401
                                 assert_source_survived, pair)
from test_migrate_netns import FAST, SLOWDOWN_MARGIN_MS, hosts  # noqa: F401

BIG = "workload=verify wss=48M rate=max progress=200ms"
BIG_PAGES = (48 << 20) // 4096
FEAT_RETURN_PATH, FEAT_MULTIFD = 1, 4
REC_CHANNEL_SYNC = 8
MSG_READY, MSG_ERROR = 0x8001, 0x8004


def enable_multifd(q, channels):
    q.cmd("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": True}])
    set_params(q, multifd_channels=channels)


def test_capability_and_parameter(pair):
    src, dst, uri = pair(LIGHT)
    q = src.qmp
    caps = q.cmd("query-migrate-capabilities")
    assert {"capability": "multifd", "state": False} in caps, caps
    assert q.cmd("query-migrate-parameters")["multifd-channels"] == 2
    enable_multifd(q, 4)
    assert {"capability": "multifd", "state": True} in q.cmd("query-migrate-capabilities")
    assert q.cmd("query-migrate-parameters")["multifd-channels"] == 4
    for bad in (0, 17):
        with pytest.raises(RuntimeError, match="multifd-channels"):
            set_params(q, multifd_channels=bad)
    with pytest.raises(RuntimeError, match="Capability 'nosuch'"):
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": "nosuch", "state": True}])
    # a capability is not a parameter
    with pytest.raises(RuntimeError, match="unexpected"):
        q.cmd("migrate-set-parameters", multifd=True)


@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("channels", [1, 2, 4])
def test_migrates_and_keeps_verifying(pair, channels, transport):
    src, dst, uri = pair(BIG, transport=transport)
    enable_multifd(src.qmp, channels)
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=90)
    print(f"{channels} channels over {transport}: {st['status']}: "
          f"{st.get('ram', {}).get('transferred')} bytes")
    assert st["status"] == "completed", st
    ram = st["ram"]
    # the pages travelled (the main connection alone carries no page with multifd)
    assert ram["normal"] >= BIG_PAGES // 2, ram
    assert ram["transferred"] >= ram["normal"] * 4096, ram
    f = st["ferry"]
    assert f["multifd-channels"] == channels, f
    assert f["multifd-bytes"] >= BIG_PAGES // 2 * 4096, f
    # the source completes on the destination's RESUMED, which the
    # destination sends before it ends its own migration: wait for that
    dm = wait_migration(dst.qmp, timeout=30)
    assert dm["status"] == "completed", dm
    assert dm["ferry"]["multifd-channels"] == channels, dm
    assert dst.qmp.cmd("query-status")["status"] == "running"
    assert_keeps_verifying(dst, lines=3, pages=BIG_PAGES)


def test_rollback_keeps_every_channel_usable(pair):
    src, dst, uri = pair(LIGHT)
    q, d = src.qmp, dst.qmp
    enable_multifd(q, 3)
    set_params(d, x_load_delay=400)
    set_params(q, downtime_limit=100, switchover_attempts=3)
    q.cmd("migrate", uri=uri)
    deadline = time.monotonic() + 60
    while q.cmd("query-migrate")["ferry"]["aborted-attempts"] < 1:
        assert time.monotonic() < deadline, "no attempt rolled back"
        assert q.cmd("query-migrate")["status"] in ("setup", "active", "device")
        time.sleep(0.02)
    set_params(d, x_load_delay=0)
    st = wait_migration(q, timeout=60)
    assert st["status"] == "completed", st
    assert st["ferry"]["aborted-attempts"] >= 1, st
    assert_keeps_verifying(dst, lines=2, pages=LIGHT_PAGES)


def test_channel_cut_mid_pass_fails_cleanly(pair):
    src, dst, uri = pair(BIG)
    q = src.qmp
    enable_multifd(q, 2)
    set_params(q, x_multifd_cut=4096)  # data channel 1 breaks after 4 MiB
    q.cmd("migrate", uri=uri)
    st = wait_migration(q, timeout=60)
    assert st.get("error-desc", "").startswith("data channel 1: cut after"), st
    assert_source_survived(src, st, pages=BIG_PAGES)
    assert_destination_refused(dst, "data channel")


def test_destination_killed_mid_pass(pair):
    src, dst, uri = pair(BIG)
    q = src.qmp
    enable_multifd(q, 4)
    set_params(q, max_bandwidth=8 << 20)
    q.cmd("migrate", uri=uri)
    ferrylib.wait_status(q, "active", timeout=10)
    time.sleep(0.5)
    dst.kill()
    st = wait_migration(q, timeout=60)
    print(st["ram"], st.get("total-time"), st["ferry"]["pass-table"])
    assert_source_survived(src, st, pages=BIG_PAGES)


# ---- crafted connections ---------------------------------------------------

def header(session, channel, nchannels, features, mem=128 << 20, digest=0):
    """A stream header with the multifd block, checksum included."""
    regions = struct.pack("<QQ", 0, mem)
    body = b"FERRYMIG" + struct.pack("<IIIIIIQQ", 1, 0, 4096, 1, 1, 0, features, digest)
    body += regions + struct.pack("<QHHI", session, channel, nchannels, 0)
    body = body[:12] + struct.pack("<I", len(body) + 8) + body[16:]
    return body + struct.pack("<Q", xxhash.xxh3_64_intdigest(body, seed=0))


def connect(uri):
    if uri.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(uri[5:])
    else:
        host, port = uri[4:].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(10)
    return s


def read_record(s):
    """(type, payload) of the next record on the return direction."""
    buf = b""
    while len(buf) < 16:
        chunk = s.recv(16 - len(buf))
        assert chunk, "connection closed without a record"
        buf += chunk
    typ, _, length = struct.unpack("<IIQ", buf)
    rest = length + (-length % 8) + 8
    body = b""
    while len(body) < rest:
        chunk = s.recv(rest - len(body))
        assert chunk, "connection closed mid-record"
        body += chunk
    return typ, body[:length]


def cpuid_digest_of(tmp_path, kvm):
    """A destination refuses a header whose CPUID digest is not its own:
    learn it from a real stream (a snapshot of the same configuration)."""
    d = tmp_path / "digest"
    d.mkdir()
    serial, ctl = d / "serial.txt", d / "ctl.sock"
    vm = ferrylib.Vm(ferrylib.ferry_argv(append="workload=idle", memory="128M", cpus=1,
                                         serial=f"file:{serial}", control=ctl), d, serial, ctl)
    try:
        vm.qmp.cmd("migrate", uri=f"file:{d / 's.snap'}")
        assert wait_migration(vm.qmp, timeout=60)["status"] == "completed"
    finally:
        vm.kill()
    data = (d / "s.snap").read_bytes()
    return struct.unpack_from("<Q", data, 40)[0]


@pytest.fixture
def crafted_main(pair, tmp_path, kvm):
    """A destination and a crafted main connection it accepted (READY read):
    returns (dst, uri, session, main socket)."""
    src, dst, uri = pair(LIGHT)
    src.kill()
    digest = cpuid_digest_of(tmp_path, kvm)
    session = 0x1122334455667788
    m = connect(uri)
    m.sendall(header(session, 0, 2, FEAT_RETURN_PATH | FEAT_MULTIFD, digest=digest))
    typ, payload = read_record(m)
    assert typ == MSG_READY, (typ, payload)
    return dst, uri, session, m, digest


def refused(uri, hdr):
    """Send @hdr as a data channel; the destination's ERROR text."""
    s = connect(uri)
    s.sendall(hdr)
    typ, payload = read_record(s)
    s.close()
    assert typ == MSG_ERROR, typ
    return payload[8:].decode()


def test_foreign_session_is_refused(crafted_main):
    dst, uri, session, m, digest = crafted_main
    text = refused(uri, header(session ^ 1, 1, 2, FEAT_MULTIFD, digest=digest))
    print(text)
    assert "belongs to another migration" in text, text
    assert f"{session:016x}" in text, text
    ev = dst.qmp.wait_event("MIGRATION_CHANNEL_REFUSED", timeout=10)
    assert "another migration" in str(ev), ev
    m.close()


def test_duplicate_channel_is_refused(crafted_main):
    dst, uri, session, m, digest = crafted_main
    first = connect(uri)
    first.sendall(header(session, 1, 2, FEAT_MULTIFD, digest=digest))
    text = refused(uri, header(session, 1, 2, FEAT_MULTIFD, digest=digest))
    print(text)
    assert "already connected (a duplicate)" in text, text
    # an index beyond the announced channels is refused too
    text = refused(uri, header(session, 3, 2, FEAT_MULTIFD, digest=digest))
    assert "channel 3 of 2 data channels does not exist" in text, text
    first.close()
    m.close()


def test_data_channel_without_migration_is_refused(pair, tmp_path, kvm):
    src, dst, uri = pair(LIGHT)
    src.kill()
    digest = cpuid_digest_of(tmp_path, kvm)
    s = connect(uri)
    s.sendall(header(7, 1, 2, FEAT_MULTIFD, digest=digest))
    rc = dst.wait_exit(15)
    err = ferrylib.read_stderr(dst)
    print(err)
    assert rc == 1
    assert "arrived with no migration in progress" in err, err


# ---- TLS: every data channel goes through the same connect path ------------

@pytest.fixture
def tls_pair(tmp_path, kvm):
    """(src, dst, uri, creds): a verify guest and a destination listening on
    tcp with mutual-TLS credentials made now (scripts/tls-certs.sh)."""
    import subprocess
    creds = tmp_path / "creds"
    subprocess.run([str(ferrylib.ROOT / "scripts" / "tls-certs.sh"), str(creds)], check=True)
    uri = ferrylib.migration_uri(tmp_path, 0, "tcp")
    dserial, dctl = tmp_path / "dst.txt", tmp_path / "dctl.sock"
    dst = ferrylib.Vm(ferrylib.incoming_argv(uri, memory="128M", serial=f"file:{dserial}",
                                             control=dctl) + ["--tls-creds", str(creds)],
                      tmp_path, dserial, dctl)
    sserial, sctl = tmp_path / "src.txt", tmp_path / "sctl.sock"
    src = ferrylib.Vm(ferrylib.ferry_argv(append=LIGHT, memory="128M", serial=f"file:{sserial}",
                                          control=sctl), tmp_path, sserial, sctl)
    try:
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        dst.qmp
        yield src, dst, ferrylib.bound_uri(dst, uri), creds
    finally:
        src.kill()
        dst.kill()


def test_tls_protects_every_data_channel(tls_pair):
    """A TLS destination completes the handshake on each data connection
    before it reads a byte: a data channel that bypassed TLS would be
    refused, and the migration would fail."""
    src, dst, uri, creds = tls_pair
    enable_multifd(src.qmp, 3)
    set_params(src.qmp, tls_creds=str(creds))
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=60)
    assert st["status"] == "completed", st
    assert st["ferry"]["multifd-channels"] == 3
    assert st["ferry"]["tls"]["protocol"].startswith("TLS"), st["ferry"]
    assert not [e for e in dst.qmp.events if e.get("event") == "MIGRATION_CHANNEL_REFUSED"]
    assert_keeps_verifying(dst, lines=2, pages=LIGHT_PAGES)



# ---- the deadline on every data channel -------------------------------------

@pytest.mark.parametrize("rate,after_ms", [("5mbit", 0), ("50mbit", 10)])
def test_deadline_holds_on_every_data_channel(hosts, tmp_path, rate, after_ms):
    """As test_migrate_netns's slowdown test, with 2 data channels: the link
    drops to @rate @after_ms after the pause, so the deadline cuts records
    on the data channels too.  Every attempt ends by the limit (rolled back
    with every channel's cut record finished afterwards, or GO), and once the
    link is fast again the migration completes with the guest intact."""
    limit_ms = 100
    net, start_src, start_dst = hosts(rate=FAST)
    shaper = net.fast_shaper("a")
    hb = ferrylib.HeartbeatListener(tmp_path / "hb-src.sock")
    try:
        src = start_src("workload=verify wss=2M rate=max heartbeat=2ms progress=200ms",
                        debugcon=f"unix:{hb.path}")
        dst, uri = start_dst()
        # What a loaded host itself loses between beats (a vCPU or the migration
        # thread waiting for a CPU) is allowed on top, as in test_migrate_netns.
        time.sleep(0.5)
        jitter = max(0.0, max(hb.gaps_ms()) - 2)
        allowed_ms = limit_ms + SLOWDOWN_MARGIN_MS + jitter
        print(f"heartbeat jitter before the migration: {jitter:.1f} ms")
        q = src.qmp
        enable_multifd(q, 2)
        set_params(q, downtime_limit=1, timeout=120, on_timeout="abort", switchover_attempts=100)
        q.cmd("migrate", uri=uri)
        deadline = time.monotonic() + 30
        while ferrylib.wait_status(q, "active", timeout=30)["ferry"]["passes"] < 2:
            assert time.monotonic() < deadline, "passes do not advance"
            time.sleep(0.01)
        q.events.clear()
        set_params(q, downtime_limit=limit_ms)
        while True:
            ev = q.wait_event("MIGRATION", timeout=60)
            if ev["data"]["status"] == "device":
                break
        if after_ms:
            time.sleep(after_ms / 1000)
        shaper.set(rate)
        ferrylib.wait_status(q, ("active", "completed"), timeout=30, interval=0.002)
        shaper.set(FAST)
        st = wait_migration(q, timeout=60)
        f = st["ferry"]
        print(f"{rate} after {after_ms} ms: {st['status']} after {f['switchover-attempts']} "
              f"attempts ({f['aborted-attempts']} rolled back); {f['switchover-table']}")
        assert st["status"] == "completed", st
        assert f["multifd-channels"] == 2
        for a in f["switchover-table"]:
            assert a["paused-ns"] <= allowed_ms * 1e6, a
        assert_keeps_verifying(dst, lines=2, pages=(2 << 20) // 4096)
    finally:
        hb.close()


def test_cancel_mid_pass(pair):
    src, dst, uri = pair(BIG)
    q = src.qmp
    enable_multifd(q, 4)
    set_params(q, max_bandwidth=8 << 20)
    q.cmd("migrate", uri=uri)
    ferrylib.wait_status(q, "active", timeout=10)
    time.sleep(0.3)
    t0 = time.monotonic()
    q.cmd("migrate-cancel")
    st = wait_migration(q, timeout=30)
    took = time.monotonic() - t0
    print(f"cancelled in {took:.2f} s")
    assert took < 1 * ferrylib.SLOW, took  # neither the cap nor a queued chunk holds it up
    assert_source_survived(src, st, status="cancelled", pages=BIG_PAGES)


def test_ferry_migrate_cli(pair):
    """ferry migrate --multifd-channels N sets the capability and the parameter."""
    import subprocess
    src, dst, uri = pair(LIGHT)
    r = subprocess.run([str(ferrylib.FERRY), "migrate", "--control", str(src.control),
                        "--multifd-channels", "3", "--wait", "--json", uri],
                       capture_output=True, text=True, timeout=90)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    import json
    assert json.loads(r.stdout)["ferry"]["multifd-channels"] == 3
    assert {"capability": "multifd", "state": True} in \
        src.qmp.cmd("query-migrate-capabilities")
    assert_keeps_verifying(dst, lines=2, pages=LIGHT_PAGES)
    bad = subprocess.run([str(ferrylib.FERRY), "migrate", "--control", str(src.control),
                          "--multifd-channels", "17", uri], capture_output=True, text=True)
    assert bad.returncode != 0 and "multifd-channels" in bad.stderr, bad.stderr
