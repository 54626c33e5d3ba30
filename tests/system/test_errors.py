"""Each bad input gets one clear line and a non-zero exit, never a crash."""
import os
import socket
import subprocess
import struct

import pytest

import ferrylib


def run_ferry(args, timeout=30):
    p = subprocess.run([str(ferrylib.FERRY)] + args, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stderr


def assert_clear_error(rc, err, *words):
    assert rc == 1, f"exit {rc}, stderr: {err}"
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert lines[0].startswith("ferry: error: ")
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    assert "Sanitizer" not in err


@pytest.mark.parametrize("args,words", [
    (["run"], ["--kernel"]),
    (["run", "--kernel", "/nonexistent/kernel"], ["/nonexistent/kernel", "No such file"]),
    # with --incoming, --kernel is what a guest reset boots: checked at start
    (["run", "--incoming", "defer", "--kernel", "/nonexistent/kernel"],
     ["--kernel /nonexistent/kernel", "No such file"]),
    (["run", "--incoming", "defer", "--kernel", "GUEST", "--initrd", "/nonexistent/rd"],
     ["--initrd /nonexistent/rd", "No such file"]),
    (["run", "--kernel", "/etc/hostname"], ["not a multiboot"]),
    (["run", "--kernel", "/"], ["not a regular file"]),
    (["run", "--kernel", "GUEST", "--memory", "100T"], ["--memory", "host"]),
    (["run", "--kernel", "GUEST", "--memory", "12Q"], ["--memory", "12Q"]),
    (["run", "--kernel", "GUEST", "--memory", "1M"], ["--memory"]),
    (["run", "--kernel", "GUEST", "--cpus", "0"], ["--cpus"]),
    (["run", "--kernel", "GUEST", "--cpus", "4000"], ["--cpus"]),
    (["run", "--kernel", "GUEST", "--cpus", "two"], ["--cpus"]),
    (["run", "--kernel", "GUEST", "--serial", "tcp:1234"], ["backend", "tcp:1234"]),
    (["run", "--kernel", "GUEST", "--serial", "file:/nonexistent/dir/out"], ["/nonexistent/dir/out"]),
    (["run", "--kernel", "GUEST", "--debugcon", "unix:/nonexistent.sock"], ["/nonexistent.sock"]),
    (["run", "--kernel", "GUEST", "--bogus"], ["--bogus"]),
    (["frobnicate"], ["frobnicate"]),
])
def test_bad_input(kvm, args, words):
    args = [str(ferrylib.GUEST) if a == "GUEST" else a for a in args]
    rc, err = run_ferry(args)
    assert_clear_error(rc, err, *words)


def test_control_path_in_use(vms, tmp_path):
    vm = vms(append="workload=idle")
    vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
    vm.qmp  # the first ferry is listening there
    rc, err = run_ferry(["run", "--kernel", str(ferrylib.GUEST), "--control", str(vm.control)])
    assert_clear_error(rc, err, str(vm.control), "in use")


def test_control_path_not_a_socket(kvm, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    rc, err = run_ferry(["run", "--kernel", str(ferrylib.GUEST), "--control", str(f)])
    assert_clear_error(rc, err, str(f))
    assert f.read_text() == "x", "ferry must not delete a file that is not its socket"


def test_kvm_missing_is_reported(tmp_path):
    """Run ferry in a private mount namespace where /dev/kvm is hidden."""
    script = (f"mount -t tmpfs none /dev && exec {ferrylib.FERRY} run "
              f"--kernel {ferrylib.GUEST}")
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=30)
    assert_clear_error(p.returncode, p.stderr, "/dev/kvm")


def _tiny_multiboot(code):
    """A flat multiboot (a.out kludge) image loaded at 1 MiB, entry after the header."""
    magic, flags = 0x1BADB002, 0x10000
    hdr = struct.pack("<8I", magic, flags, (-(magic + flags)) & 0xFFFFFFFF,
                      0x100000, 0x100000, 0, 0, 0x100020)
    return hdr + code + bytes(128)


def test_guest_fault_stops_with_register_report(kvm, tmp_path):
    # 32-bit: load an empty IDT and raise #BP: on hardware a triple fault;
    # KVM reports either SHUTDOWN or an emulation failure. Both must stop
    # the VM with the registers, never hang.
    code = bytes([0x0F, 0x01, 0x1D]) + struct.pack("<I", 0x100040) + bytes([0xCC, 0xEB, 0xFE])
    code = code.ljust(0x20, b"\x90") + bytes(6)
    img = tmp_path / "fault.img"
    img.write_bytes(_tiny_multiboot(code))
    rc, err = run_ferry(["run", "--kernel", str(img)], timeout=30)
    assert rc == 2, err
    assert "ferry: VM stopped:" in err
    assert "RIP=" in err and "CR0=" in err
