#!/usr/bin/env bash
# A worker that just runs (a queue consumer that needs its broker).
echo "steady[${1:-0}] up"
exec sleep infinity
