"""A raw 512-byte boot sector runs in real mode at 0x7c00 as a PC BIOS would."""
import subprocess

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
