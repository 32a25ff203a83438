#!/usr/bin/env bash
# Act 1 of `make demo`: the example worker as 3 supervised instances with a secret, a kill -9 it
# survives, a stop that drains, then a scale from 3 to 5 to 2 instances with the pruned ones
# stopped and disabled. Run alone: hack/demo/act1.sh (DEMO_CHECK=1 to assert the outcomes).
set -euo pipefail
# shellcheck source=/dev/null # lib.sh: helper functions and DEMO_* variables
. "$(dirname "$0")/lib.sh"

# The instances 1..N (default: every one the demo ever had), whether loaded or not: a pruned
# instance is unloaded but systemd still answers for it (inactive, disabled).
table() {
  local n=${1:-5} u
  printf '    %-26s %-9s %-8s %-7s %-9s %s\n' INSTANCE ACTIVE SUB PID RESTARTS ENABLED
  for i in $(seq 1 "$n"); do
    u="example-worker@$i.service"
    in_demo systemctl show -p Id,ActiveState,SubState,MainPID,NRestarts,UnitFileState "$u" |
      awk -F= '{v[$1]=$2} END {printf "    %-26s %-9s %-8s %-7s %-9s %s\n", v["Id"], v["ActiveState"], v["SubState"], v["MainPID"], v["NRestarts"], v["UnitFileState"]}'
  done
}
# count_instances STATE ENABLED: how many of instances 1..5 are in that state and enablement.
count_instances() {
  local c=0 a e
  for i in 1 2 3 4 5; do
    a=$(in_demo systemctl show -P ActiveState "example-worker@$i.service")
    e=$(in_demo systemctl show -P UnitFileState "example-worker@$i.service")
    if [ "$a" = "$1" ] && [ "$e" = "$2" ]; then c=$((c + 1)); fi
  done
  echo "$c"
}
deploy() {
  playbook "$DEMO_ROOT/playbooks/example_worker.yml" \
    -e example_worker_secret="$secret" -e example_worker_count="$1"
}

act "Act 1: workers that come back after kill -9, drain on stop, and scale"
say "A systemd container stands in for a server; the collection's example worker is deployed on it" \
    "with the worker role (playbooks/example_worker.yml): one template unit, N instances."
demo_container

step "Deploying the example worker: 3 instances, a secret in a root-only EnvironmentFile"
secret="demo-secret-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
deploy 3
table 3
echo
echo "    env file: $(in_demo stat -c '%U:%G %a %n' /etc/supervised-background/example-worker.env)"
echo "    the worker proves it sees the secret without printing it (sha256 in its state file):"
# shellcheck disable=SC2016 # expanded by the shell inside the container
in_demo sh -c 'for f in /var/lib/example-worker/*.json; do python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(\"      instance\", d[\"instance\"], \"secret sha256\", d[\"secret_sha256\"][:16] + \"...\")" "$f"; done'
expect "3 instances active and enabled" eq "$(count_instances active enabled)" 3

step "kill -9 the main process of example-worker@2: systemd brings it back"
old=$(in_demo systemctl show -P MainPID example-worker@2.service)
echo "    killing PID $old"
in_demo kill -9 "$old"
t0=$EPOCHREALTIME
new=$old
for _ in $(seq 1 100); do
  new=$(in_demo systemctl show -P MainPID example-worker@2.service)
  st=$(in_demo systemctl show -P ActiveState example-worker@2.service)
  if [ "$new" != 0 ] && [ "$new" != "$old" ] && [ "$st" = active ]; then break; fi
  sleep 0.1
done
echo "    back with PID $new after $(since "$t0") s (RestartSec=1s)"
table 3
expect "example-worker@2 restarted with a new PID ($old -> $new)" \
  test "$new" != 0 -a "$new" != "$old" -a "$(in_demo systemctl show -P NRestarts example-worker@2.service)" -ge 1

step "systemctl stop example-worker@3: the worker drains before it exits"
t0=$EPOCHREALTIME
in_demo systemctl stop example-worker@3.service
echo "    stop took $(since "$t0") s; result: $(in_demo systemctl show -P Result example-worker@3.service), exit status $(in_demo systemctl show -P ExecMainStatus example-worker@3.service)"
faint "journal of example-worker@3:"
in_demo journalctl -u example-worker@3.service --no-pager -o short-precise -n 5 | sed 's/^/      /'
table 3

step "Scale up: the same playbook with example_worker_count=5"
say "The role starts what is missing (@3 again, @4, @5) and waits for each one's READY=1."
deploy 5
table 5
expect "5 instances active and enabled after the scale to 5" eq "$(count_instances active enabled)" 5

step "Scale down: example_worker_count=2"
say "Instances outside the wanted set are pruned: each drains and stops, is disabled (it will not" \
    "come back at boot) and is forgotten by systemd."
t0=$EPOCHREALTIME
deploy 2
echo "    the play took $(since "$t0") s"
table 5
expect "2 instances active and enabled after the scale to 2" eq "$(count_instances active enabled)" 2
expect "the 3 pruned instances are stopped and disabled" eq "$(count_instances inactive disabled)" 3
faint "journal of a pruned instance, example-worker@5:"
in_demo journalctl -u example-worker@5.service --no-pager -o short-precise -n 3 | sed 's/^/      /'

step "Look around"
look "docker exec -it $DEMO_NAME bash" "a shell on the target" \
  "docker exec $DEMO_NAME systemctl status 'example-worker@*'" "the instances" \
  "docker exec $DEMO_NAME journalctl -u example-worker@1 -f" "one instance's log" \
  "docker exec $DEMO_NAME systemd-analyze security example-worker@1" "its sandbox score"
