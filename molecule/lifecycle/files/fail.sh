#!/usr/bin/env bash
# A periodic job that fails: its result must be reported, never silent. While
# /run/sb-life/fail-slowly exists a run takes 20 s before it fails, so a test can read the job's
# state during a run (systemd shows an unfinished run as Result=success).
echo "failing now: the export target is unreachable"
if [ -e /run/sb-life/fail-slowly ]; then sleep 20; fi
exit 3
