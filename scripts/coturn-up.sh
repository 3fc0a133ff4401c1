#!/usr/bin/env bash
# Makes Debian's coturn (`turnserver`) available for the TURN relay tests, which start their own server on
# loopback inside a private network namespace (test/helpers/coturn.ts). Never starts or enables Debian's
# coturn service: the package leaves it disabled, and this script does not touch it. Idempotent.
set -euo pipefail
if command -v turnserver >/dev/null 2>&1; then
  echo "coturn-up: turnserver present ($(dpkg-query -W -f='${Version}' coturn 2>/dev/null || echo unknown))"
  exit 0
fi
echo "coturn-up: installing coturn from Debian"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null
echo "coturn-up: turnserver $(dpkg-query -W -f='${Version}' coturn)"
