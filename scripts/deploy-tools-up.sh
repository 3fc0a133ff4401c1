#!/usr/bin/env bash
# Makes the tools the deploy tests use available (test/deploy-*.test.ts): `systemd-analyze` (Debian's
# systemd package) to check the unit, `docker-compose` to run deploy/compose.yaml, `setpriv` (util-linux)
# to run the agent as the unit's user with its capabilities, busybox (static) for the local base image.
# Idempotent: installs only what is missing, starts nothing (on a host without systemd as PID 1 the
# package only provides its tools).
set -euo pipefail

missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
[ -x /bin/busybox ] || missing+=(busybox-static)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deploy-tools-up: installing ${missing[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deploy-tools-up: $(systemd-analyze --version | head -1), docker-compose $(docker-compose version --short), $(setpriv --version)"
