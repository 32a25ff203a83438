#!/usr/bin/env bash
# Test the collection with newer ansible-core releases as the controller. ansible-core 2.20 and
# later need Python >= 3.12, so each leg runs in a Debian 13 container (Python 3.13) made from the
# local test image; the 2.19 leg is `make sanity` / `make unit` on this machine (Python 3.11).
#
#   hack/controller-matrix.sh                  sanity + unit tests for every series in SERIES
#   hack/controller-matrix.sh 2.20 2.21        the same for the series named
#   hack/controller-matrix.sh --molecule       Molecule scenario MOLECULE_SCENARIO (default) on
#                                              Debian 13, ansible-core MOLECULE_SERIES as controller
#   hack/controller-matrix.sh --molecule 2.21  the same for the series named
#
# Each series runs the latest patch release PyPI has. State that makes a second run fast (one venv
# per series and purpose, ansible-test's own venvs, pip's download cache) lives under
# .build/controller-matrix; everything else works on a throwaway copy of the checkout, so the
# container writes nothing into the tree. Containers run as the calling user and are removed on
# exit, failure or interrupt. Cold (empty .build, no controller image): ~10 min for both modes on
# 2 cores; warm: ~6 min, most of it the tests themselves.
set -euo pipefail

SERIES="2.20 2.21"                  # ansible-core series checked by default (sanity + unit)
MOLECULE_SERIES="2.21"              # the newest series also converges a Molecule scenario
MOLECULE_SCENARIO=${MOLECULE_SCENARIO:-default}
DISTRO=trixie                       # controller and managed-node release (Debian 13)
CONTROLLER_PACKAGES="python3-venv git shellcheck"

root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.build/controller-matrix"
self="hack/controller-matrix.sh"

# --------------------------------------------------------------------------------------------
# Inside the controller container: /src holds ansible_collections/supervised/background (a copy),
# /cm is this series' state directory, /cm-pip the shared pip cache.
# --------------------------------------------------------------------------------------------
inside() {
  local mode=$1 series=$2
  local coll=/src/ansible_collections/supervised/background
  local venv="/cm/venv-$mode" py rc=0 start
  py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  cd "$coll"

  # Requirement lines for the packages named, exactly as requirements-test.txt pins them.
  req() {
    local name
    for name; do
      awk -v n="$name" '{ s = $0; sub(/[[<>=~!; ].*/, "", s); if (s == n) { print; found = 1 } }
        END { exit !found }' requirements-test.txt || { echo "no '$name' in requirements-test.txt" >&2; return 1; }
    done
  }
  local minor=${series#*.} lines
  local -a reqs=("ansible-core==$series.*")
  case "$mode" in
    check) lines=$(req pytest hypothesis) ;;
    # The scenario's verifier tests import hypothesis too. The ansible bundle of the same release
    # (ansible N goes with ansible-core 2.(N+7)) brings community.docker (Galaxy is not reachable).
    molecule) lines=$(req molecule molecule-plugins pytest-testinfra docker pytest hypothesis)
              reqs+=("ansible==$((minor - 7)).*") ;;
  esac
  mapfile -t -O "${#reqs[@]}" reqs <<< "$lines"

  start=$(date +%s)
  # One venv per series and purpose, kept between runs (made anew when the image's Python changes).
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.python" 2>/dev/null)" != "$py" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    echo "$py" > "$venv/.python"
  fi
  # -U: a new patch release of the series is picked up; only the packages named are re-resolved.
  "$venv/bin/python" -m pip install -q -U --upgrade-strategy only-if-needed "${reqs[@]}"
  local core
  core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
  echo "=== ansible-core $core on Python $py ($mode venv ready in $(( $(date +%s) - start )) s)"
  export PATH="$venv/bin:$PATH"
  local color=no
  [ -n "${CI:-}" ] || color=yes

  case "$mode" in
    check)
      # ansible-test's pip bootstrap comes from a host that cannot be reached (as in `make sanity`).
      hack/install-get-pip-standin.sh "$venv"

      start=$(date +%s)
      ansible-test sanity --venv --python "$py" --color "$color" || rc=1
      record "$series" "sanity ($core)" "$start" "$rc"

      local urc=0
      start=$(date +%s)
      PYTHONPATH=/src python -m pytest -q -p no:cacheprovider tests/unit || urc=1
      record "$series" "unit ($core)" "$start" "$urc"
      [ "$urc" = 0 ] || rc=1
      ;;
    molecule)
      # Platform names must not collide with a host-side run of the same scenario on the same
      # release: the shared config appends MOLECULE_VARIANT to sb-<scenario>-<distro>.
      export MOLECULE_VARIANT="-ctl${series//./}"
      export MOLECULE_DISTRO=$DISTRO MOLECULE_EPHEMERAL_DIRECTORY=/cm/molecule-ephemeral
      export ANSIBLE_HOME="$HOME/.ansible" ANSIBLE_LOCAL_TEMP="$HOME/.ansible/tmp"
      export ANSIBLE_COLLECTIONS_PATH=/src MOLECULE_GLOB='molecule/*/molecule.yml'
      start=$(date +%s)
      molecule test -s "$MOLECULE_SCENARIO" || rc=1
      record "$series" "molecule $MOLECULE_SCENARIO on $DISTRO ($core)" "$start" "$rc"
      ;;
  esac
  return "$rc"
}

# record SERIES LEG START RC: one line of the time table (kept in the series' state directory).
record() {
  local line
  line=$(printf '%-5s %-44s %5s s  %s' "$1" "$2" "$(( $(date +%s) - $3 ))" "$([ "$4" = 0 ] && echo ok || echo FAILED)")
  echo "=== $line"
  echo "$line" >> /cm/times.txt
}

if [ "${1:-}" = "--inside" ]; then
  shift
  inside "$@"
  exit
fi

# --------------------------------------------------------------------------------------------
# On the host.
# --------------------------------------------------------------------------------------------
mode=check
if [ "${1:-}" = "--molecule" ]; then
  mode=molecule
  shift
fi
case "${1:-}" in -h|--help) sed -n '2,17p' "$0"; exit 0 ;; esac
if [ $# -eq 0 ]; then
  if [ "$mode" = molecule ]; then set -- "$MOLECULE_SERIES"; else read -r -a args <<< "$SERIES"; set -- "${args[@]}"; fi
fi
for s; do
  [[ $s =~ ^2\.[0-9]+$ ]] || { echo "controller-matrix: '$s' is not an ansible-core series such as 2.21" >&2; exit 2; }
  [ "${s#2.}" -ge 20 ] || { echo "controller-matrix: $s runs on this machine (make sanity / make unit)" >&2; exit 2; }
done

"$root/hack/ensure-docker.sh"
"$root/hack/build-image.sh" "$DISTRO" >/dev/null
mkdir -p "$state/pip-cache"

# The controller image: the test image plus a venv-capable Python, git (ansible-test lists the
# collection's files with it) and shellcheck. Rebuilt when its base or package list changes.
base="supervised-bg:$DISTRO"
image="supervised-bg-controller:$DISTRO"
recipe=$(printf '%s\n' "$(docker image inspect -f '{{.Id}}' "$base")" "$CONTROLLER_PACKAGES" | sha256sum | cut -c1-16)
# One run at a time on this machine (they share venvs, the image and the Molecule platform names);
# the lock goes with this process, after the EXIT trap has cleaned up.
exec 9>"$state/run.lock"
flock 9

containers=()
copies=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local c s
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  # Molecule platforms of an interrupted run (their names carry this run's suffix).
  if [ "$mode" = molecule ]; then
    for s in "${series_run[@]}"; do
      docker ps -aq --filter "name=^sb-.*-ctl${s//./}\$" | xargs -r docker rm -f >/dev/null 2>&1 || true
    done
  fi
  for c in "${copies[@]}"; do rm -rf "$c"; done
}
series_run=("$@")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(docker image inspect -f '{{ index .Config.Labels "supervised.controller-recipe" }}' "$image" 2>/dev/null)" != "$recipe" ]; then
  echo "=== building $image ($CONTROLLER_PACKAGES)"
  start=$(date +%s)
  builder="sb-ctl-build-$$"
  containers+=("$builder")
  docker run --init --name "$builder" -e DEBIAN_FRONTEND=noninteractive \
    -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro "$base" \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $CONTROLLER_PACKAGES >/dev/null \
           && apt-get clean && rm -rf /var/lib/apt/lists/*" &
  wait $!
  docker commit --change "LABEL supervised.controller-recipe=$recipe" --change 'CMD ["/bin/bash"]' \
    "$builder" "$image" >/dev/null
  docker rm -f "$builder" >/dev/null
  echo "=== $image built in $(( $(date +%s) - start )) s"
fi

# pip inside the containers trusts this machine's CA bundle (also in ansible-test's own venvs,
# which drop pip's environment variables, hence a global pip.conf) and keeps its HTTP cache in
# .build. (A registry proxy that sends no caching headers leaves that cache empty; the venvs kept
# under .build are what make a second run fast.)
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ncache-dir = /cm-pip\ndisable-pip-version-check = true\n' \
  > "$state/pip.conf"

rc=0
summary=()
for s in "$@"; do
  sdir="$state/$s"
  mkdir -p "$sdir/home"
  : > "$sdir/times.txt"
  copy=$("$root/hack/collection-tree.sh" copy)
  copy=${copy%/ansible_collections/*}
  copies+=("$copy")
  name="sb-ctl-${s//./}-$mode-$$"
  containers+=("$name")
  extra=()
  if [ "$mode" = molecule ]; then
    sock=/var/run/docker.sock
    extra=(-v "$sock:$sock" -v "$(command -v docker):/usr/local/bin/docker:ro" --group-add "$(stat -c %g "$sock")")
  fi
  echo "=== ansible-core $s: $mode in $image"
  start=$(date +%s)
  # In the background and waited for, so that an interrupt reaches the trap at once (bash runs
  # traps only between foreground commands); --init passes signals on to the inner script.
  docker run --rm --init --name "$name" --user "$(id -u):$(id -g)" \
    -e HOME=/cm/home -e USER="$(id -un)" -e LOGNAME="$(id -un)" -e CI -e PY_COLORS -e ANSIBLE_FORCE_COLOR \
    -e MOLECULE_SCENARIO="$MOLECULE_SCENARIO" \
    -v "$copy:/src" -v "$sdir:/cm" -v "$state/pip-cache:/cm-pip" -v "$state/pip.conf:/etc/pip.conf:ro" \
    -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    "${extra[@]}" -w /src "$image" \
    bash "/src/ansible_collections/supervised/background/$self" --inside "$mode" "$s" &
  wait $! || rc=1
  mapfile -t -O "${#summary[@]}" summary < "$sdir/times.txt"
  summary+=("$(printf '%-5s %-44s %5s s' "$s" "total ($mode, with venv set-up)" "$(( $(date +%s) - start ))")")
  rm -rf "$copy"
done

echo "=== controller matrix ($mode): time per leg"
printf '%s\n' "${summary[@]}"
exit "$rc"
