"""The guest's clock across a migration: every vCPU's TSC continues from
where the source left it, and the vCPUs still agree with each other.

The guest prints `progress cpu=N t_ms=T` lines (docs/guest.md), T from the
TSC of the CPU that prints it. Lines are written to the one serial port in
the order they happen, so two neighbouring lines from different CPUs were
printed close together in time and their t_ms must be close too; a vCPU
whose TSC was restored with another offset than its sibling's shows up as a
constant gap between them."""
import pytest

import ferrylib
from ferrylib import wait_migration, set_params

PERIOD_MS = 200
# Neighbouring lines are at most about a period apart; the rest is slack for
# a loaded host and the nested lane, where a vCPU thread can wait its turn.
AGREE_MS = PERIOD_MS + 800
# Guest time stands still while the VM is paused (docs/architecture.md), so
# the first line on the destination follows the source's last one by about
# a period plus the downtime.
GAP_MS = 3000


def progress_in_order(vm):
    """(cpu, t_ms) of every progress line, in the order the guest wrote them."""
    return [(p[0], p[1]) for p in vm.progress()]


def assert_cpus_agree(lines, where):
    worst = 0
    for (ca, ta), (cb, tb) in zip(lines, lines[1:]):
        if ca != cb:
            worst = max(worst, abs(ta - tb))
            assert abs(ta - tb) <= AGREE_MS, (
                f"{where}: cpu{ca} t_ms={ta} printed next to cpu{cb} t_ms={tb}: "
                f"the vCPUs' clocks disagree by {abs(ta - tb)} ms")
    return worst


def migrate_pair(tmp_path, cpus, append):
    uri = ferrylib.migration_uri(tmp_path, 0)
    dserial, sserial = tmp_path / "dst.txt", tmp_path / "src.txt"
    dst = ferrylib.Vm(ferrylib.incoming_argv(uri, memory="128M", cpus=cpus,
                                             serial=f"file:{dserial}",
                                             control=tmp_path / "dctl.sock"),
                      tmp_path, dserial, tmp_path / "dctl.sock")
    src = ferrylib.Vm(ferrylib.ferry_argv(append=append, memory="128M", cpus=cpus,
                                          serial=f"file:{sserial}",
                                          control=tmp_path / "sctl.sock"),
                      tmp_path, sserial, tmp_path / "sctl.sock")
    return src, dst, uri


@pytest.mark.parametrize("cpus", [2])
def test_clock_continues_and_vcpus_agree_after_migration(tmp_path, kvm, cpus):
    src, dst, uri = migrate_pair(tmp_path, cpus,
                                 f"workload=verify wss=8M rate=2000 progress={PERIOD_MS}ms")
    try:
        for cpu in range(cpus):
            src.wait_for(rf"^progress cpu={cpu} .*$", count=5, timeout=120)
        dst.qmp
        set_params(src.qmp, downtime_limit=1000)
        src.qmp.cmd("migrate", uri=uri)
        st = wait_migration(src.qmp, timeout=300)
        assert st["status"] == "completed", st
        for cpu in range(cpus):
            dst.wait_for(rf"^progress cpu={cpu} .*$", count=5, timeout=120)
        assert "FAIL" not in dst.serial(), dst.serial()[-2000:]
        s, d = progress_in_order(src), progress_in_order(dst)
        assert_cpus_agree(s, "source")
        assert_cpus_agree(d, "destination")
        for cpu in range(cpus):
            last = [t for c, t in s if c == cpu][-1]
            first = [t for c, t in d if c == cpu][0]
            assert first >= last, f"cpu{cpu}: t_ms went back from {last} to {first}"
            assert first - last <= GAP_MS, (
                f"cpu{cpu}: t_ms jumped from {last} to {first} across the migration")
    finally:
        src.kill()
        dst.kill()
