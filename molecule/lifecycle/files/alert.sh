#!/usr/bin/env bash
# OnFailure= handler: leaves evidence (a state file and a journal line) for the failed unit.
set -eu
mkdir -p /var/lib/sb-alert
# The journal line first: a test that sees the file may then read the line.
echo "ALERT: $1 gave up"
printf '%s\n' "$(date +%s.%N)" >"/var/lib/sb-alert/$1"
