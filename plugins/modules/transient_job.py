#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: transient_job
short_description: Run a one-off command as a transient systemd service and report its result
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Runs O(command) as a transient systemd service (C(systemd-run --unit=NAME)), so the job is
    supervised by systemd, logs to the journal, obeys resource limits and survives the Ansible
    connection going away.
  - The job is started with C(RemainAfterExit=yes) and without C(--collect), so after it exits the
    unit stays loaded (C(active/exited) after success, C(failed) otherwise) and its exit status and
    result can be read by a later task with O(state=finished), until the unit is started again,
    stopped or the machine reboots.
  - A unit name that is already running is never started a second time (see O(state=started)).
  - Secrets belong in O(environment_files); systemd reads those files, the module never does, so
    their content never appears in arguments, the unit's command line or the module's output.
    Arguments are passed literally; C($NAME) in an argument is NOT expanded (the module escapes
    C($) for systemd), so a secret cannot be pulled into a process's argument list by accident.
  - O(output_lines) lines of the job's own output (stdout/stderr, found in the journal by the
    job's invocation id) are returned. Whatever the job prints is returned, so a job must not
    print its secrets.
extends_documentation_fragment:
  - supervised.background.attributes
attributes:
  check_mode:
    support: full
    details: Reports what would run (the C(systemd-run) argument list in RV(command_line)) and runs nothing.
  diff_mode:
    support: none
options:
  unit:
    description:
      - Name of the transient unit, for example V(db-migrate) or V(db-migrate.service)
        (C(.service) is added when missing).
      - Letters, digits, C(_), C(.), C(:) and C(-); no C(@). Must not be the name of a unit
        installed on the host (a regular unit is never started, stopped or reported).
    type: str
    required: true
  command:
    description:
      - The program and its arguments, as a list (no shell is involved). The first element must
        be an absolute path to an existing file. Every element must be a single line.
      - Required with O(state=started).
    type: list
    elements: str
  user:
    description: User the job runs as (C(User=)). Must exist on the host. Default is root.
    type: str
  group:
    description: Group the job runs as (C(Group=)). Must exist on the host.
    type: str
  working_directory:
    description: Absolute path of an existing directory the job starts in (C(WorkingDirectory=)).
    type: path
  environment_files:
    description:
      - Absolute paths of environment files (C(KEY=value) lines) systemd reads for the job
        (C(EnvironmentFile=)). Each must exist. The module never reads them.
    type: list
    elements: path
    default: []
  properties:
    description:
      - Extra unit properties, from an allow-list, each value validated and passed as
        C(-p NAME=VALUE).
      - Time spans (V(RuntimeMaxSec), V(TimeoutStopSec)) take seconds or systemd spans such as
        V(30s), V(5min) or V(infinity); V(RuntimeMaxSec) ends a job that runs too long
        (RV(result=timeout)).
      - Sizes (V(MemoryMax), V(MemoryHigh), V(MemorySwapMax)) take V(512M), V(2G), V(50%) or
        V(infinity); V(CPUQuota) a percentage such as V(50%); V(TasksMax) a count, percentage or
        V(infinity).
      - Integers in range V(Nice) (-20..19), V(OOMScoreAdjust) (-1000..1000), V(CPUWeight) and
        V(IOWeight) (1..10000).
      - V(KillSignal) a signal name such as V(SIGTERM) or V(SIGINT); V(KillMode) V(control-group),
        V(mixed) or V(process); V(SendSIGKILL) a boolean.
      - V(LimitNOFILE), V(LimitNPROC), V(LimitCORE) a number, V(SOFT:HARD) or V(infinity).
      - V(UMask) an octal mode such as V(0077).
      - Booleans V(NoNewPrivileges), V(PrivateTmp), V(PrivateDevices); V(ProtectSystem) (boolean,
        V(full) or V(strict)); V(ProtectHome) (boolean, V(read-only) or V(tmpfs)).
      - Any other name is refused; V(User), V(Group), V(WorkingDirectory) and V(EnvironmentFile)
        have their own options.
    type: dict
    default: {}
  state:
    description:
      - V(started) starts the job. If a job of that unit name is running it is not started again;
        the running one is reported with RV(already_running=true) and C(changed=false) (with
        O(wait=true) the module waits for that running job and reports its result). A finished
        earlier run of the same name is cleared and a fresh run (new invocation id) is started.
      - V(finished) starts nothing; it waits (up to O(timeout)) for the job of that unit name to
        finish, or reads the result of the run that already finished. Fails when no such job is
        loaded.
      - V(stopped) stops the job if it is running (C(systemctl stop), honouring its
        V(KillSignal)/V(TimeoutStopSec)); a finished or unknown job is left as it is.
    type: str
    choices: [started, finished, stopped]
    default: started
  wait:
    description:
      - With O(state=started), wait until the job finishes and report its result. With V(false)
        the job is started detached and the module returns at once with its RV(unit) and
        RV(invocation_id); read the result later with O(state=finished).
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the job to finish (O(state=started) with O(wait=true), or
        O(state=finished)). When it runs longer the task fails and says so; the job keeps
        running unless O(stop_on_timeout=true).
      - V(0) means do not wait - report the current state, with RV(running=true) and no failure
        while the job still runs (O(stop_on_timeout) then does nothing); a finished job is
        reported (and fails with O(fail_on_error)) as usual.
    type: int
    default: 3600
  stop_on_timeout:
    description: Stop the job when O(timeout) is exceeded instead of leaving it running.
    type: bool
    default: false
  fail_on_error:
    description:
      - Fail the task when the finished job's result is not V(success) (non-zero exit, killed by a
        signal, RuntimeMaxSec exceeded...). The failure carries the same return values.
    type: bool
    default: true
  invocation_id:
    description:
      - With O(state=finished) or O(state=stopped), the invocation id a previous task returned;
        the task fails if the unit now belongs to another run.
    type: str
  output_lines:
    description: How many of the job's last output lines to return in RV(output_lines) (V(0) for none).
    type: int
    default: 20
notes:
  - The job runs with C(Type=exec), so a command that cannot be executed fails at start.
  - A transient unit does not survive a reboot; its journal output does.
seealso:
  - name: systemd-run(1)
    description: How transient units are created.
    link: https://www.freedesktop.org/software/systemd/man/systemd-run.html
"""

EXAMPLES = r"""
- name: Run the database migration and wait for it (fails on a non-zero exit)
  supervised.background.transient_job:
    unit: db-migrate
    command: [/opt/app/bin/migrate, --to, latest]
    user: app
    working_directory: /opt/app
    environment_files: [/etc/supervised-background/app.env]
    properties:
      RuntimeMaxSec: 30min
      MemoryMax: 1G
  register: migrate

- name: Start a long re-index detached; it survives the connection going away
  supervised.background.transient_job:
    unit: reindex
    command: [/opt/app/bin/reindex]
    wait: false
  register: reindex

- name: Later, read (or wait for) the re-index result
  supervised.background.transient_job:
    unit: reindex
    state: finished
    invocation_id: "{{ reindex.invocation_id }}"
    timeout: 7200

- name: Stop the re-index if it still runs
  supervised.background.transient_job:
    unit: reindex
    state: stopped
"""

RETURN = r"""
unit:
  description: Full name of the transient unit.
  returned: always
  type: str
  sample: db-migrate.service
invocation_id:
  description: systemd's id of this run of the unit (empty when nothing ran or in check mode).
  returned: always
  type: str
  sample: 21eff70cb5dd457b851028805b1746ae
state:
  description: V(running), V(finished), V(stopped) or V(absent) (no such job is loaded).
  returned: always
  type: str
  sample: finished
running:
  description: Whether the job is still running.
  returned: always
  type: bool
already_running:
  description: With O(state=started), true when a job of this name was running and no new one was started.
  returned: always
  type: bool
result:
  description:
    - systemd's C(Result) of the run - V(success), V(exit-code), V(signal), V(core-dump),
      V(timeout) (RuntimeMaxSec exceeded, or a stop that needed SIGKILL), V(oom-kill)...
    - Null while the job runs, or when a stopped job was unloaded by systemd.
  returned: always
  type: str
  sample: exit-code
exit_status:
  description: Exit status of the job's process, or the number of the signal that killed it (see RV(exit_code)).
  returned: when the job has finished and systemd still knows it
  type: int
  sample: 3
exit_code:
  description: How the process ended, V(exited), V(killed) or V(dumped).
  returned: when the job has finished and systemd still knows it
  type: str
  sample: exited
duration_sec:
  description: Seconds between the job's start and its end (systemd's monotonic clock).
  returned: when the job has finished and systemd still knows it
  type: float
  sample: 2.043
output_lines:
  description: The last O(output_lines) lines the job printed (this invocation only), oldest first.
  returned: always
  type: list
  elements: str
  sample: [migrating, done]
command_line:
  description: The C(systemd-run) argument list the module ran (or would run in check mode).
  returned: when a job was (or would be) started
  type: list
  elements: str
"""

import grp
import os
import pwd
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import (
    Systemd,
    SystemdError,
    to_int,
)

JOB_PROPERTIES = (
    "Id", "LoadState", "ActiveState", "SubState", "Result", "ExecMainStatus", "ExecMainCode",
    "MainPID", "InvocationID", "Transient", "ExecMainStartTimestampMonotonic",
    "ExecMainExitTimestampMonotonic",
)

_USER_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}|\d+)$")
_INVOCATION_RE = re.compile(r"^[0-9a-f]{32}$")
_RLIMIT_RE = re.compile(r"^(?:\d+|infinity)(?::(?:\d+|infinity))?$")
_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGABRT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM",
            "SIGALRM", "SIGCONT", "SIGWINCH", "SIGPWR")
_EXIT_CODES = {1: "exited", 2: "killed", 3: "dumped"}
_RUNNING_STATES = ("activating", "active", "deactivating", "reloading")
# systemd's own exit statuses for a job that never ran its command (systemd.exec(5)).
EXEC_FAILURES = {
    200: "systemd could not change to the working directory",
    203: "systemd could not execute the command",
    216: "systemd could not switch to the group",
    217: "systemd could not switch to the user",
    209: "systemd could not connect the job's output",
    213: "systemd could not set the job's resource limits",
}

# Unit properties set through a dedicated option (or by the module itself).
_RESERVED = {
    "User": "the 'user' option", "Group": "the 'group' option",
    "WorkingDirectory": "the 'working_directory' option",
    "EnvironmentFile": "the 'environment_files' option",
    "ExecStart": "the 'command' option",
    "Environment": "the 'environment_files' option (secrets must not be arguments)",
    "RemainAfterExit": "the module (always yes, so the result stays readable)",
    "Type": "the module (always exec)",
}


def _timespan(field, value):
    return validate.format_timespan(validate.timespan(field, value, allow_infinity=True, minimum=0.001))


def _int_range(low, high):
    def check(field, value):
        if isinstance(value, bool):
            raise validate.InputError(f"{field}: '{value}' must be an integer from {low} to {high}")
        text = validate.single_line(field, str(value)).strip()
        if not re.fullmatch(r"-?\d+", text) or not low <= int(text) <= high:
            raise validate.InputError(f"{field}: '{text}' must be an integer from {low} to {high}")
        return str(int(text))
    return check


def _choice(*choices, booleans=False):
    def check(field, value):
        if isinstance(value, bool):
            if booleans:
                return "yes" if value else "no"
        else:
            text = validate.single_line(field, str(value)).strip()
            if booleans and text.lower() in ("yes", "true", "on", "1", "no", "false", "off", "0"):
                return "yes" if text.lower() in ("yes", "true", "on", "1") else "no"
            if text in choices:
                return text
        allowed = list(choices) + (["yes", "no"] if booleans else [])
        raise validate.InputError(f"{field}: '{value}' must be one of {', '.join(allowed)}")
    return check


def _signal(field, value):
    text = validate.single_line(field, str(value)).strip()
    if text not in _SIGNALS:
        raise validate.InputError(f"{field}: '{text}' must be a signal name, one of {', '.join(_SIGNALS)}")
    return text


def _rlimit(field, value):
    if isinstance(value, bool):
        raise validate.InputError(f"{field}: '{value}' must be a number, SOFT:HARD or infinity")
    text = validate.single_line(field, str(value)).strip()
    if not _RLIMIT_RE.match(text):
        raise validate.InputError(f"{field}: '{text}' must be a number, SOFT:HARD or infinity")
    return text


def _umask(field, value):
    return f"{validate.file_mode(field, value):04o}"


def _validator(func):
    def check(field, value):
        if isinstance(value, bool):
            raise validate.InputError(f"{field}: '{value}' is not a valid value")
        return func(field, value)
    return check


ALLOWED_PROPERTIES = {
    "RuntimeMaxSec": _timespan,
    "TimeoutStopSec": _timespan,
    "MemoryMax": _validator(validate.memory_size),
    "MemoryHigh": _validator(validate.memory_size),
    "MemorySwapMax": _validator(validate.memory_size),
    "CPUQuota": _validator(validate.cpu_quota),
    "TasksMax": _validator(validate.tasks_max),
    "CPUWeight": _int_range(1, 10000),
    "IOWeight": _int_range(1, 10000),
    "Nice": _int_range(-20, 19),
    "OOMScoreAdjust": _int_range(-1000, 1000),
    "KillSignal": _signal,
    "KillMode": _choice("control-group", "mixed", "process"),
    "SendSIGKILL": _choice(booleans=True),
    "LimitNOFILE": _rlimit,
    "LimitNPROC": _rlimit,
    "LimitCORE": _rlimit,
    "UMask": _umask,
    "NoNewPrivileges": _choice(booleans=True),
    "PrivateTmp": _choice(booleans=True),
    "PrivateDevices": _choice(booleans=True),
    "ProtectSystem": _choice("full", "strict", booleans=True),
    "ProtectHome": _choice("read-only", "tmpfs", booleans=True),
}


def unit_name(value):
    """``db-migrate`` or ``db-migrate.service`` -> ``db-migrate.service`` (no templates)."""
    validate.single_line("unit", value)
    if value and value.endswith(".service"):
        validate.full_unit_name("unit", value)
        if "@" in value:
            raise validate.InputError(f"unit: '{value}' must not contain '@' (a transient job is not a template instance)")
        return value
    validate.unit_base_name("unit", value)
    return f"{value}.service"


def check_properties(properties):
    """Validate the ``properties`` dict; return ``[(name, rendered value)]`` sorted by name."""
    rendered = []
    for name in sorted(properties, key=str):
        validate.directive_name("properties", name)
        if name in _RESERVED:
            raise validate.InputError(f"properties: '{name}' is set by {_RESERVED[name]}, not through properties")
        if name not in ALLOWED_PROPERTIES:
            raise validate.InputError(
                f"properties: '{name}' is not an allowed property (allowed: {', '.join(sorted(ALLOWED_PROPERTIES))})"
            )
        value = properties[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            raise validate.InputError(f"properties.{name}: must not be empty")
        rendered.append((name, ALLOWED_PROPERTIES[name](f"properties.{name}", value)))
    return rendered


def literal_argument(arg):
    """systemd expands ``$VAR``/``${VAR}`` in ExecStart arguments; ``$$`` is a literal ``$``."""
    return arg.replace("$", "$$")


def build_command_line(systemd_run, unit, command, user=None, group=None, working_directory=None,
                       environment_files=(), properties=()):
    """The ``systemd-run`` argv for one job (no shell ever sees it)."""
    argv = [systemd_run, "--quiet", "--no-ask-password", f"--unit={unit}", "--service-type=exec",
            "--remain-after-exit"]
    settings = []
    if user:
        settings.append(("User", user))
    if group:
        settings.append(("Group", group))
    if working_directory:
        settings.append(("WorkingDirectory", working_directory))
    for path in environment_files:
        settings.append(("EnvironmentFile", path))
    settings.extend(properties)
    for name, value in settings:
        argv += ["-p", f"{name}={value}"]
    return argv + ["--"] + [command[0]] + [literal_argument(a) for a in command[1:]]


def job_view(props):
    """Classify ``systemctl show`` properties of a job: absent / running / finished."""
    if props.get("LoadState") != "loaded":
        return "absent"
    active, sub = props.get("ActiveState"), props.get("SubState")
    if active in _RUNNING_STATES and not (active == "active" and sub == "exited"):
        return "running"
    return "finished"


def job_facts(props):
    """What the module reports about one run, from ``systemctl show`` properties."""
    view = job_view(props)
    facts = {
        "state": view,
        "running": view == "running",
        "invocation_id": props.get("InvocationID", "") if view != "absent" else "",
        "result": props.get("Result") or None if view == "finished" else None,
    }
    if view == "finished":
        code = to_int(props.get("ExecMainCode"), 0)
        facts["exit_status"] = to_int(props.get("ExecMainStatus"))
        facts["exit_code"] = _EXIT_CODES.get(code, "unknown")
        start = to_int(props.get("ExecMainStartTimestampMonotonic"), 0)
        end = to_int(props.get("ExecMainExitTimestampMonotonic"), 0)
        facts["duration_sec"] = round((end - start) / 1e6, 3) if start and end >= start else None
    return facts


class TransientJob:
    """Start, wait for, read or stop one transient job."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.systemd = Systemd(module)
        self.unit = None
        self.command_line = None

    # -- input -------------------------------------------------------------------------------
    def check_input(self):
        """Validate every option (pure checks first, then read-only host checks)."""
        p = self.params
        self.unit = unit_name(p["unit"])
        if p["state"] == "started" and not p["command"]:
            raise validate.InputError("command: is required with state=started")
        command = p["command"] or []
        for index, arg in enumerate(command):
            validate.single_line(f"command[{index}]", arg)
        if command:
            validate.absolute_path("command[0]", command[0])
        for field in ("user", "group"):
            if p[field] is not None:
                validate.single_line(field, p[field])
                if not _USER_RE.match(p[field]):
                    raise validate.InputError(f"{field}: '{p[field]}' is not a valid {field} name")
        if p["working_directory"] is not None:
            validate.absolute_path("working_directory", p["working_directory"])
            if any(c.isspace() for c in p["working_directory"]):
                raise validate.InputError("working_directory: must not contain whitespace")
        for index, path in enumerate(p["environment_files"]):
            validate.absolute_path(f"environment_files[{index}]", path)
            if any(c.isspace() for c in path):
                raise validate.InputError(f"environment_files[{index}]: must not contain whitespace")
        properties = check_properties(p["properties"])
        if p["invocation_id"] is not None and not _INVOCATION_RE.fullmatch(p["invocation_id"]):
            raise validate.InputError("invocation_id: must be 32 lowercase hexadecimal characters")
        if p["timeout"] < 0:
            raise validate.InputError(f"timeout: {p['timeout']} must be 0 or more seconds")
        if p["output_lines"] < 0 or p["output_lines"] > 10000:
            raise validate.InputError(f"output_lines: {p['output_lines']} must be from 0 to 10000")
        if p["state"] == "started":
            self.check_host(command)
            self.command_line = build_command_line(
                self.module.get_bin_path("systemd-run", required=True), self.unit, command,
                p["user"], p["group"], p["working_directory"], p["environment_files"], properties,
            )

    def check_host(self, command):
        """Read-only checks of what the job needs, so a mistake fails before anything runs."""
        p = self.params
        if not os.path.isfile(command[0]):
            raise validate.InputError(f"command[0]: '{command[0]}' does not exist on the host")
        if p["user"] is not None:
            try:
                pwd.getpwuid(int(p["user"])) if p["user"].isdigit() else pwd.getpwnam(p["user"])
            except (KeyError, OverflowError):
                raise validate.InputError(f"user: '{p['user']}' does not exist on the host") from None
        if p["group"] is not None:
            try:
                grp.getgrgid(int(p["group"])) if p["group"].isdigit() else grp.getgrnam(p["group"])
            except (KeyError, OverflowError):
                raise validate.InputError(f"group: '{p['group']}' does not exist on the host") from None
        if p["working_directory"] is not None and not os.path.isdir(p["working_directory"]):
            raise validate.InputError(f"working_directory: '{p['working_directory']}' is not an existing directory")
        for index, path in enumerate(p["environment_files"]):
            if not os.path.isfile(path):
                raise validate.InputError(f"environment_files[{index}]: '{path}' does not exist on the host")

    # -- systemd -----------------------------------------------------------------------------
    def show(self):
        props = self.systemd.show([self.unit], JOB_PROPERTIES)[self.unit]
        if props.get("LoadState") == "loaded" and props.get("Transient") != "yes":
            raise validate.InputError(
                f"unit: '{self.unit}' is a unit installed on the host, not a transient job; pick another name"
            )
        return props

    def output(self, start_monotonic, invocation=""):
        """The job's own last output lines: its unit's entries since this run started.

        journald tags a line with the run's invocation id only while the job's cgroup exists, so
        the last lines of a short job often lack it; one unit name runs one job at a time, so the
        unit plus the run's start time select exactly this run's lines.
        """
        lines = self.params["output_lines"]
        if lines == 0 or not (start_monotonic or invocation):
            return []
        if not start_monotonic:
            return self.systemd.journal_tail(self.unit, lines, invocation=invocation)
        since = time.time() - (time.monotonic() - start_monotonic / 1e6)
        return self.systemd.journal_tail(self.unit, lines, since=since)

    def wait_for(self, props):
        """Poll until the job is no longer running or ``timeout`` passes; return (props, timed_out)."""
        deadline = time.monotonic() + self.params["timeout"]
        delay = 0.1
        while job_view(props) == "running":
            if time.monotonic() >= deadline:
                return props, True
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 1.0)
            props = self.show()
        return props, False

    # -- states ------------------------------------------------------------------------------
    def run(self):
        try:
            self.check_input()
        except validate.InputError as err:
            self.module.fail_json(msg=str(err), unit=self.unit or self.params["unit"], changed=False)
        try:
            return getattr(self, f"state_{self.params['state']}")()
        except validate.InputError as err:
            self.module.fail_json(msg=str(err), unit=self.unit, changed=False)
        except SystemdError as err:
            self.module.fail_json(msg=f"{self.unit}: {err}", unit=self.unit, changed=False)
        return None

    def base_result(self, props, changed=False, already_running=False):
        result = {"changed": changed, "unit": self.unit, "already_running": already_running,
                  "output_lines": []}
        result.update(job_facts(props))
        return result

    def state_started(self):
        props = self.show()
        view = job_view(props)
        if view == "running":
            self.check_invocation(props)
            result = self.base_result(props, already_running=True)
            if self.params["wait"] and not self.module.check_mode:
                return self.finish(props, result)
            result["output_lines"] = self.lines(props)
            return result
        if self.module.check_mode:
            result = self.base_result({}, changed=True)
            result["command_line"] = self.command_line
            return result
        if view == "finished":
            # A finished earlier run stays loaded (RemainAfterExit); clear it for a fresh run.
            if props.get("ActiveState") == "active":
                self.systemd.stop([self.unit])
            self.systemd.reset_failed([self.unit])
        rc, out, err = self.module.run_command(self.command_line, expand_user_and_vars=False)
        props = self.show()
        result = self.base_result(props, changed=True)
        result["command_line"] = self.command_line
        if rc != 0 and job_view(props) == "absent":
            words = (err or out).strip()
            self.module.fail_json(msg=f"{self.unit}: systemd-run failed (rc={rc}): {words}", **result)
        # rc != 0 with the unit loaded: the job failed at once (exec error, or exited before the start
        # job completed); its result says which, so it is reported like any finished job.
        if not self.params["wait"] and rc == 0:
            return result
        return self.finish(props, result)

    def state_finished(self):
        props = self.show()
        if job_view(props) == "absent":
            raise validate.InputError(
                f"unit: no job named '{self.unit}' is loaded (never started, stopped, or the host rebooted)"
            )
        self.check_invocation(props)
        result = self.base_result(props)
        if self.module.check_mode and job_view(props) == "running":
            result["output_lines"] = self.lines(props)
            return result
        return self.finish(props, result)

    def state_stopped(self):
        props = self.show()
        if job_view(props) == "absent":
            return self.base_result(props)
        self.check_invocation(props)
        if job_view(props) == "finished":
            result = self.base_result(props)
            result["output_lines"] = self.lines(props)
            return result
        if self.module.check_mode:
            return self.base_result(props, changed=True)
        self.systemd.stop([self.unit])
        return self.stopped_result(props)

    def lines(self, props):
        return self.output(to_int(props.get("ExecMainStartTimestampMonotonic"), 0), props.get("InvocationID", ""))

    def stopped_result(self, before):
        """Report a job this module just stopped (``before``: its properties while running)."""
        after = self.show()
        result = self.base_result(after, changed=True)
        if job_view(after) == "absent" or after.get("InvocationID") != before.get("InvocationID"):
            # A cleanly stopped transient unit is unloaded by systemd at once: no result to read.
            result.update(state="stopped", result=None, running=False)
        result["invocation_id"] = before.get("InvocationID", "")
        result["output_lines"] = self.lines(before)
        return result

    def check_invocation(self, props):
        wanted = self.params["invocation_id"]
        current = props.get("InvocationID", "")
        if wanted and current != wanted:
            raise validate.InputError(
                f"invocation_id: '{self.unit}' now belongs to run {current or '(none)'}, not {wanted} "
                "(the job was started again or replaced)"
            )

    def finish(self, props, result):
        """Wait for the job (unless it is done), then report or fail on its result."""
        started = time.monotonic()
        first = props
        if self.params["timeout"] == 0 and job_view(props) == "running":
            # timeout=0: do not wait; report the running job as it is (not a failure).
            result.update(job_facts(props))
            result["output_lines"] = self.lines(props)
            return result
        props, timed_out = self.wait_for(props)
        if timed_out:
            waited = round(time.monotonic() - started, 1)
            if self.params["stop_on_timeout"]:
                self.systemd.stop([self.unit])
                result.update(self.stopped_result(props))
                self.module.fail_json(
                    msg=f"{self.unit}: still running after {waited:g} s (timeout={self.params['timeout']}); "
                        "stopped it (stop_on_timeout)", timed_out=True, **result)
            result.update(job_facts(props))
            result["output_lines"] = self.lines(props)
            self.module.fail_json(
                msg=f"{self.unit}: still running after {waited:g} s (timeout={self.params['timeout']}); "
                    "it keeps running (read it later with state=finished)", timed_out=True, **result)
        if job_view(props) == "absent":
            result.update(state="stopped", running=False, result=None, output_lines=self.lines(first))
            if self.params["fail_on_error"]:
                self.module.fail_json(
                    msg=f"{self.unit}: the job was stopped while waiting for it (by someone else?); "
                        "its result is unknown", **result)
            return result
        result.update(job_facts(props))
        result["output_lines"] = self.lines(props)
        if self.params["fail_on_error"] and result["result"] != "success":
            hint = EXEC_FAILURES.get(result.get("exit_status")) if result.get("exit_code") == "exited" else None
            self.module.fail_json(
                msg=f"{self.unit}: job failed: result={result['result']}, {result.get('exit_code')} "
                    f"with status {result.get('exit_status')}" + (f" ({hint})" if hint else ""), **result)
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unit=dict(type="str", required=True),
            command=dict(type="list", elements="str"),
            user=dict(type="str"),
            group=dict(type="str"),
            working_directory=dict(type="path"),
            environment_files=dict(type="list", elements="path", default=[]),
            properties=dict(type="dict", default={}),
            state=dict(type="str", choices=["started", "finished", "stopped"], default="started"),
            wait=dict(type="bool", default=True),
            timeout=dict(type="int", default=3600),
            stop_on_timeout=dict(type="bool", default=False),
            fail_on_error=dict(type="bool", default=True),
            invocation_id=dict(type="str"),
            output_lines=dict(type="int", default=20),
        ),
        required_if=[("state", "started", ("command",))],
        supports_check_mode=True,
    )
    result = TransientJob(module).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
