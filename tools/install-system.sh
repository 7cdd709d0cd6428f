#!/usr/bin/env bash
# Install the Debian packages optabs needs, only those missing. Used by `make setup`.
#   libxc-dev libopenblas-dev libfftw3-dev : build GPAW (the embedded DFT engine)
#   chromium chromium-driver  : the report's browser test
#   slurm-wlm munge           : the real single-node SLURM of the cluster tests
set -euo pipefail
want=(libxc-dev libopenblas-dev libfftw3-dev chromium chromium-driver slurm-wlm munge)
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
