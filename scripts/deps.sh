#!/usr/bin/env bash
# Install the Debian 12 packages ferry needs to build, test and benchmark.
# Idempotent: does nothing when everything is present.
set -euo pipefail

PKGS=(gcc make meson ninja-build pkg-config clang libclang-rt-14-dev
      libcmocka-dev libjansson-dev libxxhash-dev zlib1g-dev libzstd-dev liblz4-dev
      libgnutls28-dev gnutls-bin
      python3 python3-pytest python3-xxhash qemu-system-x86 iproute2 iperf3 gnuplot-nox binutils)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ferry: installing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "ferry: error: installing packages needs root (run as root, or install: ${missing[*]})" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
