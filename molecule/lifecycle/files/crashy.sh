#!/usr/bin/env bash
# A worker that always fails at once: it hits its start limit and triggers its OnFailure unit.
echo "crashy[${1:-0}]: fatal configuration error" >&2
exit 1
