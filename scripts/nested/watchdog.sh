#!/bin/sh
# The lane's watchdog, run in the L1 next to pytest (scripts/nested/lane.sh):
#   watchdog.sh RESULTS-DIR PYTEST-PID
# Every 20 s it writes RESULTS-DIR/heartbeat, by which the host knows the
# L1 still runs.  tests/system/conftest.py writes RESULTS-DIR/current
# ("<start> <allowed seconds> <test id>") as each test starts; a test that
# runs past what it is allowed is beyond pytest's own time limits (a
# process stuck in the kernel, say): the watchdog then prints the L1's
# state -- load, memory, kernel log, processes and their kernel stacks,
# ferry's stderr -- records the test in RESULTS-DIR/hung and kills pytest.
out=$1
pytest=$2
report() {
	echo "lane: watchdog: L1 state: load $(cat /proc/loadavg)"
	grep -E '^(MemTotal|MemFree|MemAvailable|Shmem|Committed_AS):' /proc/meminfo | tr -s ' ' | tr '\n' ';'
	echo
	echo "lane: watchdog: kernel log (last 40 lines):"
	dmesg | tail -n 40
	echo "lane: watchdog: processes:"
	ps -eo pid,ppid,stat,etime,time,wchan:24,args | grep -v ' \[.*\]$' | cut -c1-200
	for p in $(pgrep -f '/src/ferry '); do
		for t in /proc/$p/task/*; do
			echo "lane: watchdog: ferry $p thread ${t##*/} ($(cat $t/comm 2>/dev/null)), kernel stack:"
			cat $t/stack 2>/dev/null | head -n 12
		done
	done
	for f in $(ls -t /tmp/pytest-of-*/pytest-*/*/stderr-*.txt 2>/dev/null | head -n 4); do
		echo "lane: watchdog: $f (last 15 lines):"
		tail -n 15 "$f"
	done
}
# The L1 kernel's symbols (nokaslr: fixed addresses), for the host to name
# where a frozen L1's CPUs are (scripts/nested/l1_where.py).
grep -E ' [tTwW] ' /proc/kallsyms >"$out/kallsyms" 2>/dev/null &
while kill -0 "$pytest" 2>/dev/null; do
	date +%s >"$out/heartbeat"
	if [ -f "$out/current" ] && read -r since allowed test <"$out/current"; then
		age=$(($(date +%s) - since))
		if [ "$age" -gt "$allowed" ]; then
			echo "lane: error: watchdog: $test has run for $age s, beyond its limits ($allowed s): killing pytest"
			report
			echo "$test" >"$out/hung"
			kill -9 "$pytest"
			exit 0
		fi
	fi
	sleep 20
done
