#!/usr/bin/env bash
# A periodic job that runs longer than its interval: runs must never overlap.
set -eu
printf 'start %s\n' "$(date +%s.%N)" >>"$STATE_DIRECTORY/slow.log"
sleep 5
printf 'end %s\n' "$(date +%s.%N)" >>"$STATE_DIRECTORY/slow.log"
