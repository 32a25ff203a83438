#!/usr/bin/env bash
# make demo: a local systemd container as the target, the example worker deployed as 3 supervised
# instances with a secret, then a kill -9 and a graceful stop shown live.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=supervised-demo

if [ "${1:-}" = "--clean" ]; then
  docker rm -f "$name" >/dev/null 2>&1 && echo "demo: removed container $name" || echo "demo: nothing to clean"
  exit 0
fi
distro=${1:-bookworm}

bold=$(tput bold 2>/dev/null || true); dim=$(tput dim 2>/dev/null || true); off=$(tput sgr0 2>/dev/null || true)
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
in_demo() { docker exec "$name" "$@"; }

table() {
  printf '%-26s %-8s %-8s %-7s %-9s %-8s\n' INSTANCE ACTIVE SUB PID RESTARTS ENABLED
  for u in $(in_demo systemctl list-units --all --plain --no-legend 'example-worker@*.service' | awk '{print $1}' | sort -V); do
    in_demo systemctl show -p Id,ActiveState,SubState,MainPID,NRestarts,UnitFileState "$u" |
      awk -F= '{v[$1]=$2} END {printf "%-26s %-8s %-8s %-7s %-9s %-8s\n", v["Id"], v["ActiveState"], v["SubState"], v["MainPID"], v["NRestarts"], v["UnitFileState"]}'
  done
}

step "Starting a systemd container ($distro) as the target: $name"
if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null || true)" != true ]; then
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --hostname "$name" \
    --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp -e container=docker --stop-signal SIGRTMIN+3 \
    "supervised-bg:$distro" >/dev/null
fi
for _ in $(seq 1 50); do
  s=$(in_demo systemctl is-system-running 2>/dev/null || true)
  case "$s" in running|degraded) break ;; esac
  sleep 0.2
done
echo "systemd in the container: $(in_demo systemctl is-system-running 2>/dev/null || true)"

step "Deploying the example worker: 3 instances, a secret in a root-only EnvironmentFile"
secret="demo-secret-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_CALLBACK_RESULT_FORMAT=yaml \
  ansible-playbook -i "$name," -c community.docker.docker \
  "$root/playbooks/example_worker.yml" \
  -e example_worker_secret="$secret" -e example_worker_count=3

step "The instances"
table
echo
echo "env file: $(in_demo stat -c '%U:%G %a %n' /etc/supervised-background/example-worker.env)"
echo "the worker proves it sees the secret without printing it (sha256 in its state file):"
# shellcheck disable=SC2016 # expanded by the shell inside the container
in_demo sh -c 'for f in /var/lib/example-worker/*.json; do python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(\"  instance\", d[\"instance\"], \"secret sha256\", d[\"secret_sha256\"][:16] + \"...\")" "$f"; done'

step "kill -9 the main process of example-worker@2: systemd brings it back"
old=$(in_demo systemctl show -p MainPID --value example-worker@2.service)
echo "killing PID $old"
in_demo kill -9 "$old"
t0=$(date +%s%N)
for _ in $(seq 1 100); do
  new=$(in_demo systemctl show -p MainPID --value example-worker@2.service)
  st=$(in_demo systemctl show -p ActiveState --value example-worker@2.service)
  if [ "$new" != 0 ] && [ "$new" != "$old" ] && [ "$st" = active ]; then break; fi
  sleep 0.1
done
echo "back with PID $new after $(( ($(date +%s%N) - t0) / 1000000 )) ms (RestartSec=1s)"
table

step "systemctl stop example-worker@3: the worker drains before it exits"
t0=$(date +%s%N)
in_demo systemctl stop example-worker@3.service
echo "stop took $(( ($(date +%s%N) - t0) / 1000000 )) ms; result: $(in_demo systemctl show -p Result --value example-worker@3.service), exit status $(in_demo systemctl show -p ExecMainStatus --value example-worker@3.service)"
echo "${dim}journal of example-worker@3:${off}"
in_demo journalctl -u example-worker@3.service --no-pager -o short-precise -n 8 | sed 's/^/  /'
table

step "Look around, then clean up"
cat <<MSG
  docker exec -it $name bash                                     a shell on the target
  docker exec $name systemctl status 'example-worker@*'          the instances
  docker exec $name journalctl -u example-worker@1 -f            one instance's log
  docker exec $name systemd-analyze security example-worker@1    its sandbox score
  make demo-clean                                                remove the container
MSG
