#!/usr/bin/env bash
# A time-limited libFuzzer run of every fuzz target, on copies of the
# committed corpora (the committed seeds stay as they are).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 180)
# Builds build-fuzz/ with clang (-Dfuzz=true).  Fails if a target finds a
# crash, a leak or a sanitizer report; prints executions and coverage.
# The crashing input is left in build-fuzz/fuzz-artifacts/: add it to the
# target's corpus as a regression seed once it is fixed.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-180}
dir=build-fuzz
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang meson setup "$dir" --werror -Dfuzz=true -Dtests=false >/dev/null || exit 1
fi
ninja -C "$dir" fuzz/fuzz_stream fuzz/fuzz_state >/dev/null || exit 1
mkdir -p "$dir/fuzz-artifacts"
status=0
# max_len: the largest input each decoder accepts (wire limits: a 1 MiB
# vCPU/device blob plus the 10-byte prefix; streams are bounded by the
# fuzzer's own default growth, 64 KiB here).
for t in stream:65536 state:1048586; do
	name=${t%%:*}
	maxlen=${t#*:}
	work=$(mktemp -d)
	cp -r "fuzz/corpus/$name/." "$work/"
	echo "== fuzz_$name: ${secs}s"
	"$dir/fuzz/fuzz_$name" "$work" -max_total_time="$secs" -max_len="$maxlen" \
		-print_final_stats=1 -artifact_prefix="$dir/fuzz-artifacts/$name-" \
		>"$dir/fuzz-$name.log" 2>&1
	rc=$?
	grep -E "DONE +cov|stat::number_of_executed_units|stat::new_units_added" \
		"$dir/fuzz-$name.log"
	if [ $rc -ne 0 ]; then
		echo "ferry: error: fuzz_$name failed (exit $rc), see $dir/fuzz-$name.log" >&2
		tail -40 "$dir/fuzz-$name.log" >&2
		status=1
	fi
	rm -rf "$work"
done
exit $status
