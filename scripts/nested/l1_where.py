#!/usr/bin/env python3
"""Where a frozen L1's CPUs are: samples each vCPU's RIP (and RFLAGS'
interrupt flag) a few times through QEMU's monitor socket and names the
L1 kernel function at each, from the /proc/kallsyms the L1's watchdog
copied out (the L1 runs with nokaslr, so the addresses hold).

    l1_where.py MONITOR-SOCKET KALLSYMS [SAMPLES]
"""
import bisect
import re
import socket
import sys
import time


def hmp(path, command, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    buf = b""
    while b"(qemu) " not in buf:
        buf += s.recv(65536)
    s.sendall(command.encode() + b"\n")
    buf = b""
    while buf.count(b"(qemu) ") < 1:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return buf.decode(errors="replace")


def load_symbols(path):
    syms = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tTwW":
                    syms.append((int(parts[0], 16), parts[2] + (" " + parts[3] if len(parts) > 3 else "")))
    except OSError as e:
        print(f"lane: l1_where: no symbols ({e.strerror}): raw addresses only")
    syms.sort()
    return syms


def name(syms, addr):
    i = bisect.bisect_right(syms, (addr, "\xff")) - 1
    if i < 0 or addr - syms[i][0] > 0x100000:
        return "?"
    return f"{syms[i][1]}+{addr - syms[i][0]:#x}"


def main():
    sock, kallsyms = sys.argv[1], sys.argv[2]
    samples = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    syms = load_symbols(kallsyms)
    for n in range(samples):
        out = hmp(sock, "info registers -a")
        for cpu, rip, fl in re.findall(r"CPU#(\d+).*?RIP=([0-9a-f]+) RFL=([0-9a-f]+)", out, re.S):
            rip_i = int(rip, 16)
            irq = "on" if int(fl, 16) & 0x200 else "off"
            print(f"lane: L1 CPU {cpu} sample {n}: RIP {rip} ({name(syms, rip_i)}), interrupts {irq}")
        time.sleep(1)


if __name__ == "__main__":
    main()
