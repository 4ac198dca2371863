#!/usr/bin/env bash
# Install Slurm (Debian packages) for tests/backends/slurm/test_cluster.py, which starts a private single-node cluster:
#   munge slurmctld slurmd slurm-client slurmrestd   (Slurm 22.05 on Debian bookworm)
# The packages' own services are not started (the tests run the daemons with a private config).
# Idempotent. Needs root and apt-get; without them it explains and exits 0 (the Slurm tests then skip).
set -euo pipefail

PACKAGES=(munge slurmctld slurmd slurm-client slurmrestd)
COMMANDS=(munged slurmctld slurmd sbatch slurmrestd)

installed() {
    local command
    for command in "${COMMANDS[@]}"; do
        command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || return 1
    done
}

if installed; then
    echo "install-slurm: Slurm already installed ($(/usr/sbin/slurmctld -V 2>/dev/null || echo unknown version))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm: not root; skipping (the Slurm tests will skip)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-slurm: no apt-get on this system; skipping (the Slurm tests will skip)" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101 keeps the packages' services from starting in containers without systemd.
POLICY=/usr/sbin/policy-rc.d
added_policy=
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod +x "$POLICY" && added_policy=1
fi
trap '[ -n "$added_policy" ] && rm -f "$POLICY"' EXIT

if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null || {
        echo "install-slurm: apt-get could not install ${PACKAGES[*]}; skipping (the Slurm tests will skip)" >&2
        exit 0
    }
fi
installed || { echo "install-slurm: the packages installed, but a Slurm command is missing" >&2; exit 1; }
echo "install-slurm: $(/usr/sbin/slurmctld -V) installed"
