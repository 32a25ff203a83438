#!/usr/bin/env bash
# Act 3 of `make demo`: a one-off job (a database migration) started detached by a playbook through
# transient_job. It outlives the controller because it is a systemd service, not a child of a
# session; a second start while it runs is refused; its result, exit status and journal lines are
# read back with state: finished; nothing of it is left afterwards.
# Run alone: hack/demo/act3.sh (DEMO_CHECK=1 to assert the outcomes).
set -euo pipefail
# shellcheck source=/dev/null # lib.sh: helper functions and DEMO_* variables
. "$(dirname "$0")/lib.sh"

job=db-migrate.service
r() { jget "$DEMO_TMP/$1.json" "${@:2}"; }
job_state() { in_demo systemctl show -P ActiveState "$job"; }
migrate_count() { in_demo pgrep -c -f '[/]usr/local/lib/supervised-demo/bin/migrate' || true; }
nothing_left() {
  ! in_demo pgrep -a -f '[/]usr/local/lib/supervised-demo/bin/migrate|^sleep 600$' &&
    [ "$(in_demo systemctl show -P LoadState "$job")" = not-found ]
}

act "Act 3: a one-off migration that does not depend on the session that started it"
say "Started over SSH with & or nohup, a migration is a child of the login session: it gets" \
    "SIGHUP or is killed with the session's scope when the connection drops, or it runs on orphaned" \
    "and nobody learns how it ended. transient_job starts it as a transient systemd service instead."
demo_container
demo_tmp

step "A deploy playbook starts the migration detached (hack/demo/migrate-start.yml, wait: false)"
t0=$EPOCHREALTIME
playbook "$DEMO_DIR/migrate-start.yml" -e demo_result="$DEMO_TMP/start.json" &
controller=$!
wait "$controller"
echo "    the playbook returned after $(since "$t0") s with $(r start unit), invocation $(r start invocation_id)"
t_gone=$EPOCHREALTIME
controller_gone() { ! kill -0 "$controller" 2>/dev/null; }
if controller_gone; then
  echo "    the controller, ansible-playbook PID $controller, is gone (and its docker exec sessions with it)"
fi
expect "the controller process (ansible-playbook, PID $controller) has exited" controller_gone

step "The migration runs on without it"
say "It is not a child of any session: its parent is PID 1 (systemd), it leads a session of its" \
    "own with no terminal, and it lives in its own cgroup under system.slice."
main=$(in_demo systemctl show -P MainPID "$job")
in_demo systemctl status --no-pager -n 0 "$job" | sed 's/^/    /'
echo
in_demo ps -o pid,ppid,sid,tty,etime,args -p "$main" | sed 's/^/    /'
echo "    $(since "$t_gone") s after the controller exited: $job is $(job_state)"
expect "the job is still running after its playbook has exited" eq "$(job_state)" active
expect "its main process is a child of PID 1 in a session of its own" \
  eq "$(in_demo ps -o ppid=,sid= -p "$main" | awk '{print $1, $2}')" "1 $main"

step "The same deploy playbook again while the migration runs (a retry, a second pipeline)"
playbook "$DEMO_DIR/migrate-start.yml" -e demo_result="$DEMO_TMP/again.json"
printf '    %-22s %-10s %-8s %-16s %s\n' RUN CHANGED RUNNING ALREADY_RUNNING INVOCATION
printf '    %-22s %-10s %-8s %-16s %s\n' "first start" "$(r start changed)" "$(r start running)" "$(r start already_running)" "$(r start invocation_id)"
printf '    %-22s %-10s %-8s %-16s %s\n' "second start" "$(r again changed)" "$(r again running)" "$(r again already_running)" "$(r again invocation_id)"
count=$(migrate_count)
echo "    migrations running: $count"
duplicate_refused() {
  [ "$(r again already_running)" = true ] && [ "$(r again changed)" = false ] &&
    [ "$(r again invocation_id)" = "$(r start invocation_id)" ]
}
expect "the second start was refused as a duplicate (already_running, not changed, same invocation)" duplicate_refused
expect "exactly one migration runs" eq "$count" 1

step "A later play reads the result back (hack/demo/migrate-finish.yml, state: finished)"
say "The task waits for the job to end, then reads what job-finish recorded and the job's journal."
t0=$EPOCHREALTIME
playbook "$DEMO_DIR/migrate-finish.yml" -e demo_invocation_id="$(r start invocation_id)" \
  -e demo_result="$DEMO_TMP/finish.json"
echo "    (the task waited $(since "$t0") s, most of it for the job to end)"
leftovers=$(python3 - "$DEMO_TMP/finish.json" <<'PY'
import json
import sys

found = json.load(open(sys.argv[1], encoding="utf-8")).get("leftovers") or []
print(", ".join(f"{p['name']} (PID {p['pid']}, {p.get('executable') or 'executable unknown'})" for p in found) or "none")
PY
)
printf '    %-16s %s\n' unit "$(r finish unit)" invocation "$(r finish invocation_id)" state "$(r finish state)" \
  result "$(r finish result)" "exit status" "$(r finish exit_status) ($(r finish exit_code))" \
  duration "$(r finish duration_sec) s" "killed after it" "$leftovers"
echo "    journal lines (output_lines):"
r finish output_lines | python3 -c 'import json, sys; [print("      " + line) for line in json.load(sys.stdin)]'
read_back() {
  [ "$(r finish result)" = success ] && [ "$(r finish exit_status)" = 0 ] &&
    [ "$(r finish invocation_id)" = "$(r start invocation_id)" ]
}
expect "result success, exit status 0, for the invocation that was started" read_back
expect "its journal lines came back" grep -q "migrate: done" "$DEMO_TMP/finish.json"

step "Nothing of it is left"
echo "    $job: LoadState=$(in_demo systemctl show -P LoadState "$job"), ActiveState=$(job_state)"
echo "    processes of the migration or its forgotten helper: $(in_demo pgrep -a -f '[/]usr/local/lib/supervised-demo/bin/migrate|^sleep 600$' || echo none)"
expect "no process of the job left and its unit unloaded" nothing_left

step "Look around"
look "docker exec $DEMO_NAME journalctl -u $job" "the migration's log, kept in the journal" \
  "docker exec $DEMO_NAME cat /run/supervised-background/jobs/$job.json" "what job-finish recorded of its end" \
  "docker exec $DEMO_NAME systemctl list-units --all 'db-migrate*'" "nothing: the unit is gone"
