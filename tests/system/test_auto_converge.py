"""Auto-converge (capability auto-converge; docs/policy.md, "Throttling").

The CPU throttle itself: a dirty guest set to 50 % by hand writes at about
half its rate and its vCPU sleeps about half its time; a stop at 99 % (where
one sleep lasts about a second) returns at once; lifted, the guest writes at
full speed again.  Then migrations: a verify guest that cannot converge
under a bandwidth cap (the policy says not-converging first) completes with
auto-converge and post-copy off, the throttle rising pass after pass, and
the destination runs it unthrottled with no page lost; a cancel while
throttled gives the guest its full speed back on the source."""
import json
import subprocess
import time

import pytest

import ferrylib
from ferrylib import set_params, verify_pages_per_cpu, wait_full_sweep, wait_migration
from test_migrate_faults import HEAVY, pair  # noqa: F401  (fixture)

# writes one word a page flat out: its rate scales with the CPU time it gets
DIRTY = "workload=dirty wss=8M rate=max progress=100ms"


def enable_auto_converge(q, **params):
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": "auto-converge", "state": True}])
    set_params(q, **params)


def write_rate(vm, seconds=1.5):
    """Pages the guest's CPU 0 wrote per guest second over about @seconds."""
    vm.wait_for(r"^progress cpu=0 .*$", count=len(vm.progress()) + 1, timeout=30)
    p0 = vm.progress()[-1]
    time.sleep(seconds)
    vm.wait_for(r"^progress cpu=0 .*$", count=len(vm.progress()) + 1, timeout=30)
    p1 = vm.progress()[-1]
    return (p1[3] - p0[3]) / max(1, p1[1] - p0[1]) * 1000


def test_parameters_and_refusals(vms):
    vm = vms(DIRTY, memory="128M")
    q = vm.qmp
    assert {"capability": "auto-converge", "state": False} in \
        q.cmd("query-migrate-capabilities")
    p = q.cmd("query-migrate-parameters")
    assert (p["cpu-throttle-initial"], p["cpu-throttle-increment"], p["max-cpu-throttle"],
            p["cpu-throttle-tailslow"]) == (20, 10, 99, False), p
    for name, bad in (("cpu-throttle-initial", 0), ("cpu-throttle-increment", 100),
                      ("max-cpu-throttle", 100)):
        with pytest.raises(RuntimeError, match=f"'{name}' must be between 1 and 99"):
            set_params(q, **{name.replace("-", "_"): bad})
    with pytest.raises(RuntimeError, match="expected: boolean"):
        set_params(q, cpu_throttle_tailslow=1)
    enable_auto_converge(q, cpu_throttle_initial=30, cpu_throttle_tailslow=True)
    assert {"capability": "auto-converge", "state": True} in \
        q.cmd("query-migrate-capabilities")
    p = q.cmd("query-migrate-parameters")
    assert p["cpu-throttle-initial"] == 30 and p["cpu-throttle-tailslow"] is True, p
    with pytest.raises(RuntimeError, match="above 99"):
        q.cmd("x-ferry-throttle", percent=100)


def test_throttle_slows_the_guest_and_never_delays_a_stop(vms):
    vm = vms(DIRTY, memory="128M")
    q = vm.qmp
    full = write_rate(vm)
    q.cmd("x-ferry-throttle", percent=50)
    s0 = q.cmd("x-ferry-throttle")
    half = write_rate(vm)
    s1 = q.cmd("x-ferry-throttle")
    slept, ran = s1["slept-ns"] - s0["slept-ns"], s1["ran-ns"] - s0["ran-ns"]
    share = slept / max(1, slept + ran)
    print(f"full {full:.0f}/s, at 50 %: {half:.0f}/s, slept {share:.1%}")
    assert s1["cpu-throttle-percentage"] == 50
    assert 0.35 < share < 0.65, (slept, ran)
    assert half < 0.8 * full, (half, full)

    # at 99 % a vCPU sleeps about a second after each 10 ms slice: a stop
    # must end that sleep, not wait for it
    q.cmd("x-ferry-throttle", percent=99)
    time.sleep(0.5)
    for _ in range(3):
        t0 = time.monotonic()
        q.cmd("stop")
        took = time.monotonic() - t0
        print(f"stop at 99 %: {took * 1000:.1f} ms")
        assert took < 0.5, took
        q.cmd("cont")
        time.sleep(0.3)

    q.cmd("x-ferry-throttle", percent=0)
    s2 = q.cmd("x-ferry-throttle")
    again = write_rate(vm)
    # nothing slept after the lift but the end of the sleep it cut short
    assert q.cmd("x-ferry-throttle")["slept-ns"] - s2["slept-ns"] < 50_000_000
    print(f"lifted: {again:.0f}/s")
    assert again > 0.6 * full, (again, full)


def test_heavy_guest_converges_through_auto_converge(pair):
    """ferry migrate --auto-converge: a guest rewriting 8 MiB flat out over
    8 MiB/s never fits 50 ms (not-converging), until the throttle slows it;
    it completes with post-copy off, and the destination, never throttled,
    verifies every page."""
    src, dst, uri = pair(HEAVY)
    q = src.qmp
    set_params(q, max_bandwidth=8 << 20, downtime_limit=50)
    r = subprocess.run([str(ferrylib.FERRY), "migrate", "--control", str(src.control),
                        "--auto-converge", "--wait", "--json", uri],
                       capture_output=True, text=True, timeout=240)
    print(r.stdout[-3000:], r.stderr[-2000:])
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    f = st["ferry"]
    assert st["status"] == "completed" and not f["forced"], st
    assert {"capability": "postcopy-ram", "state": False} in \
        q.cmd("query-migrate-capabilities")
    # the policy found it not converging before it throttled
    q.cmd("query-status")  # collects the events sent meanwhile
    names = [e["event"] for e in q.events]
    assert "MIGRATION_NOT_CONVERGING" in names, names
    raises = [e["data"]["cpu-throttle-percentage"] for e in q.events
              if e["event"] == "MIGRATION_THROTTLE"]
    print("throttle events:", raises)
    assert raises[0] == 20 and raises[-1] == 0, raises
    levels = raises[:-1]
    assert len(levels) >= 2 and levels == sorted(levels), levels
    # per pass: the level each ran under, rising; what the vCPUs slept
    table = [(p["pass"], p["cpu-throttle-percentage"], p["throttle-slept-pct"])
             for p in f["pass-table"]]
    print("pass, throttle, slept %:", table)
    assert table[0][1] == 0
    assert [t for _, t, _ in table] == sorted(t for _, t, _ in table)
    assert max(t for _, t, _ in table) == max(levels) == f["throttle"]["peak"]
    assert f["throttle"]["slept-ns"] > 0 and f["throttle"]["level"] == 0, f["throttle"]
    # lifted on the source, never set on the destination
    assert st["cpu-throttle-percentage"] == 0
    assert q.cmd("x-ferry-throttle")["cpu-throttle-percentage"] == 0
    d = dst.qmp.cmd("x-ferry-throttle")
    assert d == {"cpu-throttle-percentage": 0, "slept-ns": 0, "ran-ns": 0}, d
    assert wait_migration(dst.qmp)["status"] == "completed"
    wait_full_sweep(dst, 1, verify_pages_per_cpu(HEAVY, 1), timeout=90)


def test_cancel_gives_the_guest_its_speed_back(pair):
    src, dst, uri = pair(DIRTY)
    q = src.qmp
    before = write_rate(src)
    # 4 MiB/s cannot carry it within 50 ms, nor can 80 or 90 % slow it
    # enough: throttled from the 3rd pass (2 s each) until the cancel
    enable_auto_converge(q, max_bandwidth=4 << 20, downtime_limit=50, stall_passes=2,
                         cpu_throttle_initial=80, max_cpu_throttle=90)
    q.cmd("migrate", uri=uri)
    ev = q.wait_event("MIGRATION_THROTTLE", timeout=60)
    assert ev["data"]["cpu-throttle-percentage"] == 80, ev
    assert q.cmd("query-migrate")["cpu-throttle-percentage"] >= 80
    throttled = write_rate(src)
    q.cmd("migrate-cancel")
    st = wait_migration(q, timeout=60)
    assert st["status"] == "cancelled", st
    lifted = q.wait_event("MIGRATION_THROTTLE", timeout=10)
    assert lifted["data"]["cpu-throttle-percentage"] == 0, lifted
    assert "cancelled" in lifted["data"]["detail"], lifted
    assert q.cmd("x-ferry-throttle")["cpu-throttle-percentage"] == 0
    assert q.cmd("query-migrate")["cpu-throttle-percentage"] == 0
    after = write_rate(src)
    print(f"guest writes/s: before {before:.0f}, throttled {throttled:.0f}, after {after:.0f}")
    assert throttled < 0.5 * before, (throttled, before)
    assert after > 0.6 * before, (after, before)
    assert q.cmd("query-status")["status"] == "running"
