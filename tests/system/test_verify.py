"""The verify guest detects a page ferry corrupted behind its back."""
import re

# docs/guest.md: the working set starts at 32 MiB, CPU slices in order.
WS_BASE = 0x2000000


def test_verify_detects_flipped_byte(vms):
    vm = vms(append="workload=verify wss=4M progress=100ms", cpus=1)
    vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
    # Let it complete a few full sweeps so every page holds a pattern.
    vm.wait_for(r"^progress cpu=0 .*$", count=4, timeout=60)
    wss_base = WS_BASE
    addr = wss_base + 3 * 4096 + 100
    r = vm.qmp.cmd("x-ferry-flip-byte", addr=addr)
    assert r["old"] != r["new"]
    status = vm.wait_exit(timeout=30)
    out = vm.serial()
    m = re.search(r"^verify: FAIL cpu=0 addr=0x([0-9a-f]+) offset=0x([0-9a-f]+) "
                  r"expected=0x[0-9a-f]{16} found=0x[0-9a-f]{16} gen=\d+$", out, re.M)
    assert m, f"no FAIL line in serial output:\n{out[-1500:]}"
    assert int(m.group(1), 16) == addr & ~0xfff
    assert int(m.group(2), 16) in ((addr & 0xfff) & ~7, addr & 0xfff)
    assert status == (0x10 << 1) | 1


def test_verify_clean_run_has_no_failure(vms):
    vm = vms(append="workload=verify wss=16M progress=100ms", cpus=2, control=False)
    vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
    for cpu in (0, 1):
        vm.wait_for(rf"^progress cpu={cpu} .*$", count=5, timeout=60)
    assert "FAIL" not in vm.serial()
    assert vm.proc.poll() is None
