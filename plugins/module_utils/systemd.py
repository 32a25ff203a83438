# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one path through which the collection talks to systemd.

``systemctl show`` parsing, instance discovery (asking systemd, plus the enablement symlinks it
wrote), ``systemd-analyze verify`` of a unit under its real (template) name, daemon-reload, and
start/stop/enable calls. Modules never build a systemctl command line themselves.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile

SYSTEM_UNIT_DIR = "/etc/systemd/system"

# What the collection reports for an instance; ``show()`` takes any list.
INSTANCE_PROPERTIES = (
    "Id", "LoadState", "ActiveState", "SubState", "Result", "MainPID", "NRestarts",
    "ExecMainStatus", "ExecMainCode", "UnitFileState", "ActiveEnterTimestamp",
    "ActiveEnterTimestampMonotonic", "MemoryCurrent", "TasksCurrent", "InvocationID",
)

_IGNORED = re.compile(r"ignoring|Unknown (key|section|lvalue)|Failed to parse|Invalid", re.I)

_UNSET_NUMBERS = {"[not set]", "18446744073709551615", ""}


class SystemdError(Exception):
    """A systemctl / systemd-analyze call failed; the message carries systemd's own words."""


def parse_show(text, count):
    """Parse ``systemctl show`` output for ``count`` units into a list of dicts (in order).

    systemctl separates units with one empty line; a property value never spans lines.
    """
    blocks = []
    current = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    if len(blocks) != count:
        raise SystemdError(f"systemctl show returned {len(blocks)} blocks for {count} units")
    return blocks


def to_int(value, default=None):
    """Numbers from ``systemctl show``: '[not set]' and UINT64_MAX mean unknown."""
    if value is None or value in _UNSET_NUMBERS:
        return default
    try:
        return int(value)
    except ValueError:
        return default


def template_unit(name):
    return f"{name}@.service"


def instance_unit(name, instance):
    return f"{name}@{instance}.service"


def instance_of(unit, name):
    """``worker@3.service`` -> ``3`` for template ``worker``; None for other units."""
    m = re.match(r"^" + re.escape(name) + r"@(.+)\.service$", unit)
    return m.group(1) if m and m.group(1) else None


class Systemd:
    """systemctl / systemd-analyze for one module run."""

    def __init__(self, module):
        self.module = module
        self._systemctl = None
        self._analyze = None

    @property
    def systemctl(self):
        if self._systemctl is None:
            self._systemctl = self.module.get_bin_path("systemctl", required=True)
        return self._systemctl

    def run(self, args, check=True):
        rc, out, err = self.module.run_command([self.systemctl] + list(args))
        if check and rc != 0:
            words = (err or out).strip()
            raise SystemdError(f"systemctl {' '.join(args)} failed (rc={rc}): {words}")
        return rc, out, err

    # -- state ---------------------------------------------------------------------------------
    def show(self, units, properties=INSTANCE_PROPERTIES):
        """Return {unit: {property: value}} for the given units (one systemctl call)."""
        units = list(units)
        if not units:
            return {}
        _rc, out, _err = self.run(["show", "--no-pager", "-p", ",".join(properties), "--"] + units)
        return dict(zip(units, parse_show(out, len(units))))

    def loaded_instances(self, name):
        """Instances of ``name@.service`` systemd has loaded (running, failed, or referenced)."""
        _rc, out, _err = self.run(["list-units", "--all", "--plain", "--no-legend", "--no-pager",
                                   "--full", "--", template_unit(name).replace("@.", "@*.")])
        found = set()
        for line in out.splitlines():
            fields = line.split()
            if not fields:
                continue
            unit = fields[0].lstrip("●*").strip() or (fields[1] if len(fields) > 1 else "")
            inst = instance_of(unit, name)
            if inst is not None:
                found.add(inst)
        return found

    def enabled_instances(self, name):
        """Instances enabled through ``systemctl enable`` (symlinks in *.wants / *.requires)."""
        found = set()
        pattern = os.path.join(SYSTEM_UNIT_DIR, "*.[wr]*", template_unit(name).replace("@.", "@*."))
        for link in glob.glob(pattern):
            inst = instance_of(os.path.basename(link), name)
            if inst is not None:
                found.add(inst)
        return found

    def known_instances(self, name):
        """Every instance systemd knows of: loaded ones and enabled ones."""
        return self.loaded_instances(name) | self.enabled_instances(name)

    def journal_tail(self, unit, lines=10, invocation=None, since=None, sync=True):
        """The last ``lines`` messages of ``unit``, oldest first.

        ``invocation`` narrows to one run by its id; ``since`` (epoch seconds) to the entries of the
        unit since then (journald tags a short job's last lines with its invocation id only while
        its cgroup exists, so unit + start time is the sure way to find one run's lines).
        ``sync`` first makes journald write out what it has buffered (a finished job's last lines
        arrive asynchronously).
        """
        journalctl = self.module.get_bin_path("journalctl")
        if not journalctl:
            return []
        if sync:
            self.module.run_command([journalctl, "--sync"])
        args = [journalctl, "--no-pager", "-q", "-o", "cat", "-n", str(int(lines))]
        if since is not None:
            args += [f"_SYSTEMD_UNIT={unit}", f"--since=@{since:.6f}"]
        elif invocation:
            args += [f"_SYSTEMD_INVOCATION_ID={invocation}"]
        else:
            args += ["-u", unit]
        rc, out, _err = self.module.run_command(args, expand_user_and_vars=False)
        return out.splitlines() if rc == 0 else []

    def is_enabled(self, unit):
        rc, out, _err = self.run(["is-enabled", "--", unit], check=False)
        return out.strip() == "enabled"

    # -- actions -------------------------------------------------------------------------------
    def daemon_reload(self):
        self.run(["daemon-reload"])

    def start(self, units, no_block=False):
        if units:
            self.run(["start"] + (["--no-block"] if no_block else []) + ["--"] + list(units))

    def stop(self, units):
        if units:
            self.run(["stop", "--"] + list(units))

    def restart(self, units):
        if units:
            self.run(["restart", "--"] + list(units))

    def enable(self, units):
        if units:
            self.run(["enable", "--"] + list(units))

    def disable(self, units):
        if units:
            self.run(["disable", "--"] + list(units))

    def reset_failed(self, units):
        if units:
            self.run(["reset-failed", "--"] + list(units), check=False)

    # -- verification --------------------------------------------------------------------------
    def verify(self, unit_name, text, instance="verify", strict=True):
        """Run ``systemd-analyze verify`` on ``text`` saved under its real name ``unit_name``.

        A template (``x@.service``) is verified through one instance of it, the way systemd would
        load it. Raises SystemdError with systemd's own message when the unit is refused; returns
        the warnings (may be empty) otherwise.
        """
        if self._analyze is None:
            self._analyze = self.module.get_bin_path("systemd-analyze", required=True)
        scratch = tempfile.mkdtemp(prefix="supervised-verify-")
        try:
            os.chmod(scratch, 0o700)
            path = os.path.join(scratch, unit_name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            target = path
            if unit_name.endswith("@.service"):
                target = os.path.join(scratch, unit_name.replace("@.", f"@{instance}."))
            rc, out, err = self.module.run_command(
                [self._analyze, "verify", "--man=no", target],
                environ_update={"SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
            )
            # systemd-analyze loads the unit several times and repeats itself: keep each line once.
            lines = list(dict.fromkeys(ln for ln in (err + out).splitlines() if ln.strip()))
            # Keep what speaks of our unit; other units' complaints on the host are not ours.
            ours = [ln.replace(scratch + "/", "") for ln in lines if unit_name.split("@")[0] in ln]
            # systemd only warns ("..., ignoring.") about unknown keys or values it cannot parse and
            # then runs the unit without them: for us that is a refused unit.
            if strict and any(_IGNORED.search(ln) for ln in ours):
                raise SystemdError("; ".join(ln for ln in ours if _IGNORED.search(ln)))
            if rc != 0 and (ours or not lines):
                raise SystemdError("; ".join(ours) or f"systemd-analyze verify failed (rc={rc})")
            if rc != 0 and not ours:
                raise SystemdError("; ".join(ln.replace(scratch + "/", "") for ln in lines[-5:]))
            return ours
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
