#!/usr/bin/env bash
# Build a local systemd test image for a Debian suite, offline from any container registry:
# debootstrap a minimal root (default mirror), then `docker import` it. Built only when the tag is
# missing or was built from another recipe (the recipe's hash is kept in the image's label).
#
#   hack/build-image.sh bookworm      # Debian 12 (the default test platform)
#   hack/build-image.sh trixie        # Debian 13 (adds sudo-rs)
#   hack/build-image.sh bullseye      # Debian 11
set -euo pipefail
suite=${1:?usage: build-image.sh SUITE}
root=$(cd "$(dirname "$0")/.." && pwd)
tag="supervised-bg:${suite}"

packages="systemd,systemd-sysv,python3,sudo,procps,dbus,openfortivpn,iproute2,ca-certificates"
case "$suite" in
  trixie) packages="$packages,sudo-rs" ;;
  bullseye|bookworm) ;;
  *) echo "build-image: unknown suite '$suite' (bullseye, bookworm, trixie)" >&2; exit 2 ;;
esac
recipe=$(printf '%s\n' "$suite" "$packages" "$(sed -n '/^# recipe-start/,/^# recipe-end/p' "$0")" | sha256sum | cut -c1-16)

# One build of a suite at a time (two make targets started together would delete each other's root).
mkdir -p "$root/.build"
exec 9>"$root/.build/image-$suite.lock"
flock 9

have=$(docker image inspect -f '{{ index .Config.Labels "supervised.recipe" }}' "$tag" 2>/dev/null || true)
if [ "$have" = "$recipe" ]; then
  echo "build-image: $tag is up to date"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
}

work="$root/.build/rootfs-$suite"
cleanup() {
  # debootstrap mounts /proc and /sys inside the root; never rm -rf through a live mount.
  grep -o " $work/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
cleanup
mkdir -p "$work"
trap cleanup EXIT
echo "build-image: debootstrap $suite (this takes about a minute)"
start=$(date +%s)
debootstrap --variant=minbase --include="$packages" "$suite" "$work" >"$root/.build/debootstrap-$suite.log" 2>&1 || {
  echo "build-image: debootstrap failed; last lines of .build/debootstrap-$suite.log:" >&2
  tail -n 30 "$root/.build/debootstrap-$suite.log" >&2
  exit 1
}
# recipe-start
# Trim the image and keep the boot short and quiet inside a container.
chroot "$work" apt-get clean
rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/*.bin
: >"$work/etc/machine-id"
for unit in getty.target console-getty.service systemd-firstboot.service \
            systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$work/etc/systemd/system/$unit"
done
printf '%s\n' "supervised-bg-$suite" >"$work/etc/hostname"
# recipe-end
# debootstrap (or a package's maintainer script) can leave /proc or /sys mounted inside the root:
# unmount whatever is below it, and never archive those trees' contents.
grep -o " $work/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
tar -C "$work" --exclude=./proc/* --exclude=./sys/* --exclude=./dev/pts/* -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  --change "LABEL supervised.recipe=$recipe" \
  - "$tag" >/dev/null
echo "build-image: built $tag in $(( $(date +%s) - start )) s"
