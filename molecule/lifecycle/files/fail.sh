#!/usr/bin/env bash
# A periodic job that fails: its result must be reported, never silent. It prints 12 lines before
# its last one, so a report of its last 10 lines shows whether they are the last or the first. While
# /run/sb-life/fail-slowly exists a run takes 20 s before it fails, so a test can read the job's
# state during a run (systemd shows an unfinished run as Result=success).
for step in $(seq 1 12); do echo "step $step of the export"; done
echo "failing now: the export target is unreachable"
if [ -e /run/sb-life/fail-slowly ]; then sleep 20; fi
exit 3
