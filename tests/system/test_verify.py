"""The verify guest detects a page ferry corrupted behind its back."""
import re
import subprocess

import pytest

import ferrylib

# docs/guest.md: the working set starts at 32 MiB, CPU slices in order.
WS_BASE = 0x2000000


@pytest.mark.allow_detection
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


def guest_symbol(name):
    """Address of @name in the guest image (docs/guest.md: nm ferry-guest.elf64)."""
    out = subprocess.run(["nm", str(ferrylib.GUEST) + "64"], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"no symbol {name} in the guest")


def flip_and_expect_fail(vm, addr, regex):
    vm.wait_for(r"^progress cpu=0 .*$", count=3, timeout=60)
    r = vm.qmp.cmd("x-ferry-flip-byte", addr=addr)
    assert r["old"] != r["new"]
    status = vm.wait_exit(timeout=30)
    m = re.search(regex, vm.serial(), re.M)
    assert m, f"no {regex} in serial output:\n{vm.serial()[-1500:]}"
    assert status == (0x10 << 1) | 1
    return m


@pytest.mark.allow_detection
@pytest.mark.parametrize("where", ["text", "pdpt", "extra_pds"])
def test_verify_detects_changed_kernel_or_page_tables(vms, where):
    """CPU 0 checksums the kernel's text/rodata and page tables (never
    written after boot): a byte changed there is reported."""
    addr = {"text": guest_symbol("multiboot_parse") + 2,  # runs once, at boot
            "pdpt": guest_symbol("pdpt") + 300 * 8 + 1,  # an unused entry
            "extra_pds": guest_symbol("extra_pds") + 59 * 4096 + 5}[where]
    vm = vms(append="workload=verify wss=4M progress=100ms", cpus=1)
    flip_and_expect_fail(vm, addr, r"^verify: FAIL cpu=0 kernel checksum "
                         r"expected=0x[0-9a-f]{16} found=0x[0-9a-f]{16}$")


@pytest.mark.allow_detection
def test_verify_detects_flipped_byte_above_4g(vms):
    """high=SIZE puts part of the working set at 4 GiB (a 5 GiB guest has
    RAM in two regions): a byte changed there is found too."""
    vm = vms(append="workload=verify wss=1M high=8M progress=100ms", cpus=2, memory="5G")
    vm.wait_for(r"^ferry-guest: start .* high=8388608$", timeout=60)
    addr = (4 << 30) + (4 << 20) + 5 * 4096 + 17  # CPU 1's high slice
    m = flip_and_expect_fail(vm, addr, r"^verify: FAIL cpu=1 addr=0x([0-9a-f]+) ")
    assert int(m.group(1), 16) == addr & ~0xfff


@pytest.mark.allow_detection
def test_verify_detects_a_zero_page_turned_nonzero(vms, tmp_path):
    """One page in eight is all zeros in each generation (docs/guest.md): a
    byte set in a page that holds zeros is found, and reported with the
    all-zero word it expected."""
    vm = vms(append="workload=verify wss=4M rate=1000 progress=100ms", cpus=1)
    # after pass 0 (which only initialises) every page holds a pattern
    ferrylib.wait_total(vm, 0, 1024, timeout=60)
    vm.qmp.cmd("stop")
    base = WS_BASE + 512 * 4096
    vm.qmp.cmd("pmemsave", val=base, size=8 * 4096, filename=str(tmp_path / "p.bin"))
    data = (tmp_path / "p.bin").read_bytes()
    zero = [i for i in range(8) if data[i * 4096:(i + 1) * 4096] == bytes(4096)]
    assert zero, "no all-zero page among 8 consecutive verify pages"
    addr = base + zero[0] * 4096 + 8
    vm.qmp.cmd("x-ferry-flip-byte", addr=addr)
    vm.qmp.cmd("cont")
    status = vm.wait_exit(timeout=60)
    assert status == (0x10 << 1) | 1
    m = re.search(r"^verify: FAIL cpu=0 addr=0x([0-9a-f]+) offset=0x8 "
                  r"expected=0x0{16} found=0x0{14}ff gen=\d+$", vm.serial(), re.M)
    assert m, vm.serial()[-500:]
    assert int(m.group(1), 16) == addr & ~0xfff
