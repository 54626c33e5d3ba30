#!/usr/bin/env bash
# ferry's main job on a default: boot the test guest with a visible
# workload, let it run, stop it cleanly through the control socket.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
exec /usr/bin/python3 scripts/demo.py build
