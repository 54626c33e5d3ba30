"""Helpers for ferry's system tests and benchmarks: start real ferry (and
QEMU) processes on the real test guest, talk QMP to their control socket,
read the guest's serial output as documented in docs/guest.md."""
import itertools
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("FERRY_BUILD", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
FERRY = BUILD / "src" / "ferry"
GUEST = BUILD / "guest" / "ferry-guest.elf"



def _sanitized():
    try:
        return b"__asan_init" in FERRY.read_bytes()
    except OSError:
        return False


# Wall-clock bounds on ferry's own work (not on the downtime limit, which is
# a guarantee whatever the build) are multiplied by this: AddressSanitizer
# and UBSan make ferry several times slower.
SLOW = 3 if _sanitized() else 1

START_RE = re.compile(r"^ferry-guest: start (.*)$", re.M)
PROGRESS_RE = re.compile(
    r"^progress cpu=(\d+) t_ms=(\d+) work=(\d+) total=(\d+)$", re.M)
FAIL_RE = re.compile(r"^(verify|clock): FAIL .*$", re.M)
# Any line by which the guest says something went wrong: a detection (FAIL)
# or a CPU exception.  conftest.py fails a test whose VM ever printed one.
DETECTION_RE = re.compile(r"^((verify|clock): FAIL|ferry-guest: error: exception) .*$", re.M)
# What AddressSanitizer, LeakSanitizer and UBSan print.
SANITIZER_RE = re.compile(r"runtime error:|ERROR: AddressSanitizer|LeakSanitizer|"
                          r"SUMMARY: \w*Sanitizer")

# Every sanitizer report stops the process (sanitizer build only; harmless
# otherwise), with a stack trace, and is not confused with ferry's exit 1.
os.environ.setdefault("ASAN_OPTIONS",
                      "halt_on_error=1:abort_on_error=1:detect_leaks=1:print_summary=1")
os.environ.setdefault("UBSAN_OPTIONS",
                      "halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1")

# How long a SIGKILLed process may take to go (it has to leave KVM_RUN).
KILL_WAIT_S = 60


def _read(path, limit=4000):
    try:
        return pathlib.Path(path).read_text(errors="replace")[-limit:]
    except OSError as e:
        return f"({e.strerror})"


def process_report(pid):
    """Where a process is: its state, and each thread's kernel stack (a
    thread stuck in a KVM ioctl shows there)."""
    out = [f"pid {pid}: " + " ".join(
        line for line in _read(f"/proc/{pid}/status").splitlines()
        if line.startswith(("State:", "Threads:")))]
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError:
        tids = []
    for tid in tids[:16]:
        t = f"/proc/{pid}/task/{tid}"
        out.append(f"  thread {tid} {_read(t + '/comm').strip()} "
                   f"wchan={_read(t + '/wchan').strip()}")
        out.append("    " + _read(t + "/stack", 1500).strip().replace("\n", "\n    "))
    return "\n".join(out)


def diagnose(vms, lines=30):
    """What every process of @vms was doing: its exit status or kernel
    state, the tail of its stderr and of its serial console; and, in the
    lane, the tail of the L1's kernel log.  For a test that timed out."""
    out = []
    for vm in vms:
        rc = vm.proc.poll()
        out.append(f"--- {' '.join(str(a) for a in vm.proc.args[:2])} pid {vm.proc.pid}: "
                   + (f"exited {rc}" if rc is not None else "running"))
        if rc is None:
            out.append(process_report(vm.proc.pid))
        err = read_stderr(vm).splitlines()[-lines:]
        out.append(f"stderr ({vm.stderr_path.name}), last {len(err)} lines:")
        out += ["  " + line for line in err]
        if vm.serial_path:
            ser = _read(vm.serial_path, 3000).splitlines()[-lines:]
            out.append(f"serial ({vm.serial_path}), last {len(ser)} lines:")
            out += ["  " + line for line in ser]
    if os.environ.get("FERRY_LANE"):
        try:
            dmesg = subprocess.run(["dmesg"], capture_output=True, text=True,
                                   timeout=20).stdout.splitlines()[-lines:]
        except (OSError, subprocess.TimeoutExpired) as e:
            dmesg = [f"(dmesg: {e})"]
        out.append(f"L1 dmesg, last {len(dmesg)} lines (load {_read('/proc/loadavg').strip()}):")
        out += ["  " + line for line in dmesg]
    return "\n".join(out)


# Every Vm started in this process, in order (conftest.py checks the ones a
# test started when it ends), and a counter for unique file names.
STARTED = []
_seq = itertools.count()


def require_kvm():
    """Fail (never skip) when KVM is missing: CI has it."""
    if not os.path.exists("/dev/kvm"):
        raise AssertionError("/dev/kvm is missing: ferry's system tests need KVM")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        raise AssertionError("/dev/kvm is not accessible: run the tests as root")


class QMP:
    """A minimal QMP client: greeting, negotiation, commands, events."""

    def __init__(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.greeting = self._read()
        assert "QMP" in self.greeting, self.greeting
        r = self.cmd("qmp_capabilities")
        assert r == {}, r

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("control socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, name, **args):
        """Run a command; return the whole reply ({"return"} or {"error"})."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            m = self._read()
            if "event" in m:
                self.events.append(m)
                continue
            return m

    def cmd(self, name, **args):
        r = self.execute(name, **args)
        if "error" in r:
            raise RuntimeError(f"{name}: {r['error']}")
        return r["return"]

    def wait_event(self, name, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {name} event within {timeout}s")
            self.sock.settimeout(remaining)
            self.events.append(self._read())

    def close(self):
        self.sock.close()


class Vm:
    """A ferry (or QEMU) process running the test guest, serial to a file."""

    def __init__(self, argv, workdir, serial_path, control=None):
        self.workdir = pathlib.Path(workdir)
        self.serial_path = serial_path
        self.control = control
        # a sequence number, not id(): ids are reused once an object is freed
        stem = pathlib.Path(serial_path).stem if serial_path else "vm"
        self.stderr_path = self.workdir / f"stderr-{next(_seq):04d}-{stem}.txt"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        self._qmp = None
        STARTED.append(self)

    @property
    def qmp(self):
        if self._qmp is None:
            self._qmp = QMP(self.control)
        return self._qmp

    def serial(self):
        """Complete lines of serial output so far: the guest writes byte by byte,
        so the last line may still be growing."""
        try:
            text = pathlib.Path(self.serial_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[:text.rfind("\n") + 1]

    def stderr(self):
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, regex, timeout=30.0, count=1):
        """Wait until @regex matches @count times in the serial output; return the matches."""
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            out = self.serial()
            found = rx.findall(out)
            if len(found) >= count:
                return found
            fail = FAIL_RE.search(out)
            if fail:
                raise AssertionError(f"guest reported a failure: {fail.group(0)}")
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"VM exited with {self.proc.returncode} before /{regex}/ "
                    f"(x{count}); serial:\n{out[-2000:]}\nstderr:\n{self.stderr()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"/{regex}/ x{count} not seen within {timeout}s; "
                                   f"serial:\n{out[-2000:]}")
            time.sleep(0.05)

    def progress(self):
        return [tuple(int(x) for x in m) for m in PROGRESS_RE.findall(self.serial())]

    def wait_exit(self, timeout=30.0):
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                # bounded: a process stuck in the kernel (a KVM ioctl that
                # never returns) must fail the test, not hang the run
                self.proc.wait(KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"pid {self.proc.pid} ({pathlib.Path(self.proc.args[0]).name}) still "
                    f"there {KILL_WAIT_S} s after SIGKILL:\n" + process_report(self.proc.pid))
        if self._qmp:
            self._qmp.close()
        self._stderr.close()


def ferry_argv(kernel=None, append="", memory="256M", cpus=1, serial=None,
               debugcon=None, control=None, extra=()):
    argv = [str(FERRY), "run", "--kernel", str(kernel or GUEST), "--memory", str(memory),
            "--cpus", str(cpus)]
    if append:
        argv += ["--append", append]
    if serial:
        argv += ["--serial", serial]
    if debugcon:
        argv += ["--debugcon", debugcon]
    if control:
        argv += ["--control", str(control)]
    return argv + list(extra)


def qemu_argv(append="", memory="256M", cpus=1, serial_path=None, debugcon_path=None):
    argv = ["qemu-system-x86_64", "-accel", "kvm", "-m", str(memory), "-smp", str(cpus),
            "-display", "none", "-no-reboot", "-nodefaults",
            "-kernel", str(GUEST), "-append", append,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x02",
            "-serial", f"file:{serial_path}"]
    if debugcon_path:
        argv += ["-chardev", f"file,id=dbg,path={debugcon_path}",
                 "-device", "isa-debugcon,iobase=0xe9,chardev=dbg"]
    return argv


_HB_CHILD = r"""
import os, socket, sys, time
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except OSError as e:
    print(f"heartbeat listener: no real-time priority ({e}): times may be late",
          file=sys.stderr)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1])
srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
while True:
    data = conn.recv(4096)
    now = time.monotonic()
    if not data:
        break
    sys.stdout.write(f"{now:.6f} {len(data)}\n")
    sys.stdout.flush()
"""


class HeartbeatListener:
    """A listening UNIX socket for --debugcon unix:PATH that timestamps each
    byte (time.monotonic(), CLOCK_MONOTONIC as ferry's own figures).

    The socket is served by a small child process at real-time priority, so
    that a byte is stamped when it arrives even on a loaded machine: a
    listener thread in this process would wait for the interpreter lock and
    for a CPU, and its lateness would look like a guest pause.  Bytes that
    still arrive together get the same (later) stamp, which can only make a
    gap look longer, never hide one."""

    def __init__(self, path):
        self.path = str(path)
        self.times = []
        self._proc = subprocess.Popen([sys.executable, "-c", _HB_CHILD, self.path],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      text=True)
        if self._proc.stdout.readline().strip() != "ready":
            raise AssertionError(f"heartbeat listener on {self.path} did not start")
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        for line in self._proc.stdout:
            t, n = line.split()
            self.times.extend([float(t)] * int(n))

    def gaps_ms(self):
        t = self.times
        return [(b - a) * 1000 for a, b in zip(t, t[1:])]

    def close(self):
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


def free_tcp_port():
    """A TCP port that was free a moment ago on 127.0.0.1."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def migration_uri(tmp_path, n, transport="unix"):
    """A fresh address for the @n-th destination of a test to listen on: a
    unix socket path, or TCP port 0 (the kernel picks a free port when the
    destination binds: no window in which another process could take it).
    bound_uri() gives the address a source must use."""
    if transport == "unix":
        return f"unix:{tmp_path / f'mig{n}.sock'}"
    return "tcp:127.0.0.1:0"


def listening_tcp_ports(pid):
    """TCP ports on which process @pid has a listening socket (from /proc)."""
    inodes = set()
    fd_dir = pathlib.Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        try:
            lines = pathlib.Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # TCP_LISTEN
                ports.append(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def bound_uri(vm, uri, timeout=10.0):
    """The address destination @vm, started with --incoming @uri, listens on:
    @uri itself, or for TCP port 0 the port it was given."""
    if not uri.startswith("tcp:") or not uri.endswith(":0"):
        return uri
    deadline = time.monotonic() + timeout
    while True:
        ports = listening_tcp_ports(vm.proc.pid)
        if ports:
            return f"{uri[:-2]}:{ports[0]}"
        if vm.proc.poll() is not None:
            raise AssertionError(f"destination exited ({vm.proc.returncode}) before listening: "
                                 f"{vm.stderr()[-1000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"destination not listening on {uri} after {timeout}s")
        time.sleep(0.01)


def wait_migration(q, timeout=60.0):
    """Poll query-migrate until the migration ends; return its last result."""
    deadline = time.monotonic() + timeout
    while True:
        st = q.cmd("query-migrate")
        if st.get("status") in ("completed", "failed", "cancelled"):
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"migration still {st.get('status')} after {timeout}s: {st}")
        time.sleep(0.02)


def set_params(q, **params):
    if params:
        q.cmd("migrate-set-parameters", **{k.replace("_", "-"): v for k, v in params.items()})


# ---- helpers for the migration fault and network-namespace tests ----------

def incoming_argv(uri, memory="256M", cpus=1, serial=None, control=None, debugcon=None,
                  prefix=()):
    """argv of a destination ferry waiting for @uri (@prefix: e.g. ip netns exec NS)."""
    argv = list(prefix) + [str(FERRY), "run", "--incoming", uri, "--memory", str(memory),
                           "--cpus", str(cpus)]
    if serial:
        argv += ["--serial", serial]
    if control:
        argv += ["--control", str(control)]
    if debugcon:
        argv += ["--debugcon", debugcon]
    return argv


def wait_status(q, wanted, timeout=30.0, interval=0.005):
    """Poll query-migrate until its status is in @wanted; return the result.
    Fails at once if the migration ends in a status that is not wanted."""
    wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    deadline = time.monotonic() + timeout
    while True:
        st = q.cmd("query-migrate")
        s = st.get("status")
        if s in wanted:
            return st
        if s in ("completed", "failed", "cancelled"):
            raise AssertionError(f"migration ended ({s}) while waiting for {wanted}: {st}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"migration still {s} after {timeout}s, waiting for {wanted}")
        time.sleep(interval)


def assert_keeps_verifying(vm, cpus=1, lines=3, pages=0, timeout=30.0):
    """The VM runs on: every vCPU prints @lines more progress lines and
    verifies at least @pages more pages (its whole slice, so that every page
    is checked once more), and the verify guest reports no FAIL (wait_for
    raises on one)."""
    assert vm.proc.poll() is None, f"VM exited with {vm.proc.returncode}"
    deadline = time.monotonic() + timeout
    for cpu in range(cpus):
        mine = [p for p in vm.progress() if p[0] == cpu]
        n, total0 = len(mine), (mine[-1][3] if mine else 0)
        vm.wait_for(rf"^progress cpu={cpu} .*$", count=n + lines,
                    timeout=max(1.0, deadline - time.monotonic()))
        while [p for p in vm.progress() if p[0] == cpu][-1][3] < total0 + pages:
            assert time.monotonic() < deadline, \
                f"cpu {cpu} verified fewer than {pages} pages within {timeout}s"
            vm.wait_for(rf"^progress cpu={cpu} .*$",
                        count=len([p for p in vm.progress() if p[0] == cpu]) + 1,
                        timeout=max(1.0, deadline - time.monotonic()))
    out = vm.serial()
    assert not FAIL_RE.search(out), FAIL_RE.search(out).group(0)
    assert vm.qmp.cmd("query-status")["status"] == "running"


def wait_total(vm, cpu, total, timeout=60.0):
    """Wait until @cpu's progress lines report at least @total units of work."""
    deadline = time.monotonic() + timeout
    while True:
        mine = [p for p in vm.progress() if p[0] == cpu]
        if mine and mine[-1][3] >= total:
            return mine[-1][3]
        vm.wait_for(rf"^progress cpu={cpu} .*$", count=len(mine) + 1,
                    timeout=max(0.5, deadline - time.monotonic()))


def wait_full_sweep(vm, cpus, pages_per_cpu, timeout=60.0):
    """A verify guest checks every page of its working set once more: each
    CPU's total grows by its pages per pass (slice plus high slice) beyond
    the first progress line this VM printed (docs/guest.md).  The
    conftest.py teardown then fails the test on any FAIL line."""
    deadline = time.monotonic() + timeout
    for cpu in range(cpus):
        vm.wait_for(rf"^progress cpu={cpu} .*$", count=1,
                    timeout=max(0.5, deadline - time.monotonic()))
        first = [p for p in vm.progress() if p[0] == cpu][0][3]
        wait_total(vm, cpu, first + pages_per_cpu, timeout=max(0.5, deadline - time.monotonic()))
    fail = DETECTION_RE.search(vm.serial())
    assert not fail, fail.group(0)


def verify_pages_per_cpu(append, cpus):
    """Pages each CPU of a verify guest sweeps per pass, from its command line."""
    def size(key):
        m = re.search(rf"\b{key}=(\d+)([KMG]?)\b", append)
        if not m:
            return 0
        return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]
    wss = size("wss") or 64 << 20
    return (wss // cpus // 4096) + (size("high") // cpus // 4096)


def assert_never_ran(vm):
    """A destination that did not get the guest: not one line from it."""
    out = vm.serial()
    assert "progress" not in out and "ferry-guest" not in out, \
        f"the destination ran the guest:\n{out[-1000:]}"


def read_stderr(vm):
    """All of @vm's stderr so far (works after kill() too)."""
    return pathlib.Path(vm.stderr_path).read_text(errors="replace")


def assert_no_sanitizer_report(vm):
    """No AddressSanitizer/LeakSanitizer/UBSan report on @vm's stderr."""
    err = read_stderr(vm)
    assert not SANITIZER_RE.search(err), err


def check_finished_vms(vms, allow_detection=False):
    """Teardown check of every process a test started: kill it if it still
    runs (so that its files are complete), then return a list of problems:
    a sanitizer report on its stderr, or (unless @allow_detection) a
    detection line that its guest printed at any time."""
    problems = []
    for vm in vms:
        vm.kill()
        err = read_stderr(vm)
        m = SANITIZER_RE.search(err)
        if m:
            problems.append(f"{vm.stderr_path.name}: sanitizer report:\n{err[-3000:]}")
        if not allow_detection and vm.serial_path:
            try:
                out = pathlib.Path(vm.serial_path).read_text(errors="replace")
            except FileNotFoundError:
                out = ""
            d = DETECTION_RE.search(out)
            if d:
                problems.append(f"{vm.serial_path}: the guest printed {d.group(0)!r}")
    return problems


def assert_one_error(status, err, *words):
    """Exit status exactly 1, and stderr is one 'ferry: error: ...' line
    (no sanitizer report, no second line) naming @words."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert not SANITIZER_RE.search(err), err
    assert status == 1, f"exit status {status}, expected 1; stderr:\n{err}"
    assert len(lines) == 1 and lines[0].startswith("ferry: error: "), \
        f"expected one 'ferry: error:' line, got:\n{err}"
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    return lines[0]
