# shellcheck shell=sh
# Stand-in for /usr/bin/sudo in test_ci_tunnel.py (the test writes it out with a "#!/bin/sh" line).
# It lives in RIG/tools/; it records its argv in RIG/state/log and emulates the two sudo rules:
#   sudo -n -l SYSTEMCTL start UNIT   exit 0 when RIG/state/configured exists, else 1
#   sudo -n COMMAND [ARG...]          run COMMAND (as the caller: the stand-in systemctl needs no root)
rig=${0%/tools/*}
printf 'sudo %s\n' "$*" >>"$rig/state/log"
if [ "$1" != -n ]; then
    echo "sudo stand-in: ci-tunnel must call sudo -n" >&2
    exit 1
fi
shift
if [ ! -e "$rig/state/configured" ]; then
    [ "$1" = -l ] || echo "sudo: a password is required" >&2
    exit 1
fi
if [ "$1" = -l ]; then
    exit 0
fi
exec "$@"
