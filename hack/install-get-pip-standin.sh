#!/usr/bin/env bash
# ansible-test downloads a pip bootstrap script from a host that cannot be reached here; it uses a
# cached copy first. Put hack/get_pip_standin.py where the ansible-test of VENV looks for it:
# $HOME/.ansible/test/cache/get_pip_<the pip version that ansible-test pins>.py
#   hack/install-get-pip-standin.sh VENV
set -euo pipefail
venv=${1:?usage: install-get-pip-standin.sh VENV}
here=$(cd "$(dirname "$0")" && pwd)
version=$(grep -o "pip='[0-9.]*'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py \
  | head -n1 | tr -dc '0-9.')
[ -n "$version" ] || { echo "install-get-pip-standin: no pinned pip version in $venv's ansible-test" >&2; exit 1; }
mkdir -p "$HOME/.ansible/test/cache"
cp "$here/get_pip_standin.py" "$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
