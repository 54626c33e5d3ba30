import pathlib
import sys

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
