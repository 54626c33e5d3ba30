#!/bin/sh
# Boot ferry-guest under QEMU and check the basics: the boot, start and
# progress lines of the verify workload on 2 CPUs, and that a bad command
# line exits with status 65. Uses KVM when available, else TCG.
# Usage: qemu-smoke.sh path/to/ferry-guest.elf   (exit 77 = skipped)
set -u

elf=${1:?usage: $0 ferry-guest.elf}
qemu=${QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null 2>&1 || { echo "SKIP: $qemu not found"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

run() {		# run <output> <smp> <cmdline>; call in a subshell (exec)
	exec timeout 120 "$qemu" -accel kvm -accel tcg -m 128 -smp "$2" \
		-display none -monitor none -serial stdio -no-reboot \
		-device isa-debug-exit,iobase=0xf4 \
		-kernel "$elf" -append "$3" >"$1" 2>/dev/null
}

check() {	# check <name> <condition...>
	name=$1
	shift
	if "$@"; then
		echo "ok: $name"
	else
		echo "FAIL: $name"
		fails=$((fails + 1))
	fi
}

# 1. verify on 2 CPUs: wait for two progress lines per CPU, then stop.
(run "$tmp/verify.out" 2 "workload=verify wss=8M progress=200ms") &
pid=$!		# timeout(1), which passes our SIGTERM on to QEMU
for _ in $(seq 300); do
	[ "$(grep -c '^progress cpu=1 ' "$tmp/verify.out")" -ge 2 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cat "$tmp/verify.out"
check "boot line" grep -Eq '^ferry-guest: boot cpus=2 mem=[0-9]+M tsc_khz=[0-9]+ cmdline=".*"$' "$tmp/verify.out"
check "start line" grep -Fxq 'ferry-guest: start workload=verify cpus=2 wss=8388608 rate=max pattern=seq heartbeat_us=0 progress_ms=200' "$tmp/verify.out"
check "progress lines" grep -Eq '^progress cpu=1 t_ms=[0-9]+ work=[1-9][0-9]* total=[0-9]+$' "$tmp/verify.out"
check "no failure" sh -c "! grep -Eq 'FAIL|error' '$tmp/verify.out'"

# 2. a bad key is an error with exit status (0x20 << 1) | 1 = 65.
(run "$tmp/bad.out" 1 "workload=idle nosuchkey=1")
status=$?
cat "$tmp/bad.out"
check "bad cmdline exits 65" [ "$status" -eq 65 ]
check "bad cmdline message" grep -Fxq 'ferry-guest: error: unknown key "nosuchkey"' "$tmp/bad.out"

echo "$((6 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
