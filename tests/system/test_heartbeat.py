"""Heartbeat bytes reach a unix-socket debugcon backend at about the period.
Timing is asserted loosely here; bench/ measures it."""
import statistics

import pytest

import ferrylib


@pytest.mark.parametrize("workload", ["idle", "spin", "dirty wss=4M rate=max"])
def test_heartbeat_period(vms, tmp_path, workload):
    hb = ferrylib.HeartbeatListener(tmp_path / "hb.sock")
    try:
        vm = vms(append=f"workload={workload} heartbeat=10ms progress=0",
                 debugcon=f"unix:{hb.path}", control=False)
        vm.wait_for(r"^ferry-guest: start .*$", timeout=60)
        import time
        deadline = time.monotonic() + 30
        while len(hb.times) < 150 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(hb.times) >= 150, f"only {len(hb.times)} heartbeat bytes in 30 s"
        gaps = hb.gaps_ms()[20:]  # skip start-up
        med = statistics.median(gaps)
        assert 5 <= med <= 20, f"median heartbeat gap {med:.2f} ms for a 10 ms period"
    finally:
        hb.close()
