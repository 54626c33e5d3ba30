#!/usr/bin/env bash
# The hardware-KVM lane: run system tests against a ferry build inside an L1
# Linux booted under QEMU's TCG emulator with an AMD CPU (-cpu EPYC), where
# /dev/kvm is kvm_amd (SVM) rather than this machine's PVM.
#
#   scripts/nested/lane.sh [options] [PYTEST-ARGS...]
#
#   no test named      the lane's selection (scripts/nested/lane-tests.txt),
#                      with any other pytest options given (-v, -x, -k ...)
#   PYTEST-ARGS        any pytest arguments, e.g. one test:
#                      scripts/nested/lane.sh 'tests/system/test_migrate.py::test_there_and_back[2]'
#   --build DIR        the ferry build to test (default: $FERRY_BUILD or build);
#                      a normal build made by scripts/build.sh
#   --junitxml FILE    also write pytest's junit xml there (for scripts/summary.py)
#   --timeout SECONDS  give up on the L1 after this long (default 1800)
#   --test-timeout S   each test's own time limit in the L1 (FERRY_TEST_TIMEOUT,
#                      default 300; a test's timeout marker overrides it)
#   --stall SECONDS    the L1 is declared frozen when its watchdog has not
#                      written its heartbeat for this long (default 240)
#   --memory MIB       L1 memory (default 6144: test_zero_pages_cost_nothing runs a 4 GiB guest)
#   --smp N            L1 vCPUs (default 2)
#   --npt 0|1          kvm_amd's nested paging in the L1 (default 0: shadow
#                      paging; with NPT under TCG the L2 guest triple-faults
#                      during dirty logging, docs/testing.md)
#   --tcg-thread MODE  QEMU's TCG threading, multi or single (default multi;
#                      single is too slow for 2-vCPU Linux guests)
#   --reset-l1-after S test of the harness: reset the first L1 after S seconds,
#                      as the emulated L1 sometimes does on its own
#   --no-kvm-anchor    do not keep an idle VM in the L1 (scripts/nested/kvm_anchor.py)
#   --l1-script FILE   a shell script the L1 sources before pytest (experiments;
#                      not under /tmp, which is the L1's own tmpfs)
#
# Hangs: every test phase has a time limit (tests/system/conftest.py) and
# ends as a failing test with its processes' state; a watchdog in the L1
# kills pytest when a test outlives even those, printing the L1's state;
# and this script kills QEMU when the L1 itself stops (no heartbeat).
#
# Everything comes from Debian packages, installed when missing. The L1
# initramfs is cached under DIR/lane/, and the last run's console in
# DIR/lane/console.log. The exit status is pytest's; 3 means the L1 could
# not be set up (it says why), 124 a timeout, 125 an L1 that froze or a
# test the watchdog had to kill.  An L1 that dies under the run (freezes,
# resets) is replaced once by a fresh one that runs the tests without a
# result yet; the results of both are merged (scripts/nested/merge_results.py).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/scripts/nested
build=${FERRY_BUILD:-build}
junit=
timeout=1800
test_timeout=300
stall=240
memory=6144
smp=2
tcg_thread=multi
npt=0
reset_after=0
anchor=1
l1_script=
die() {
	echo "lane: error: $*" >&2
	exit 3
}
# The lane's own options may come anywhere; everything else goes to pytest.
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--junitxml) junit=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--test-timeout) test_timeout=$2; shift 2 ;;
	--stall) stall=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--tcg-thread) tcg_thread=$2; shift 2 ;;
	--npt) npt=$2; shift 2 ;;
	--reset-l1-after) reset_after=$2; shift 2 ;;
	--no-kvm-anchor) anchor=0; shift ;;
	--l1-script) l1_script=$(realpath "$2"); shift 2 ;;
	--memory) memory=$2; shift 2 ;;
	--help | -h) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) args+=("$1"); shift ;;
	esac
done
set -- ${args[@]+"${args[@]}"}
case "$npt" in 0 | 1) ;; *) die "--npt takes 0 or 1, not '$npt'" ;; esac
[ "$(id -u)" -eq 0 ] || die "the lane needs root (modules, KVM, 9p)"
case "$build" in /*) ;; *) build=$root/$build ;; esac
[ -x "$build/src/ferry" ] || die "$build/src/ferry is missing: build first (scripts/build.sh $build)"
[ -f "$build/guest/ferry-guest.elf" ] || die "$build/guest/ferry-guest.elf is missing: build first"

# Debian packages: the L1 kernel and its modules, busybox, QEMU, cpio.
pkgs=(linux-image-amd64 busybox-static qemu-system-x86 cpio gzip kmod iproute2 python3-pytest)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "lane: installing Debian packages: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi

# The newest installed Debian kernel that has its modules.
kver=
for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V); do
	[ -f "/lib/modules/$k/modules.dep" ] && kver=$k
done
[ -n "$kver" ] || die "no /boot/vmlinuz-* with /lib/modules/<version>/modules.dep (linux-image-amd64)"

cache=$build/lane
mkdir -p "$cache" || die "cannot create $cache"
initrd=$cache/l1-initrd-$kver.gz
if [ ! -f "$initrd" ] || [ "$here/init" -nt "$initrd" ] || [ "$here/mkinitrd.sh" -nt "$initrd" ]; then
	"$here/mkinitrd.sh" "$kver" "$initrd" || die "building the L1 initramfs failed"
fi

# The tests: the arguments, or the lane's selection.
# (no argument naming a test file, directory or node: the selection)
named=0
for a in "$@"; do
	case "$a" in tests/* | */tests/* | *.py | *::*) named=1 ;; esac
done
if [ $named -eq 0 ]; then
	mapfile -t sel < <(grep -vE '^\s*(#|$)' "$here/lane-tests.txt")
	set -- "$@" "${sel[@]}"
fi

# One L1 running pytest with the arguments given: sets $out (its results
# directory), $rc (pytest's status) and $lost (1: the L1 itself froze, reset
# or ended without a status, so its tests have no result from it).
# A failed run's directory stays for a post-mortem (QEMU's log, the L1's symbols).
made=()
kept=()
cleanup() {
	local d k
	for d in "${made[@]}"; do
		k=0
		for x in "${kept[@]}"; do [ "$x" = "$d" ] && k=1; done
		[ $k = 1 ] && echo "lane: kept $d" >&2 || rm -rf "$d"
	done
}
trap cleanup EXIT
l1_run() {
	local budget=$1
	shift
	out=$(mktemp -d "$cache/run.XXXXXX") || die "cannot create a results directory"
	made+=("$out")
	lost=0
	rc=1
	{
		echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
		echo 'out=$(dirname "$0")'
		echo 'status() { echo "$1" >"$out/rc"; exit 0; }'
		echo 'modprobe -a veth sch_tbf sch_netem || { echo "lane: error (L1): modprobe veth sch_tbf sch_netem failed"; status 3; }'
		echo 'ip link set lo up || { echo "lane: error (L1): ip link set lo up failed"; status 3; }'
		echo 'echo "lane: L1 kvm_amd npt=$(cat /sys/module/kvm_amd/parameters/npt)"'
		printf 'cd %q || status 3\n' "$root"
		[ $anchor = 1 ] && printf '/usr/bin/python3 %q & anchor=$!\n' "$here/kvm_anchor.py"
		[ -n "$l1_script" ] && printf '. %q\n' "$l1_script"
		printf 'export FERRY_BUILD=%q FERRY_LANE=svm HOME=/tmp TMPDIR=/tmp PYTHONDONTWRITEBYTECODE=1\n' "$build"
		printf 'export FERRY_TEST_TIMEOUT=%q FERRY_LANE_STATUS="$out/current" FERRY_LANE_RESULTS="$out/results"\n' "$test_timeout"
		# the knobs of tests and benchmarks, as the host's environment sets them
		for v in BENCH_RUNS FERRY_LONG_MIGRATION_S; do
			[ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
		done
		printf '/usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE --color=no --junitxml="$out/junit.xml"'
		printf ' %q' "$@"
		echo ' &'
		echo 'pytest=$!'
		printf 'sh %q "$out" $pytest &\n' "$here/watchdog.sh"
		echo 'wd=$!'
		echo 'wait $pytest; rc=$?'
		echo 'kill $wd 2>/dev/null'
		# processes the L1 kernel killed or saw crash: a test only sees them go
		echo 'dmesg | grep -E "segfault|traps:|general protection|Out of memory|Killed process|oom-kill" | tail -n 20 | sed "s/^/lane: L1 kernel: /"'
		echo '[ -f "$out/hung" ] && rc=125'
		echo 'status $rc'
	} >"$out/run.sh"

	echo "lane: L1 $kver under QEMU TCG ($tcg_thread) -cpu EPYC, ${memory} MiB, $smp vCPUs, kvm_amd npt=$npt; pytest $*" >&2
	local start=$(date +%s) qemu frozen=0 hb qrc running
	# -d cpu_reset: a reset of the L1 (a triple fault, say) is logged with its CPU state.
	timeout -k 10 "$budget" qemu-system-x86_64 -accel tcg,thread=$tcg_thread -cpu EPYC -smp "$smp" -m "$memory" \
		-d cpu_reset,guest_errors -D "$out/qemu.log" \
		-nographic -no-reboot -net none -monitor "unix:$out/monitor.sock,server=on,wait=off" \
		-kernel "/boot/vmlinuz-$kver" -initrd "$initrd" \
		-append "console=ttyS0 quiet loglevel=2 nokaslr rcupdate.rcu_cpu_stall_suppress=1 panic=5 lane.tree=$root lane.out=$out lane.npt=$npt" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$root,mount_tag=tree,security_model=none" \
		-virtfs "local,path=$out,mount_tag=out,security_model=none" \
		</dev/null 2> >(grep -v "TCG doesn't support requested feature" >&2) > >(tee -a "$console") &
	qemu=$!
	# The L1's watchdog writes $out/heartbeat every 20 s (scripts/nested/watchdog.sh):
	# when that stops, the L1's kernel itself has stopped, and nothing inside can report.
	while kill -0 $qemu 2>/dev/null; do
		sleep 5
		if [ "$reset_after" -gt 0 ] && [ $(($(date +%s) - start)) -ge "$reset_after" ]; then
			echo "lane: --reset-l1-after: resetting the L1" >&2
			/usr/bin/python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.5); s.sendall(b"system_reset\n"); time.sleep(1)' "$out/monitor.sock"
			reset_after=0
		fi
		hb=$(stat -c %Y "$out/heartbeat" 2>/dev/null) || continue
		if [ $(($(date +%s) - hb)) -gt "$stall" ] && kill -0 $qemu 2>/dev/null; then
			frozen=1
			echo "lane: error: the L1 made no progress for over $stall s (no watchdog heartbeat);" \
				"running: $(cut -d' ' -f3- "$out/current" 2>/dev/null || echo 'no test yet'); where its CPUs are:" >&2
			/usr/bin/python3 "$here/l1_where.py" "$out/monitor.sock" "$out/kallsyms" 3 >&2
			echo "lane: killing QEMU" >&2
			kill $qemu
			break
		fi
	done
	wait $qemu
	qrc=$?
	running=$(cut -d' ' -f3- "$out/current" 2>/dev/null || echo 'no test yet')
	echo "lane: L1 ran $(($(date +%s) - start)) s" >&2
	if [ $frozen -eq 1 ]; then
		kept+=("$out")
		lost=1
		echo "lane: error: the L1 froze while running $running (see its console above and in $console)" >&2
	elif [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
		kept+=("$out")
		rc=124
		echo "lane: error: the L1 did not finish within its $budget s (--timeout); running: $running" >&2
	elif [ ! -f "$out/rc" ]; then
		kept+=("$out")
		lost=1
		echo "lane: error: the L1 ended without a test status (QEMU exit $qrc; see its console" \
			"above) while running $running; QEMU's log of CPU resets: $out/qemu.log" >&2
	else
		rc=$(cat "$out/rc")
		[ "$rc" = 0 ] || kept+=("$out")
		[ "$rc" = 3 ] && [ ! -f "$out/junit.xml" ] && die "the L1 could not be set up (see its console above)"
	fi
	return 0
}

console=$cache/console.log
: >"$console"
t0=$(date +%s)
l1_run "$timeout" "$@"
first=$out
if [ $lost = 1 ]; then
	# The emulated L1 (Debian's kernel under QEMU 7.2 TCG) sometimes freezes or
	# resets itself under a run, whatever the test (docs/testing.md): that is
	# no test's result.  A fresh L1 runs what has no result yet, once; the
	# test that was running when the L1 died runs again.
	mapfile -t done_ids < <(cut -d' ' -f2- "$first/results" 2>/dev/null | sort -u)
	left=$((timeout - ($(date +%s) - t0)))
	[ $left -gt 120 ] || die "the L1 died and no time is left (--timeout) for a fresh one"
	echo "lane: the L1 died under the run (not a test result); a fresh L1 runs the tests" \
		"not run yet (${#done_ids[@]} have results), once, within $left s" >&2
	deselect=()
	for d in "${done_ids[@]}"; do deselect+=(--deselect "$d"); done
	l1_run "$left" "$@" "${deselect[@]}"
	if [ -n "$junit" ]; then
		/usr/bin/python3 "$here/merge_results.py" "$first/results" "$out/junit.xml" "$junit" >&2
	fi
	[ $lost = 1 ] && { echo "lane: error: the second L1 died too" >&2; exit 125; }
	# the first L1's results count too
	grep -q '^failed ' "$first/results" 2>/dev/null && [ "$rc" = 0 ] && rc=1
	exit "$rc"
fi
[ -n "$junit" ] && [ -f "$first/junit.xml" ] && cp "$first/junit.xml" "$junit"
exit "$rc"
