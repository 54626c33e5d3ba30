"""The same guest boots under QEMU (-accel kvm) and prints the same start line."""
import subprocess

import pytest

import ferrylib


@pytest.mark.parametrize("append,cpus", [
    ("workload=verify wss=4M progress=200ms", 2),
    ("workload=dirty wss=4M rate=1000 pattern=random progress=200ms", 1),
])
def test_same_start_line_under_qemu(vms, tmp_path, kvm, append, cpus):
    ferry = vms(append=append, cpus=cpus, control=False)
    ferry_start = ferry.wait_for(r"^ferry-guest: start .*$", timeout=60)[0]

    serial = tmp_path / "qemu-serial.txt"
    qemu = ferrylib.Vm(ferrylib.qemu_argv(append=append, cpus=cpus, serial_path=serial),
                       tmp_path, serial)
    try:
        qemu_start = qemu.wait_for(r"^ferry-guest: start .*$", timeout=60)[0]
        qemu.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
    finally:
        qemu.kill()
    assert qemu_start == ferry_start
