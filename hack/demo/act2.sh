#!/usr/bin/env bash
# Act 2 of `make demo`: a CI runner host provisioned by the ci_runner role (a stand-in tunnel, as
# there is no VPN gateway). A job with a failing step, run as GitLab Runner runs it: the seed's way
# (`openfortivpn & sleep 5`), which hangs with its tunnel up, then with `ci-tunnel run`, which
# ends at once with the step's status and the tunnel stopped; then a job's shell SIGKILLed with a
# tunnel up. Run alone: hack/demo/act2.sh (DEMO_CHECK=1 to assert the outcomes).
set -euo pipefail
# shellcheck source=/dev/null # lib.sh: helper functions and DEMO_* variables
. "$(dirname "$0")/lib.sh"

lib=/usr/local/lib/supervised-demo
results=/run/supervised-demo/jobs
unit=openfortivpn@corp.service
cutoff=9

# run_job NAME SCRIPT [HARNESS-OPTION...]: show the script, run it under the harness, fetch the
# harness's summary to $DEMO_TMP/NAME.json.
run_job() {
  local name=$1 script=$2
  shift 2
  echo "    job script (bash -eo pipefail, as gitlab-runner):"
  printf '%s\n' "$script" | sed 's/^/      $ /'
  echo "    timeline (seconds from the job's start; | is the job's output):"
  in_demo python3 "$lib/job_harness.py" --name "$name" --result "$results/$name.json" "$@" "$script"
  in_demo cat "$results/$name.json" >"$DEMO_TMP/$name.json"
}
r() { jget "$DEMO_TMP/$1.json" "${@:2}"; }
# Seconds with two decimals.
f2() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }
unit_state() { in_demo systemctl show -P ActiveState "$unit"; }
stopped() { case "$(unit_state)" in inactive|failed) return 0 ;; esac; return 1; }
guard_stopped() {
  case "$(in_demo systemctl show -P ActiveState ci-tunnel-guard@corp.service)" in inactive|failed) return 0 ;; esac
  return 1
}
# No process of the supervised tunnel (its program and helper name the config in their argv).
no_tunnel_process() { ! in_demo pgrep -a -f '[/]etc/openfortivpn/corp[.]conf'; }
no_lease() { ! in_demo test -e /run/ci-tunnel/corp.lease; }
alive_in_demo() { in_demo kill -0 "$1" 2>/dev/null; }

act "Act 2: a CI job's VPN tunnel, the seed's way and with ci-tunnel"
say "A CI runner host provisioned by the ci_runner role, with a tunnel named corp. There is no VPN" \
    "gateway here: the tunnel runs the runner scenario's stand-in for openfortivpn (ready after" \
    "0.3 s, runs until SIGTERM, with a helper child as openfortivpn has pppd)."
demo_container
demo_tmp

step "Provisioning the runner host with the ci_runner role (hack/demo/runner.yml)"
t0=$EPOCHREALTIME
playbook "$DEMO_DIR/runner.yml" -e demo_standin="$DEMO_ROOT/molecule/runner/files/fake_tunnel.py"
echo "    provisioned in $(since "$t0") s"
echo "    the runner user's sudo rules: exactly start and stop of this one tunnel:"
in_demo sed -n 's/^[^#].*NOPASSWD: */      /p' /etc/sudoers.d/ci-runner | tr ',' '\n' | sed 's/^ */      /'
echo "    $unit: $(unit_state) (the role never starts a tunnel)"

step "(a) The seed's way: openfortivpn & sleep 5, then a failing step"
say "The harness runs the job as GitLab Runner does and waits for its output to close. The step" \
    "fails, errexit ends the shell, and the cleanup line is never reached; the background tunnel" \
    "still holds the job's output open, so the runner keeps waiting. The demo cuts it off at ${cutoff} s."
run_job naive "$(cat <<'JOB'
openfortivpn -c corp.conf &
sleep 5
deploy-step
kill "$!"  # never reached
JOB
)" --cutoff "$cutoff"
naive_pids=$(r naive left_running | python3 -c 'import json,sys; print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)))')
naive_tunnel=$(r naive left_running | python3 -c 'import json,sys; print(next((p["pid"] for p in json.load(sys.stdin) if "fake_tunnel" in p["args"]), ""))')
echo "    still running after the cut-off (the shell is gone; its tunnel is not, nobody will stop it):"
if [ -n "$naive_pids" ]; then
  # shellcheck disable=SC2086 # a list of PIDs
  in_demo ps -o pid,ppid,user:14,etime,args -p "${naive_pids// /,}" | sed 's/^/      /'
fi
expect "the naive job's shell exited with the step's status 7" eq "$(r naive rc)" 7
expect "the naive job's output was still open at the ${cutoff} s cut-off" eq "$(r naive eof)" null
expect "its tunnel (PID ${naive_tunnel:-none}) is still running" alive_in_demo "${naive_tunnel:-0}"
echo "    the demo ends it by hand (kill -TERM -- -$(r naive shell_pid)); on a real runner it runs on"
in_demo kill -TERM -- "-$(r naive shell_pid)" 2>/dev/null || true
for _ in $(seq 1 50); do alive_in_demo "${naive_tunnel:-0}" || break; sleep 0.1; done

step "(b) The same job with ci-tunnel run"
say "ci-tunnel starts openfortivpn@corp.service, waits for systemd's READY=1 (no sleep), runs the" \
    "step, stops the tunnel whatever happened and exits with the step's status."
run_job run "$(cat <<'JOB'
ci-tunnel run corp -- deploy-step
echo "never reached"
JOB
)" --cutoff 30
run_after=$(awk -v a="$(r run eof)" -v b="$(r run step_end)" 'BEGIN { printf "%.2f", a - b }')
echo "    the job ended $run_after s after its failing step; $unit: $(unit_state)"
expect "ci-tunnel run exited with the step's status 7" eq "$(r run rc)" 7
expect "the job ended within 2 s of the failing step ($run_after s)" lt "$run_after" 2
expect "the tunnel is stopped, no tunnel process or lease left" eval 'stopped && no_tunnel_process && no_lease'

step "(c) SIGKILL of a job's shell while its tunnel is up (ci-tunnel up)"
say "No trap runs on SIGKILL. The tunnel's guard unit watches the job's shell (a pidfd) and" \
    "systemd stops the tunnel as soon as the shell is gone."
run_job kill "$(cat <<'JOB'
ci-tunnel up corp
trap 'rc=$?; trap - EXIT ERR; ci-tunnel down corp; exit $rc' EXIT ERR
echo "tests running through the tunnel"
sleep 300
JOB
)" --cutoff 20 --sigkill-after "tests running" --unit "$unit"
kill_after=$(awk -v a="$(r kill unit_down)" -v b="$(r kill sigkill)" 'BEGIN { if (a == "null") print "never"; else printf "%.2f", a - b }')
faint "the guard's journal:"
in_demo journalctl -q -o cat -u ci-tunnel-guard@corp.service --no-pager -n 2 | sed 's/^/      /'
expect "the job's shell died of SIGKILL (137)" eq "$(r kill rc)" 137
expect "the tunnel was stopped within 5 s of the SIGKILL ($kill_after s)" lt "$kill_after" 5
expect "the tunnel and its guard are stopped, no tunnel process left" \
  eval 'stopped && guard_stopped && no_tunnel_process'
say "The lease file stays behind, naming a dead shell: a stale lease is free, the next job's" \
    "ci-tunnel takes it over."

step "Measured"
printf '    %-36s %-12s %-26s %-13s %s\n' JOB "STEP FAILED" "JOB ENDED (output closed)" "EXIT STATUS" "TUNNEL AFTERWARDS"
printf '    %-36s %-12s %-26s %-13s %s\n' "openfortivpn & sleep 5 (the seed)" "$(f2 "$(r naive step_end)") s" \
  "not by the ${cutoff} s cut-off" "not reported" "was still running (PID ${naive_tunnel:-?})"
printf '    %-36s %-12s %-26s %-13s %s\n' "ci-tunnel run corp -- deploy-step" "$(f2 "$(r run step_end)") s" \
  "$(f2 "$(r run eof)") s (+$run_after s)" "$(r run rc)" "stopped"
printf '    %-36s %-12s %-26s %-13s %s\n' "ci-tunnel up corp; SIGKILL of shell" "-" \
  "SIGKILL at $(f2 "$(r kill sigkill)") s" "$(r kill rc)" "stopped $kill_after s after the SIGKILL"

step "Look around"
look "docker exec -it $DEMO_NAME runuser -u gitlab-runner -- bash" "a shell as the runner user; in it:" \
  "  ci-tunnel run corp -- systemctl is-active $unit" "a step inside the tunnel (stopped after it)" \
  "docker exec $DEMO_NAME journalctl -u $unit -u ci-tunnel-guard@corp" "the tunnel's and its guard's log" \
  "docker exec $DEMO_NAME systemctl cat $unit" "the tunnel unit and its drop-in" \
  "docker exec $DEMO_NAME cat /etc/sudoers.d/ci-runner" "the runner's only sudo rules"
