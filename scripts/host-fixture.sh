#!/usr/bin/env bash
# A "real host" for .ci/run: things named like what runs on a host where termgate is used, which no
# script, test, bench or demo of ours may touch, since they did not create them.
#
#   host-fixture.sh create STATE_DIR             vplc-keep-<tag>-1..3 running and -stopped (no termgate
#                                                label), a `docker events` recorder on them, and two
#                                                processes named like services: `dockerd --host
#                                                unix:///var/run/docker.sock …` and `prometheus …` (a
#                                                `sleep` under those names, so a pattern kill hits them)
#   host-fixture.sh check STATE_DIR              fails unless all of it is as created: same container ids,
#                                                states and start times, no process added in them, no
#                                                Docker event on them since, same processes alive
#   host-fixture.sh remove-containers STATE_DIR  removes the containers by their recorded ids
#   host-fixture.sh remove-processes STATE_DIR   ends the processes by their recorded PIDs; fails if one
#                                                had already gone
set -euo pipefail
# shellcheck source=lib/proc.sh
. "$(dirname "$0")/lib/proc.sh"

IMAGE="${TERMGATE_TEST_IMAGE:-vplc-test:latest}"
cmd="${1:-}"
state="${2:-}"
[ -n "$cmd" ] && [ -n "$state" ] || {
  echo "usage: $0 create|check|remove-containers|remove-processes STATE_DIR" >&2
  exit 2
}

# What `docker inspect` says of a container, as one comparable line.
describe_container() {
  docker inspect --format '{{.Id}} {{.Name}} {{.State.Status}} {{.State.StartedAt}} restarts={{.RestartCount}}' "$1"
}

# The processes running in a running container, as one line (empty for a stopped one).
processes_in() {
  if [ "$(docker inspect --format '{{.State.Running}}' "$1")" = true ]; then
    docker top "$1" -o pid,args | tail -n +2 | tr -s ' ' | sort | tr '\n' ';'
  fi
}

# start_service NAME ARGV0: a sleep whose command name is NAME and whose command line starts with ARGV0.
start_service() {
  local name="$1" argv0="$2" pid
  ln -sf "$(command -v sleep)" "$state/bin/$name"
  rm -f "$state/$name.pid"
  setsid bash -c 'echo $$ >"$1"; exec -a "$2" "$3" infinity' _ "$state/$name.pid" "$argv0" "$state/bin/$name" \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 50); do
    [ -s "$state/$name.pid" ] && break
    sleep 0.1
  done
  pid="$(cat "$state/$name.pid")"
  sleep 0.2 # until the exec has happened
  [ "$(cat "/proc/$pid/comm")" = "$name" ] || {
    echo "host-fixture: $name did not start" >&2
    exit 1
  }
  echo "$pid $(proc_starttime "$pid") $name" >>"$state/processes"
  tr '\0' ' ' <"/proc/$pid/cmdline" >"$state/$name.cmdline"
}

create() {
  mkdir -p "$state/bin"
  : >"$state/containers"
  : >"$state/processes"
  local tag id ids=()
  tag="$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
  for i in 1 2 3; do
    id="$(docker run -d --name "vplc-keep-$tag-$i" --init --network none "$IMAGE" /bin/sleep 1000000000)"
    ids+=("$id")
  done
  # A PLC under maintenance: created, not running.
  ids+=("$(docker create --name "vplc-keep-$tag-stopped" --network none "$IMAGE" /bin/sleep 1000000000)")
  for id in "${ids[@]}"; do
    echo "$id" >>"$state/containers"
    describe_container "$id" >"$state/$id.inspect"
    processes_in "$id" >"$state/$id.top"
  done

  # Every Docker event on them from now on (exec_create, kill, stop, restart, destroy…) is recorded.
  local filters=()
  for id in "${ids[@]}"; do filters+=(--filter "container=$id"); done
  setsid docker events --format '{{.Time}} {{.Action}} {{.Actor.Attributes.name}}' "${filters[@]}" \
    </dev/null >"$state/events.log" 2>&1 &
  echo "$! $(proc_starttime $!)" >"$state/events.pid"

  start_service dockerd \
    'dockerd --host unix:///var/run/docker.sock --bridge=none --iptables=false --ip-forward=false'
  start_service prometheus 'prometheus --config.file=/etc/prometheus/prometheus.yml'

  echo "host-fixture: created vplc-keep-$tag-{1,2,3} (running) and vplc-keep-$tag-stopped, no termgate label;"
  echo "host-fixture: service-like processes: $(awk '{printf "%s (pid %s) ", $3, $1}' "$state/processes")"
}

check() {
  local failed=0 id now
  while read -r id; do
    now="$(describe_container "$id" 2>&1 || true)"
    if [ "$now" != "$(cat "$state/$id.inspect")" ]; then
      echo "host-fixture: container changed or gone: was '$(cat "$state/$id.inspect")', now '$now'" >&2
      failed=1
    elif [ "$(processes_in "$id")" != "$(cat "$state/$id.top")" ]; then
      echo "host-fixture: processes in $id changed: $(processes_in "$id")" >&2
      failed=1
    fi
  done <"$state/containers"
  local pid start
  read -r pid start <"$state/events.pid"
  if ! proc_is "$pid" "$start"; then
    echo "host-fixture: the docker events recorder stopped: $(cat "$state/events.log")" >&2
    failed=1
  elif grep -qv ' top ' "$state/events.log"; then
    # `top` is a read (this check makes it too); anything else acted on them.
    echo "host-fixture: Docker events on the bystander containers:" >&2
    grep -v ' top ' "$state/events.log" >&2
    failed=1
  fi
  local name
  while read -r pid start name; do
    if ! proc_is "$pid" "$start"; then
      echo "host-fixture: the process named $name (pid $pid) was killed" >&2
      failed=1
    elif [ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" != "$(cat "$state/$name.cmdline")" ]; then
      echo "host-fixture: the process named $name (pid $pid) changed" >&2
      failed=1
    fi
  done <"$state/processes"
  if [ "$failed" = 1 ]; then
    echo "host-fixture: FAILED: something touched what it did not create" >&2
    return 1
  fi
  echo "host-fixture: untouched: $(wc -l <"$state/containers") containers (same ids, states, start times," \
    "processes; no Docker event on them but reads) and $(wc -l <"$state/processes") processes (same PIDs and start times)"
}

remove_containers() {
  local pid start
  if [ -s "$state/events.pid" ]; then
    read -r pid start <"$state/events.pid"
    if proc_is "$pid" "$start"; then kill "$pid"; fi
  fi
  if [ -s "$state/containers" ]; then
    # By the ids recorded at creation, never by name.
    xargs docker rm -f <"$state/containers" >/dev/null
    echo "host-fixture: removed its $(wc -l <"$state/containers") containers"
  fi
  : >"$state/containers"
}

remove_processes() {
  local pid start name gone=0
  while read -r pid start name; do
    if proc_is "$pid" "$start"; then
      kill "$pid"
    else
      echo "host-fixture: the process named $name (pid $pid) had been killed" >&2
      gone=1
    fi
  done <"$state/processes"
  : >"$state/processes"
  return "$gone"
}

case "$cmd" in
  create) create ;;
  check) check ;;
  remove-containers) remove_containers ;;
  remove-processes) remove_processes ;;
  *)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
