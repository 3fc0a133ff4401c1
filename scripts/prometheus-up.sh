#!/usr/bin/env bash
# Makes a Prometheus server binary available for the metrics tests, which start their own server on
# 127.0.0.1 (a free port, a temporary config and data directory). Idempotent.
#
# Uses $TERMGATE_PROMETHEUS or /usr/bin/prometheus when there is one. Otherwise it takes the binary out of
# Debian's `prometheus` package into .tools/ of this checkout without installing the package: installing
# it would enable and start a service listening on every interface, and the tests need none of it. A
# Prometheus service already on the host is never stopped or touched.
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL=".tools/prometheus/prometheus"

for bin in "${TERMGATE_PROMETHEUS:-}" /usr/bin/prometheus "$LOCAL"; do
  if [ -n "$bin" ] && [ -x "$bin" ]; then
    echo "prometheus-up: $("$bin" --version 2>&1 | head -1) ($bin)"
    exit 0
  fi
done

echo "prometheus-up: extracting the prometheus binary from Debian's package into $LOCAL (no service)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
apt-get update -qq
(cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1)
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$(dirname "$LOCAL")"
install -m 0755 "$work/root/usr/bin/prometheus" "$LOCAL"
echo "prometheus-up: $("$LOCAL" --version 2>&1 | head -1) ($LOCAL)"
