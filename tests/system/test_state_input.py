"""Hostile input that passes every checksum: streams whose record and
header checksums are recomputed (tests/system/streamlib.py) but whose vCPU,
VM or device state, record set or header is malformed.  Each restore must
end quickly with exit status 1 and exactly one 'ferry: error:' line: no
crash, no sanitizer report, no hang, and the guest never runs."""
import struct
import subprocess
import time

import pytest

import ferrylib
import streamlib
from streamlib import REC_DEVICE_STATE, REC_VCPU_STATE, REC_VM_STATE

# quick: well below anything a user would call a hang, loose for ASan
QUICK_S = 15 * ferrylib.SLOW
# vCPU state sections (docs/stream-format.md, "State blobs")
REGS, SREGS2, XSAVE, MSRS = 1, 3, 4, 6
# VM state sections
PIT = 4


@pytest.fixture(scope="module")
def snap(tmp_path_factory):
    """A real saved state: 2 vCPUs, 64 MiB, a verify guest."""
    ferrylib.require_kvm()
    d = tmp_path_factory.mktemp("state")
    serial, ctl = d / "serial.txt", d / "ctl.sock"
    vm = ferrylib.Vm(ferrylib.ferry_argv(append="workload=verify wss=4M progress=100ms",
                                         memory="64M", cpus=2, serial=f"file:{serial}",
                                         control=ctl), d, serial, ctl)
    try:
        vm.wait_for(r"^progress cpu=1 .*$", count=3, timeout=60)
        vm.qmp.cmd("migrate", uri=f"file:{d / 'good.snap'}")
        assert ferrylib.wait_migration(vm.qmp)["status"] == "completed"
    finally:
        vm.kill()
    return (d / "good.snap").read_bytes()


def restore_refused(tmp_path, data, *words, extra=(), quick=QUICK_S):
    f = tmp_path / "bad.snap"
    f.write_bytes(data)
    serial = tmp_path / "serial.txt"
    t = time.monotonic()
    p = subprocess.run([str(ferrylib.FERRY), "run", "--incoming", f"file:{f}",
                        "--serial", f"file:{serial}", *extra],
                       capture_output=True, text=True, timeout=quick + 5,
                       stdin=subprocess.DEVNULL)
    took = time.monotonic() - t
    line = ferrylib.assert_one_error(p.returncode, p.stderr, *words)
    assert took < quick, f"took {took:.1f}s to refuse: {line}"
    out = serial.read_text(errors="replace") if serial.exists() else ""
    assert "progress" not in out, "the guest ran"
    return line


def vcpu_blob(data, nth=0):
    rec = streamlib.find(data, REC_VCPU_STATE, nth)
    p = streamlib.payload(data, rec)
    return rec, p[:8], streamlib.sections(p[8:])


def with_vcpu_sections(data, edit, nth=0):
    rec, head, secs = vcpu_blob(data, nth)
    return streamlib.replace_payload(data, rec[0], head + streamlib.blob(edit(secs)))


def with_vm_sections(data, edit):
    rec = streamlib.find(data, REC_VM_STATE)
    secs = streamlib.sections(streamlib.payload(data, rec))
    return streamlib.replace_payload(data, rec[0], streamlib.blob(edit(secs)))


def resize(secs, tag, n):
    return [(t, (d + bytes(n))[:len(d) + n] if n > 0 else d[:len(d) + n]) if t == tag else (t, d)
            for t, d in secs]


def test_unchanged_copy_restores(tmp_path, snap):
    """The editing helpers themselves keep a good stream good: a payload
    replaced by itself still restores and runs."""
    rec = streamlib.find(snap, REC_VCPU_STATE)
    data = streamlib.replace_payload(snap, rec[0], streamlib.payload(snap, rec))
    assert data == snap
    f = tmp_path / "same.snap"
    f.write_bytes(data)
    serial = tmp_path / "s.txt"
    vm = ferrylib.Vm([str(ferrylib.FERRY), "run", "--incoming", f"file:{f}",
                      "--serial", f"file:{serial}"], tmp_path, serial)
    vm.wait_for(r"^progress cpu=1 .*$", count=2, timeout=60)
    ferrylib.wait_full_sweep(vm, 2, (4 << 20) // 2 // 4096)


# ---- vCPU state -------------------------------------------------------------

@pytest.mark.parametrize("case", ["regs-short", "regs-long", "xsave-short", "msrs-short",
                                  "section-len-huge", "duplicate-section", "missing-regs",
                                  "unknown-tag", "empty", "trailing-garbage"])
def test_vcpu_state_malformed(tmp_path, snap, case):
    edit = {
        "regs-short": lambda s: resize(s, REGS, -8),
        "regs-long": lambda s: resize(s, REGS, 8),
        "xsave-short": lambda s: resize(s, XSAVE, -64),
        "msrs-short": lambda s: resize(s, MSRS, -16),
        "duplicate-section": lambda s: s + [s[0]],
        "missing-regs": lambda s: [x for x in s if x[0] != REGS],
        "unknown-tag": lambda s: s + [(99, bytes(8))],
        "empty": lambda s: [],
    }.get(case)
    if edit:
        data = with_vcpu_sections(snap, edit)
    else:
        rec, head, secs = vcpu_blob(snap)
        body = streamlib.blob(secs)
        if case == "section-len-huge":
            body = struct.pack("<II", REGS, 0xfffffff0) + body[8:]
        else:
            body += b"\x07" * 5
        data = streamlib.replace_payload(snap, rec[0], head + body)
    restore_refused(tmp_path, data, "vCPU")


def test_vcpu_msr_count_beyond_section(tmp_path, snap):
    """struct kvm_msrs says 2^31 entries in a section of a few hundred bytes."""
    def edit(secs):
        return [(t, struct.pack("<I", 0x80000000) + d[4:]) if t == MSRS else (t, d)
                for t, d in secs]
    restore_refused(tmp_path, with_vcpu_sections(snap, edit), "vCPU")


def test_vcpu_index_out_of_range(tmp_path, snap):
    rec, head, secs = vcpu_blob(snap, 1)
    data = streamlib.replace_payload(snap, rec[0], struct.pack("<II", 5, 0) +
                                     streamlib.blob(secs))
    restore_refused(tmp_path, data, "vCPU 5")


def test_vcpu_state_twice(tmp_path, snap):
    """vCPU 0's state twice, vCPU 1's never."""
    rec, head, secs = vcpu_blob(snap, 1)
    data = streamlib.replace_payload(snap, rec[0], struct.pack("<II", 0, 0) +
                                     streamlib.blob(secs))
    restore_refused(tmp_path, data, "vCPU")


def test_vcpu_state_missing(tmp_path, snap):
    data = streamlib.remove_record(snap, streamlib.find(snap, REC_VCPU_STATE, 1)[0])
    restore_refused(tmp_path, data, "vCPU")


# ---- VM state ----------------------------------------------------------------

@pytest.mark.parametrize("case", ["empty", "pit-short", "duplicate-section", "missing-pit",
                                  "unknown-tag"])
def test_vm_state_malformed(tmp_path, snap, case):
    edit = {
        "empty": lambda s: [],
        "pit-short": lambda s: resize(s, PIT, -4),
        "duplicate-section": lambda s: s + [s[-1]],
        "missing-pit": lambda s: [x for x in s if x[0] != PIT],
        "unknown-tag": lambda s: s + [(77, bytes(16))],
    }[case]
    restore_refused(tmp_path, with_vm_sections(snap, edit), "VM state")


# ENGINE BUG (for the lead, src/migration/mig_dest.c): the destination does
# not check that every registered device's state arrived, nor that VM and
# device state come once per switchover attempt; the stream is accepted and
# the guest runs (the restore never exits, hence the timeout).
ENGINE_BUG = pytest.mark.xfail(strict=True, raises=subprocess.TimeoutExpired,
                               reason="engine bug: missing/duplicate state records accepted")
@ENGINE_BUG
def test_vm_state_twice(tmp_path, snap):
    data = streamlib.duplicate_record(snap, streamlib.find(snap, REC_VM_STATE)[0])
    restore_refused(tmp_path, data, "VM", quick=5 * ferrylib.SLOW)


def test_vm_state_missing(tmp_path, snap):
    data = streamlib.remove_record(snap, streamlib.find(snap, REC_VM_STATE)[0])
    restore_refused(tmp_path, data, "VM")


# ---- device state ------------------------------------------------------------

def device_payload(data):
    rec = streamlib.find(data, REC_DEVICE_STATE)
    return rec, streamlib.payload(data, rec)


@pytest.mark.parametrize("case", ["unknown-id", "bad-id", "newer-version", "reserved",
                                  "regs-short", "regs-long", "no-sections", "duplicate-section"])
def test_device_state_malformed(tmp_path, snap, case):
    rec, p = device_payload(snap)
    ident, version, reserved, body = p[:32], p[32:36], p[36:40], p[40:]
    secs = streamlib.sections(body)
    if case == "unknown-id":
        ident = b"nosuchdev".ljust(32, b"\0")
    elif case == "bad-id":
        ident = b"ser ial0".ljust(32, b"\0")
    elif case == "newer-version":
        version = struct.pack("<I", 99)
    elif case == "reserved":
        reserved = struct.pack("<I", 1)
    elif case == "regs-short":
        body = streamlib.blob(resize(secs, secs[0][0], -3))
    elif case == "regs-long":
        body = streamlib.blob(resize(secs, secs[0][0], 3))
    elif case == "no-sections":
        body = b""
    else:
        body = streamlib.blob(secs + secs)
    data = streamlib.replace_payload(snap, rec[0], ident + version + reserved + body)
    restore_refused(tmp_path, data)


@ENGINE_BUG
def test_device_state_twice(tmp_path, snap):
    data = streamlib.duplicate_record(snap, streamlib.find(snap, REC_DEVICE_STATE)[0])
    restore_refused(tmp_path, data, "serial0", quick=5 * ferrylib.SLOW)


def test_device_state_missing(tmp_path, snap):
    data = streamlib.remove_record(snap, streamlib.find(snap, REC_DEVICE_STATE)[0])
    restore_refused(tmp_path, data, "serial0", quick=5 * ferrylib.SLOW)


# ---- header --------------------------------------------------------------------

def test_different_cpuid_digest(tmp_path, snap):
    data = bytearray(snap)
    struct.pack_into("<Q", data, 40, struct.unpack_from("<Q", data, 40)[0] ^ 1)
    restore_refused(tmp_path, streamlib.reseal_header(data), "CPU")


def test_header_claims_1tib_and_1024_vcpus(tmp_path, snap):
    """A restore without --memory/--cpus takes the sizes from the file: a
    header claiming 1 TiB of RAM and 1024 vCPUs (both within the format's
    limits) must get a clear refusal, quickly, not an attempt to build it."""
    hl = streamlib.header_len(snap)
    regions = [(0, 3 << 30), (4 << 30, (1 << 40) - (3 << 30))]
    head = bytearray(snap[:48])
    struct.pack_into("<I", head, 12, 56 + 16 * len(regions))
    struct.pack_into("<I", head, 20, 1024)
    struct.pack_into("<I", head, 24, len(regions))
    for gpa, size in regions:
        head += struct.pack("<QQ", gpa, size)
    head += bytes(8)
    data = streamlib.reseal_header(bytes(head) + snap[hl:])
    restore_refused(tmp_path, data)
