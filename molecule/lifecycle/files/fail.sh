#!/usr/bin/env bash
# A periodic job that fails: its result must be reported, never silent.
echo "failing now: the export target is unreachable"
exit 3
