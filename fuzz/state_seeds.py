#!/usr/bin/env python3
"""Write seeds for fuzz/fuzz_state.c from a real saved state (a file made
by `migrate file:`): every VCPU_STATE, VM_STATE and DEVICE_STATE blob,
prefixed as fuzz_state.c expects, named by content.

    fuzz/state_seeds.py SNAPSHOT fuzz/corpus/state

The loading host's XSAVE size in the prefix is the saved XSAVE area's own
size (the saving host's), so the seeds parse successfully.
"""
import hashlib
import pathlib
import struct
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "system"))
import streamlib  # noqa: E402


# fuzz_state.c's parser numbers (its input's byte 0) of the device sections
DEVICE_KIND = {"serial0": 2, "rtc0": 3, "acpi-pm": 4}


def prefix(kind, sregs2, xsave, arg):
    return struct.pack("<BBII", kind, sregs2, xsave, arg)


def main():
    data = pathlib.Path(sys.argv[1]).read_bytes()
    out = pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    seeds = []
    for rec in streamlib.records(data):
        p = streamlib.payload(data, rec)
        if rec[2] == streamlib.REC_VCPU_STATE:
            index = struct.unpack_from("<I", p)[0]
            secs = dict(streamlib.sections(p[8:]))
            sregs2 = 3 in secs
            xsave = len(secs.get(4, b""))
            seeds.append(prefix(0, sregs2, xsave, index) + p[8:])
        elif rec[2] == streamlib.REC_VM_STATE:
            seeds.append(prefix(1, 0, 0, 0) + p)
        elif rec[2] == streamlib.REC_DEVICE_STATE:
            name = p[:32].rstrip(b"\0").decode()
            version = struct.unpack_from("<I", p, 32)[0]
            assert name in DEVICE_KIND, f"fuzz_state.c has no parser for device {name!r}"
            seeds.append(prefix(DEVICE_KIND[name], 0, 0, version) + p[40:])
    for s in seeds:
        (out / hashlib.sha1(s).hexdigest()).write_bytes(s)
    print(f"{len(seeds)} seeds in {out}")


if __name__ == "__main__":
    main()
