#!/usr/bin/env python3
"""Keep one idle KVM VM (in-kernel irqchip, one vCPU that never runs) for
as long as this process lives: scripts/nested/lane.sh starts it in the L1
before the tests.

Why: creating and destroying a VM makes the L1 kernel patch its own code
while it runs (KVM's static keys, e.g. the deferred key counting
software-disabled LAPICs, flip when their count crosses zero: text_poke_bp
puts an int3 on every site and syncs all CPUs), and the L1 runs under
QEMU's multi-threaded TCG, which has been seen (docs/testing.md) to leave
both L1 CPUs spinning in the int3 handler. With this VM alive, the counts
never fall to zero between tests, so a test's VMs patch no kernel code.
"""
import fcntl
import os
import signal
import sys

KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
KVM_CREATE_IRQCHIP = 0xAE60


def main():
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    fcntl.ioctl(vm, KVM_CREATE_IRQCHIP, 0)
    vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    print(f"lane: kvm anchor: VM fd {vm}, vCPU fd {vcpu} held", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
