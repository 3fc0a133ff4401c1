#!/usr/bin/env bash
# Makes a Docker engine answer on /var/run/docker.sock and builds the local vPLC stand-in image.
# Idempotent: reuses a running engine and an existing image.
#
# If it starts dockerd and TERMGATE_DOCKERD_PIDFILE is set, it writes "<pid> <start time>" of that
# dockerd there, so whoever asked (.ci/run) can stop exactly that process later and nothing else.
set -euo pipefail
# shellcheck source=lib/proc.sh
. "$(dirname "$0")/lib/proc.sh"

IMAGE="${TERMGATE_TEST_IMAGE:-vplc-test:latest}"
LOG="${TMPDIR:-/tmp}/termgate-dockerd.log"

need_pkg() { command -v "$1" >/dev/null 2>&1; }

if ! need_pkg dockerd || [ ! -x /bin/busybox ]; then
  echo "docker-up: installing docker.io and busybox-static from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "docker-up: starting dockerd (no bridge, no iptables: containers get no network)"
  # setsid: its own session, so a Ctrl-C of `npm start` does not reach it. Not a process group leader
  # here, so setsid(1) execs in place and $! is dockerd itself.
  setsid dockerd --host unix:///var/run/docker.sock --bridge=none --iptables=false --ip-forward=false \
    >"$LOG" 2>&1 </dev/null &
  pid=$!
  if [ -n "${TERMGATE_DOCKERD_PIDFILE:-}" ]; then
    # With its start time, so that a later process reusing the PID is never mistaken for it.
    sleep 0.2
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
      echo "$pid $(proc_starttime "$pid")" >"$TERMGATE_DOCKERD_PIDFILE"
    else
      echo "docker-up: could not identify the dockerd it started (pid $pid); it will not be stopped" >&2
    fi
  fi
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "docker-up: dockerd did not answer; see $LOG" >&2; exit 1; }
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "docker-up: building $IMAGE from busybox"
  root="$(mktemp -d)"
  mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/dev" "$root/sys" "$root/etc"
  cp /bin/busybox "$root/bin/"
  for applet in sh ls cat echo printf sleep yes head tail stty env id uname tr od kill ps wc sha256sum seq true false dd base64 top; do
    ln -sf busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" -c . | docker import - "$IMAGE" >/dev/null
  rm -rf "$root"
fi
echo "docker-up: engine ready, image $IMAGE present"
