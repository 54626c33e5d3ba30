#!/usr/bin/env bash
# Configure (once) and build a ferry build directory.
#   scripts/build.sh [DIR] [asan]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
kind=${2:-release}
if [ ! -f "$dir/build.ninja" ]; then
	opts=(--werror -Dtests=true)
	[ "$kind" = asan ] && opts+=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug)
	meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >/dev/null
