#!/usr/bin/env bash
# Lay the checkout out as ansible_collections/supervised/background, wherever the checkout lives.
#   collection-tree.sh link  -> .build/collections (a symlink; for pytest and ansible-playbook)
#   collection-tree.sh copy  -> .build/ansible-test (a copy of tracked + new files; ansible-test
#                               resolves symlinks, so it needs a real tree)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-link}" in
  link)
    dest="$root/.build/collections/ansible_collections/supervised"
    mkdir -p "$dest"
    ln -sfn "$root" "$dest/background"
    echo "$root/.build/collections"
    ;;
  copy)
    # One copy per run, so two runs at once do not delete each other's files.
    dest="$root/.build/ansible-test/run-$$/ansible_collections/supervised/background"
    rm -rf "$dest"
    mkdir -p "$dest"
    (cd "$root" && git ls-files -co --exclude-standard -z | grep -zv '^tests/output/' \
      | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$dest"
    # The copy lives inside this checkout's ignored .build/; give it a repository of its own so
    # ansible-test lists its files instead of inheriting the outer .gitignore.
    git -C "$dest" init -q
    echo "$dest"
    ;;
  *) echo "usage: collection-tree.sh link|copy" >&2; exit 2 ;;
esac
