# shellcheck shell=sh
# Stand-in for /usr/bin/systemctl in test_ci_tunnel.py (the test writes it out with a "#!/bin/sh"
# line to RIG/tools/systemctl). It records its argv in RIG/state/log and emulates the units:
#   show -P PROP UNIT   RIG/state/UNIT/PROP, else RIG/defaults/PROP
#   start UNIT          RIG/tools/systemctl-start UNIT (systemctl_start.py)
#   stop UNIT           ActiveState=inactive for UNIT and its guard (unless failed);
#                       exit status RIG/config/stop_status (default 0)
rig=${0%/tools/*}
printf 'systemctl %s\n' "$*" >>"$rig/state/log"

# Shell builtins only (no cat, mkdir, mv): every fork counts when a test runs the helper 50 times.
prop() {
    value=
    { IFS= read -r value <"$rig/state/$1/$2" || IFS= read -r value <"$rig/defaults/$2"; } 2>/dev/null
    printf '%s\n' "$value"
}

set_prop() {
    [ -d "$rig/state/$1" ] || mkdir "$rig/state/$1"
    printf '%s\n' "$3" >"$rig/state/$1/$2"
}

case $1:$# in
    show:4)
        [ "$2" = -P ] || exit 1
        prop "$4" "$3"
        ;;
    start:2)
        exec "$rig/tools/systemctl-start" "$2"
        ;;
    stop:2)
        name=${2#openfortivpn@}
        name=${name%.service}
        for unit in "$2" "ci-tunnel-guard@$name.service"; do
            [ "$(prop "$unit" ActiveState)" = failed ] || set_prop "$unit" ActiveState inactive
        done
        status=0
        { IFS= read -r status <"$rig/config/stop_status"; } 2>/dev/null
        exit "$status"
        ;;
    *)
        echo "systemctl stand-in: unexpected arguments: $*" >&2
        exit 1
        ;;
esac
