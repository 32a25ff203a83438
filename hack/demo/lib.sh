# shellcheck shell=bash
# shellcheck disable=SC2034 # variables used by the scripts that source this file
# Sourced by hack/demo.sh and hack/demo/act*.sh: the target container, output helpers, and the
# checks that DEMO_CHECK=1 turns into failures (the demo itself only warns).
#
#   DEMO_CHECK=1       non-interactive check mode (CI): a failed check ends the act with exit 1
#   DEMO_NAME          container name (supervised-demo, or supervised-demo-check in check mode)
#   DEMO_DISTRO        image suite (bookworm)
#   DEMO_TMP           controller-side scratch directory (results the playbooks hand back)

DEMO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEMO_DIR="$DEMO_ROOT/hack/demo"
DEMO_CHECK=${DEMO_CHECK:-0}
if [ "$DEMO_CHECK" = 1 ]; then
  DEMO_NAME=${DEMO_NAME:-supervised-demo-check}
else
  DEMO_NAME=${DEMO_NAME:-supervised-demo}
fi
DEMO_DISTRO=${DEMO_DISTRO:-bookworm}
case "$DEMO_NAME" in
  supervised-demo*) ;;
  *) echo "demo: DEMO_NAME must start with supervised-demo (got '$DEMO_NAME')" >&2; exit 2 ;;
esac
export DEMO_CHECK DEMO_NAME DEMO_DISTRO

bold='' dim='' red='' green='' off=''
if [ -t 1 ]; then
  bold=$(tput bold 2>/dev/null || true)
  dim=$(tput dim 2>/dev/null || true)
  red=$(tput setaf 1 2>/dev/null || true)
  green=$(tput setaf 2 2>/dev/null || true)
  off=$(tput sgr0 2>/dev/null || true)
fi

act() { printf '\n%s%s\n%s%s\n' "$bold" "$*" "$(printf '%*s' "${#1}" '' | tr ' ' '=')" "$off"; }
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
strong() { printf '%s%s%s' "$bold" "$*" "$off"; }
# A dim caption, indented.
faint() { printf '    %s%s%s\n' "$dim" "$*" "$off"; }
# look COMMAND WHAT [COMMAND WHAT...]: the commands that let the user look around, aligned.
look() {
  if [ "$DEMO_CHECK" = 1 ]; then return 0; fi
  local -a args=("$@")
  local w=0 i
  for ((i = 0; i < ${#args[@]}; i += 2)); do
    if [ "${#args[i]}" -gt "$w" ]; then w=${#args[i]}; fi
  done
  for ((i = 0; i < ${#args[@]}; i += 2)); do
    printf '    %-*s   %s# %s%s\n' "$w" "${args[i]}" "$dim" "${args[i + 1]}" "$off"
  done
}
# A short explanation, indented.
say() { printf '%s\n' "$@" | sed 's/^/    /'; }
in_demo() { docker exec "$DEMO_NAME" "$@"; }

# Seconds since an $EPOCHREALTIME value, with two decimals.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# expect DESCRIPTION COMMAND...: a check of the act's key outcome. Shown in the demo; in check
# mode a failure ends the act.
expect() {
  local what=$1
  shift
  if "$@"; then
    printf '    %scheck ok%s   %s\n' "$green" "$off" "$what"
  else
    printf '    %scheck FAILED%s  %s\n' "$red$bold" "$off" "$what"
    if [ "$DEMO_CHECK" = 1 ]; then
      echo "demo: check failed: $what" >&2
      exit 1
    fi
  fi
}
# Helpers for expect: numeric and string comparisons that print nothing.
eq() { [ "$1" = "$2" ]; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { num = "^-?[0-9]+([.][0-9]*)?$"; exit !(a ~ num && b ~ num && a + 0 < b + 0) }'; }

# ansible-playbook against the container. Quiet: only changed or failed tasks are shown.
playbook() {
  ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_CALLBACK_RESULT_FORMAT=yaml \
    ANSIBLE_DISPLAY_OK_HOSTS=false ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_DIFF_ALWAYS=false \
    ansible-playbook -i "$DEMO_NAME," -c community.docker.docker "$@"
}

# jget FILE KEY...: one value of a JSON file (nested keys or list indexes); "null" when absent.
jget() {
  python3 - "$@" <<'PY'
import json
import sys

value = json.load(open(sys.argv[1], encoding="utf-8"))
for key in sys.argv[2:]:
    try:
        value = value[int(key) if isinstance(value, list) else key]
    except (KeyError, IndexError, TypeError, ValueError):
        value = None
        break
if isinstance(value, bool):
    print(str(value).lower())
elif value is None:
    print("null")
elif isinstance(value, (list, dict)):
    print(json.dumps(value))
else:
    print(value)
PY
}

# A scratch directory for the act's results on the controller (removed when the act ends unless
# hack/demo.sh owns it).
demo_tmp() {
  if [ -z "${DEMO_TMP:-}" ]; then
    DEMO_TMP=$(mktemp -d "${TMPDIR:-/tmp}/supervised-demo.XXXXXX")
    # shellcheck disable=SC2064 # expand now: the path is fixed
    trap "rm -rf '$DEMO_TMP'" EXIT
  fi
}

# Start the systemd container unless it runs; wait until systemd is up.
demo_container() {
  if [ "$(docker inspect -f '{{.State.Running}}' "$DEMO_NAME" 2>/dev/null || true)" = true ]; then
    return 0
  fi
  docker rm -f "$DEMO_NAME" >/dev/null 2>&1 || true
  docker run -d --name "$DEMO_NAME" --hostname "$DEMO_NAME" \
    --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp -e container=docker --stop-signal SIGRTMIN+3 \
    "supervised-bg:$DEMO_DISTRO" >/dev/null
  local s=
  for _ in $(seq 1 100); do
    s=$(in_demo systemctl is-system-running 2>/dev/null || true)
    case "$s" in running|degraded) break ;; esac
    sleep 0.2
  done
  echo "    started the container $DEMO_NAME (supervised-bg:$DEMO_DISTRO); systemd in it: $s"
}
