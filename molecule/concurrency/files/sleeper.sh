#!/usr/bin/env bash
# A worker that does nothing but stay up, and stops at once on SIGTERM.
trap 'exit 0' TERM
while :; do sleep 60 & wait $!; done
