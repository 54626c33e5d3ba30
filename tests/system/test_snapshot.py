"""Save a running VM to a file and bring it back (a snapshot is a migration
whose channel is a file), with the verify guest proving nothing was lost."""
import re
import struct
import subprocess
import time

import pytest

import ferrylib
import streamlib

VERIFY = "workload=verify wss=16M progress=100ms heartbeat=10ms"


def save(vm, path, timeout=60):
    q = vm.qmp
    q.cmd("migrate", uri=f"file:{path}")
    deadline = time.monotonic() + timeout
    while True:
        st = q.cmd("query-migrate")
        if st.get("status") in ("completed", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, f"save did not finish: {st}"
        time.sleep(0.05)
    assert st["status"] == "completed", st
    assert q.cmd("query-status")["status"] == "paused"
    return st


def restore(vms, path, append_check=True, **kw):
    return vms(kernel=None, extra=("--incoming", f"file:{path}"), restore=True, **kw)


@pytest.fixture
def rvms(tmp_path, kvm):
    """Like vms, but able to start a ferry that restores instead of booting."""
    started = []

    def start(append="", memory=None, cpus=None, control=True, debugcon=None, incoming=None):
        n = len(started)
        serial = tmp_path / f"serial{n}.txt"
        ctl = tmp_path / f"ctl{n}.sock" if control else None
        argv = [str(ferrylib.FERRY), "run", "--serial", f"file:{serial}"]
        if incoming:
            argv += ["--incoming", incoming]
        else:
            argv += ["--kernel", str(ferrylib.GUEST), "--append", append]
        if memory:
            argv += ["--memory", str(memory)]
        if cpus:
            argv += ["--cpus", str(cpus)]
        if debugcon:
            argv += ["--debugcon", debugcon]
        if ctl:
            argv += ["--control", str(ctl)]
        vm = ferrylib.Vm(argv, tmp_path, serial, ctl)
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.kill()


def last_progress(vm, cpu):
    mine = [p for p in vm.progress() if p[0] == cpu]
    return mine[-1] if mine else None


def test_save_restore_verify_continues(rvms, tmp_path):
    snap = tmp_path / "vm.snap"
    hb = ferrylib.HeartbeatListener(tmp_path / "hb1.sock")
    src = rvms(append=VERIFY, cpus=2, memory="256M", debugcon=f"unix:{hb.path}")
    for cpu in (0, 1):
        src.wait_for(rf"^progress cpu={cpu} .*$", count=5, timeout=60)
    st = save(src, snap)
    assert st["ram"]["total"] == 256 << 20
    before = {cpu: last_progress(src, cpu) for cpu in (0, 1)}
    src.qmp.cmd("quit")
    assert src.wait_exit(10) == 0
    hb.close()

    hb2 = ferrylib.HeartbeatListener(tmp_path / "hb2.sock")
    dst = rvms(incoming=f"file:{snap}", debugcon=f"unix:{hb2.path}")
    for cpu in (0, 1):
        dst.wait_for(rf"^progress cpu={cpu} .*$", count=5, timeout=60)
    assert "FAIL" not in dst.serial()
    for cpu in (0, 1):
        after = [p for p in dst.progress() if p[0] == cpu]
        # its counters continue from where they were: the guest's memory came back
        assert after[0][3] >= before[cpu][3], (before[cpu], after[0])
        assert after[-1][3] > before[cpu][3]
        # guest time neither went backwards nor raced forward
        assert after[0][1] >= before[cpu][1]
        assert after[0][1] - before[cpu][1] < 5000, "guest clock raced forward"
    deadline = time.monotonic() + 20
    while len(hb2.times) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(hb2.times) >= 20, "heartbeat did not continue after restore"
    assert dst.qmp.cmd("query-status")["status"] == "running"
    hb2.close()
    ferrylib.wait_full_sweep(dst, 2, ferrylib.verify_pages_per_cpu(VERIFY, 2))


def test_repeated_round_trips_and_same_file_twice(rvms, tmp_path):
    src = rvms(append=VERIFY, cpus=2)
    src.wait_for(r"^progress cpu=1 .*$", count=3, timeout=60)
    vm = src
    for i in range(3):
        snap = tmp_path / f"rt{i}.snap"
        save(vm, snap)
        vm.qmp.cmd("quit")
        vm.wait_exit(10)
        vm = rvms(incoming=f"file:{snap}")
        n = len(vm.progress())
        vm.wait_for(r"^progress cpu=1 .*$", count=n + 3 if n else 3, timeout=60)
        ferrylib.wait_full_sweep(vm, 2, ferrylib.verify_pages_per_cpu(VERIFY, 2))
    vm.qmp.cmd("quit")
    # the same file, restored twice, runs twice
    for _ in range(2):
        again = rvms(incoming=f"file:{tmp_path / 'rt2.snap'}")
        ferrylib.wait_full_sweep(again, 2, ferrylib.verify_pages_per_cpu(VERIFY, 2))
        again.qmp.cmd("quit")
        assert again.wait_exit(10) == 0


def test_saved_vm_cont_resumes_on_source(rvms, tmp_path):
    src = rvms(append=VERIFY, cpus=1)
    src.wait_for(r"^progress cpu=0 .*$", count=3, timeout=60)
    save(src, tmp_path / "s.snap")
    src.qmp.cmd("cont")
    ferrylib.assert_keeps_verifying(src, pages=ferrylib.verify_pages_per_cpu(VERIFY, 1))


def test_guest_over_3g_saves_and_restores(rvms, tmp_path):
    """A 5 GiB guest (RAM below 3 GiB and from 4 GiB) saved and restored with
    the file's own sizes: its working sets in both regions are checked in
    full afterwards.  Never-touched RAM costs nothing in the file."""
    append = "workload=verify wss=4M high=8M progress=100ms"
    src = rvms(append=append, cpus=2, memory="5G")
    src.wait_for(r"^ferry-guest: start .* high=8388608$", timeout=60)
    ferrylib.wait_total(src, 1, ferrylib.verify_pages_per_cpu(append, 2))
    snap = tmp_path / "big.snap"
    st = save(src, snap)
    assert st["ram"]["total"] == 5 << 30, st
    assert snap.stat().st_size < 64 << 20, snap.stat().st_size
    src.qmp.cmd("quit")
    assert src.wait_exit(10) == 0
    dst = rvms(incoming=f"file:{snap}")
    dst.wait_for(r"^progress cpu=1 .*$", count=2, timeout=60)
    ferrylib.wait_full_sweep(dst, 2, ferrylib.verify_pages_per_cpu(append, 2))
    assert dst.qmp.cmd("query-status")["status"] == "running"


def test_zero_pages_cost_nothing(rvms, tmp_path):
    """A 4 GiB guest that touched ~64 MiB saves to a file of about that size."""
    src = rvms(append="workload=dirty wss=64M rate=max progress=200ms", memory="4G", cpus=1)
    # Until the guest has written its whole working set once (a sequential
    # writer: 16384 pages); how long that takes depends on the guest's speed
    # (the nested lane is many times slower than PVM).
    src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
    deadline = time.monotonic() + 120
    while last_progress(src, 0)[3] < (64 << 20) // 4096:
        assert time.monotonic() < deadline, f"the guest is still writing: {last_progress(src, 0)}"
        time.sleep(0.1)
    snap = tmp_path / "big.snap"
    st = save(src, snap)
    size = snap.stat().st_size
    assert size < 100 << 20, f"snapshot of a 4 GiB guest that wrote 64 MiB is {size} bytes"
    assert size > 48 << 20  # the pages written so far, nearly all of the 64 MiB
    assert st["ferry"]["skipped-pages"] > (3 << 30) // 4096


def test_incoming_defer_then_migrate_incoming(rvms, tmp_path):
    src = rvms(append=VERIFY, cpus=1, memory="128M")
    src.wait_for(r"^progress cpu=0 .*$", count=3, timeout=60)
    snap = tmp_path / "d.snap"
    save(src, snap)
    dst = rvms(incoming="defer", memory="128M", cpus=1)
    assert dst.qmp.cmd("query-status")["status"] == "inmigrate"
    dst.qmp.cmd("migrate-incoming", uri=f"file:{snap}")
    dst.wait_for(r"^progress cpu=0 .*$", count=3, timeout=60)
    assert dst.qmp.cmd("query-status")["status"] == "running"
    assert "FAIL" not in dst.serial()


# ---- bad files ------------------------------------------------------------

@pytest.fixture(scope="module")
def good_snapshot(tmp_path_factory):
    ferrylib.require_kvm()
    d = tmp_path_factory.mktemp("snap")
    serial = d / "serial.txt"
    ctl = d / "ctl.sock"
    vm = ferrylib.Vm(ferrylib.ferry_argv(append="workload=verify wss=4M progress=100ms",
                                         memory="64M", cpus=2, serial=f"file:{serial}",
                                         control=ctl), d, serial, ctl)
    try:
        vm.wait_for(r"^progress cpu=1 .*$", count=3, timeout=60)
        save(vm, d / "good.snap")
    finally:
        vm.kill()
    return (d / "good.snap").read_bytes()


def run_restore(tmp_path, data, extra=()):
    f = tmp_path / "bad.snap"
    f.write_bytes(data)
    p = subprocess.run([str(ferrylib.FERRY), "run", "--incoming", f"file:{f}",
                        "--serial", "null", *extra],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return p.returncode, p.stderr


def assert_refused(rc, err, *words):
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 1, f"exit {rc}: {err}"
    assert len(lines) == 1 and lines[0].startswith("ferry: error: "), err
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    assert "Sanitizer" not in err and "runtime error" not in err


def find(data, typ):
    return next(r for r in streamlib.records(data) if r[2] == typ)


def assert_restores(tmp_path, data):
    f = tmp_path / "ok.snap"
    f.write_bytes(data)
    serial = tmp_path / "s.txt"
    vm = ferrylib.Vm([str(ferrylib.FERRY), "run", "--incoming", f"file:{f}",
                      "--serial", f"file:{serial}"], tmp_path, serial)
    try:
        vm.wait_for(r"^progress cpu=1 .*$", count=3, timeout=60)
        assert "FAIL" not in vm.serial()
    finally:
        vm.kill()


def test_good_snapshot_restores(tmp_path, good_snapshot):
    assert_restores(tmp_path, good_snapshot)


def test_empty_file(tmp_path):
    assert_refused(*run_restore(tmp_path, b""))


@pytest.mark.parametrize("where", ["header", "first-record", "mid-pages", "state", "before-end"])
def test_truncated(tmp_path, good_snapshot, where):
    recs = list(streamlib.records(good_snapshot))
    cut = {
        "header": 30,
        "first-record": recs[0][1] + 10,
        "mid-pages": recs[len(recs) // 3][1] + 100,
        "state": find(good_snapshot, streamlib.REC_VCPU_STATE)[1] + 50,
        "before-end": find(good_snapshot, streamlib.REC_END)[1],
    }[where]
    assert_refused(*run_restore(tmp_path, good_snapshot[:cut]))


@pytest.mark.parametrize("where", ["header", "page-data", "vcpu-state", "record-header"])
def test_flipped_bit(tmp_path, good_snapshot, where):
    data = bytearray(good_snapshot)
    if where == "header":
        off = 20  # vcpu_count
    elif where == "page-data":
        n, o, typ, flags, length = next(r for r in streamlib.records(data)
                                        if r[2] == streamlib.REC_PAGE_BATCH and
                                        r[4] > 8 + 8 * struct.unpack_from("<I", data, r[1] + 16)[0])
        off = o + 16 + length - 100
    elif where == "vcpu-state":
        off = find(data, streamlib.REC_VCPU_STATE)[1] + 16 + 200
    else:
        off = find(data, streamlib.REC_VM_STATE)[1] + 9  # length field
    data[off] ^= 0x04
    rc, err = run_restore(tmp_path, bytes(data))
    assert_refused(rc, err)
    if where in ("page-data", "vcpu-state"):
        assert "checksum" in err


def test_wrong_magic(tmp_path, good_snapshot):
    assert_refused(*run_restore(tmp_path, b"NOTFERRY" + good_snapshot[8:]),
                   "not a ferry migration stream")


def test_newer_version(tmp_path, good_snapshot):
    data = bytearray(good_snapshot)
    struct.pack_into("<I", data, 8, 2)
    assert_refused(*run_restore(tmp_path, streamlib.reseal_header(data)), "version 2")


def test_unknown_mandatory_record(tmp_path, good_snapshot):
    data = streamlib.insert_record(good_snapshot, 3, 0x42, b"\0" * 8)
    assert_refused(*run_restore(tmp_path, data), "unknown")


def test_unknown_optional_record_is_skipped(tmp_path, good_snapshot):
    # As a newer writer would: an optional record among the state records,
    # counted in END's totals.
    vcpu = find(good_snapshot, streamlib.REC_VCPU_STATE)[0]
    data = streamlib.insert_record(good_snapshot, vcpu, 0x42, b"\1" * 8,
                                   flags=streamlib.OPTIONAL)
    data = streamlib.patch_end(data, extra_records=1, extra_bytes=16 + 8 + 8)
    assert_restores(tmp_path, data)


def test_memory_mismatch(tmp_path, good_snapshot):
    assert_refused(*run_restore(tmp_path, good_snapshot, ("--memory", "128M", "--cpus", "2")),
                   "--memory")


def test_cpu_mismatch(tmp_path, good_snapshot):
    assert_refused(*run_restore(tmp_path, good_snapshot, ("--memory", "64M", "--cpus", "1")),
                   "--cpus")


def test_frame_out_of_range(tmp_path, good_snapshot):
    # a batch that names a frame at 1 GiB in a 64 MiB guest
    payload = struct.pack("<IIQ", 1, 0, (1 << 63) | ((1 << 30) >> 12))
    data = streamlib.insert_record(good_snapshot, 2, streamlib.REC_PAGE_BATCH, payload)
    assert_refused(*run_restore(tmp_path, data), "frame")


def test_second_migrate_incoming_is_refused(rvms, tmp_path):
    dst = rvms(incoming="defer", memory="64M", cpus=1)
    uri = f"unix:{tmp_path / 'in.sock'}"
    dst.qmp.cmd("migrate-incoming", uri=uri)
    r = dst.qmp.execute("migrate-incoming", uri=f"unix:{tmp_path / 'in2.sock'}")
    assert "in progress" in r["error"]["desc"], r
    # the first one still listens, and cancelling it ends this ferry cleanly
    assert (tmp_path / "in.sock").exists()
    dst.qmp.cmd("migrate-cancel")
    assert dst.wait_exit(10) == 1
