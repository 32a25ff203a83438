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
  - When the job's main process ends, nothing of the job is left running. systemd runs the
    collection's C(job-finish) helper (installed by the module as
    C(/usr/local/libexec/supervised-background/job-finish), run as root by the host's
    C(/usr/bin/python3) in isolated mode) before it stops the unit. The helper records the run's
    result, exit status and every leftover process (a child the job put in the background, by name
    and executable, never with its arguments); then systemd kills the leftovers (C(KillSignal), then
    SIGKILL after C(TimeoutStopSec); with V(KillMode=mixed) SIGKILL at once) and unloads the unit.
  - The result stays readable with O(state=finished) from the root-only record in
    C(/run/supervised-background/jobs/) until the unit name is started again or the machine
    reboots; RV(leftovers) names what was killed. A run that skips the helper (it could not start,
    it dumped core) stays loaded as a failed unit and is read from systemd.
  - A unit name that is already running is never started a second time (see O(state=started)).
  - Secrets belong in O(environment_files); systemd reads those files, the module never does, so
    their content never appears in arguments, the unit's command line or the module's output.
    Arguments are passed literally; C($NAME) in an argument is NOT expanded (the module escapes
    C($) for systemd), so a secret cannot be pulled into a process's argument list by accident.
  - O(output_lines) lines of the job's own output (stdout/stderr, found in the journal by the
    job's unit and start time) are returned. Whatever the job prints is returned, so a job must not
    print its secrets.
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
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
      - Letters, digits, C(_), C(.) and C(-), a letter, digit or C(_) first; no C(@) and no C(:).
        Must not be the name of a unit installed on the host (a regular unit is never started,
        stopped or reported).
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
        (C(EnvironmentFile=)). The module never reads them.
      - >-
        Each must be a regular file that only root can change (owned by root, not writable by its
        group or others, in directories only root can change): systemd applies its variables to the
        root C(job-finish) helper too, so a variable such as C(LD_PRELOAD) in a file another user
        could edit would run that user's code as root.
    type: list
    elements: path
    default: []
  properties:
    description:
      - Extra unit properties, from the collection's allowlist of unit settings limited to what
        C(systemd-run) accepts for a transient service (the same validators as
        M(supervised.background.worker_unit)'s O(supervised.background.worker_unit#module:settings)),
        each value validated and passed as C(-p NAME=VALUE).
      - Time spans (V(RuntimeMaxSec), V(TimeoutStopSec)) take seconds or systemd spans such as
        V(30s), V(5min); V(RuntimeMaxSec) ends a job that runs too long (RV(result=timeout)) and
        may be V(infinity).
      - Sizes (V(MemoryMax), V(MemoryHigh), V(MemorySwapMax)) take V(512M), V(2G), V(50%) or
        V(infinity); V(CPUQuota) a percentage such as V(50%); V(TasksMax) a count, percentage or
        V(infinity). Integers in range V(Nice) (-20..19), V(OOMScoreAdjust) (-1000..1000).
        V(KillSignal) a signal name such as V(SIGTERM) or V(SIGINT); V(KillMode) V(control-group)
        or V(mixed). Sandboxing booleans such as V(NoNewPrivileges), V(PrivateTmp), V(ProtectSystem).
      - >-
        Refused because they would leave a process of the job running after it ends -
        V(KillMode=process), V(SendSIGKILL=no), a V(FinalKillSignal) other than V(SIGKILL), a V(KillSignal)
        that does not end a process (V(SIGCONT), V(SIGWINCH)) and V(TimeoutStopSec=infinity) or longer than
        V(30min). V(TimeoutStopSec) must be at least V(5s): the C(job-finish) helper runs within it.
      - Refused because the module sets them - V(ExecStart), V(ExecStop), V(Type),
        V(RemainAfterExit), V(SuccessExitStatus); V(User), V(Group), V(WorkingDirectory) and
        V(EnvironmentFile) have their own options, V(Environment) is refused (secrets belong in
        O(environment_files)). Any name not on the allowlist is refused.
    type: dict
    default: {}
  state:
    description:
      - V(started) starts the job. If a job of that unit name is running it is not started again;
        the running one is reported with RV(already_running=true) and C(changed=false) (with
        O(wait=true) the module waits for that running job and reports its result). An earlier run
        of the same name that has ended is cleared (its record removed) and a fresh run (new
        invocation id) is started.
      - V(finished) starts nothing; it waits (up to O(timeout)) for the job of that unit name to
        end, or reads the result of the run that already ended. Fails when no such job is loaded
        or recorded.
      - V(stopped) stops the job if it is running (C(systemctl stop), honouring its
        V(KillSignal)/V(TimeoutStopSec)); an ended or unknown job is left as it is.
    type: str
    choices: [started, finished, stopped]
    default: started
  wait:
    description:
      - With O(state=started), wait until the job ends and report its result. With V(false)
        the job is started detached and the module returns at once with its RV(unit) and
        RV(invocation_id); read the result later with O(state=finished). A detached job that has
        already ended when the module looks (it could not be executed, or it was that short) is
        reported and judged (O(fail_on_error)) like an awaited one.
    type: bool
    default: true
  timeout:
    description:
      - How long to wait for the job to end (O(state=started) with O(wait=true), or
        O(state=finished)), in seconds or as a time span (V(30min)). When it runs longer the task
        fails and says so; the job keeps running unless O(stop_on_timeout=true).
      - V(0) means do not wait - report the current state, with RV(running=true) and no failure
        while the job still runs (O(stop_on_timeout) then does nothing); an ended job is
        reported (and fails with O(fail_on_error)) as usual.
      - The wait includes the end of the job's leftovers (up to C(TimeoutStopSec), 90 s unless set,
        for a leftover that ignores SIGTERM).
    type: raw
    default: 1h
  stop_on_timeout:
    description: Stop the job when O(timeout) is exceeded instead of leaving it running.
    type: bool
    default: false
  fail_on_error:
    description:
      - Fail the task when the ended job's result is not V(success) (non-zero exit, killed by a
        signal, RuntimeMaxSec exceeded...). The failure carries the same return values.
      - Leftover processes do not fail the task; they are reported (RV(leftovers)) with a warning.
    type: bool
    default: true
  invocation_id:
    description:
      - With O(state=finished) or O(state=stopped), the invocation id a previous task returned;
        the task fails if the unit now belongs to another run (also when it is replaced while the
        module waits).
    type: str
  output_lines:
    description: How many of the job's last output lines to return in RV(output_lines) (V(0) for none).
    type: int
    default: 20
notes:
  - The job runs with C(Type=exec), so a command that cannot be executed fails at start; on systemd
    older than 252 it runs with C(Type=simple) (systemd 247 crashes with C(Type=exec) and an
    C(ExecStop=), measured), and such a command ends with exit status 203.
  - >-
    A job that dumps core, or one that cannot be started (a missing environment file, the OOM
    killer on cgroup v2), skips the C(job-finish) helper: it ends as a failed unit that systemd keeps
    loaded, its result is read from systemd, and RV(leftover_count) is null (systemd killed what was
    left, unlisted). So does a job whose limits (C(TasksMax), C(MemoryMax), C(LimitNOFILE)...) leave
    no room for the helper; a job run as root that moves its processes to another cgroup escapes
    the count and the kill (root can do anything; run jobs as an unprivileged O(user)).
  - A transient unit does not survive a reboot; its journal output does; the record (in C(/run)) does not.
seealso:
  - name: systemd-run(1)
    description: How transient units are created.
    link: https://www.freedesktop.org/software/systemd/man/systemd-run.html
  - name: systemd.kill(5)
    description: KillMode, KillSignal, SendSIGKILL and what happens to a unit's processes when it stops.
    link: https://www.freedesktop.org/software/systemd/man/systemd.kill.html
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
    timeout: 2h

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
  description:
    - V(running); V(finished) (the main process ended, or RuntimeMaxSec ended it); V(stopped) (stopped
      with O(state=stopped) or O(stop_on_timeout)); V(absent) (no such job is loaded or recorded).
  returned: always
  type: str
  sample: finished
running:
  description: Whether the job is still running (this includes systemd still ending its leftovers).
  returned: always
  type: bool
already_running:
  description: With O(state=started), true when a job of this name was running and no new one was started.
  returned: always
  type: bool
result:
  description:
    - How the job's main process ended - V(success), V(exit-code), V(signal), V(core-dump),
      V(timeout) (RuntimeMaxSec exceeded, or a stop that needed SIGKILL), V(resources) (systemd
      could not start it), V(oom-kill)...
    - Null while the job runs, and for a job that was stopped cleanly.
  returned: always
  type: str
  sample: exit-code
exit_status:
  description: Exit status of the job's main process, or the number of the signal that killed it (see RV(exit_code)).
  returned: when the job has ended and it is known
  type: int
  sample: 3
exit_code:
  description: How the main process ended, V(exited), V(killed) or V(dumped).
  returned: when the job has ended and it is known
  type: str
  sample: exited
duration_sec:
  description: Seconds between the job's start and the end of its main process (or the stop request).
  returned: when the job has ended and it is known
  type: float
  sample: 2.043
output_lines:
  description: The last O(output_lines) lines the job printed (this run only), oldest first.
  returned: always
  type: list
  elements: str
  sample: [migrating, done]
leftovers:
  description:
    - The job's processes other than its main one that were still running when its main process
      ended (or when it was stopped), all of which systemd then killed; by name and executable,
      never their arguments (C(executable) is null when the kernel does not let root read it, for
      example in a container without CAP_SYS_PTRACE). At most 50 are listed.
    - Null when the run skipped the helper (see the notes).
  returned: when the job has ended
  type: list
  elements: dict
  sample: [{pid: 4711, name: sleep, executable: /usr/bin/sleep}]
leftover_count:
  description: How many leftover processes systemd killed when the job ended (null when unknown).
  returned: when the job has ended
  type: int
  sample: 1
leftover_stop:
  description:
    - How the leftovers ended - V(signalled) (sent C(KillSignal), or SIGKILL with V(KillMode=mixed));
      V(killed-after-timeout) (one ignored C(KillSignal) and was SIGKILLed after C(TimeoutStopSec);
      systemd then calls the unit's result V(timeout), the module reports the main process's result).
    - Null when there were none.
  returned: when the job has ended
  type: str
  sample: signalled
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
from ansible_collections.supervised.background.plugins.module_utils import (
    job_record,
    locking,
    safe_file,
    trust,
    unit_file,
    validate,
)
from ansible_collections.supervised.background.plugins.module_utils.systemd import (
    Systemd,
    SystemdError,
    run_argv,
    to_int,
    unit_name,
    unit_prefix,
)

JOB_PROPERTIES = (
    "Id", "LoadState", "ActiveState", "SubState", "Result", "ExecMainStatus", "ExecMainCode",
    "MainPID", "InvocationID", "Transient", "ExecMainStartTimestampMonotonic",
    "ExecMainExitTimestampMonotonic",
)
_INVOCATION_RE = job_record.INVOCATION_RE
_EXIT_CODES = {1: "exited", 2: "killed", 3: "dumped"}
_RUNNING_STATES = ("activating", "active", "deactivating", "reloading")
# systemd 247 (Debian 11) crashes (PID 1 aborts in service_dispatch_exec_io) when a Type=exec
# service has an ExecStop=; measured fine on 252 and 257. Older systemd gets Type=simple.
EXEC_TYPE_SINCE = 252
# systemd's own exit statuses for a job that never ran its command (systemd.exec(5)).
EXEC_FAILURES = {
    200: "systemd could not change to the working directory",
    203: "systemd could not execute the command",
    216: "systemd could not switch to the group",
    217: "systemd could not switch to the user",
    209: "systemd could not connect the job's output",
    213: "systemd could not set the job's resource limits",
}
# Unit properties set through a dedicated option.
OWNED = {
    "User": "user", "Group": "group", "WorkingDirectory": "working_directory",
    "EnvironmentFile": "environment_files", "ExecStart": "command",
    "Environment": "environment_files (secrets must not be arguments or properties)",
}
# Unit properties the module sets itself, and why.
MODULE_OWNED = {
    "Type": "always exec (simple before systemd 252)",
    "RemainAfterExit": "the unit ends with its job; the result is kept in the job's record",
    "SuccessExitStatus": "every exit counts, so that the job-finish helper always runs; the result says how it ended",
    "ExecStop": "it runs the job-finish helper that records the end and the leftovers",
}
# The job-finish helper runs within TimeoutStopSec (then systemd kills it and the record is lost,
# measured with 200ms); it took up to 1.3 s on a loaded 2-core machine.
MIN_STOP_SEC = 5.0
# And at most this long: the leftovers of a job that ignore KillSignal live until then (SIGKILL).
MAX_STOP_SEC = 1800.0
# KillSignal must end a process by default; SIGCONT or SIGWINCH would leave every leftover running
# until TimeoutStopSec.
ENDING_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGABRT", "SIGALRM",
                  "SIGPWR")
# Settings that would let a process of the job outlive it: (name, rendered value or None for any
# value but the allowed one, allowed value, reason).
_ORPHANING = (
    ("KillMode", "process", None, "it would leave the job's other processes running after the job ends"),
    ("SendSIGKILL", "no", None, "a process of the job that ignores KillSignal would be left running after the job ends"),
    ("FinalKillSignal", None, "SIGKILL",
     "a process of the job that ignores it would outlive the job (only SIGKILL is accepted)"),
    ("TimeoutStopSec", "infinity", None, "a process of the job that ignores KillSignal would never be killed"),
)


def job_unit(value):
    """``db-migrate`` or ``db-migrate.service`` -> ``db-migrate.service`` (no templates)."""
    validate.single_line("unit", value)
    if value and value.endswith(".service"):
        if "@" in value:
            raise validate.InputError(f"unit: '{value}' must not contain '@' (a transient job is not a template instance)")
        unit_name("unit", value)
        return value
    return unit_prefix("unit", value) + ".service"


def check_properties(properties):
    """The ``properties`` dict through the collection's allowlist: ``[(name, value)]`` sorted."""
    for name in sorted(properties or {}, key=str):
        if name in MODULE_OWNED:
            raise validate.InputError(f"properties.{name}: is set by the module ({MODULE_OWNED[name]}); "
                                      "it cannot be given")
    rendered = unit_file.settings("properties", properties, owned=OWNED, transient_only=True)
    for name, refused, allowed, reason in _ORPHANING:
        for value in rendered.get(name, []):
            if (refused is not None and value == refused) or (allowed is not None and value != allowed):
                raise validate.InputError(f"properties.{name}: '{value}' is refused: {reason}")
    for value in rendered.get("TimeoutStopSec", []):
        seconds = validate.timespan("properties.TimeoutStopSec", value)
        if seconds < MIN_STOP_SEC:
            raise validate.InputError(
                f"properties.TimeoutStopSec: '{value}' is refused: systemd kills the job-finish helper when it "
                f"takes longer (the result is then lost); at least {MIN_STOP_SEC:g}s")
        if seconds > MAX_STOP_SEC:
            raise validate.InputError(
                f"properties.TimeoutStopSec: '{value}' is refused: a process of the job that ignores KillSignal "
                f"would be left running that long after the job ended; at most {MAX_STOP_SEC / 60:g}min")
    for value in rendered.get("KillSignal", []):
        if value not in ENDING_SIGNALS:
            raise validate.InputError(
                f"properties.KillSignal: '{value}' is refused: it does not end a process, so every process the job "
                f"left would run until TimeoutStopSec; one of {', '.join(ENDING_SIGNALS)}")
    return [(name, value) for name in sorted(rendered) for value in rendered[name]]


def job_view(props, record=None):
    """Classify a job: absent / running / finished, from systemd's properties and the record.

    A job that ended is unloaded by systemd and known from its record; one that failed (in a way
    that skips the record, or whose leftovers needed SIGKILL) stays loaded as ``failed``."""
    loaded = props.get("LoadState") == "loaded"
    active = props.get("ActiveState")
    if loaded and active in _RUNNING_STATES:
        return "running"
    if loaded and active == "failed":
        return "finished"
    return "finished" if record is not None else "absent"


def _status(code, raw):
    """An exit status or signal number from a record (ints; older records held strings)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    if isinstance(raw, str) and code in ("killed", "dumped"):
        return job_record._SIGNAL_NUMBERS.get(raw[3:] if raw.startswith("SIG") else raw)
    return None


def _main_result(code, status):
    if code == "exited":
        return "success" if status == 0 else "exit-code"
    return {"killed": "signal", "dumped": "core-dump"}.get(code)


def record_facts(record):
    """What the module reports about a run, from the helper's record alone."""
    code = record.get("exit_code") or None
    status = _status(code, record.get("exit_status"))
    service = record.get("service_result") or ""
    stopped = bool(record.get("stopped"))
    count = record.get("leftover_count")
    if stopped and service == "timeout":
        state, result = "finished", "timeout"       # RuntimeMaxSec ended it
    elif stopped:
        state, result = "stopped", None             # systemctl stop
    else:
        state = "finished"
        result = service if service not in ("", "success") else (_main_result(code, status) or "success")
    return {
        "state": state,
        "running": False,
        "invocation_id": record.get("invocation_id", ""),
        "result": result,
        "exit_status": status,
        "exit_code": code,
        "duration_sec": record.get("duration_sec"),
        "leftovers": record.get("leftovers") or [],
        "leftover_count": count if isinstance(count, int) else 0,
        "leftover_stop": "signalled" if count else None,
    }


def unit_facts(props, view):
    """What the module reports from systemd's properties alone (running, absent, or a failed unit
    that has no record)."""
    facts = {
        "state": view,
        "running": view == "running",
        "invocation_id": props.get("InvocationID", "") if view != "absent" else "",
        "result": (props.get("Result") or None) if view == "finished" else None,
    }
    if view == "finished":
        code = to_int(props.get("ExecMainCode"), 0)
        facts["exit_status"] = to_int(props.get("ExecMainStatus")) if code else None
        facts["exit_code"] = _EXIT_CODES.get(code)
        start = to_int(props.get("ExecMainStartTimestampMonotonic"), 0)
        end = to_int(props.get("ExecMainExitTimestampMonotonic"), 0)
        facts["duration_sec"] = round((end - start) / 1e6, 3) if start and end >= start else None
        facts["leftovers"] = None
        facts["leftover_count"] = None
        facts["leftover_stop"] = None
    return facts


def job_facts(props, record, view):
    """The facts of a run from systemd's view and the record of the same run (if any)."""
    if view != "finished" or record is None:
        return unit_facts(props, view)
    facts = record_facts(record)
    if props.get("LoadState") == "loaded" and props.get("ActiveState") == "failed":
        # The unit failed after the helper ran: the stop after the main process (or a stop of a running
        # job) needed SIGKILL after TimeoutStopSec, or the main process ignored RuntimeMaxSec's SIGTERM.
        unit = unit_facts(props, view)
        if record.get("stopped"):
            for key in ("exit_status", "exit_code", "duration_sec"):
                facts[key] = unit[key] if unit[key] is not None else facts[key]
            facts["result"] = unit["result"]
            if unit["result"] == "timeout" and facts["leftover_count"]:
                facts["leftover_stop"] = "killed-after-timeout" if record.get("service_result") != "timeout" \
                    else facts["leftover_stop"]
        elif unit["result"] == "timeout" and facts["leftover_count"]:
            facts["leftover_stop"] = "killed-after-timeout"
    return facts


class TransientJob:
    """Start, wait for, read or stop one transient job."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.systemd = Systemd(module)
        self.unit = None
        self.command_line = None
        self.timeout = None
        self.wait_lock = None

    # -- input -------------------------------------------------------------------------------
    def check_input(self):
        """Validate every option (pure checks first, then read-only host checks)."""
        p = self.params
        self.unit = job_unit(p["unit"])
        if p["state"] == "started" and not p["command"]:
            raise validate.InputError("command: is required with state=started")
        command = [validate.text(f"command[{i}]", arg) for i, arg in enumerate(p["command"] or [])]
        if command:
            validate.absolute_path("command[0]", command[0])
        settings = []
        for field in ("user", "group"):
            if p[field] is not None:
                settings.append((field.capitalize(), validate.account_name(field, p[field])))
        if p["working_directory"] is not None:
            settings.append(("WorkingDirectory", unit_file.path_value("working_directory", p["working_directory"])))
        for index, path in enumerate(p["environment_files"]):
            settings.append(("EnvironmentFile", unit_file.path_value(f"environment_files[{index}]", path)))
        settings += check_properties(p["properties"])
        if p["invocation_id"] is not None:
            validate.pattern("invocation_id", p["invocation_id"], _INVOCATION_RE,
                             "must be 32 lowercase hexadecimal characters")
        self.timeout = validate.timespan("timeout", p["timeout"])
        validate.integer("output_lines", p["output_lines"], 0, 10000)
        self.wait_lock = locking.lock_wait(p)
        if p["state"] == "started":
            self.check_host(command)
            settings += [("SuccessExitStatus", job_record.SUCCESS_EXIT_STATUS),
                         ("ExecStop", job_record.exec_stop(self.unit))]
            argv = run_argv(self.module.get_bin_path("systemd-run", required=True), self.unit, command, settings)
            if self.service_type() != "exec":
                argv[argv.index("--service-type=exec")] = "--service-type=simple"
            self.command_line = argv

    def check_host(self, command):
        """Read-only checks of what the job needs, so a mistake fails before anything runs."""
        p = self.params
        if not os.path.isfile(command[0]):
            raise validate.InputError(f"command[0]: '{command[0]}' does not exist on the host")
        for field, lookup_id, lookup_name in (("user", pwd.getpwuid, pwd.getpwnam), ("group", grp.getgrgid, grp.getgrnam)):
            if p[field] is not None:
                try:
                    lookup_id(int(p[field])) if p[field].isdigit() else lookup_name(p[field])
                except (KeyError, OverflowError):
                    raise validate.InputError(f"{field}: '{p[field]}' does not exist on the host") from None
        if p["working_directory"] is not None and not os.path.isdir(p["working_directory"]):
            raise validate.InputError(f"working_directory: '{p['working_directory']}' is not an existing directory")
        for index, path in enumerate(p["environment_files"]):
            field = f"environment_files[{index}]"
            if not os.path.isfile(path):
                raise validate.InputError(f"{field}: '{path}' does not exist on the host")
            try:
                trust.check(field, path, trust.ROOT_READ)
            except trust.TrustError as err:
                raise validate.InputError(f"{err} (systemd applies its variables to the job's root "
                                          "job-finish helper too)") from None
        python = os.path.realpath(job_record.PYTHON)
        try:
            trust.check("command", python, trust.ROOT_BINARY)
        except trust.TrustError as err:
            raise validate.InputError(f"{err}: the job-finish helper runs with {job_record.PYTHON}") from None

    def service_type(self):
        _rc, out, _err = self.systemd.run(["--version"], check=False)
        found = re.match(r"systemd ([0-9]+)", out or "")
        return "exec" if found and int(found.group(1)) >= EXEC_TYPE_SINCE else "simple"

    # -- systemd -----------------------------------------------------------------------------
    def show(self):
        props = self.systemd.show([self.unit], JOB_PROPERTIES)[self.unit]
        if props.get("LoadState") == "loaded" and props.get("Transient") != "yes":
            raise validate.InputError(
                f"unit: '{self.unit}' is a unit installed on the host, not a transient job; pick another name"
            )
        return props

    def observe(self):
        """``(props, record, view)`` now; the record only when it is of the run systemd has loaded
        (or when nothing is loaded)."""
        props = self.show()
        record = job_record.read_record(self.unit)
        if record is not None and props.get("LoadState") == "loaded" \
                and record.get("invocation_id") != props.get("InvocationID"):
            record = None
        return props, record, job_view(props, record)

    @staticmethod
    def invocation_of(props, record, view):
        if view == "absent":
            return ""
        if props.get("LoadState") == "loaded" and props.get("InvocationID"):
            return props["InvocationID"]
        return (record or {}).get("invocation_id", "")

    def output(self, props, record, facts):
        """The job's own last output lines: its unit's entries since this run started."""
        lines = self.params["output_lines"]
        start = to_int(props.get("ExecMainStartTimestampMonotonic"), 0)
        if record is not None and record.get("invocation_id") == facts.get("invocation_id"):
            start = record.get("start_monotonic_usec") or start
        if lines == 0 or not start:
            return []
        since = time.time() - (time.monotonic() - start / 1e6)
        return self.systemd.journal_tail(self.unit, lines, since=since)

    def wait_for(self, invocation):
        """Poll until the run ``invocation`` is no longer running or the timeout passes."""
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        props, record, view = self.observe()
        while view == "running":
            self.same_run(invocation, props, record, view)
            if time.monotonic() >= deadline:
                return props, record, view, True
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 1.0)
            props, record, view = self.observe()
        self.same_run(invocation, props, record, view)
        return props, record, view, False

    def same_run(self, invocation, props, record, view):
        current = self.invocation_of(props, record, view)
        if invocation and current and current != invocation:
            raise validate.InputError(
                f"invocation_id: '{self.unit}' now belongs to run {current}, not {invocation} (the job was "
                "started again by someone else while this task waited)"
            )

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
        except (SystemdError, safe_file.FileError) as err:
            self.module.fail_json(msg=f"{self.unit}: {err}", unit=self.unit, changed=False)
        return None

    def result(self, props, record, view, changed=False, already_running=False):
        facts = job_facts(props, record, view)
        result = {"changed": changed, "unit": self.unit, "already_running": already_running}
        result.update(facts)
        result["output_lines"] = self.output(props, record, facts) if view != "absent" else []
        if facts.get("leftover_count"):
            names = sorted({p.get("name") or "?" for p in facts.get("leftovers") or []})
            how = "killed them with SIGKILL after TimeoutStopSec (SIGTERM was ignored)" if facts.get("leftover_stop") == "killed-after-timeout" \
                else "killed them"
            self.module.warn(f"{self.unit}: {facts['leftover_count']} process(es) of the job ({', '.join(names)}) "
                             f"were still running when it ended; systemd {how}")
        return result

    def state_started(self):
        rc = None
        with locking.host_lock(self.module, ("job", self.unit), timeout=self.wait_lock):
            props, record, view = self.observe()
            if view == "running":
                if not self.params["wait"] or self.module.check_mode:
                    return self.result(props, record, view, already_running=True)
                invocation = self.invocation_of(props, record, view)
            elif self.module.check_mode:
                result = self.result(props, record, view, changed=True)
                result["command_line"] = self.command_line
                return result
            else:
                rc = self.start(props)
                # Still under the lock: nobody else can have started the unit again yet.
                props, record, view = self.observe()
                invocation = self.invocation_of(props, record, view)
        if rc is None:
            # Another run of this job is going on: wait for it (outside the lock) and report it.
            return self.finish(invocation, already_running=True)
        if not self.params["wait"]:
            result = self.result(props, record, view, changed=True)
            result["command_line"] = self.command_line
            # A detached job that has already ended (it could not be executed, or it was that short) is
            # judged like an awaited one: its result is known.
            return self.judge(result) if view == "finished" else result
        return self.finish(invocation, changed=True)

    def start(self, props):
        """Install the helper, clear an ended earlier run (new invocation id), run systemd-run."""
        safe_file.install_program(self.module, job_record.HELPER_PATH, job_record)
        if props.get("LoadState") == "loaded":
            self.systemd.reset_failed([self.unit])
        job_record.remove_record(self.unit)
        rc, out, err = self.module.run_command(self.command_line, expand_user_and_vars=False,
                                               environ_update={"SYSTEMD_COLORS": "0"})
        if rc != 0 and self.observe()[2] == "absent":
            words = re.sub(r"\x1b\[[0-9;]*m", "", (err or out)).strip()
            self.module.fail_json(msg=f"{self.unit}: systemd-run failed (rc={rc}): {words}",
                                  unit=self.unit, changed=True, command_line=self.command_line)
        # rc != 0 with the unit loaded (or recorded): the job failed at once (exec error, or ended before
        # the start job completed); its result says which, so it is reported like any ended job.
        return rc

    def state_finished(self):
        props, record, view = self.observe()
        if view == "absent":
            raise validate.InputError(
                f"unit: no job named '{self.unit}' is loaded or recorded (never started, the host rebooted, "
                "or its job-finish helper could not run: see journalctl -u " + self.unit + ")"
            )
        self.check_invocation(props, record, view)
        if self.module.check_mode and view == "running":
            return self.result(props, record, view)
        return self.finish(self.params["invocation_id"] or self.invocation_of(props, record, view))

    def state_stopped(self):
        with locking.host_lock(self.module, ("job", self.unit), timeout=self.wait_lock):
            props, record, view = self.observe()
            if view == "absent":
                return self.result(props, record, view)
            self.check_invocation(props, record, view)
            if view == "finished":
                return self.result(props, record, view)
            if self.module.check_mode:
                return self.result(props, record, view, changed=True)
            invocation = props.get("InvocationID", "")
            self.systemd.stop([self.unit])
            props, record, view = self.observe()
        result = self.result(props, record, view, changed=True)
        if view == "absent" or result.get("invocation_id") != invocation:
            # No record of the stopped run (its helper could not run): say what is known.
            result.update(state="stopped", result=None, running=False, invocation_id=invocation)
        return result

    def check_invocation(self, props, record, view):
        wanted = self.params["invocation_id"]
        current = self.invocation_of(props, record, view)
        if wanted and current != wanted:
            raise validate.InputError(
                f"invocation_id: '{self.unit}' now belongs to run {current or '(none)'}, not {wanted} "
                "(the job was started again or replaced)"
            )

    def judge(self, result):
        """Fail on a result other than success (with fail_on_error), else return it."""
        if self.params["fail_on_error"] and result["state"] == "finished" and result["result"] != "success":
            hint = EXEC_FAILURES.get(result.get("exit_status")) if result.get("exit_code") == "exited" else None
            self.module.fail_json(
                msg=f"{self.unit}: job failed: result={result['result']}, {result.get('exit_code')} with status "
                    f"{result.get('exit_status')}" + (f" ({hint})" if hint else ""), **result)
        return result

    def finish(self, invocation, changed=False, already_running=False):
        """Wait for the run ``invocation`` (unless it is done), then report or fail on its result."""
        started = time.monotonic()
        props, record, view = self.observe()
        if self.timeout == 0 and view == "running":
            # timeout=0: do not wait; report the running job as it is (not a failure).
            self.same_run(invocation, props, record, view)
            return self.result(props, record, view, changed=changed, already_running=already_running)
        props, record, view, timed_out = self.wait_for(invocation)
        if timed_out:
            waited = round(time.monotonic() - started, 1)
            if self.params["stop_on_timeout"]:
                with locking.host_lock(self.module, ("job", self.unit), timeout=self.wait_lock):
                    props, record, view = self.observe()
                    if view == "running" and self.invocation_of(props, record, view) == invocation:
                        self.systemd.stop([self.unit])
                    props, record, view = self.observe()
                result = self.result(props, record, view, changed=True, already_running=already_running)
                if view == "absent":
                    result.update(state="stopped", running=False, result=None, invocation_id=invocation)
                self._add_command_line(result, changed)
                self.module.fail_json(msg=f"{self.unit}: still running after {waited:g} s (timeout); stopped it "
                                          "(stop_on_timeout)", timed_out=True, **result)
            result = self.result(props, record, view, changed=changed, already_running=already_running)
            self._add_command_line(result, changed)
            self.module.fail_json(msg=f"{self.unit}: still running after {waited:g} s (timeout); it keeps running "
                                      "(read it later with state=finished)", timed_out=True, **result)
        result = self.result(props, record, view, changed=changed, already_running=already_running)
        self._add_command_line(result, changed)
        if view == "absent":
            result.update(state="absent", running=False, result=None, invocation_id=invocation)
            if self.params["fail_on_error"]:
                self.module.fail_json(
                    msg=f"{self.unit}: the job ended without a record (its job-finish helper could not run: see "
                        f"journalctl -u {self.unit}), or it was stopped and reset by someone else; its result is "
                        "unknown", **result)
            return result
        return self.judge(result)

    def _add_command_line(self, result, changed):
        if self.command_line and changed:
            result["command_line"] = self.command_line


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
            timeout=dict(type="raw", default="1h"),
            stop_on_timeout=dict(type="bool", default=False),
            fail_on_error=dict(type="bool", default=True),
            invocation_id=dict(type="str"),
            output_lines=dict(type="int", default=20),
            **locking.LOCK_SPEC,
        ),
        supports_check_mode=True,
    )
    module.exit_json(**TransientJob(module).run())


if __name__ == "__main__":
    main()
