#!/usr/bin/env bash
# A worker that reads its secret from a systemd credential, never from its environment.
set -eu
sha=$(sha256sum <"$CREDENTIALS_DIRECTORY/db_password" | cut -c1-64)
printf '%s\n' "$sha" >"$STATE_DIRECTORY/$1.sha"
echo "cred-reader[$1] read its credential"
exec sleep infinity
