"""Every workload boots with 1, 2 and 4 vCPUs, starts, and reports progress."""
import pytest

from ferrylib import START_RE

WORKLOADS = {
    "idle": "workload=idle progress=200ms",
    "spin": "workload=spin progress=200ms",
    "dirty": "workload=dirty wss=8M rate=max progress=200ms",
    "verify": "workload=verify wss=8M progress=200ms",
}


@pytest.mark.parametrize("cpus", [1, 2, 4])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_workload_starts_and_progresses(vms, workload, cpus):
    vm = vms(append=WORKLOADS[workload], cpus=cpus, control=False)
    start = vm.wait_for(r"^ferry-guest: start .*$", timeout=60)[0]
    assert f"workload={workload}" in start
    assert f"cpus={cpus}" in start
    boot = vm.wait_for(r"^ferry-guest: boot .*$")[0]
    assert f"cpus={cpus}" in boot
    # Every vCPU reports at least two progress lines after its start line,
    # and the busy workloads report real work.
    for cpu in range(cpus):
        vm.wait_for(rf"^progress cpu={cpu} .*$", count=3, timeout=60)
    lines = vm.progress()
    for cpu in range(cpus):
        mine = [p for p in lines if p[0] == cpu]
        assert mine[-1][3] >= mine[0][3], "total must not decrease"
        assert mine[-1][1] > mine[0][1], "guest time must advance"
        if workload != "idle":
            assert mine[-1][3] > 0, f"cpu {cpu} did no {workload} work: {mine}"
    assert vm.proc.poll() is None, "VM must still be running"
