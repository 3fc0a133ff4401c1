#!/usr/bin/env bash
# `npm start`: the demo on a fresh machine. Installs what is missing (npm packages, a Docker engine and
# the local vPLC image), builds, then runs `termgate demo` (cloud stand-in + agent + demo containers).
# Extra arguments go to `termgate demo`, e.g. `npm start -- --listen 127.0.0.1:9000`.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/docker-up.sh
npm run --silent build
exec node dist/src/cli.js demo "$@"
