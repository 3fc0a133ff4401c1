# Shell helpers to act on a process only if it is the one recorded: a PID plus its start time (field 22
# of /proc/PID/stat, in clock ticks since boot), since a PID alone may have been reused by then.
# Sourced by .ci/run and scripts/host-fixture.sh.

# proc_starttime PID: prints the start time of PID, or nothing if it is gone.
proc_starttime() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  stat="${stat##*) }"
  awk '{print $20}' <<<"$stat"
}

# proc_is PID STARTTIME: true if that very process still runs (and is not a zombie).
proc_is() {
  [ -n "$1" ] && [ -n "$2" ] && [ "$(proc_starttime "$1")" = "$2" ] &&
    [ "$(awk '{print $1}' <<<"$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null)")" != Z ]
}

# stop_recorded FILE NAME: FILE holds "PID STARTTIME"; sends SIGTERM to that process only if it is
# still the one recorded, and waits up to 30 s for it to exit.
stop_recorded() {
  local pid start
  read -r pid start <"$1" || return 0
  if ! proc_is "$pid" "$start"; then
    echo "$2 (pid $pid) already gone"
    return 0
  fi
  echo "stopping the $2 this run started (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 300); do
    proc_is "$pid" "$start" || return 0
    sleep 0.1
  done
  echo "$2 (pid $pid) did not exit within 30 s; left running" >&2
}
