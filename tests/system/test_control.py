"""stop / cont / quit / pmemsave and the STOP / RESUME / SHUTDOWN events."""
import re
import time


def test_stop_cont_freezes_progress(vms):
    vm = vms(append="workload=spin progress=50ms")
    vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
    q = vm.qmp
    assert q.cmd("query-status")["status"] == "running"
    q.cmd("stop")
    q.wait_event("STOP")
    st = q.cmd("query-status")
    assert st == {"status": "paused", "running": False, "singlestep": False}
    time.sleep(0.3)  # let any line already in flight land
    n = len(vm.progress())
    time.sleep(0.5)
    assert len(vm.progress()) == n, "a paused guest must not make progress"
    q.cmd("cont")
    q.wait_event("RESUME")
    vm.wait_for(r"^progress cpu=0 .*$", count=n + 2, timeout=30)
    assert q.cmd("query-status")["running"] is True


def test_quit_exits_zero_with_shutdown_event(vms):
    vm = vms(append="workload=idle")
    vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
    q = vm.qmp
    assert q.cmd("quit") == {}
    ev = q.wait_event("SHUTDOWN")
    assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert vm.wait_exit(timeout=10) == 0


def test_pmemsave_writes_guest_memory(vms, tmp_path):
    vm = vms(append="workload=idle", memory="64M")
    vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
    out = tmp_path / "low.bin"
    vm.qmp.cmd("pmemsave", val=0xe0000, size=0x20000, filename=str(out))
    data = out.read_bytes()
    assert len(data) == 0x20000
    assert data[:8] == b"RSD PTR "  # ferry's ACPI RSDP at 0xe0000
    # the kernel is loaded at 1 MiB: its multiboot header is in the first 8 KiB
    out2 = tmp_path / "kernel.bin"
    vm.qmp.cmd("pmemsave", val=0x100000, size=8192, filename=str(out2))
    assert b"\x02\xb0\xad\x1b" in out2.read_bytes()


def test_pmemsave_out_of_range_is_an_error(vms, tmp_path):
    vm = vms(append="workload=idle", memory="64M")
    vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
    r = vm.qmp.execute("pmemsave", val=64 << 20, size=4096, filename=str(tmp_path / "x"))
    assert r["error"]["class"] == "GenericError"
    assert "not RAM" in r["error"]["desc"]
    r = vm.qmp.execute("pmemsave", val=0, size=4096, filename="/nonexistent/dir/x")
    assert "error" in r and "nonexistent" in r["error"]["desc"]
    assert vm.qmp.cmd("query-status")["status"] == "running"


def test_guest_exit_status_and_event(vms):
    # A bad command line makes the guest exit through port 0xf4 with 0x20.
    vm = vms(append="workload=nonsense", control=False)
    assert vm.wait_exit(timeout=60) == (0x20 << 1) | 1
    assert re.search(r"^ferry-guest: error: .*workload.*$", vm.serial(), re.M)
