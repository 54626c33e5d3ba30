"""TLS on the migration channel (docs/security.md) between two real ferry
processes, with x509 credentials made by certtool when the tests start
(scripts/tls-certs.sh).

Mutual TLS over tcp and over unix carries a verify guest that keeps
verifying on the destination.  Every peer that must be refused is: each
side says why in its own words, the destination ends with status 1 and
one "ferry: error:" line, and the guest runs on, intact, on the source."""
import subprocess

import pytest

import ferrylib
from ferrylib import (assert_keeps_verifying, assert_never_ran, assert_no_sanitizer_report,
                      assert_one_error, read_stderr, set_params, wait_migration)

SCRIPT = ferrylib.ROOT / "scripts" / "tls-certs.sh"
PAGE = 4096
LIGHT = "workload=verify wss=8M rate=4000 progress=200ms"
LIGHT_PAGES = (8 << 20) // PAGE
MEM = "128M"


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    """Credential directories, made now with certtool:
    good      CA, server (localhost, 127.0.0.1, ::1) and client certificates
    other     another CA and its own certificates
    foreign   good's CA, but other's client certificate
    exp-srv   good's CA; the server certificate expired in 2020
    exp-cli   good's CA; the client certificate expired in 2020"""
    d = tmp_path_factory.mktemp("tls")

    def make(*args):
        subprocess.run([str(SCRIPT), *map(str, args)], check=True)

    make(d / "good")
    make("--cn-prefix", "other", d / "other")
    make("--ca-from", d / "good", "--expired", "server", d / "exp-srv")
    make("--ca-from", d / "good", "--expired", "client", d / "exp-cli")
    (d / "foreign").mkdir()
    for src, name in ((d / "good", "ca-cert.pem"), (d / "other", "client-cert.pem"),
                      (d / "other", "client-key.pem")):
        (d / "foreign" / name).write_bytes((src / name).read_bytes())
    return d


@pytest.fixture
def pair(tmp_path, kvm):
    """make(dst_creds, transport) -> (src, dst, uri): a running verify guest
    and a destination listening on @transport with --tls-creds @dst_creds
    (None: plaintext).  The source's TLS is set by each test."""
    procs = []

    def make(dst_creds, transport="tcp"):
        n = len(procs)
        uri = ferrylib.migration_uri(tmp_path, n, transport)
        dserial = tmp_path / f"dst{n}.txt"
        dctl = tmp_path / f"dctl{n}.sock"
        argv = ferrylib.incoming_argv(uri, memory=MEM, serial=f"file:{dserial}", control=dctl)
        if dst_creds:
            argv += ["--tls-creds", str(dst_creds)]
        dst = ferrylib.Vm(argv, tmp_path, dserial, dctl)
        procs.append(dst)
        sserial = tmp_path / f"src{n}.txt"
        sctl = tmp_path / f"sctl{n}.sock"
        src = ferrylib.Vm(ferrylib.ferry_argv(append=LIGHT, memory=MEM, serial=f"file:{sserial}",
                                              control=sctl),
                          tmp_path, sserial, sctl)
        procs.append(src)
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        dst.qmp  # listening (it listens before it serves --control)
        return src, dst, ferrylib.bound_uri(dst, uri)

    yield make
    for p in procs:
        p.kill()


def migrate(src, uri, **params):
    set_params(src.qmp, **params)
    src.qmp.cmd("migrate", uri=uri)
    return wait_migration(src.qmp, timeout=60)


def assert_refused(src, dst, st, src_words, dst_words):
    """The source's migration failed saying @src_words and its guest runs on
    intact; the destination ended with one error line saying @dst_words and
    never ran the guest."""
    print(f"source: {st['status']}: {st.get('error-desc')}")
    assert st["status"] == "failed", st
    for w in src_words:
        assert w in st.get("error-desc", ""), st
    assert src.qmp.cmd("query-status")["status"] == "running"
    assert_keeps_verifying(src, lines=3, pages=LIGHT_PAGES)
    assert_no_sanitizer_report(src)
    rc = dst.wait_exit(15)
    print(f"destination: exit {rc}: {read_stderr(dst).strip()}")
    assert_one_error(rc, read_stderr(dst), *dst_words)
    assert_never_ran(dst)


# ---- it works ---------------------------------------------------------------

@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_mutual_tls_migration(pair, creds, transport):
    src, dst, uri = pair(creds / "good", transport)
    params = {"tls_creds": str(creds / "good")}
    if transport == "unix":
        params["tls_hostname"] = "localhost"  # a unix: URI names no host
    st = migrate(src, uri, **params)
    assert st["status"] == "completed", st
    tls = st["ferry"]["tls"]
    print(f"source: {tls}")
    assert tls["protocol"] == "TLS1.3"
    assert "CN=localhost" in tls["peer"]
    # kernel TLS is used where the library and kernel allow it, and says so either way
    assert tls["ktls"] == "on" or tls["ktls"].startswith("off: "), tls
    assert_keeps_verifying(dst, lines=3, pages=LIGHT_PAGES)
    dtls = wait_migration(dst.qmp, timeout=30)["ferry"]["tls"]  # its own end follows RESUMED
    assert "CN=ferry-source" in dtls["peer"], dtls
    assert dtls["cipher"] == tls["cipher"]
    assert src.qmp.cmd("query-status")["running"] is False  # the guest left the source
    assert_no_sanitizer_report(src)
    assert_no_sanitizer_report(dst)


def test_ferry_migrate_cli_with_tls(pair, creds):
    """The CLI sets tls-creds and tls-hostname like any parameter."""
    src, dst, uri = pair(creds / "good", "unix")
    r = subprocess.run([str(ferrylib.FERRY), "migrate", "--control", str(src.control),
                        "--tls-creds", str(creds / "good"), "--tls-hostname", "localhost",
                        "--wait", uri], capture_output=True, text=True, timeout=90)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    assert "tls:" in r.stdout and "TLS1.3" in r.stdout
    p = src.qmp.cmd("query-migrate-parameters")
    assert p["tls-creds"] == str(creds / "good") and p["tls-hostname"] == "localhost"
    assert_keeps_verifying(dst, lines=3, pages=LIGHT_PAGES)


def test_parameters_set_on_both_control_sockets(tmp_path, creds, kvm):
    """A destination started with --incoming defer gets tls-creds through
    migrate-set-parameters, then migrate-incoming; the source the same way."""
    uri = ferrylib.migration_uri(tmp_path, 0, "tcp")
    dserial, dctl = tmp_path / "dst.txt", tmp_path / "dctl.sock"
    sserial, sctl = tmp_path / "src.txt", tmp_path / "sctl.sock"
    dst = ferrylib.Vm(ferrylib.incoming_argv("defer", memory=MEM, serial=f"file:{dserial}",
                                             control=dctl), tmp_path, dserial, dctl)
    src = ferrylib.Vm(ferrylib.ferry_argv(append=LIGHT, memory=MEM, serial=f"file:{sserial}",
                                          control=sctl), tmp_path, sserial, sctl)
    try:
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        set_params(dst.qmp, tls_creds=str(creds / "good"))
        assert dst.qmp.cmd("query-migrate-parameters")["tls-creds"] == str(creds / "good")
        dst.qmp.cmd("migrate-incoming", uri=uri)
        uri = ferrylib.bound_uri(dst, uri)
        st = migrate(src, uri, tls_creds=str(creds / "good"), tls_hostname="127.0.0.1")
        assert st["status"] == "completed", st
        assert st["ferry"]["tls"]["protocol"] == "TLS1.3"
        assert_keeps_verifying(dst, lines=3, pages=LIGHT_PAGES)
        # clearing it goes back to plaintext
        set_params(src.qmp, tls_creds="")
        assert src.qmp.cmd("query-migrate-parameters")["tls-creds"] == ""
    finally:
        src.kill()
        dst.kill()


# ---- refusals -----------------------------------------------------------------

def test_source_trusts_another_ca(pair, creds):
    """The destination's certificate is not from the CA the source trusts."""
    src, dst, uri = pair(creds / "good")
    st = migrate(src, uri, tls_creds=str(creds / "other"))
    assert_refused(src, dst, st,
                   ["tls: certificate verification failed: signer not found"],
                   ["incoming migration", "tls: the peer refused our certificate: CA is unknown"])


def test_source_certificate_from_another_ca(pair, creds):
    """The source's certificate is not from the CA the destination trusts."""
    src, dst, uri = pair(creds / "good")
    st = migrate(src, uri, tls_creds=str(creds / "foreign"))
    assert_refused(src, dst, st,
                   ["tls: the peer refused our certificate: CA is unknown"],
                   ["tls: certificate verification failed: signer not found"])


def test_expired_server_certificate(pair, creds):
    src, dst, uri = pair(creds / "exp-srv")
    st = migrate(src, uri, tls_creds=str(creds / "good"))
    assert_refused(src, dst, st,
                   ["tls: certificate verification failed: certificate expired"],
                   ["tls: the peer refused our certificate: Certificate is expired"])


def test_expired_client_certificate(pair, creds):
    src, dst, uri = pair(creds / "good")
    st = migrate(src, uri, tls_creds=str(creds / "exp-cli"))
    assert_refused(src, dst, st,
                   ["tls: the peer refused our certificate: Certificate is expired"],
                   ["tls: certificate verification failed: certificate expired"])


def test_wrong_hostname(pair, creds):
    src, dst, uri = pair(creds / "good")
    st = migrate(src, uri, tls_creds=str(creds / "good"), tls_hostname="db.example")
    assert_refused(src, dst, st,
                   ["the certificate is not for 'db.example'"],
                   ["tls: the peer refused our certificate: Certificate is bad"])


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_plaintext_source_refused(pair, creds, transport):
    src, dst, uri = pair(creds / "good", transport)
    st = migrate(src, uri)
    # the source only sees its peer hang up, and says what that may mean
    assert_refused(src, dst, st, ["the destination hung up before READY (does it require TLS?"],
                   ["tls: the peer did not start a TLS handshake (plaintext client?)"])


def test_tls_source_against_plaintext_destination(pair, creds):
    src, dst, uri = pair(None)
    st = migrate(src, uri, tls_creds=str(creds / "good"))
    assert_refused(src, dst, st,
                   ["tls: the peer did not answer the TLS handshake (plaintext server?)"],
                   ["incoming migration", "not a ferry migration stream",
                    "a TLS handshake (the source uses TLS: set tls-creds here too)"])


# ---- settings refused before anything connects ------------------------------

def test_bad_settings_refused_at_once(pair, creds, tmp_path):
    src, dst, uri = pair(creds / "good")
    set_params(src.qmp, tls_creds=str(tmp_path / "missing"))
    r = src.qmp.execute("migrate", uri=uri)
    assert "error" in r and "tls-creds" in r["error"]["desc"] and \
        "No such file or directory" in r["error"]["desc"], r
    set_params(src.qmp, tls_creds=str(creds / "good"))
    # a unix: URI has no host to check the certificate against
    r = src.qmp.execute("migrate", uri=f"unix:{tmp_path / 'x.sock'}")
    assert "error" in r and "needs tls-hostname" in r["error"]["desc"], r
    # a snapshot has no peer: TLS is not silently dropped
    r = src.qmp.execute("migrate", uri=f"file:{tmp_path / 'snap'}")
    assert "error" in r and "a file has no peer" in r["error"]["desc"], r
    assert not (tmp_path / "snap").exists()
    r = src.qmp.execute("migrate-set-parameters", **{"tls-creds": 5})
    assert "error" in r and "expected: string" in r["error"]["desc"], r
    # nothing was started: the destination still waits, and a good migration works
    assert dst.proc.poll() is None
    st = migrate(src, uri)
    assert st["status"] == "completed", st
    assert_keeps_verifying(dst, lines=2, pages=LIGHT_PAGES)


def test_destination_with_missing_creds_fails_to_start(tmp_path, kvm):
    uri = ferrylib.migration_uri(tmp_path, 0, "tcp")
    argv = ferrylib.incoming_argv(uri, memory=MEM, serial="null") + \
        ["--tls-creds", str(tmp_path / "nowhere")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert_one_error(r.returncode, r.stderr, "tls-creds", "nowhere", "No such file")
