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
    C(/usr/local/libexec/supervised-background/job-finish)) before it stops the unit: the helper records
    the run's result, exit status and every leftover process (a child the job put in the background,
    by name and executable, never with its arguments), then systemd kills the leftovers (SIGTERM, then
    SIGKILL after C(TimeoutStopSec)). The result stays readable with O(state=finished) from the
    root-only record in C(/run/supervised-background/jobs/) until the unit is started again or the
    machine reboots; RV(leftovers) names what was killed.
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
        have their own options. V(KillMode=process) is refused, it would leave the job's other
        processes running after it ends.
      - The names and validators are the collection's allowlist of unit settings (the same as
        M(supervised.background.worker_unit)'s O(supervised.background.worker_unit#module:settings)),
        limited to what C(systemd-run) accepts for a transient service.
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
      - How long to wait for the job to finish (O(state=started) with O(wait=true), or
        O(state=finished)), in seconds or as a time span (V(30min)). When it runs longer the task
        fails and says so; the job keeps running unless O(stop_on_timeout=true).
      - V(0) means do not wait - report the current state, with RV(running=true) and no failure
        while the job still runs (O(stop_on_timeout) then does nothing); a finished job is
        reported (and fails with O(fail_on_error)) as usual.
    type: raw
    default: 1h
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
  lock_timeout:
    description:
      - How long to wait for another run that is starting or stopping the same job (seconds or a time span).
        The wait for the job itself is not under the lock.
    type: raw
    default: 5min
notes:
  - The job runs with C(Type=exec), so a command that cannot be executed fails at start.
  - A job killed by the kernel's OOM killer, or one that cannot be started, ends as a failed unit
    that systemd keeps loaded; its result is read from systemd (with no leftover report, systemd
    killed them).
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
    - Null while the job runs.
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
leftovers:
  description:
    - The processes of the job still running when its main process ended (by name and executable,
      never their arguments), all of which systemd then killed. At most 50 are listed.
  returned: when the job has finished
  type: list
  elements: dict
  sample: [{pid: 4711, name: sleep, executable: /usr/bin/sleep}]
leftover_count:
  description: How many leftover processes systemd killed when the job ended.
  returned: when the job has finished
  type: int
  sample: 1
command_line:
  description: The C(systemd-run) argument list the module ran (or would run in check mode).
  returned: when a job was (or would be) started
  type: list
  elements: str
"""

import os
import pwd
import grp
import signal
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import (
    job_record,
    locking,
    safe_file,
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
_INVOCATION_RE = r"[0-9a-f]{32}"
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
OWNED = {
    "User": "user", "Group": "group", "WorkingDirectory": "working_directory",
    "EnvironmentFile": "environment_files", "ExecStart": "command",
    "Environment": "environment_files (secrets must not be arguments or properties)",
    "RemainAfterExit": "the module", "Type": "the module (always exec)",
    "SuccessExitStatus": "the module (every exit is recorded; the result says how it ended)",
}


def job_unit(value):
    """``db-migrate`` or ``db-migrate.service`` -> ``db-migrate.service`` (no templates)."""
    validate.single_line("unit", value)
    if value and value.endswith(".service"):
        unit_name("unit", value)
        if "@" in value:
            raise validate.InputError(f"unit: '{value}' must not contain '@' (a transient job is not a template instance)")
        return value
    return unit_prefix("unit", value) + ".service"


def check_properties(properties):
    """The ``properties`` dict through the collection's allowlist: ``[(name, value)]`` sorted."""
    rendered = unit_file.settings("properties", properties, owned=OWNED, transient_only=True)
    if rendered.get("KillMode") == ["process"]:
        raise validate.InputError("properties.KillMode: 'process' is refused, it leaves the job's other processes "
                                  "running after the job ends")
    return [(name, value) for name in sorted(rendered) for value in rendered[name]]


def job_view(props, record=None):
    """Classify a job: absent / running / finished, from systemd's properties and the record.

    A job that ended is unloaded by systemd and known from its record; one that failed in a way
    that skips the record (it could not start, the OOM killer) stays loaded as ``failed``."""
    loaded = props.get("LoadState") == "loaded"
    active, sub = props.get("ActiveState"), props.get("SubState")
    if loaded and active in _RUNNING_STATES and not (active == "active" and sub == "exited"):
        return "running"
    if loaded and (active == "failed" or (active == "active" and sub == "exited")):
        return "finished"
    return "finished" if record is not None else "absent"


def _signal_number(name):
    try:
        return int(signal.Signals("SIG" + name if not name.startswith("SIG") else name))
    except (ValueError, KeyError):
        return None


def record_facts(record):
    """What the module reports about a run, from the helper's record."""
    code = record.get("exit_code") or ""
    raw = record.get("exit_status") or ""
    status = int(raw) if str(raw).isdigit() else _signal_number(str(raw))
    service = record.get("service_result") or ""
    if service not in ("", "success"):
        result = service
    elif code == "exited":
        result = "success" if status == 0 else "exit-code"
    elif code == "killed":
        result = "signal"
    elif code == "dumped":
        result = "core-dump"
    else:
        result = "success"
    stopped = bool(record.get("stopped")) and service == "success"
    facts = {
        "state": "stopped" if stopped else "finished",
        "running": False,
        "invocation_id": record.get("invocation_id", ""),
        "result": None if stopped else result,
        "exit_status": status,
        "exit_code": code or None,
        "duration_sec": record.get("duration_sec"),
        "leftovers": record.get("leftovers") or [],
        "leftover_count": record.get("leftover_count", 0),
    }
    return facts


def unit_facts(props, view):
    facts = {
        "state": view,
        "running": view == "running",
        "invocation_id": props.get("InvocationID", "") if view != "absent" else "",
        "result": (props.get("Result") or None) if view == "finished" else None,
    }
    if view == "finished":
        code = to_int(props.get("ExecMainCode"), 0)
        facts["exit_status"] = to_int(props.get("ExecMainStatus"))
        facts["exit_code"] = _EXIT_CODES.get(code, "unknown")
        start = to_int(props.get("ExecMainStartTimestampMonotonic"), 0)
        end = to_int(props.get("ExecMainExitTimestampMonotonic"), 0)
        facts["duration_sec"] = round((end - start) / 1e6, 3) if start and end >= start else None
        facts["leftovers"] = []
        facts["leftover_count"] = 0
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
            validate.pattern("invocation_id", p["invocation_id"], _INVOCATION_RE, "must be 32 lowercase hexadecimal characters")
        self.timeout = validate.timespan("timeout", p["timeout"])
        validate.integer("output_lines", p["output_lines"], 0, 10000)
        self.wait_lock = locking.lock_wait(p)
        if p["state"] == "started":
            self.check_host(command)
            settings += [("SuccessExitStatus", job_record.SUCCESS_EXIT_STATUS),
                         ("ExecStop", f"+{job_record.HELPER_PATH} {self.unit}")]
            self.command_line = run_argv(self.module.get_bin_path("systemd-run", required=True), self.unit, command,
                                         settings)

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

    def observe(self):
        """``(props, record, view)`` now."""
        props = self.show()
        record = job_record.read_record(self.unit)
        if record is not None and props.get("LoadState") == "loaded" and props.get("InvocationID") \
                and record.get("invocation_id") != props.get("InvocationID"):
            record = None
        return props, record, job_view(props, record)

    def facts(self, props, record, view):
        if view == "finished" and record is not None and props.get("ActiveState") != "failed":
            return record_facts(record)
        if view == "finished" and record is not None and record.get("invocation_id") == props.get("InvocationID"):
            facts = unit_facts(props, view)
            facts.update(leftovers=record.get("leftovers") or [], leftover_count=record.get("leftover_count", 0))
            return facts
        return unit_facts(props, view)

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

    def wait_for(self):
        """Poll until the job is no longer running or the timeout passes."""
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        props, record, view = self.observe()
        while view == "running":
            if time.monotonic() >= deadline:
                return props, record, view, True
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 1.0)
            props, record, view = self.observe()
        return props, record, view, False

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

    def result(self, props, record, view, changed=False, already_running=False):
        facts = self.facts(props, record, view)
        result = {"changed": changed, "unit": self.unit, "already_running": already_running}
        result.update(facts)
        result["output_lines"] = self.output(props, record, facts) if view != "absent" else []
        return result

    def state_started(self):
        with locking.host_lock(self.module, ("job", self.unit), timeout=self.wait_lock):
            props, record, view = self.observe()
            if view == "running":
                self.check_invocation(props)
                if not self.params["wait"] or self.module.check_mode:
                    return self.result(props, record, view, already_running=True)
            elif self.module.check_mode:
                return {"changed": True, "unit": self.unit, "already_running": False, "state": "absent",
                        "running": False, "invocation_id": "", "result": None, "output_lines": [],
                        "command_line": self.command_line}
            else:
                rc = self.start(props)
        if view == "running":
            # Another run of this job is going on: wait for it (outside the lock) and report it.
            return self.finish(already_running=True)
        if not self.params["wait"] and rc == 0:
            props, record, view = self.observe()
            result = self.result(props, record, view, changed=True)
            result["command_line"] = self.command_line
            return result
        return self.finish(changed=True)

    def start(self, props):
        """Install the helper, clear a finished earlier run (new invocation id), run systemd-run."""
        safe_file.install_program(self.module, job_record.HELPER_PATH, job_record)
        if props.get("LoadState") == "loaded":
            if props.get("ActiveState") == "active":
                self.systemd.stop([self.unit])
            self.systemd.reset_failed([self.unit])
        job_record.remove_record(self.unit)
        rc, out, err = self.module.run_command(self.command_line, expand_user_and_vars=False)
        if rc != 0 and self.observe()[2] == "absent":
            self.module.fail_json(msg=f"{self.unit}: systemd-run failed (rc={rc}): {(err or out).strip()}",
                                  unit=self.unit, changed=True, command_line=self.command_line)
        # rc != 0 with the unit loaded: the job failed at once (exec error, or exited before the start
        # job completed); its result says which, so it is reported like any finished job.
        return rc

    def state_finished(self):
        props, record, view = self.observe()
        if view == "absent":
            raise validate.InputError(
                f"unit: no job named '{self.unit}' is loaded or recorded (never started, or the host rebooted)"
            )
        self.check_invocation(props, record)
        if self.module.check_mode and view == "running":
            return self.result(props, record, view)
        return self.finish()

    def state_stopped(self):
        with locking.host_lock(self.module, ("job", self.unit), timeout=self.wait_lock):
            props, record, view = self.observe()
            if view == "absent":
                return self.result(props, record, view)
            self.check_invocation(props, record)
            if view == "finished":
                return self.result(props, record, view)
            if self.module.check_mode:
                result = self.result(props, record, view, changed=True)
                return result
            invocation = props.get("InvocationID", "")
            self.systemd.stop([self.unit])
            props, record, view = self.observe()
        result = self.result(props, record, view, changed=True)
        if view == "absent" or result.get("invocation_id") != invocation:
            result.update(state="stopped", result=None, running=False, invocation_id=invocation)
        return result

    def check_invocation(self, props, record=None):
        wanted = self.params["invocation_id"]
        current = props.get("InvocationID", "") or (record or {}).get("invocation_id", "")
        if wanted and current != wanted:
            raise validate.InputError(
                f"invocation_id: '{self.unit}' now belongs to run {current or '(none)'}, not {wanted} "
                "(the job was started again or replaced)"
            )

    def finish(self, changed=False, already_running=False):
        """Wait for the job (unless it is done), then report or fail on its result."""
        started = time.monotonic()
        props, record, view = self.observe()
        if self.timeout == 0 and view == "running":
            # timeout=0: do not wait; report the running job as it is (not a failure).
            return self.result(props, record, view, changed=changed, already_running=already_running)
        props, record, view, timed_out = self.wait_for()
        result = self.result(props, record, view, changed=changed, already_running=already_running)
        if self.command_line and changed:
            result["command_line"] = self.command_line
        if timed_out:
            waited = round(time.monotonic() - started, 1)
            if self.params["stop_on_timeout"]:
                with locking.host_lock(self.module, ("job", self.unit), timeout=self.wait_lock):
                    self.systemd.stop([self.unit])
                    props, record, view = self.observe()
                result.update(self.result(props, record, view, changed=True))
                self.module.fail_json(msg=f"{self.unit}: still running after {waited:g} s (timeout); stopped it "
                                          "(stop_on_timeout)", timed_out=True, **result)
            self.module.fail_json(msg=f"{self.unit}: still running after {waited:g} s (timeout); it keeps running "
                                      "(read it later with state=finished)", timed_out=True, **result)
        if view == "absent":
            result.update(state="stopped", running=False, result=None)
            if self.params["fail_on_error"]:
                self.module.fail_json(msg=f"{self.unit}: the job disappeared while waiting for it (stopped and reset by "
                                          "someone else?); its result is unknown", **result)
            return result
        if self.params["fail_on_error"] and result["state"] == "finished" and result["result"] != "success":
            hint = EXEC_FAILURES.get(result.get("exit_status")) if result.get("exit_code") == "exited" else None
            self.module.fail_json(
                msg=f"{self.unit}: job failed: result={result['result']}, {result.get('exit_code')} with status "
                    f"{result.get('exit_status')}" + (f" ({hint})" if hint else ""), **result)
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
            timeout=dict(type="raw", default="1h"),
            stop_on_timeout=dict(type="bool", default=False),
            fail_on_error=dict(type="bool", default=True),
            invocation_id=dict(type="str"),
            output_lines=dict(type="int", default=20),
            **locking.LOCK_SPEC,
        ),
        required_if=[("state", "started", ("command",))],
        supports_check_mode=True,
    )
    module.exit_json(**TransientJob(module).run())


if __name__ == "__main__":
    main()
