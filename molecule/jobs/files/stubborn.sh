#!/usr/bin/env bash
# A worker that ignores SIGTERM: systemd has to SIGKILL it once TimeoutStopSec has passed.
set -u
instance="${1:-0}"
trap 'echo "stubborn[$instance]: got SIGTERM, ignoring it"' TERM
echo "stubborn[$instance]: up"
while true; do
  sleep 1 &
  wait "$!"
done
