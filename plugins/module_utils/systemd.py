# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one path through which the collection talks to systemd.

Unit and instance names (which ones the collection accepts, so that no name ever needs escaping),
``systemctl show`` parsing and the one view of an instance every module reports, instance
discovery (asking systemd, plus the enablement symlinks it wrote), ``systemd-analyze verify`` of a
unit (and its drop-ins) under its real name, daemon-reload, the ``systemd-run`` command line, and
start/stop/enable calls. Modules never build a systemctl command line themselves.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
import time

from ansible_collections.supervised.background.plugins.module_utils import safe_file
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError, single_line

SYSTEM_UNIT_DIR = "/etc/systemd/system"
# The first bytes of every file the collection writes (each module's header starts with them).
MANAGED_PREFIX = b"# Managed by supervised.background"
# SD_MESSAGE_UNIT_FAILURE_RESULT: PID 1's "Failed with result" entry, which carries UNIT_RESULT=.
FAILURE_RESULT_ID = "d9b373ed55a64feb8242e02dbe79a49c"
# The other structured entries PID 1 logs for each run of a unit, the same from systemd 247 to 257:
# STARTING (the run begins), PROCESS_EXIT (EXIT_CODE=, EXIT_STATUS=; logged for a status systemd
# counts as a failure) and SUCCESS (the run ended with result success).
RUN_STARTING_ID = "7d4958e842da4a758f6c1cdc7b36dcc5"
PROCESS_EXIT_ID = "98e322203f7a4ed290d09fe03c09fe15"
RUN_SUCCESS_ID = "7ad2d189f7e94e70a38c781354912448"
# STARTED: the start job is done ("Started", or "Finished" for a oneshot run that ended). A Type=simple
# service gets no STARTING entry, only this one, right after its process was forked.
RUN_STARTED_ID = "39f53479d3a045ac8e11786248231fbf"

# What the collection reports for an instance; ``show()`` takes any list.
INSTANCE_PROPERTIES = (
    "Id", "LoadState", "ActiveState", "SubState", "Result", "MainPID", "NRestarts",
    "ExecMainStatus", "ExecMainCode", "UnitFileState", "ActiveEnterTimestamp",
    "ActiveEnterTimestampMonotonic", "MemoryCurrent", "TasksCurrent", "InvocationID",
)

# -- names ------------------------------------------------------------------------------------------
# The unit names the collection accepts: a strict subset of systemd's, chosen so a name never needs
# escaping (no '\\x2d'), never looks like an option, never walks out of a directory, and passes
# `systemd-analyze verify` (which fails on ':' in a unit name: "Couldn't process aliases").
_PART_RE = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
MAX_UNIT_NAME = 255
MAX_INSTANCE = 64
UNIT_SUFFIXES = (".service", ".target", ".socket", ".timer", ".path", ".mount", ".slice", ".device",
                 ".scope", ".swap", ".automount")
# Specifiers a dependency may use as a whole instance name: alert@%n.service, broker@%i.service.
DEPENDENCY_SPECIFIERS = ("%n", "%N", "%i", "%I", "%p", "%P")


def _name_rule(field, value, what):
    raise InputError(
        f"{field}: {what} '{value}' may only use letters, digits, '_', '.' and '-', "
        "and must start with a letter, digit or '_'"
    )


def unit_prefix(field, value):
    """A unit name without ``@`` and suffix, such as ``queue-worker``."""
    value = single_line(field, value)
    if not value:
        raise InputError(f"{field}: must not be empty")
    if "@" in value:
        raise InputError(f"{field}: '{value}' must not contain '@' (the template's '@' is added for you)")
    if "/" in value:
        raise InputError(f"{field}: '{value}' must not contain '/'")
    if value.endswith(UNIT_SUFFIXES):
        raise InputError(f"{field}: '{value}' is a name without the unit suffix (drop '{value[value.rindex('.'):]}')")
    if not re.fullmatch(_PART_RE, value):
        _name_rule(field, value, "name")
    if len(value) > MAX_UNIT_NAME - len("@.service") - MAX_INSTANCE:
        raise InputError(f"{field}: '{value}' is too long")
    return value


def instance_name(field, value):
    """An instance name such as ``1`` or ``eu-west`` in ``worker@eu-west.service``."""
    value = single_line(field, str(value))
    if not value:
        raise InputError(f"{field}: instance names must not be empty")
    if "@" in value or "/" in value:
        raise InputError(f"{field}: instance '{value}' must not contain '@' or '/'")
    if not re.fullmatch(_PART_RE, value):
        _name_rule(field, value, "instance")
    if len(value) > MAX_INSTANCE:
        raise InputError(f"{field}: instance '{value}' is longer than {MAX_INSTANCE} characters")
    return value


def unit_name(field, value, suffixes=(".service",), template=None, specifiers=False):
    """A complete unit name: ``worker@1.service``, ``network-online.target``.

    ``template``: True requires ``x@.service``, False refuses it, None accepts both. ``specifiers``
    lets the instance be one whole specifier (``alert@%n.service``), for dependencies.
    """
    value = single_line(field, value)
    if not value:
        raise InputError(f"{field}: must not be empty")
    suffix = next((s for s in suffixes if value.endswith(s)), None)
    if suffix is None:
        raise InputError(f"{field}: '{value}' must end with one of {', '.join(suffixes)}")
    stem = value[: -len(suffix)]
    base, at, inst = stem.partition("@")
    unit_prefix(field, base)
    if at and inst and not (specifiers and inst in DEPENDENCY_SPECIFIERS):
        instance_name(field, inst)
    if template is True and not (at and not inst):
        raise InputError(f"{field}: '{value}' must be a template such as 'name@{suffix}'")
    if template is False and at and not inst:
        raise InputError(f"{field}: '{value}' is a template; name an instance such as 'name@1{suffix}'")
    if len(value) > MAX_UNIT_NAME:
        raise InputError(f"{field}: '{value}' is longer than {MAX_UNIT_NAME} characters")
    return value


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
    m = re.fullmatch(re.escape(name) + r"@(.+)\.service", unit)
    return m.group(1) if m and m.group(1) else None


ENABLED_STATES = ("enabled", "enabled-runtime")


def instance_view(unit, props, name=None):
    """The one view of a unit every module reports. "No value" is always None (a main PID of 0,
    systemd's "[not set]" and UINT64_MAX all mean None)."""
    file_state = props.get("UnitFileState", "")
    return {
        "unit": unit,
        "instance": instance_of(unit, name) if name else None,
        "load_state": props.get("LoadState") or None,
        "active_state": props.get("ActiveState") or None,
        "sub_state": props.get("SubState") or None,
        "result": props.get("Result") or None,
        "main_pid": to_int(props.get("MainPID")) or None,
        "n_restarts": to_int(props.get("NRestarts"), 0),
        "exec_main_status": to_int(props.get("ExecMainStatus")),
        "enabled": file_state in ENABLED_STATES,
        "unit_file_state": file_state or None,
        "active_since": props.get("ActiveEnterTimestamp") or None,
        "memory_bytes": to_int(props.get("MemoryCurrent")),
        "tasks": to_int(props.get("TasksCurrent")),
        "invocation_id": props.get("InvocationID") or None,
    }


TIMER_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "Result", "LastTriggerUSec",
                    "NextElapseUSecRealtime", "NextElapseUSecMonotonic", "Unit")
JOB_SERVICE_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "Result", "ExecMainStatus", "ExecMainCode",
                          "ExecMainStartTimestamp", "ExecMainExitTimestamp", "ExecMainStartTimestampMonotonic",
                          "InvocationID", "NRestarts", "LogLevelMax")
_NEVER = ("", "n/a", "0")


RUNNING_STATES = ("activating", "active", "deactivating", "reloading")
# Sub-states of those in which no run is going on: waiting out RestartSec= after a run, or a
# RemainAfterExit= service whose run has ended.
WAITING_SUBSTATES = ("auto-restart", "auto-restart-queued", "exited")


def is_running(service_props):
    """Whether a run of the service is going on now."""
    return service_props.get("ActiveState") in RUNNING_STATES and service_props.get("SubState") not in WAITING_SUBSTATES


def in_unfinished_run(service_props):
    """Whether show's Result=/ExecMain* describe a run that has not ended: systemd resets them to
    success/0 when a run starts. A result other than success is the current run's own verdict (a
    start timeout during its stop phase, say), so show is right again."""
    return is_running(service_props) and service_props.get("Result") in (None, "", "success")


# A run's fields in timer_view, as reported when there is no finished run to describe.
NO_RUN = {"last_result": None, "last_exit_status": None, "last_exit_code": None, "last_started": None,
          "last_finished": None, "invocation_id": None}


def timer_view(timer, timer_props, service_props, previous=None):
    """The one view of a periodic job: its timer and the last finished run of its service.

    systemd resets Result= and ExecMain* when a run starts, so while one is going on they describe
    no finished run: ``previous`` (from ``Systemd.finished_run``) does, or nothing is reported.
    """
    view = {
        "timer": timer,
        "service": timer_props.get("Unit") or None,
        "active": timer_props.get("ActiveState") == "active",
        "enabled": timer_props.get("UnitFileState") in ENABLED_STATES,
        "last_trigger": None if timer_props.get("LastTriggerUSec") in _NEVER else timer_props.get("LastTriggerUSec"),
        "next_elapse": None if timer_props.get("NextElapseUSecRealtime") in _NEVER else timer_props.get("NextElapseUSecRealtime"),
        "running": is_running(service_props),
    }
    if in_unfinished_run(service_props):
        view.update({key: (previous or {}).get(key) for key in NO_RUN})
        return view
    code = to_int(service_props.get("ExecMainCode"), 0)
    if service_props.get("ExecMainStartTimestamp") in (None, "", "n/a"):
        view.update(NO_RUN, invocation_id=service_props.get("InvocationID") or None)
        return view
    view.update({
        "last_result": service_props.get("Result") or None,
        "last_exit_status": to_int(service_props.get("ExecMainStatus")),
        "last_exit_code": {1: "exited", 2: "killed", 3: "dumped"}.get(code),
        "last_started": service_props.get("ExecMainStartTimestamp") or None,
        "last_finished": service_props.get("ExecMainExitTimestamp") or None,
        "invocation_id": service_props.get("InvocationID") or None,
    })
    return view


def message_lines(message):
    """The lines of a journal MESSAGE field as journalctl -o json gives it: a string, a list of
    byte values (not UTF-8), or a list of those when the entry has the field more than once."""
    if isinstance(message, str):
        return message.splitlines() or [""]
    if isinstance(message, list) and all(isinstance(b, int) for b in message):
        return message_lines(bytes(b for b in message if 0 <= b < 256).decode("utf-8", "replace"))
    if isinstance(message, list):
        return [line for part in message for line in message_lines(part)]
    return []


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def journal_time(usec):
    """A journal __REALTIME_TIMESTAMP (microseconds) as systemctl show prints a timestamp, whatever
    the locale (systemd's weekday names are English; strftime's %a follows LC_TIME)."""
    moment = time.localtime(int(usec) / 1e6)
    return f"{WEEKDAYS[moment.tm_wday]} {time.strftime('%Y-%m-%d %H:%M:%S %Z', moment)}"


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

    def journal_tail(self, unit, lines=10, invocation=None, since=None, sync=True, until=None):
        """The last ``lines`` messages of ``unit``, oldest first.

        ``invocation`` narrows to one run by its id; ``since`` and ``until`` (epoch seconds, either
        may be None) to the entries of the unit in that window (journald tags a short job's last
        lines with its invocation id only while its cgroup exists, so unit + start time is the sure
        way to find one run's lines). With ``until``, lines journald read later from the output
        streams of that window (_STREAM_ID) count too: it stamps a line when it reads it, which can
        be after the next run began. ``sync`` first makes journald write out what it has buffered
        (a finished job's last lines arrive asynchronously).
        """
        journalctl = self.module.get_bin_path("journalctl")
        if not journalctl:
            return []
        if sync:
            self.module.run_command([journalctl, "--sync"])
        # -r: systemd before 254 counts -n from --since forward (the first N lines); newest first
        # and reversed here, it is the last N everywhere. --all: a field over 4096 bytes is null
        # in JSON without it.
        base = [journalctl, "--no-pager", "-q", "-r", "--all", "-o", "json", "--output-fields=MESSAGE,_STREAM_ID",
                "-n", str(int(lines))]
        if since is not None or until is not None:
            args = base + [f"_SYSTEMD_UNIT={unit}"]
            args += [f"--since=@{since:.6f}"] if since is not None else []
            args += [f"--until=@{until:.6f}"] if until is not None else []
        elif invocation:
            args = base + [f"_SYSTEMD_INVOCATION_ID={invocation}"]
        else:
            args = base + ["-u", unit]
        entries = self._entries(args)
        streams = sorted({e["_STREAM_ID"] for e in entries if isinstance(e.get("_STREAM_ID"), str)})
        if until is not None and streams:
            late = base + [f"_SYSTEMD_UNIT={unit}"] + [f"_STREAM_ID={stream}" for stream in streams] + [f"--since=@{until:.6f}"]
            entries = sorted(entries + [e for e in self._entries(late) if e not in entries],
                             key=lambda e: to_int(e.get("__REALTIME_TIMESTAMP"), 0), reverse=True)[:int(lines)]
        text = []
        for entry in reversed(entries):
            text.extend(message_lines(entry.get("MESSAGE")))
        return text[-int(lines):] if lines else []

    def _entries(self, args):
        """journalctl -o json output as a list of entries (dicts), in journalctl's order."""
        rc, out, _err = self.module.run_command(args, expand_user_and_vars=False)
        entries = []
        for line in out.splitlines() if rc == 0 else []:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def failure_results(self, unit, since=None):
        """The results of ``unit``'s failed runs since ``since`` (epoch seconds), oldest first.

        Read from the UNIT_RESULT= field of the entries PID 1 logs when a unit fails (message id
        FAILURE_RESULT_ID, "Failed with result ..."): a structured field, the same from systemd 243
        to 257, never the message's wording. It survives a restart, which resets Result=.
        """
        journalctl = self.module.get_bin_path("journalctl")
        if not journalctl:
            return []
        args = [journalctl, "--no-pager", "-q", "-o", "json", "--output-fields=UNIT_RESULT", "_PID=1",
                f"UNIT={unit}", f"MESSAGE_ID={FAILURE_RESULT_ID}"]
        if since is not None:
            args.append(f"--since=@{since:.6f}")
        return [e["UNIT_RESULT"] for e in self._entries(args) if isinstance(e.get("UNIT_RESULT"), str)]

    def finished_run(self, unit, current, entries=100):
        """The run of ``unit`` that finished last before the run ``current`` (an invocation id) began.

        Read from the structured entries PID 1 logs for each run (the ``*_ID`` constants above),
        older than ``current``'s own start entry: journald sets _PID= itself, and what a running job
        logs comes after that entry, so neither an unprivileged job nor the current run can pose as
        systemd here. None when the journal does not hold ``current``'s start (journald behind, or
        rotated) or no finished run before it. Returns the run's timer_view fields and ``window``:
        the (since, until) epoch seconds that hold its output lines, from the end of the run before
        it (or None) to the start of ``current`` (stdout lines can be stamped after the run's end).
        Exit code and status are those of the main process (COMMAND=ExecStart), None when systemd
        logged none, which it does only for a status it counts as a failure.
        """
        journalctl = self.module.get_bin_path("journalctl")
        if not journalctl or not current or not unit:
            return None
        self.module.run_command([journalctl, "--sync"])
        args = [journalctl, "--no-pager", "-q", "-r", "--all", "-n", str(int(entries)), "-o", "json",
                "--output-fields=MESSAGE_ID,INVOCATION_ID,UNIT_RESULT,EXIT_CODE,EXIT_STATUS,COMMAND",
                "_PID=1", f"UNIT={unit}"]
        args += [f"MESSAGE_ID={mid}" for mid in (RUN_STARTING_ID, RUN_STARTED_ID, PROCESS_EXIT_ID, RUN_SUCCESS_ID,
                                                 FAILURE_RESULT_ID)]
        found = []  # newest first
        for entry in self._entries(args):
            try:
                mid, invocation, stamp = entry.get("MESSAGE_ID"), entry.get("INVOCATION_ID"), int(entry["__REALTIME_TIMESTAMP"])
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(invocation, str) and invocation:
                found.append((mid, invocation, stamp, entry))
        # The current run began at its oldest start entry: STARTING, or STARTED for a Type=simple
        # service (systemd logs no STARTING for those). Only what is older than that is read.
        starts = [i for i, (mid, invocation, _s, _e) in enumerate(found)
                  if invocation == current and mid in (RUN_STARTING_ID, RUN_STARTED_ID)]
        if not starts:
            return None
        begun = found[starts[-1]][2] / 1e6
        run = None
        for mid, invocation, stamp, entry in found[starts[-1] + 1:]:
            if invocation == current:
                continue
            if run is None:
                if mid in (RUN_SUCCESS_ID, FAILURE_RESULT_ID):
                    result = "success" if mid == RUN_SUCCESS_ID else entry.get("UNIT_RESULT")
                    run = {"invocation_id": invocation, "last_result": result if isinstance(result, str) else None,
                           "last_exit_status": None, "last_exit_code": None, "last_started": None,
                           "last_finished": journal_time(stamp), "window": [None, begun]}
                continue
            if invocation != run["invocation_id"]:
                if mid in (RUN_SUCCESS_ID, FAILURE_RESULT_ID):
                    run["window"][0] = stamp / 1e6  # the end of the run before it
                    break
            elif mid == PROCESS_EXIT_ID and entry.get("COMMAND") == "ExecStart" and run["last_exit_code"] is None:
                code, status = entry.get("EXIT_CODE"), entry.get("EXIT_STATUS")
                run["last_exit_code"] = code if isinstance(code, str) else None
                run["last_exit_status"] = to_int(status) if isinstance(status, str) else None
            elif mid == RUN_STARTING_ID:
                run["last_started"] = journal_time(stamp)
        return run

    def job_view(self, timer, timer_props, service_props):
        """timer_view of a periodic job, with its last finished run from the journal while one runs.

        Returns the view and the (since, until) window of the described run's output lines when it
        came from the journal (None otherwise).
        """
        previous = None
        if in_unfinished_run(service_props):
            # LogLevelMax= below info also drops PID 1's entries about the unit (systemd 252 and
            # later): the journal's account of its runs is then incomplete, so it is not read.
            level = to_int(service_props.get("LogLevelMax"), -1)
            if not 0 <= level < 6:
                previous = self.finished_run(service_props.get("Id"), service_props.get("InvocationID") or None)
        view = timer_view(timer, timer_props, service_props, previous)
        return view, (previous or {}).get("window")

    def calendar(self, field, expression):
        """Let systemd itself validate an OnCalendar= expression; returns its normalized form."""
        analyze = self.analyze()
        if analyze is None:
            self.module.warn(f"{field}: systemd-analyze is not installed; '{expression}' was not checked")
            return expression
        rc, out, err = self.module.run_command([analyze, "calendar", "--", expression],
                                               environ_update={"SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""})
        if rc != 0:
            words = " ".join((err or out).split())
            raise InputError(f"{field}: systemd refuses the calendar expression '{expression}' ({words})")
        for line in out.splitlines():
            key, _sep, value = line.strip().partition(":")
            if key.strip() == "Normalized form":
                return value.strip()
        return expression

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
    def analyze(self):
        if self._analyze is None:
            self._analyze = self.module.get_bin_path("systemd-analyze")
        return self._analyze

    def verify(self, unit_name, text=None, dropins=None, instance="verify", strict=True, dropin_unit=None):
        """Run ``systemd-analyze verify`` on a unit as systemd would load it, before it lands.

        ``text``: the new unit file, saved under its real name ``unit_name`` in a private scratch
        directory (a template is verified through one instance of it). ``dropins``: ``{file name:
        text}`` of new drop-ins for the unit, placed in the scratch directory's ``UNIT.d/``; with no
        ``text``, the unit itself is the one installed on the host, together with its other
        drop-ins (the scratch directory comes first in the unit search path, so a new version of
        a drop-in replaces the installed one). ``dropin_unit`` names the unit whose ``.d/`` holds
        the drop-ins when it is not ``unit_name`` (an instance's drop-in, verified with its
        template's text). Raises SystemdError with systemd's own message when the unit is refused
        or a line would be ignored; returns the other warnings.
        """
        analyze = self.analyze()
        if analyze is None:
            raise SystemdError("systemd-analyze is not installed")
        scratch = tempfile.mkdtemp(prefix="supervised-verify-")
        try:
            os.chmod(scratch, 0o700)
            if text is not None:
                with open(os.path.join(scratch, unit_name), "w", encoding="utf-8") as handle:
                    handle.write(text)
            if dropins:
                dropin_dir = os.path.join(scratch, (dropin_unit or unit_name) + ".d")
                os.mkdir(dropin_dir, 0o700)
                for file_name, dropin_text in dropins.items():
                    with open(os.path.join(dropin_dir, file_name), "w", encoding="utf-8") as handle:
                        handle.write(dropin_text)
            loaded = unit_name.replace("@.", f"@{instance}.") if unit_name.endswith("@.service") else unit_name
            env = {"SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""}
            if text is not None:
                target = os.path.join(scratch, loaded)
            else:
                # By name: the installed unit, with the scratch drop-ins first in the search path.
                target = loaded
                env["SYSTEMD_UNIT_PATH"] = scratch + ":"
            rc, out, err = self.module.run_command([analyze, "verify", "--man=no", target], environ_update=env)
            # systemd-analyze loads the unit several times and repeats itself: keep each line once.
            lines = list(dict.fromkeys(ln for ln in (err + out).splitlines() if ln.strip()))
            # Keep what speaks of our unit; other units' complaints on the host are not ours.
            stem = unit_name.split("@")[0].rsplit(".", 1)[0]
            ours = [ln.replace(scratch + "/", "") for ln in lines if stem in ln]
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


def run_argv(systemd_run, unit, command, properties=(), options=("--quiet", "--no-ask-password")):
    """The ``systemd-run`` argv of one transient service (no shell ever sees it): every property
    as ``-p NAME=VALUE`` (already validated), then the command after ``--``. systemd expands
    ``$NAME`` in the arguments of a transient service, so ``$`` is written ``$$``: every argument
    is taken literally."""
    argv = [systemd_run] + list(options) + [f"--unit={unit}", "--service-type=exec"]
    for name, value in properties:
        argv += ["-p", f"{name}={value}"]
    return argv + ["--", command[0]] + [arg.replace("$", "$$") for arg in command[1:]]


_MISSING_EXEC_RE = re.compile(r"Command (\S+) is not executable: No such file or directory")
_MISSING_UNIT_RE = re.compile(r"Unit (\S+) not found")
_LINE_RE = re.compile(r"\.(?:service|timer|conf):(\d+):")


class UnitWriter:
    """Verify a unit (or drop-in) under its real name, then write it; reload systemd once at the end.

    ``blame(directive) -> option`` names the module option behind a line systemd complained about.
    A missing executable of the unit is only a warning in check mode (an earlier task may install
    it); everywhere else a refusal leaves the host exactly as it was.
    """

    def __init__(self, module, systemd=None):
        self.module = module
        self.systemd = systemd or Systemd(module)
        self.changed = False
        self.verified = []
        self.warnings = []
        self.unverified = False

    def _verifier(self, unit, text, dropins, executables, blame, needed_units, instance="verify", dropin_unit=None):
        if self.systemd.analyze() is None:
            self.module.warn("systemd-analyze was not found; the unit was written without verification")
            self.unverified = True
            return None

        def check(_tmp_path):
            try:
                self.warnings += self.systemd.verify(unit, text, dropins, instance=instance, dropin_unit=dropin_unit)
                self.verified.append(unit)
            except SystemdError as err:
                lines = list(dict.fromkeys(str(err).split("; ")))
                missing = [m.group(1) for m in map(_MISSING_EXEC_RE.search, lines) if m]
                absent = [m.group(1).rstrip(".") for m in map(_MISSING_UNIT_RE.search, lines) if m]
                known = set(executables) | set(needed_units)
                if self.module.check_mode and (missing or absent) and len(missing) + len(absent) == len(lines) \
                        and set(missing + absent) <= known:
                    self.module.warn(f"check mode: {', '.join(missing + absent)} does not exist yet; "
                                     "the unit is verified again on a real run")
                    self.unverified = True
                    return None
                if absent and len(absent) == len(lines):
                    fields = ", ".join(dict.fromkeys(needed_units.get(u, "unit") for u in absent))
                    return (f"{fields}: {', '.join(absent)} is not installed; systemd would fail every start of "
                            f"{unit} (install it first, or name it in wants instead)")
                source = text if text is not None else "".join((dropins or {}).values())
                fields = _blame(source, lines, missing, blame)
                return f"{fields}: systemd-analyze verify refused {unit}: {'; '.join(lines)}"
            return None

        return check

    def claim(self, path, unit):
        """Refuse to write the unit file ``path`` over a unit this collection did not write: a file
        already there without the collection's header, or (when there is none) a unit of that name
        systemd loads from elsewhere, such as a package's /lib/systemd/system/getty@.service, which a
        file in /etc/systemd/system would replace for the whole host."""
        try:
            current = safe_file.read_state(path)
        except (OSError, safe_file.FileError):
            current = None
        if current is not None:
            if not current.content.startswith(MANAGED_PREFIX):
                raise safe_file.FileError(
                    f"name: {path} exists and was not written by supervised.background; it is left alone (choose "
                    "another name, or change that unit with unit_dropin)")
            return
        probe = unit.replace("@.", "@probe.")
        if not self.module.get_bin_path("systemctl"):
            return
        try:
            props = self.systemd.show([probe], ["LoadState", "FragmentPath"]).get(probe, {})
        except SystemdError:
            return  # no systemd running (an image being built): nothing is loaded that a file could replace
        fragment = props.get("FragmentPath") or ""
        if props.get("LoadState") == "loaded" and fragment and fragment != path:
            raise safe_file.FileError(
                f"name: a unit {unit} is already installed at {fragment}; a unit written to {path} would replace it "
                "for the whole host (choose another name, or change that unit with unit_dropin)")

    def write(self, path, unit, text, executables=(), blame=None, dropin_for=None, mode=0o644, needed_units=None,
              base=None, replace=False):
        """Write the unit file ``path`` (or, with ``dropin_for``, a drop-in of that unit) after
        verifying it; returns the safe_file WriteResult. ``needed_units`` maps the units the unit
        requires to the option that names them (a missing one is refused, in check mode a warning).
        ``base``: ``(template name, template text)`` to verify an instance's drop-in against a
        template that may not be installed yet. A whole unit is first :meth:`claim`-ed, unless
        ``replace`` says the caller replaces a packaged unit on purpose."""
        needed = needed_units or {}
        if dropin_for is None and not replace:
            self.claim(path, unit)
        if dropin_for is not None and base is not None:
            instance = dropin_for.split("@", 1)[1].rsplit(".", 1)[0]
            verifier = self._verifier(base[0], base[1], {os.path.basename(path): text}, executables, blame, needed,
                                      instance=instance, dropin_unit=dropin_for)
        elif dropin_for is not None:
            verifier = self._verifier(dropin_for, None, {os.path.basename(path): text}, executables, blame, needed)
        else:
            verifier = self._verifier(unit, text, None, executables, blame, needed)
        result = safe_file.write_file(self.module, path, text, owner="root", group="root", mode=mode,
                                      validate=verifier)
        self.changed = self.changed or result.changed
        return result

    def preflight(self, path, unit, text, executables=(), blame=None, needed_units=None):
        """Let systemd-analyze refuse a unit before the caller changes anything else on the host
        (an account, secrets, directories), when the unit would change; raises FileError with
        the refusal. The file that lands is verified again when it is written."""
        self.claim(path, unit)
        try:
            current = safe_file.read_state(path)
        except (OSError, safe_file.FileError):
            current = None
        if current is not None and current.content == text.encode("utf-8"):
            return
        check = self._verifier(unit, text, None, executables, blame, needed_units or {})
        error = check(path) if check else None
        if error:
            raise safe_file.FileError(error)

    def remove(self, path):
        result = safe_file.remove_file(self.module, path)
        self.changed = self.changed or result.changed
        return result

    def reload(self):
        """daemon-reload once, after the last change (never in check mode)."""
        if self.changed and not self.module.check_mode:
            self.systemd.daemon_reload()
            return True
        return False


def _blame(text, lines, missing, blame):
    """The option(s) behind the lines systemd complained about."""
    fields = ["exec_start"] if missing else []
    rows = text.splitlines()
    for line in lines:
        m = _LINE_RE.search(line)
        if not m or not 0 < int(m.group(1)) <= len(rows):
            continue
        directive = rows[int(m.group(1)) - 1].partition("=")[0]
        field = blame(directive) if blame else directive
        if field not in fields:
            fields.append(field)
    return ", ".join(fields) or "unit"
