"""The serial console on a terminal (--serial stdio): ferry puts the
terminal in raw mode while it runs and restores it when it ends, also
when ^C (SIGINT) or a kill (SIGTERM) ends it (exit status 128 + signal)."""
import fcntl
import os
import select
import signal
import subprocess
import termios
import time

import pytest

import ferrylib


def lflag(fd):
    return termios.tcgetattr(fd)[3]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_terminal_raw_while_running_and_restored_after_a_signal(tmp_path, kvm, sig):
    master, slave = os.openpty()
    assert lflag(slave) & termios.ICANON and lflag(slave) & termios.ECHO

    def own_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    err = open(tmp_path / "stderr.txt", "wb")
    p = subprocess.Popen(ferrylib.ferry_argv(), stdin=slave, stdout=slave, stderr=err,
                         preexec_fn=own_terminal)
    out = b""
    try:
        deadline = time.monotonic() + 10 * ferrylib.SLOW
        while b"ferry-guest: start" not in out or lflag(slave) & termios.ICANON:
            assert time.monotonic() < deadline, \
                f"no start line or still canonical mode; output: {out[-500:]!r}"
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                out += os.read(master, 4096)
        assert not lflag(slave) & termios.ECHO, "ferry left ECHO on: the host would echo input"
        assert lflag(slave) & termios.ISIG, "^C must still reach ferry"
        p.send_signal(sig)
        status = p.wait(timeout=10 * ferrylib.SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()
    try:
        assert status == 128 + sig, f"exit status {status}, expected {128 + sig}"
        assert lflag(slave) & termios.ICANON and lflag(slave) & termios.ECHO, \
            "the terminal was not restored"
    finally:
        os.close(slave)
        os.close(master)
    stderr = (tmp_path / "stderr.txt").read_text(errors="replace")
    assert not ferrylib.SANITIZER_RE.search(stderr), stderr
