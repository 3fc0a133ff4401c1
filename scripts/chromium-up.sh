#!/usr/bin/env bash
# Makes Debian's Chromium available at /usr/bin/chromium for the browser tests (playwright-core drives it;
# `npx playwright install` cannot download here). Idempotent.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium-up: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) present"
  exit 0
fi
echo "chromium-up: installing chromium from Debian"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "chromium-up: $(/usr/bin/chromium --version)"
