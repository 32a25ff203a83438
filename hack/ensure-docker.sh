#!/usr/bin/env bash
# Make sure a Docker engine answers. On a fresh Debian machine (root) install docker.io and
# start dockerd in the background; the engine's log goes to .build/dockerd.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/.build"
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-docker: no Docker engine and not root: install docker.io first" >&2
    exit 1
  fi
  echo "ensure-docker: installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd (log: .build/dockerd.log)"
  nohup dockerd >"$root/.build/dockerd.log" 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see .build/dockerd.log" >&2
tail -n 20 "$root/.build/dockerd.log" >&2 || true
exit 1
