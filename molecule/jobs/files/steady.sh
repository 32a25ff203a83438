#!/usr/bin/env bash
# A well-behaved worker: a heartbeat every 2 s; on SIGTERM it says so and exits 0 at once.
set -u
instance="${1:-0}"
trap 'echo "steady[$instance]: SIGTERM, exiting"; exit 0' TERM
echo "steady[$instance]: up"
while true; do
  sleep 2 &
  wait "$!"
done
