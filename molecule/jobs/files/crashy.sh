#!/usr/bin/env bash
# A worker with a fatal configuration error: it starts, fails after a second, and crash-loops.
set -u
echo "crashy[${1:-0}]: cannot reach the queue at 127.0.0.1:1, giving up" >&2
sleep 1
exit 2
