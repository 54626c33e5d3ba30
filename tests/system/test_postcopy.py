"""Post-copy (capability postcopy-ram; docs/postcopy.md).

Verify guests switch to post-copy from the start, after 1 and after 3
pre-copy passes, with 1 and 2 vCPUs, over unix and tcp: the migration
completes on both sides, the destination owns every page, every page the
guest faulted on was asked for and answered on the post-copy channel, and a
full verify sweep on the destination finds nothing wrong.  A guest that
cannot converge under a bandwidth cap completes through
migrate-start-postcopy, on-timeout postcopy, and the policy's own choice.
A switch to post-copy that overruns the limit is rolled back like any
switchover; cancel is refused on both sides once the guest runs there."""
import pytest

from ferrylib import (assert_keeps_verifying, read_stderr, set_params, verify_pages_per_cpu, wait_full_sweep,
                      wait_migration, wait_status)
from test_migrate_faults import HEAVY, LIGHT, pair  # noqa: F401  (fixture)
from test_multifd import tls_pair  # noqa: F401  (fixture)

# 24 MiB written flat out: every pre-copy pass leaves most of it dirty
BUSY = "workload=verify wss=24M rate=max progress=200ms"
NEVER = 4294967295


def enable_postcopy(q, **params):
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": "postcopy-ram", "state": True}])
    if params:
        set_params(q, **params)


def wait_both(src, dst, timeout=90):
    """wait_migration on the source; on a timeout, both sides' state first."""
    try:
        return wait_migration(src.qmp, timeout=timeout)
    except TimeoutError:
        d = dst.qmp.cmd("query-migrate")
        print("destination:", d.get("status"), d.get("ferry", {}).get("postcopy"))
        print("destination stderr:", read_stderr(dst)[-2000:])
        raise


def assert_switched_after(st, after):
    """The switch came after @after passes, or later only because a switch
    that would have overrun the limit on a loaded host was rolled back (the
    limit holds) and tried again after more passes."""
    f = st["ferry"]
    rolled = [a for a in f["switchover-table"] if a["outcome"] == "rolled-back"]
    assert f["passes"] == after or (f["passes"] > after and rolled), \
        {k: f[k] for k in ("passes", "switchover-table", "policy-reason", "policy-detail")}


def assert_postcopy_completed(src, dst, st, append, cpus):
    """Both sides completed through post-copy; the destination owns every
    page and verifies its whole working set once more."""
    print(f"source: {st['status']} {st.get('error-desc', '')} {st['ferry'].get('postcopy')}")
    if st["status"] != "completed":
        # the destination's side of the story: its exit, stderr and console
        dst.proc.poll()
        print(f"destination exit: {dst.proc.returncode}\n{read_stderr(dst)[-3000:]}")
        print("destination serial:", dst.serial()[-1500:])
    assert st["status"] == "completed", st
    assert src.qmp.cmd("query-status")["status"] == "postmigrate"
    assert st["ferry"]["guest-owner"] == "away"
    sp = st["ferry"]["postcopy"]
    assert sp["missing"] == 0, sp
    assert sp["bytes-after"] > 0, sp
    try:
        dm = wait_migration(dst.qmp, timeout=60)
    except (OSError, TimeoutError):
        dst.proc.poll()
        print(f"destination exit: {dst.proc.returncode}\n{read_stderr(dst)[-3000:]}")
        print("destination serial:", dst.serial()[-1500:])
        raise
    dp = dm["ferry"]["postcopy"]
    print(f"destination: {dm['status']} {dp}")
    assert dm["status"] == "completed", dm
    assert dp["missing"] == 0 and dp["owned-ns"] > 0, dp
    assert dp["discarded"] > 0, dp
    # every fault asked for its page once and was answered
    assert dp["faults"] == dp["requests"] == dm["ram"]["postcopy-requests"], dp
    assert sum(dp["latency-dist-us"]) == dp["faults"], dp
    if dp["faults"]:
        assert 0 < dp["latency-min-ns"] <= dp["latency-p50-ns"] <= dp["latency-p99-ns"] \
            <= dp["latency-max-ns"], dp
    assert len(dm["postcopy-vcpu-blocktime"]) == cpus, dm
    assert dst.qmp.cmd("query-status")["status"] == "running"
    wait_full_sweep(dst, cpus, verify_pages_per_cpu(append, cpus), timeout=90)


def test_capability_parameters_and_refusals(pair):
    src, dst, uri = pair(HEAVY)
    q = src.qmp
    assert {"capability": "postcopy-ram", "state": False} in q.cmd("query-migrate-capabilities")
    p = q.cmd("query-migrate-parameters")
    assert p["postcopy-after-passes"] == NEVER and p["max-postcopy-bandwidth"] == 0, p
    with pytest.raises(RuntimeError, match="postcopy-ram"):
        set_params(q, postcopy_after_passes=1)
    with pytest.raises(RuntimeError, match="postcopy-ram"):
        q.cmd("migrate-start-postcopy")
    enable_postcopy(q)
    with pytest.raises(RuntimeError, match="no outgoing migration"):
        q.cmd("migrate-start-postcopy")
    set_params(q, postcopy_after_passes=0)
    assert q.cmd("query-migrate-parameters")["postcopy-after-passes"] == 0


@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("after", [0, 1, 3])
def test_postcopy_after_passes(pair, after, cpus):
    src, dst, uri = pair(BUSY, cpus=cpus)
    # capped at 32 MiB/s, a pass of 24 MiB takes 0.75 s and the guest dirties
    # it all again meanwhile: a plain switchover never fits 50 ms
    enable_postcopy(src.qmp, postcopy_after_passes=after, max_bandwidth=32 << 20,
                    downtime_limit=50)
    src.qmp.cmd("migrate", uri=uri)
    st = wait_both(src, dst)
    assert_switched_after(st, after)
    assert st["ferry"]["policy-reason"] == "hybrid-passes-done", st["ferry"]
    assert_postcopy_completed(src, dst, st, BUSY, cpus)


@pytest.mark.parametrize("after", [0, 1])
def test_postcopy_with_multifd(pair, after):
    """Pre-copy passes over parallel data channels, then post-copy: the data
    channels end at GO (the rest goes through the destination's
    userfaultfd, which they would bypass)."""
    src, dst, uri = pair(BUSY, cpus=2, transport="tcp")
    src.qmp.cmd("migrate-set-capabilities",
                capabilities=[{"capability": "multifd", "state": True}])
    enable_postcopy(src.qmp, postcopy_after_passes=after, multifd_channels=3,
                    max_bandwidth=32 << 20, downtime_limit=50)
    src.qmp.cmd("migrate", uri=uri)
    st = wait_both(src, dst)
    assert_switched_after(st, after)
    assert st["ferry"]["multifd-channels"] == 3, st["ferry"]
    if after:
        assert st["ferry"]["multifd-bytes"] > 0, st["ferry"]
    assert_postcopy_completed(src, dst, st, BUSY, 2)


def test_postcopy_over_tcp_with_a_capped_bulk_stream(pair):
    src, dst, uri = pair(BUSY, cpus=2, transport="tcp")
    # the bulk stream is slow, so the guest's faults are answered on the
    # post-copy channel ahead of it
    enable_postcopy(src.qmp, postcopy_after_passes=0, max_postcopy_bandwidth=16 << 20)
    src.qmp.cmd("migrate", uri=uri)
    # postcopy-active begins on the source when it pauses for the switch
    # (a cancel then still keeps the guest there), on the destination at GO
    wait_status(dst.qmp, "postcopy-active", timeout=30)
    # the guest runs on the destination: neither side may cancel now
    for q in (src.qmp, dst.qmp):
        r = q.execute("migrate-cancel")
        assert "error" in r and "too late" in r["error"]["desc"], r
    st = wait_migration(src.qmp, timeout=90)
    assert st["ferry"]["postcopy"]["requests"] > 0, st["ferry"]["postcopy"]
    assert_postcopy_completed(src, dst, st, BUSY, 2)


def test_start_postcopy_command(pair):
    src, dst, uri = pair(HEAVY)
    q = src.qmp
    # a limit post-copy can keep (the state alone fits) but pre-copy cannot
    enable_postcopy(q, max_bandwidth=8 << 20, downtime_limit=50, stall_passes=100)
    q.cmd("migrate", uri=uri)
    q.wait_event("MIGRATION_PASS", timeout=30)
    q.cmd("migrate-start-postcopy")
    st = wait_migration(q, timeout=90)
    assert st["ferry"]["policy-reason"] == "postcopy-requested", st["ferry"]
    assert_postcopy_completed(src, dst, st, HEAVY, 1)


def test_on_timeout_postcopy(pair):
    src, dst, uri = pair(HEAVY)
    enable_postcopy(src.qmp, max_bandwidth=8 << 20, downtime_limit=50, timeout=2,
                    on_timeout="postcopy", stall_passes=100)
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=90)
    assert st["ferry"]["policy-reason"] == "timeout-postcopy", st["ferry"]
    assert_postcopy_completed(src, dst, st, HEAVY, 1)


def test_policy_chooses_postcopy_when_not_converging(pair):
    src, dst, uri = pair(HEAVY)
    # 8 MiB/s cannot carry a guest that rewrites 8 MiB flat out within 50 ms,
    # but the state alone fits: post-copy keeps the limit, pre-copy never will
    enable_postcopy(src.qmp, max_bandwidth=8 << 20, downtime_limit=50)
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=120)
    assert st["ferry"]["policy-reason"] == "not-converging", st["ferry"]
    assert st["ferry"]["not-converging"], st["ferry"]
    assert_postcopy_completed(src, dst, st, HEAVY, 1)


def test_switch_rolled_back_then_completes(pair):
    src, dst, uri = pair(BUSY)
    q, d = src.qmp, dst.qmp
    # the destination takes longer than the limit to load: the switch to
    # post-copy is rolled back, the guest runs here again, pre-copy goes on
    set_params(d, x_load_delay=400)
    # capped at 32 MiB/s, a plain switchover of the busy guest never fits
    # 200 ms (on a slower host it might otherwise, and take the place of post-copy)
    enable_postcopy(q, postcopy_after_passes=1, downtime_limit=200, switchover_attempts=3,
                    max_bandwidth=32 << 20)
    q.cmd("migrate", uri=uri)
    ev = q.wait_event("MIGRATION_SWITCHOVER_ABORTED", timeout=60)
    assert ev["data"]["reason"] == "deadline", ev
    assert q.cmd("query-status")["status"] == "running"
    set_params(d, x_load_delay=0)
    st = wait_migration(q, timeout=90)
    table = st["ferry"]["switchover-table"]
    assert [a["outcome"] for a in table][-1] == "go" and table[0]["outcome"] == "rolled-back", \
        table
    assert_postcopy_completed(src, dst, st, BUSY, 1)
    assert_keeps_verifying(dst, lines=2)


def test_ferry_migrate_cli(pair):
    """ferry migrate --postcopy-after-passes 0 sets the capability and the
    parameter, and the migration completes through post-copy."""
    import json
    import subprocess

    import ferrylib
    src, dst, uri = pair(BUSY)
    r = subprocess.run([str(ferrylib.FERRY), "migrate", "--control", str(src.control),
                        "--postcopy-after-passes", "0", "--wait", "--json", uri],
                       capture_output=True, text=True, timeout=90)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["ferry"]["policy-reason"] == "hybrid-passes-done", st["ferry"]
    assert {"capability": "postcopy-ram", "state": True} in \
        src.qmp.cmd("query-migrate-capabilities")
    assert src.qmp.cmd("query-migrate-parameters")["postcopy-after-passes"] == 0
    assert_postcopy_completed(src, dst, st, BUSY, 1)


def test_postcopy_over_tls(tls_pair):
    """The post-copy channel goes through the same connect path as the main
    connection: a TLS destination completes the handshake on it before it
    reads a byte, so a plaintext post-copy channel would fail the migration."""
    src, dst, uri, creds = tls_pair
    enable_postcopy(src.qmp, postcopy_after_passes=0, tls_creds=str(creds))
    src.qmp.cmd("migrate", uri=uri)
    st = wait_migration(src.qmp, timeout=60)
    assert st["ferry"]["tls"]["protocol"].startswith("TLS"), st["ferry"]
    assert not [e for e in dst.qmp.events if e.get("event") == "MIGRATION_CHANNEL_REFUSED"]
    assert_postcopy_completed(src, dst, st, LIGHT, 1)
