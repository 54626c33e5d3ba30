"""A long migration that never converges: the guest keeps running on the
source, pass after pass, and survives (issue 9: on SVM, vCPU 1 of the
source once triple-faulted during such a run)."""
import os
import time

import pytest

import ferrylib
from ferrylib import set_params, wait_migration, wait_status

SECONDS = int(os.environ.get("FERRY_LONG_MIGRATION_S", "30"))


@pytest.mark.parametrize("limit_ms", [1, 300])
def test_non_converging_migration_keeps_source_alive(tmp_path, kvm, limit_ms):
    uri = ferrylib.migration_uri(tmp_path, 0)
    dst = ferrylib.Vm(ferrylib.incoming_argv(uri, memory="256M", cpus=2,
                                             serial=f"file:{tmp_path / 'dst.txt'}",
                                             control=tmp_path / "dctl.sock"),
                      tmp_path, tmp_path / "dst.txt", tmp_path / "dctl.sock")
    src = ferrylib.Vm(ferrylib.ferry_argv(append="workload=verify wss=32M rate=max progress=500ms",
                                          memory="256M", cpus=2,
                                          serial=f"file:{tmp_path / 'src.txt'}",
                                          control=tmp_path / "sctl.sock"),
                      tmp_path, tmp_path / "src.txt", tmp_path / "sctl.sock")
    try:
        for cpu in range(2):
            src.wait_for(rf"^progress cpu={cpu} .*$", count=2, timeout=120)
        dst.qmp
        # a flat-out writer does not converge: pass follows pass (with 300 ms,
        # switchovers may be tried and rolled back, pausing and resuming the guest)
        set_params(src.qmp, downtime_limit=limit_ms, timeout=0)
        src.qmp.cmd("migrate", uri=uri)
        wait_status(src.qmp, "active", timeout=60)
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            assert src.proc.poll() is None, \
                f"source exited with {src.proc.returncode}:\n{src.stderr()[-3000:]}"
            st = src.qmp.cmd("query-migrate")
            assert st["status"] == "active", st
            time.sleep(0.5)
        passes = st["ferry"]["passes"]
        print(f"limit {limit_ms} ms: {passes} passes, "
              f"{st['ferry'].get('aborted-attempts')} aborted switchovers in {SECONDS} s")
        src.qmp.cmd("migrate-cancel")
        st = wait_migration(src.qmp, timeout=120)
        assert st["status"] == "cancelled", st
        ferrylib.assert_keeps_verifying(src, cpus=2, lines=3, timeout=120)
        assert passes >= 3, f"only {passes} passes in {SECONDS} s"
    finally:
        src.kill()
        dst.kill()
