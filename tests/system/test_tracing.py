"""Trace points (docs/tracing.md): switched on at start by $FERRY_TRACE and
at run time by trace-event-set-state; one line per event on stderr."""
import json
import re

import ferrylib
from ferrylib import assert_one_error, read_stderr, wait_migration
from test_migrate_faults import LIGHT, MEM  # noqa: F401

def raw(q, command, **args):
    """QMP.execute for commands with an argument called "name"."""
    q.sock.sendall(json.dumps({"execute": command, "arguments": args}).encode() + b"\n")
    while True:
        m = q._read()
        if "event" in m:
            q.events.append(m)
            continue
        return m


def ok(q, command, **args):
    r = raw(q, command, **args)
    assert "return" in r, r
    return r["return"]


LINE = re.compile(r"^ferry-trace: (\d+\.\d{6}) (\w+) (.*)$", re.M)


def test_trace_points_of_a_migration(tmp_path, kvm):
    sctl = tmp_path / "s.sock"
    src = ferrylib.Vm(["env", "FERRY_TRACE=pass_end,switchover_*"] +
                      ferrylib.ferry_argv(append=LIGHT, memory=MEM,
                                          serial=f"file:{tmp_path / 's.txt'}", control=sctl),
                      tmp_path, tmp_path / "s.txt", sctl)
    uri = f"unix:{tmp_path / 'mig.sock'}"
    dst = ferrylib.Vm(ferrylib.incoming_argv(uri, memory=MEM, serial=f"file:{tmp_path / 'd.txt'}",
                                             control=tmp_path / "d.sock"),
                      tmp_path, tmp_path / "d.txt", tmp_path / "d.sock")
    try:
        src.wait_for(r"^progress cpu=0 .*$", count=2, timeout=60)
        q = src.qmp
        states = {e["name"]: e["state"] for e in ok(q, "trace-event-get-state", name="*")}
        assert states["pass_end"] == "enabled" and states["switchover_end"] == "enabled", states
        assert states["policy_decision"] == "disabled", states
        ok(q, "trace-event-set-state", name="policy_*", enable=True)
        assert ok(q, "trace-event-get-state", name="policy_decision")[0]["state"] == "enabled"
        r = raw(q, "trace-event-set-state", name="no_such_event", enable=True)
        assert "No trace event matches" in r["error"]["desc"], r
        dst.qmp
        q.cmd("migrate", uri=uri)
        st = wait_migration(q, timeout=30)
        assert st["status"] == "completed", st
        events = [(m.group(2), m.group(3)) for m in LINE.finditer(read_stderr(src))]
        names = [e[0] for e in events]
        assert names.count("pass_end") == st["ferry"]["passes"], events
        assert "pass_start" not in names  # not asked for
        assert "policy_decision" in names
        phases = [re.search(r"phase=(\S+)", a).group(1) for n, a in events
                  if n == "switchover_phase"]
        assert phases[:4] == ["paused", "harvested", "sent", "acked"], phases
        ends = [a for n, a in events if n == "switchover_end"]
        assert len(ends) == st["ferry"]["switchover-attempts"] and "outcome=go" in ends[-1], ends
        # the trace's clock is CLOCK_MONOTONIC, as paused-at-ns
        t_end = [float(m.group(1)) for m in LINE.finditer(read_stderr(src))
                 if m.group(2) == "switchover_end"][-1]
        t0 = st["ferry"]["switchover-table"][-1]["paused-at-ns"] / 1e9
        assert 0 <= t_end - t0 < 5, (t0, t_end)
    finally:
        src.kill()
        dst.kill()


def test_bad_trace_pattern_refused(tmp_path, kvm):
    vm = ferrylib.Vm(["env", "FERRY_TRACE=pass_end,bogus"] +
                     ferrylib.ferry_argv(append=LIGHT, memory=MEM,
                                         serial=f"file:{tmp_path / 's.txt'}"),
                     tmp_path, tmp_path / "s.txt")
    assert_one_error(vm.wait_exit(15), read_stderr(vm), "FERRY_TRACE", "bogus")
