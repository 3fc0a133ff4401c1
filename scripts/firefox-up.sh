#!/usr/bin/env bash
# Makes Debian's Firefox ESR available at /usr/bin/firefox-esr for the Firefox tests (puppeteer-core drives
# it over WebDriver BiDi; puppeteer's own browser download cannot work here). Idempotent.
set -euo pipefail
if [ -x /usr/bin/firefox-esr ]; then
  echo "firefox-up: $(/usr/bin/firefox-esr --version 2>/dev/null || echo firefox-esr) present"
  exit 0
fi
echo "firefox-up: installing firefox-esr from Debian"
apt-get -o DPkg::Lock::Timeout=300 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq firefox-esr >/dev/null
echo "firefox-up: $(/usr/bin/firefox-esr --version)"
