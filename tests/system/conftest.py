import os
import pathlib
import signal
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import ferrylib  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def built():
    assert ferrylib.FERRY.exists(), f"{ferrylib.FERRY} is missing: build first (scripts/build.sh)"
    assert ferrylib.GUEST.exists(), f"{ferrylib.GUEST} is missing: build first"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "allow_detection: the test makes the guest report a failure on purpose")
    config.addinivalue_line(
        "markers", "lane: needs hardware KVM; only the lane (scripts/nested/lane.sh) selects it")
    config.addinivalue_line(
        "markers", "timeout(seconds): the test's own time limit (default: FERRY_TEST_TIMEOUT)")


# Every phase of every test has a time limit, so that a hang (a guest, a
# ferry, the L1 of the lane) is a failing test with a name and a report of
# what its processes were doing, never a silent stall of the whole run.
# SIGALRM interrupts whatever the test's (main) thread blocks in.
CALL_TIMEOUT_S = float(os.environ.get("FERRY_TEST_TIMEOUT", "300"))
FIXTURE_TIMEOUT_S = 150  # setup or teardown (teardown kills: up to KILL_WAIT_S each)


class TestTimeout(Exception):
    pass


def _limit(item, phase):
    if phase != "call":
        return FIXTURE_TIMEOUT_S
    m = item.get_closest_marker("timeout")
    return float(m.args[0]) if m else CALL_TIMEOUT_S


def _timed(item, phase):
    limit = _limit(item, phase)
    t0 = time.monotonic()

    def expired(signum, frame):
        mine = ferrylib.STARTED[getattr(item, "_ferry_first", 0):]
        report = ferrylib.diagnose(mine)
        raise TestTimeout(f"{item.nodeid}: {phase} still running after {limit:.0f} s "
                          f"({time.monotonic() - t0:.0f} s): what its processes were "
                          f"doing:\n{report}")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    item._ferry_first = len(ferrylib.STARTED)
    yield from _timed(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _timed(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _timed(item, "teardown")


def pytest_runtest_logreport(report):
    """The lane's record of outcomes as they happen ("<outcome> <test id>";
    the last line of a test counts): if the L1 dies under the run, the
    results so far survive it and the rest can run in a fresh L1."""
    path = os.environ.get("FERRY_LANE_RESULTS")
    if not path or (report.when != "call" and report.passed):
        return
    outcome = "passed" if report.passed else "skipped" if report.skipped else "failed"
    with open(path, "a") as f:
        f.write(f"{outcome} {report.nodeid}\n")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """The lane's watchdog (scripts/nested/watchdog.sh) reads which test
    runs, since when and for how long it may: the sum of its phases'
    limits and a minute, after which not even SIGALRM could end it."""
    path = os.environ.get("FERRY_LANE_STATUS")
    if path:
        allowed = _limit(item, "setup") + _limit(item, "call") + _limit(item, "teardown") + 60
        with open(path, "w") as f:
            f.write(f"{int(time.time())} {int(allowed)} {item.nodeid}\n")


@pytest.fixture(autouse=True)
def checked_processes(request):
    """At teardown (after every other fixture has stopped its processes),
    fail the test if any ferry (or QEMU) process it started wrote a
    sanitizer report to stderr, or if any of its guests printed a detection
    line (verify/clock FAIL, a CPU exception) at any time."""
    first = len(ferrylib.STARTED)
    yield
    mine = ferrylib.STARTED[first:]
    del ferrylib.STARTED[first:]
    allow = request.node.get_closest_marker("allow_detection") is not None
    problems = ferrylib.check_finished_vms(mine, allow_detection=allow)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def kvm():
    ferrylib.require_kvm()


@pytest.fixture
def vms(tmp_path, kvm):
    """Factory for ferry VMs that are killed when the test ends."""
    started = []

    def start(append="", memory="256M", cpus=1, control=True, debugcon=None,
              kernel=None, extra=()):
        n = len(started)
        serial = tmp_path / f"serial{n}.txt"
        ctl = tmp_path / f"ctl{n}.sock" if control else None
        vm = ferrylib.Vm(ferrylib.ferry_argv(kernel=kernel, append=append, memory=memory,
                                             cpus=cpus, serial=f"file:{serial}",
                                             debugcon=debugcon, control=ctl, extra=extra),
                         tmp_path, serial, ctl)
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.kill()
