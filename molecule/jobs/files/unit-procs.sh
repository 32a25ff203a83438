#!/usr/bin/env bash
# unit-procs.sh UNIT [PATTERN]: how many processes are in UNIT's cgroup now (sub-cgroups included;
# the most any hierarchy shows: cgroup v1 name=systemd, the hybrid unified one, or v2); 0 when
# systemd has removed the cgroup. The unit's cgroup is looked up next to PID 1's (the container's
# systemd): <PID 1's slice root>/system.slice/UNIT. With PATTERN, a second line: how many processes
# anywhere match it (pgrep -f; write it as '[s]leep 1001' so it does not match this script's own
# command line).
set -euo pipefail
unit=$1
pattern=${2:-}
count=0
while IFS=: read -r _ controller path; do
  case "$controller" in
    name=systemd) roots=(/sys/fs/cgroup/systemd) ;;
    "") roots=(/sys/fs/cgroup/unified /sys/fs/cgroup) ;;
    *) continue ;;
  esac
  base=${path%/init.scope}
  for root in "${roots[@]}"; do
    dir="$root$base/system.slice/$unit"
    [ -d "$dir" ] || continue
    here=0
    while IFS= read -r -d '' procs; do
      here=$((here + $(grep -c . "$procs" || true)))
    done < <(find "$dir" -name cgroup.procs -print0)
    [ "$here" -gt "$count" ] && count=$here
  done
done < /proc/1/cgroup
echo "$count"
if [ -n "$pattern" ]; then
  pgrep -fc -- "$pattern" || true
fi
