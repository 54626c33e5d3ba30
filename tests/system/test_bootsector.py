"""A raw 512-byte boot sector runs in real mode at 0x7c00 as a PC BIOS would."""
import subprocess

import pytest

import ferrylib


def test_bootsector_prints_and_exits(kvm, tmp_path):
    msg = b"hello from 0x7c00\n"
    code = b""
    for ch in msg:
        code += bytes([0xB4, 0x0E, 0xB0, ch, 0xCD, 0x10])  # int 10h teletype
    code += bytes([0x88, 0xD0])        # mov al, dl  (BIOS boot drive)
    code += bytes([0xE6, 0xF4])        # out 0xf4, al
    code += bytes([0xF4, 0xEB, 0xFE])  # hlt; jmp $
    img = tmp_path / "boot.img"
    img.write_bytes(code.ljust(510, b"\0") + b"\x55\xaa")
    p = subprocess.run([str(ferrylib.FERRY), "run", "--kernel", str(img)],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.stdout == msg
    assert p.returncode == (0x80 << 1 | 1) & 0xFF  # DL = 0x80: first hard disk


def test_bootsector_without_signature_is_rejected(kvm, tmp_path):
    img = tmp_path / "nosig.img"
    img.write_bytes(bytes(512))
    p = subprocess.run([str(ferrylib.FERRY), "run", "--kernel", str(img)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "not a multiboot" in p.stderr


RESETS = {
    # the FADT's reset register (what Linux's ACPI reboot writes)
    "cf9": bytes([0xBA, 0xF9, 0x0C, 0xB0, 0x06, 0xEE]),  # mov dx,0xcf9; mov al,6; out dx,al
    "port92": bytes([0xB0, 0x01, 0xE6, 0x92]),  # mov al,1; out 0x92,al
    "kbc": bytes([0xB0, 0xFE, 0xE6, 0x64]),  # mov al,0xfe; out 0x64,al (8042 pulse reset)
    # Linux's order: the ACPI register, then its fallback (the 8042, over
    # and over) while the reset is under way: one reset, not two
    "cf9-then-kbc": bytes([0xBA, 0xF9, 0x0C, 0xB0, 0x06, 0xEE,  # as cf9
                           0xB0, 0xFE, 0xE6, 0x64, 0xEB, 0xFA]),  # 1: out 0x64,0xfe; jmp 1b
}


@pytest.mark.parametrize("how", sorted(RESETS))
def test_bootsector_reset_boots_it_again(kvm, tmp_path, how):
    """A guest reset starts the machine over (machine/machine.h): the boot
    sector counts its boots in RAM (which a reset keeps, as a PC's),
    prints the count to the debug console and resets itself, until its
    third boot exits with the count.  Before resets existed the first
    reset ended ferry with status 0."""
    boots = 3
    head = bytes([
        0x31, 0xC0,              # xor ax, ax
        0x8E, 0xD8,              # mov ds, ax
        0xFE, 0x06, 0x00, 0x70,  # inc byte [0x7000]
        0xA0, 0x00, 0x70,        # mov al, [0x7000]
        0x04, 0x30,              # add al, '0'
        0xE6, 0xE9,              # out 0xe9, al
        0x2C, 0x30,              # sub al, '0'
        0x3C, boots,             # cmp al, boots
    ])
    reset = RESETS[how] + bytes([0xF4, 0xEB, 0xFD])  # ...; hlt; jmp $-1 (until the reset)
    done = bytes([0xE6, 0xF4, 0xF4])                 # out 0xf4, al; hlt
    code = head + bytes([0x73, len(reset)]) + reset + done  # jae done
    img = tmp_path / "boot.img"
    img.write_bytes(code.ljust(510, b"\0") + b"\x55\xaa")
    dbg = tmp_path / "debugcon.txt"
    ctl = tmp_path / "ctl.sock"
    vm = ferrylib.Vm([str(ferrylib.FERRY), "run", "--kernel", str(img), "--serial", "null",
                      "--debugcon", f"file:{dbg}", "--control", str(ctl)], tmp_path, None, ctl)
    try:
        status = vm.wait_exit(60 * ferrylib.SLOW)
    finally:
        vm.kill()
    assert dbg.read_bytes() == b"123", \
        f"boots seen: {dbg.read_bytes()!r}, status {status}; stderr:\n{vm.stderr()}"
    assert status == (boots << 1 | 1), f"exit status {status}; stderr:\n{vm.stderr()}"
