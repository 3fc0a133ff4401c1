#!/usr/bin/env bash
# Makes sure a Prometheus server binary is installed (Debian's `prometheus` package), for the metrics
# tests. Idempotent: does nothing when /usr/bin/prometheus is already there. The tests start their own
# server on 127.0.0.1 with a temporary config and data directory; the packaged service is not used.
set -euo pipefail

BIN="${TERMGATE_PROMETHEUS:-/usr/bin/prometheus}"

if [ ! -x "$BIN" ]; then
  echo "prometheus-up: installing prometheus from Debian"
  apt-get update -qq
  # --no-install-recommends: the server alone, without the node exporter and the packaged web assets.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# The package enables and starts a service listening on every interface: tests need none of it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi
"$BIN" --version | head -1
