#!/usr/bin/env bash
# The whole test suite: unit tests (cmocka) and system tests (pytest on real
# KVM guests), on a normal build and on an AddressSanitizer+UBSan build.
# With FERRY_CI_LANE=1, then the hardware-KVM lane: system tests inside a
# nested L1 with kvm_amd (docs/testing.md says why it is not on by default yet).
# The last line is the combined summary "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1

if [ ! -e /dev/kvm ]; then
	echo "ferry: error: /dev/kvm is missing: the system tests need KVM" >&2
fi

results=$(mktemp -d)
status=0
for variant in build:release build-asan:asan; do
	dir=${variant%%:*}
	kind=${variant#*:}
	echo "== $kind build ($dir)"
	if ! scripts/build.sh "$dir" "$kind"; then
		echo "ferry: error: $kind build failed" >&2
		echo "build-$kind" >>"$results/build-failures"
		status=1
		continue
	fi
	echo "== $kind: unit tests"
	meson test -C "$dir" --print-errorlogs --no-rebuild || status=1
	cp "$dir/meson-logs/testlog.json" "$results/unit-$kind.json" 2>/dev/null
	echo "== $kind: system tests"
	# Tests marked 'lane' need hardware KVM (a stock Linux kernel): the lane runs them.
	FERRY_BUILD="$dir" /usr/bin/python3 -m pytest -q -p no:cacheprovider -m "not lane" \
		--junitxml="$results/system-$kind.xml" tests/system
	rc=$?
	# pytest exit 5 means "no tests collected": that is a failure here.
	[ $rc -ne 0 ] && status=1
done
# A time-limited libFuzzer run of both fuzz targets (clang build), besides
# the corpus replays that the unit tests of both builds include.
echo "== fuzzing (${FUZZ_SECONDS:-180}s per target)"
scripts/fuzz.sh "${FUZZ_SECONDS:-180}" || status=1
# The hardware-KVM lane (docs/testing.md): the lane's selection of system
# tests on kvm_amd in a nested L1, against the normal build.
if [ "${FERRY_CI_LANE:-0}" != 1 ]; then
	echo "== lane: not run (FERRY_CI_LANE=1 runs it; docs/testing.md)"
elif [ -x build/src/ferry ]; then
	touch "$results/lane-requested"
	echo "== lane: system tests on nested SVM KVM (scripts/nested/lane.sh)"
	# --timeout: the lane's CI budget is 25 minutes, setup included (docs/testing.md)
	scripts/nested/lane.sh --build build --timeout 1380 --junitxml "$results/system-lane.xml" ||
		status=1
else
	echo "ferry: error: no normal build: the hardware-KVM lane cannot run" >&2
fi
/usr/bin/python3 scripts/summary.py "$results" || status=1
rm -rf "$results"
exit $status
