"""Two "hosts" on one machine for migration tests: two network namespaces
joined by a veth pair, with an optional tc shaper on each end.

    with netns.HostPair(rate="200mbit") as net:
        argv = net.exec_prefix("a") + [ferry, "run", ...]    # runs inside host a
        uri = f"tcp:{net.addr['b']}:4444"                     # host b's address
        net.shape("a", rate="1mbit")                          # change the cap

Everything lives in namespaces of its own, with names that carry the pid
and a random tag, so concurrent runs never collide; traffic between the two
addresses never leaves them.  Leaving the block deletes both namespaces
(which deletes the veth pair) after killing any process still inside,
also when the block fails.  Needs root, iproute2 and tc; a missing piece is
an error, never a skip."""
import ipaddress
import os
import random
import re
import shutil
import signal
import subprocess
import time

SUBNET = ipaddress.ip_network("10.200.0.0/16")


def _run(*argv, check=True):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def require_tools():
    for tool in ("ip", "tc"):
        if not shutil.which(tool):
            raise AssertionError(f"{tool} is missing: the network namespace tests need "
                                 "iproute2 (apt-get install iproute2)")
    if os.geteuid() != 0:
        raise AssertionError("the network namespace tests need root")


STALE_RE = re.compile(r"^ferry-[ab]-(\d+)-[0-9a-f]{6}$")


def remove_stale():
    """Delete namespaces this helper made in runs that died without cleaning
    up (their pid is gone) and in which nothing runs any more."""
    out = _run("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = STALE_RE.match(name)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        if _run("ip", "netns", "pids", name, check=False).stdout.strip():
            continue
        _run("ip", "netns", "del", name, check=False)


class HostPair:
    """Namespaces "a" and "b", veth a <-> b, addresses from a random /30 of
    10.200.0.0/16.  @rate/@burst/@latency: a tbf on a's egress (a -> b) at
    once; @delay: netem delay in front of it; @both: shape b -> a the same."""

    def __init__(self, rate=None, burst=None, latency="50ms", delay=None, both=False):
        tag = f"{os.getpid()}-{random.randrange(1 << 24):06x}"
        self.ns = {"a": f"ferry-a-{tag}", "b": f"ferry-b-{tag}"}
        short = f"{os.getpid() % 100000}{random.randrange(1 << 16):04x}"
        self.dev = {"a": f"fa{short}", "b": f"fb{short}"}  # at most 15 characters
        net = ipaddress.ip_network((int(SUBNET.network_address) +
                                    4 * random.randrange(SUBNET.num_addresses // 4), 30))
        hosts = list(net.hosts())
        self.net = net
        self.addr = {"a": str(hosts[0]), "b": str(hosts[1])}
        self._shape = dict(rate=rate, burst=burst, latency=latency, delay=delay)
        self._both = both
        self._made = []
        self.qdisc = {}

    # ---- lifetime ----

    def __enter__(self):
        require_tools()
        remove_stale()
        try:
            for side in ("a", "b"):
                _run("ip", "netns", "add", self.ns[side])
                self._made.append(self.ns[side])
            _run("ip", "link", "add", self.dev["a"], "netns", self.ns["a"], "type", "veth",
                 "peer", "name", self.dev["b"], "netns", self.ns["b"])
            for side in ("a", "b"):
                _run("ip", "-n", self.ns[side], "addr", "add",
                     f"{self.addr[side]}/{self.net.prefixlen}", "dev", self.dev[side])
                _run("ip", "-n", self.ns[side], "link", "set", "lo", "up")
                _run("ip", "-n", self.ns[side], "link", "set", self.dev[side], "up")
            if self._shape["rate"] or self._shape["delay"]:
                for side in (("a", "b") if self._both else ("a",)):
                    self.shape(side, **self._shape)
            self._wait_link()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Kill what still runs inside, delete the namespaces (and the veths)."""
        for name in self._made:
            p = _run("ip", "netns", "pids", name, check=False)
            for pid in p.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for name in reversed(self._made):
            for _ in range(50):
                if _run("ip", "netns", "del", name, check=False).returncode == 0:
                    break
                time.sleep(0.1)
        self._made = []

    def _wait_link(self, timeout=10.0):
        """Until both ends of the veth pair report carrier (LOWER_UP)."""
        deadline = time.monotonic() + timeout
        while not all("LOWER_UP" in _run("ip", "-n", self.ns[s], "link", "show", "dev",
                                         self.dev[s]).stdout for s in ("a", "b")):
            if time.monotonic() > deadline:
                raise RuntimeError("the veth pair did not come up")
            time.sleep(0.05)

    # ---- use ----

    def exec_prefix(self, side):
        """argv prefix that runs a command in @side's namespace (ip netns exec
        execs the command: the process's pid is the command's)."""
        return ["ip", "netns", "exec", self.ns[side]]

    def shape(self, side, rate=None, burst=None, latency="50ms", delay=None):
        """Put (or change) the shaper on @side's egress: tbf at @rate (tc syntax,
        e.g. "200mbit"), with netem @delay (e.g. "5ms") in front of it if asked.
        Changing a tbf's rate is a "tc qdisc change": it takes effect at once
        (and drops what was queued, as a collapsing link would)."""
        ns, dev = self.ns[side], self.dev[side]
        if burst is None and rate:
            burst = "256kb" if bits_per_second(rate) >= 50e6 else "32kb"
        tbf = ["tbf", "rate", rate, "burst", burst, "latency", latency] if rate else None
        kind = "netem" if delay else ("tbf" if rate else None)
        have = self.qdisc.get(side)
        if kind == "tbf" and have == "tbf":
            _run("tc", "-n", ns, "qdisc", "change", "dev", dev, "root", *tbf)
            return
        if have:
            _run("tc", "-n", ns, "qdisc", "del", "dev", dev, "root")
            self.qdisc[side] = None
        if kind == "netem":
            p = _run("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "handle", "1:",
                     "netem", "delay", delay, check=False)
            if p.returncode != 0:
                raise AssertionError("netem is not available in this kernel (sch_netem): "
                                     f"{p.stderr.strip()}")
            if tbf:
                _run("tc", "-n", ns, "qdisc", "add", "dev", dev, "parent", "1:1",
                     "handle", "10:", *tbf)
        elif kind == "tbf":
            _run("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", *tbf)
        self.qdisc[side] = kind

    def prepare_rate_change(self, side, rate, burst, latency="50ms"):
        """A function that changes @side's tbf to @rate at once when called.
        The tc process is started now and waits for its command on a pipe, so
        the change costs one write and one netlink message, not a fork and
        exec: on a slow machine (the nested lane) starting tc takes longer
        than a switchover."""
        assert self.qdisc.get(side) == "tbf", "prepare_rate_change needs a tbf on that side"
        proc = subprocess.Popen(["tc", "-n", self.ns[side], "-batch", "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        line = (f"qdisc change dev {self.dev[side]} root tbf rate {rate} burst {burst} "
                f"latency {latency}\n")

        def change():
            proc.stdin.write(line)
            proc.stdin.flush()
            proc.stdin.close()
            err = proc.stderr.read()
            if proc.wait(timeout=30) != 0:
                raise RuntimeError(f"tc -batch: {line.strip()}: {err.strip()}")
        return change

    def qdisc_stats(self, side):
        return _run("tc", "-n", self.ns[side], "-s", "qdisc", "show", "dev",
                    self.dev[side]).stdout

    def sent_bytes(self, side):
        """Bytes the root qdisc of @side has sent since it was put there."""
        m = re.search(r"Sent (\d+) bytes", self.qdisc_stats(side))
        if not m:
            raise AssertionError(f"no qdisc statistics on {self.dev[side]}")
        return int(m.group(1))


def bits_per_second(rate):
    """tc rate syntax to bit/s: 200mbit, 1gbit, 500kbit, 8000bit."""
    r = rate.lower()
    for suffix, mult in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1)):
        if r.endswith(suffix):
            return float(r[:-len(suffix)]) * mult
    raise ValueError(f"rate {rate!r}: use NNNbit, kbit, mbit or gbit")
