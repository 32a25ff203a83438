# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""`systemctl start openfortivpn@NAME.service` of the stand-in systemctl (systemctl.sh).

Like the real tunnel unit, the guard ci-tunnel-guard@NAME.service starts first: the real
``RIG/bin/ci-tunnel guard-check NAME`` decides, unless RIG/config/guard_fails exists (it then
fails whatever the lease says) or RIG/config/guard_skipped (it then passes). Then the tunnel: RIG/config/start_delay seconds, then the outcome
RIG/config/start_outcome (success, timeout, exit-code, ...: the unit's Result). The PID of this
process is in RIG/state/start.pid; every property it sets goes to RIG/state/UNIT/PROP, with
InactiveExitTimestampMonotonic as systemd sets it (CLOCK_MONOTONIC, microseconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def _config(rig, key, default):
    try:
        with open(os.path.join(rig, "config", key), encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return default


def _set(rig, unit, **props):
    directory = os.path.join(rig, "state", unit)
    os.makedirs(directory, exist_ok=True)
    for key, value in props.items():
        tmp = os.path.join(directory, f".{key}.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(f"{value}\n")
        os.rename(tmp, os.path.join(directory, key))


def _now_us():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)


def _guard(rig, name):
    guard = f"ci-tunnel-guard@{name}.service"
    _set(rig, guard, InactiveExitTimestampMonotonic=_now_us(), ActiveState="activating")
    ok = _config(rig, "guard_fails", None) is None
    if ok and _config(rig, "guard_skipped", None) is None:
        ok = subprocess.call([os.path.join(rig, "bin", "ci-tunnel"), "guard-check", name]) == 0
    _set(rig, guard, ActiveState="active" if ok else "failed", Result="success" if ok else "exit-code")
    return ok


def main(rig, argv):
    unit = argv[0]
    name = unit[len("openfortivpn@"):-len(".service")]
    with open(os.path.join(rig, "state", "start.pid"), "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    if not _guard(rig, name):
        sys.stderr.write(f"A dependency job for {unit} failed. See 'journalctl -xe' for details.\n")
        return 1
    _set(rig, unit, InactiveExitTimestampMonotonic=_now_us(), ActiveState="activating")
    time.sleep(float(_config(rig, "start_delay", "0")))
    outcome = _config(rig, "start_outcome", "success")
    if outcome == "success":
        _set(rig, unit, ActiveState="active", Result="success")
        return 0
    _set(rig, unit, ActiveState="failed", Result=outcome)
    sys.stderr.write(f"Job for {unit} failed. See \"systemctl status {unit}\" for details.\n")
    return 1
