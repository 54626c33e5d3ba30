"""Reading and re-writing ferry migration streams (docs/stream-format.md)
in tests, to craft damaged and hostile inputs with valid checksums."""
import struct

import xxhash

REC_PAGE_BATCH, REC_PASS_END, REC_VCPU_STATE, REC_VM_STATE = 1, 2, 3, 4
REC_DEVICE_STATE, REC_SWITCHOVER, REC_END = 5, 6, 7
OPTIONAL = 1


def header_len(data):
    return struct.unpack_from("<I", data, 12)[0]


def records(data):
    """Yield (number, offset, type, flags, length) for each record."""
    off = header_len(data)
    n = 1
    while off + 16 <= len(data):
        typ, flags, length = struct.unpack_from("<IIQ", data, off)
        yield n, off, typ, flags, length
        off += 16 + length + (-length % 8) + 8
        n += 1


def record(number, typ, payload, flags=0):
    """A record with a correct checksum for its position (seed = number)."""
    body = struct.pack("<IIQ", typ, flags, len(payload)) + payload + bytes(-len(payload) % 8)
    return body + struct.pack("<Q", xxhash.xxh3_64_intdigest(body, seed=number))


def reseal_header(data):
    """Recompute the header checksum after editing header fields."""
    hl = header_len(data)
    digest = xxhash.xxh3_64_intdigest(bytes(data[:hl - 8]), seed=0)
    return bytes(data[:hl - 8]) + struct.pack("<Q", digest) + bytes(data[hl:])


def renumber(data):
    """Recompute every record checksum (after records were inserted or removed)."""
    out = bytearray(data[:header_len(data)])
    for n, off, typ, flags, length in records(data):
        body = data[off:off + 16 + length + (-length % 8)]
        out += body + struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(body), seed=n))
    return bytes(out)


def insert_record(data, before_number, typ, payload, flags=0):
    """Insert a record before record @before_number, keeping every checksum valid."""
    for n, off, *_ in records(data):
        if n == before_number:
            new = data[:off] + record(n, typ, payload, flags) + data[off:]
            return renumber(new)
    raise ValueError("no such record")


def patch_end(data, extra_records=0, extra_bytes=0):
    """Adjust END's record and byte totals (after inserting records), resealed."""
    data = bytearray(data)
    n, off, typ, flags, length = next(r for r in records(data) if r[2] == REC_END)
    recs, pages, zero, nbytes = struct.unpack_from("<QQQQ", data, off + 16)
    struct.pack_into("<QQQQ", data, off + 16, recs + extra_records, pages, zero,
                     nbytes + extra_bytes)
    return renumber(bytes(data))


def find(data, typ, nth=0):
    """(number, offset, type, flags, length) of the @nth record of @typ."""
    return [r for r in records(data) if r[2] == typ][nth]


def payload(data, rec):
    n, off, typ, flags, length = rec
    return bytes(data[off + 16:off + 16 + length])


def replace_payload(data, number, new):
    """Replace record @number's payload, keeping every checksum and END's
    byte total valid: only what the payload says can be wrong."""
    out = bytearray(data[:header_len(data)])
    delta = 0
    for n, off, typ, flags, length in records(data):
        if n == number:
            delta = (16 + len(new) + (-len(new) % 8) + 8) - (16 + length + (-length % 8) + 8)
            out += record(n, typ, new, flags)
        else:
            out += data[off:off + 16 + length + (-length % 8) + 8]
    return patch_end(renumber(bytes(out)), extra_bytes=delta)


def remove_record(data, number):
    """Drop record @number (END's totals and every checksum adjusted)."""
    out = bytearray(data[:header_len(data)])
    size = 0
    for n, off, typ, flags, length in records(data):
        full = 16 + length + (-length % 8) + 8
        if n == number:
            size = full
            continue
        out += data[off:off + full]
    return patch_end(renumber(bytes(out)), extra_records=-1, extra_bytes=-size)


def duplicate_record(data, number):
    """Insert a copy of record @number right after it (END adjusted)."""
    n, off, typ, flags, length = next(r for r in records(data) if r[0] == number)
    p = payload(data, (n, off, typ, flags, length))
    new = insert_record(data, number + 1, typ, p, flags)
    return patch_end(new, extra_records=1, extra_bytes=16 + length + (-length % 8) + 8)


def sections(blob):
    """A state blob's sections: [(tag, data)] (docs/stream-format.md)."""
    out, off = [], 0
    while off + 8 <= len(blob):
        tag, ln = struct.unpack_from("<II", blob, off)
        out.append((tag, bytes(blob[off + 8:off + 8 + ln])))
        off += 8 + ln + (-ln % 8)
    return out


def blob(secs):
    return b"".join(struct.pack("<II", t, len(d)) + d + bytes(-len(d) % 8) for t, d in secs)
