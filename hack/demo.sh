#!/usr/bin/env bash
# make demo: three acts on a local systemd container, each in its own script under hack/demo/:
#   act1.sh  workers: 3 supervised instances with a secret, kill -9, a draining stop, scale 3 -> 5 -> 2
#   act2.sh  a CI runner host (ci_runner role, stand-in tunnel): a job with a failing step the
#            seed's way (`openfortivpn & sleep 5`) and with `ci-tunnel run`; SIGKILL of a job's shell
#   act3.sh  a one-off migration started detached with transient_job: outlives its controller,
#            duplicate start refused, result read back, nothing left
#
#   hack/demo.sh [SUITE]            the demo; its container, supervised-demo, stays to look around
#   DEMO_CHECK=1 hack/demo.sh       CI check (make demo-check): every act asserts its outcomes, the
#                                   first failure exits 1; the container supervised-demo-check is
#                                   removed at the end
#   hack/demo.sh --clean            remove every demo container (supervised-demo*)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "--clean" ]; then
  found=$(docker ps -a --format '{{.Names}}' | grep -E '^supervised-demo' || true)
  if [ -z "$found" ]; then
    echo "demo: nothing to clean"
    exit 0
  fi
  for c in $found; do
    docker rm -f "$c" >/dev/null && echo "demo: removed container $c"
  done
  exit 0
fi
export DEMO_DISTRO=${1:-bookworm}
# shellcheck source=/dev/null # demo/lib.sh: helper functions and DEMO_* variables
. "$here/demo/lib.sh"

start=$EPOCHREALTIME
DEMO_TMP=$(mktemp -d "${TMPDIR:-/tmp}/supervised-demo.XXXXXX")
export DEMO_TMP
cleanup() {
  rm -rf "$DEMO_TMP"
  if [ "$DEMO_CHECK" = 1 ]; then
    docker rm -f "$DEMO_NAME" >/dev/null 2>&1 && echo "demo-check: removed container $DEMO_NAME"
  fi
  return 0
}
trap cleanup EXIT

printf '%s: three acts on a local systemd container (%s, Debian %s)\n' \
  "$(strong supervised.background demo)" "$DEMO_NAME" "$DEMO_DISTRO"
say "1. workers that survive kill -9, drain on stop and scale" \
    "2. a CI job's VPN tunnel: the seed's way hangs, ci-tunnel always stops it" \
    "3. a one-off migration that does not depend on the session that started it"
if docker inspect "$DEMO_NAME" >/dev/null 2>&1; then
  docker rm -f "$DEMO_NAME" >/dev/null
  echo "(replaced the previous $DEMO_NAME container: every run starts clean)"
fi

times=()
for n in 1 2 3; do
  t0=$EPOCHREALTIME
  "$here/demo/act$n.sh"
  times+=("$(since "$t0")")
done

step "Done"
printf '    act 1 workers %14s s\n    act 2 CI runner %12s s\n    act 3 one-off job %10s s\n' "${times[@]}"
total=$(since "$start" | awk '{ printf "%.0f s (%d min %02d s)", $1, $1 / 60, $1 % 60 }')
if [ "$DEMO_CHECK" = 1 ]; then
  echo "    demo-check: every act's checks passed; total time $total"
else
  echo "    total time $total"
  look "make demo-clean" "remove the container ($DEMO_NAME) and everything in it"
fi
