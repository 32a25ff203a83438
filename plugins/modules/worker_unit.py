#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: worker_unit
short_description: Write a hardened systemd template unit (NAME@.service) for a background worker
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Renders C(NAME@.service) from structured options, verifies it with C(systemd-analyze verify) under its
    real template name (through one instance), and only then writes it atomically (C(root:root 0644)).
    A unit that systemd refuses, or on which it would ignore a line, never lands; the failure shows
    systemd's own message.
  - Runs C(systemctl daemon-reload) when the file changed and the unit directory is the system one.
  - Instances are started, scaled and restarted with M(supervised.background.worker_instances).
  - "Quoting rule for O(exec_start), O(exec_reload) and O(environment): every argument and value is taken
    literally. C($) is written as C($$) (no variable expansion), an argument holding a space, a quote, a
    backslash or a semicolon, or an empty one, is written between double quotes with C(\\\\) and C(\\\")
    escaped. The only exception are the two specifiers C(%i) (instance name) and C(%I) (unescaped
    instance name), which systemd expands; every other C(%) is written as C(%%), so a literal C(%i) cannot
    be passed. The same C(%) rule applies to O(description), paths and directory names."
  - The unit file and C(systemctl show) are readable by every local user. Put secrets in an
    environment file written by M(supervised.background.env_file), never in O(environment) or O(exec_start).
extends_documentation_fragment:
  - supervised.background.attributes
attributes:
  check_mode:
    support: full
    details: The unit is still verified by systemd, on a private copy. A missing executable is reported as a
      warning in check mode only, because an earlier task may install it.
  diff_mode:
    support: full
options:
  name:
    description:
      - Template name without C(@.service), for example C(queue-worker) for C(queue-worker@.service).
    type: str
    required: true
  state:
    description:
      - V(absent) removes the unit file and reloads systemd. Scale the instances to zero with
        M(supervised.background.worker_instances) first; the module warns when instances are still loaded.
    type: str
    choices: [present, absent]
    default: present
  unit_dir:
    description: Directory holding the unit file. Change it only for tests.
    type: path
    default: /etc/systemd/system
  daemon_reload:
    description:
      - Run C(systemctl daemon-reload) after a change. Default is to reload only when O(unit_dir) is
        C(/etc/systemd/system).
    type: bool
  file_owner:
    description: Owner of the unit file.
    type: str
    default: root
  file_group:
    description: Group of the unit file.
    type: str
    default: root
  description:
    description: C(Description=) of the unit. Defaults to C(<name> worker %i).
    type: str
  type:
    description:
      - Service C(Type=). V(exec) makes a start fail when the executable cannot be run; V(notify) needs a
        worker that calls C(sd_notify(READY=1)).
    type: str
    choices: [simple, exec, notify]
    default: exec
  exec_start:
    description:
      - Command line as a list; the first element is an absolute path, the others are arguments written
        literally (see the quoting rule above). Required with O(state=present).
      - The executable must exist when the unit is written, C(systemd-analyze verify) checks it.
    type: list
    elements: str
  exec_reload:
    description: Optional C(ExecReload=) command line, same rules as O(exec_start).
    type: list
    elements: str
  user:
    description: C(User=) the worker runs as. Letters, digits, C(_), C(.), C(-); or a numeric uid.
    type: str
  group:
    description: C(Group=) the worker runs as.
    type: str
  working_directory:
    description: Absolute C(WorkingDirectory=).
    type: str
  environment_files:
    description:
      - Absolute paths written as C(EnvironmentFile=) lines, in the given order (later files override
        earlier ones). A leading C(-) marks a file as optional, as in systemd.
    type: list
    elements: str
    default: []
  environment:
    description:
      - Non-secret variables written as C(Environment=) lines, keys sorted. Values must be single lines.
      - Keys systemd sets for the service (C(NOTIFY_SOCKET), C(INVOCATION_ID), C(LISTEN_FDS), C(MAINPID),
        C(*_DIRECTORY)...) are refused, as are variables the kernel could not pass (see M(supervised.background.env_file)).
      - NOT for secrets, unit files and C(systemctl show) are world-readable.
    type: dict
    default: {}
  restart:
    description: C(Restart=) policy.
    type: str
    choices: ['no', always, on-failure, on-abnormal, on-abort, on-watchdog, on-success]
    default: always
  restart_sec:
    description: C(RestartSec=); seconds or a systemd time span such as V(500ms) or V(2s).
    type: raw
    default: 2s
  start_limit_burst:
    description: C(StartLimitBurst=) in C([Unit]); starts allowed within O(start_limit_interval_sec).
    type: int
    default: 5
  start_limit_interval_sec:
    description: C(StartLimitIntervalSec=) in C([Unit]); V(0) disables the start rate limit.
    type: raw
    default: 60s
  kill_signal:
    description: C(KillSignal=) sent to the main process on stop, for example V(SIGTERM) or V(SIGINT).
    type: str
    default: SIGTERM
  kill_mode:
    description:
      - C(KillMode=). V(mixed) sends O(kill_signal) to the main process only, so the children it starts
        while draining keep running until it exits; whatever is left at the end is killed with C(SIGKILL),
        so no process outlives the unit. V(control-group) signals every process at once and can cut a
        graceful drain short.
    type: str
    choices: [control-group, mixed, process]
    default: mixed
  timeout_stop_sec:
    description: C(TimeoutStopSec=); how long a stop may take before C(SIGKILL). V(infinity) allowed.
    type: raw
    default: 30s
  hardening:
    description:
      - V(strict) applies the full sandbox (C(ProtectSystem=strict), C(ProtectHome=yes), C(PrivateTmp),
        C(PrivateDevices), C(NoNewPrivileges), kernel, clock, hostname and cgroup protection, namespace,
        realtime and SUID restrictions, C(MemoryDenyWriteExecute), C(RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6),
        C(SystemCallFilter=@system-service), no capabilities, C(ProtectProc=invisible),
        C(ProcSubset=pid), C(UMask=0077)).
      - V(baseline) is a smaller set that suits most daemons unchanged; V(none) adds nothing.
      - A directive of the set can be overridden through O(settings), e.g. C(MemoryDenyWriteExecute=no)
        for a JIT runtime.
    type: str
    choices: [strict, baseline, none]
    default: strict
  read_write_paths:
    description: Absolute paths the worker may write despite C(ProtectSystem=strict).
    type: list
    elements: str
    default: []
  state_directory:
    description: C(StateDirectory=), relative to C(/var/lib), for example V(queue-worker) or V(queue-worker/%i).
    type: str
  runtime_directory:
    description:
      - C(RuntimeDirectory=), relative to C(/run). systemd removes it when an instance stops, so give each
        instance its own, e.g. V(queue-worker/%i).
    type: str
  logs_directory:
    description: C(LogsDirectory=), relative to C(/var/log).
    type: str
  memory_max:
    description: C(MemoryMax=), e.g. V(512M), V(2G), V(50%) or V(infinity). Zero and more than V(100%) are refused.
    type: str
  cpu_quota:
    description: C(CPUQuota=), e.g. V(50%) or V(200%).
    type: str
  tasks_max:
    description: C(TasksMax=), a count, a percentage or V(infinity). V(0%) is refused.
    type: str
  nice:
    description: C(Nice=), from -20 to 19. A boolean is refused.
    type: int
  settings:
    description:
      - Other C([Service]) directives, name to a value or a list of values (one line each). Values are
        written verbatim (systemd's own syntax and specifiers apply) and must be single lines.
      - Directives owned by an option above are refused with the option to use instead. Unknown
        directives are refused by C(systemd-analyze verify).
      - Refused because they run commands outside the quoting of O(exec_start) (a C(+) prefix runs them as
        root outside the sandbox), run parts of the unit as root, or replace the worker's user; every
        command directive (C(ExecStartPre), C(ExecStartPost), C(ExecCondition), C(ExecStop),
        C(ExecStopPost)), C(PermissionsStartOnly), C(PAMName) and C(DynamicUser).
      - A setting that replaces a directive of the O(hardening) set with another value, or that grants
        privileges (C(AmbientCapabilities), C(CapabilityBoundingSet), C(SupplementaryGroups),
        C(SecureBits), C(NoNewPrivileges=no)), is allowed but never silent; it is listed in
        RV(hardening_overrides) and a warning names it whenever the unit file changes.
    type: dict
    default: {}
  wanted_by:
    description: C(WantedBy=) target of C([Install]), used when an instance is enabled.
    type: str
    default: multi-user.target
notes:
  - Without C(systemd-analyze) on the host the unit is written unverified and a warning says so.
seealso:
  - module: supervised.background.worker_instances
  - module: supervised.background.env_file
"""

EXAMPLES = r"""
- name: Template unit for the queue worker
  supervised.background.worker_unit:
    name: queue-worker
    description: Queue worker %i
    exec_start: [/usr/local/bin/queue-worker, --queue, "jobs", --id, "%i"]
    user: queue-worker
    group: queue-worker
    environment_files: [/etc/queue-worker/secrets.env]
    environment:
      LOG_LEVEL: info
    state_directory: queue-worker/%i
    memory_max: 256M
    settings:
      LimitNOFILE: "4096"

- name: Remove the template (scale instances to 0 first)
  supervised.background.worker_unit:
    name: old-worker
    state: absent
"""

RETURN = r"""
unit:
  description: Template unit name.
  returned: always
  type: str
  sample: queue-worker@.service
path:
  description: Path of the unit file.
  returned: always
  type: str
  sample: /etc/systemd/system/queue-worker@.service
unit_text:
  description: The rendered unit (holds no secrets by design).
  returned: when O(state=present)
  type: str
verify_warnings:
  description: Lines systemd printed about the unit that did not refuse it.
  returned: always
  type: list
  elements: str
verified:
  description:
    - Whether C(systemd-analyze verify) checked the new unit in this run. False when nothing changed, on
      O(state=absent) and when C(systemd-analyze) is missing (a warning says so).
  returned: always
  type: bool
hardening_overrides:
  description:
    - C(Directive=value) lines from O(settings) that weaken the O(hardening) set or grant privileges.
  returned: always
  type: list
  elements: str
  sample: [MemoryDenyWriteExecute=no, AmbientCapabilities=CAP_NET_BIND_SERVICE]
daemon_reloaded:
  description: Whether C(systemctl daemon-reload) ran.
  returned: always
  type: bool
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import env_rules, safe_file, validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import (
    SYSTEM_UNIT_DIR,
    Systemd,
    SystemdError,
    template_unit,
)

HEADER = "# Managed by supervised.background.worker_unit; do not edit"

SIGNALS = (
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGABRT", "SIGALRM",
    "SIGCONT", "SIGWINCH", "SIGPWR",
)

HARDENING = {
    "none": (),
    "baseline": (
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectSystem", "full"),
        ("ProtectHome", "read-only"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
    ),
    "strict": (
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("ProtectProc", "invisible"),
        ("ProcSubset", "pid"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("UMask", "0077"),
    ),
}

# Directives an option owns: settings may not set them (the value says which option to use).
OWNED = {
    "Description": "description", "StartLimitBurst": "start_limit_burst",
    "StartLimitIntervalSec": "start_limit_interval_sec", "StartLimitInterval": "start_limit_interval_sec",
    "Type": "type", "ExecStart": "exec_start", "ExecReload": "exec_reload", "User": "user",
    "Group": "group", "WorkingDirectory": "working_directory", "EnvironmentFile": "environment_files",
    "Environment": "environment", "Restart": "restart", "RestartSec": "restart_sec",
    "KillSignal": "kill_signal", "KillMode": "kill_mode", "TimeoutStopSec": "timeout_stop_sec",
    "ReadWritePaths": "read_write_paths", "StateDirectory": "state_directory",
    "RuntimeDirectory": "runtime_directory", "LogsDirectory": "logs_directory",
    "MemoryMax": "memory_max", "CPUQuota": "cpu_quota", "TasksMax": "tasks_max", "Nice": "nice",
    "WantedBy": "wanted_by",
}

# Directives settings may never set: they run commands verbatim outside exec_start's quoting (a '+',
# '!' or '!!' prefix runs them as root outside the sandbox), or run parts of the unit as root, or
# replace the user the worker runs as.
REFUSED = {
    "ExecStartPre": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "ExecStartPost": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "ExecCondition": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "ExecStop": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "ExecStopPost": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "PermissionsStartOnly": "runs the unit's other commands as root",
    "PAMName": "opens a PAM session as root for the worker",
    "DynamicUser": "replaces the user and group the worker runs as",
}
# Directives that can hand the worker privileges whatever the hardening level, with the values that
# grant nothing: any other value is reported.
PRIVILEGE = {
    "AmbientCapabilities": ("",), "CapabilityBoundingSet": ("",), "SupplementaryGroups": ("",),
    "SecureBits": ("",), "NoNewPrivileges": ("yes", "true", "on", "1"),
}
_ACCOUNT_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}|[0-9]{1,10})$")
_DIRNAME_RE = re.compile(r"^[A-Za-z0-9_%][A-Za-z0-9_.%:-]*$")
_NOT_IN_PATHS = set(" \"'\\$;")
_NEEDS_QUOTES = set(" \"'\\;")
_MISSING_EXEC_RE = re.compile(r"Command (\S+) is not executable: No such file or directory")


def escape_percent(text):
    """``%i``/``%I`` stay specifiers; every other ``%`` becomes ``%%`` (a literal percent sign)."""
    return re.sub(r"%(?![iI])", "%%", text)


def quote_exec_arg(arg):
    """One argument of an Exec*= line, taken literally by systemd except for ``%i``/``%I``."""
    text = escape_percent(arg).replace("$", "$$")
    if text == "" or any(ch in _NEEDS_QUOTES for ch in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def quote_environment(key, value):
    """One ``Environment=`` assignment; systemd does not expand ``$`` there."""
    text = escape_percent(f"{key}={value}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _raw_line(field, value):
    """A value written verbatim on a unit file line."""
    text = validate.single_line(field, value)
    if text.rstrip().endswith("\\"):
        raise validate.InputError(f"{field}: must not end with a backslash (it would continue the line)")
    return text


def _path(field, value, allow_optional=False):
    """An absolute path written into the unit; only %i/%I are specifiers."""
    text = validate.single_line(field, value)
    optional = allow_optional and text.startswith("-")
    bare = text[1:] if optional else text
    bad = sorted(set(bare) & _NOT_IN_PATHS)
    if bad:
        raise validate.InputError(f"{field}: '{bare}' must not contain spaces, quotes, '\\', '$' or ';'")
    validate.absolute_path(field, bare)
    return ("-" if optional else "") + escape_percent(bare)


def _dirname(field, value):
    """A directory name relative to /var/lib, /run or /var/log."""
    text = validate.single_line(field, value)
    if not text or text.startswith("/") or text.endswith("/"):
        raise validate.InputError(f"{field}: '{text}' must be a relative name such as 'app' or 'app/%i'")
    for part in text.split("/"):
        if part in ("", ".", "..") or not _DIRNAME_RE.match(part):
            raise validate.InputError(
                f"{field}: '{text}' may only use letters, digits, '_', '.', ':', '-', '%i' and '/' "
                "between names (no '..')"
            )
    return escape_percent(text)


def _account(field, value):
    text = validate.single_line(field, value)
    if not _ACCOUNT_RE.match(text):
        raise validate.InputError(
            f"{field}: '{text}' is not a valid user or group name (letters, digits, '_', '.', '-', "
            "at most 32 characters, not starting with '-' or '.'; or a number)"
        )
    return text


def _command(field, argv):
    if not argv:
        raise validate.InputError(f"{field}: must list at least the executable")
    argv = [validate.single_line(f"{field}[{i}]", arg) for i, arg in enumerate(argv)]
    exe = argv[0]
    if not exe.startswith("/"):
        raise validate.InputError(f"{field}: the executable '{exe}' must be an absolute path")
    if set(exe) & (_NOT_IN_PATHS | {"%"}):
        raise validate.InputError(f"{field}: the executable '{exe}' must not contain spaces, quotes, '\\', '$', ';' or '%'")
    validate.absolute_path(field, exe)
    if exe.endswith("/"):
        raise validate.InputError(f"{field}: the executable '{exe}' names a directory")
    return " ".join([exe] + [quote_exec_arg(arg) for arg in argv[1:]]), exe


def _setting_value(name, value):
    if value is None:
        raise validate.InputError(f"settings: {name} has no value (use '' to reset it)")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        raise validate.InputError(f"settings: {name} must be a string or a list of strings")
    return _raw_line(f"settings: {name}", str(value))


def _timespan(field, value, allow_infinity=False):
    return validate.format_timespan(validate.timespan(field, value, allow_infinity=allow_infinity))


def _int(field, value, low, high):
    """An int option: booleans are refused (YAML 'yes' is not 1), the range is enforced here."""
    if isinstance(value, bool):
        raise validate.InputError(f"{field}: '{value}' is a boolean, not a number")
    if not low <= value <= high:
        raise validate.InputError(f"{field}: {value} must be between {low} and {high}")
    return str(value)


class WorkerUnit:
    """Render, verify and write one template unit."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.verified = True
        self.executables = set()
        self.overrides = []

    # -- validation and rendering --------------------------------------------------------------
    def unit_lines(self):
        p = self.params
        name = p["name"]
        if not p["exec_start"]:
            raise validate.InputError("exec_start: required when state=present (a list, executable first)")
        description = _raw_line("description", p["description"] if p["description"] is not None else f"{name} worker %i")
        if not description.strip():
            raise validate.InputError("description: must not be empty")
        exec_start, exe = _command("exec_start", p["exec_start"])
        self.executables.add(exe)
        exec_reload = None
        if p["exec_reload"]:
            exec_reload, exe = _command("exec_reload", p["exec_reload"])
            self.executables.add(exe)
        unit = [
            ("Description", escape_percent(description)),
            ("StartLimitIntervalSec", _timespan("start_limit_interval_sec", p["start_limit_interval_sec"])),
            ("StartLimitBurst", _int("start_limit_burst", p["start_limit_burst"], 0, 2 ** 32 - 2)),
        ]
        service = [("Type", p["type"]), ("ExecStart", exec_start)]
        if exec_reload:
            service.append(("ExecReload", exec_reload))
        if p["user"] is not None:
            service.append(("User", _account("user", p["user"])))
        if p["group"] is not None:
            service.append(("Group", _account("group", p["group"])))
        if p["working_directory"] is not None:
            service.append(("WorkingDirectory", _path("working_directory", p["working_directory"])))
        for i, path in enumerate(p["environment_files"] or []):
            service.append(("EnvironmentFile", _path(f"environment_files[{i}]", path, allow_optional=True)))
        environment = {}
        for key in sorted(p["environment"] or {}, key=str):
            validate.env_key("environment", key)
            env_rules.reserved_key("environment", key)
            value = p["environment"][key]
            if value is None or isinstance(value, (dict, list)):
                raise validate.InputError(f"environment: value of '{key}' must be a string")
            value = validate.single_line(f"environment: value of '{key}'",
                                         ("true" if value else "false") if isinstance(value, bool) else str(value))
            environment[key] = env_rules.utf8_value("environment", key, value)
        env_rules.check_sizes("environment", environment)
        service += [("Environment", quote_environment(k, v)) for k, v in environment.items()]
        service += [
            ("Restart", p["restart"]),
            ("RestartSec", _timespan("restart_sec", p["restart_sec"])),
            ("KillMode", p["kill_mode"]),
            ("KillSignal", self.signal()),
            ("TimeoutStopSec", _timespan("timeout_stop_sec", p["timeout_stop_sec"], allow_infinity=True)),
        ]
        for option, directive in (("state_directory", "StateDirectory"), ("runtime_directory", "RuntimeDirectory"),
                                  ("logs_directory", "LogsDirectory")):
            if p[option] is not None:
                service.append((directive, _dirname(option, p[option])))
        if p["read_write_paths"]:
            paths = [_path(f"read_write_paths[{i}]", path, allow_optional=True)
                     for i, path in enumerate(p["read_write_paths"])]
            service.append(("ReadWritePaths", " ".join(paths)))
        if p["memory_max"] is not None:
            service.append(("MemoryMax", validate.memory_size("memory_max", p["memory_max"])))
        if p["cpu_quota"] is not None:
            service.append(("CPUQuota", validate.cpu_quota("cpu_quota", p["cpu_quota"])))
        if p["tasks_max"] is not None:
            service.append(("TasksMax", validate.tasks_max("tasks_max", p["tasks_max"])))
        if p["nice"] is not None:
            service.append(("Nice", _int("nice", p["nice"], -20, 19)))

        settings = self.settings()
        level = dict(HARDENING[p["hardening"]])
        self.overrides = [
            f"{k}={v}" for k in sorted(settings) for v in settings[k]
            if (k in level and settings[k] != [level[k]]) or (k in PRIVILEGE and v.strip() not in PRIVILEGE[k])
        ]
        hardening = [(k, settings.pop(k)) if k in settings else (k, [v]) for k, v in HARDENING[p["hardening"]]]
        for key, values in hardening:
            service += [(key, v) for v in values]
        for key in sorted(settings):
            service += [(key, v) for v in settings[key]]
        wanted_by = validate.full_unit_name("wanted_by", p["wanted_by"], suffixes=(".target",))
        return unit, service, [("WantedBy", wanted_by)]

    def signal(self):
        text = validate.single_line("kill_signal", self.params["kill_signal"]).strip().upper()
        sig = text if text.startswith("SIG") else "SIG" + text
        if sig not in SIGNALS:
            raise validate.InputError(f"kill_signal: '{text}' is not one of {', '.join(SIGNALS)}")
        return sig

    def settings(self):
        result = {}
        for name in sorted(self.params["settings"] or {}, key=str):
            validate.directive_name("settings", name)
            if name in OWNED:
                raise validate.InputError(f"settings: {name} is set by the option '{OWNED[name]}'; use that instead")
            if name in REFUSED:
                raise validate.InputError(f"settings: {name} is refused, it {REFUSED[name]}")
            value = self.params["settings"][name]
            values = value if isinstance(value, list) else [value]
            if not values:
                raise validate.InputError(f"settings: {name} has an empty list; use '' to reset it")
            result[name] = [_setting_value(name, v) for v in values]
        return result

    @staticmethod
    def render(unit, service, install):
        def section(title, pairs):
            return [f"[{title}]"] + [f"{k}={v}" for k, v in pairs]

        lines = [HEADER] + section("Unit", unit) + [""] + section("Service", service) + [""] + section("Install", install)
        return "\n".join(lines) + "\n"

    # -- host ------------------------------------------------------------------------------------
    def reload_wanted(self, unit_dir):
        if self.params["daemon_reload"] is not None:
            return self.params["daemon_reload"]
        return os.path.realpath(unit_dir) == SYSTEM_UNIT_DIR

    def make_verifier(self, unit, text):
        if self.module.get_bin_path("systemd-analyze") is None:
            self.module.warn("systemd-analyze was not found; the unit was written without verification")
            self.verified = False
            return None

        def verifier(_tmp_path):
            try:
                self.verify_warnings = Systemd(self.module).verify(unit, text)
            except SystemdError as err:
                lines = list(dict.fromkeys(str(err).split("; ")))
                missing = [m.group(1) for m in map(_MISSING_EXEC_RE.search, lines) if m]
                if self.module.check_mode and len(missing) == len(lines) and set(missing) <= self.executables:
                    self.module.warn(f"check mode: {', '.join(missing)} does not exist yet; "
                                     "the unit is verified again on a real run")
                    self.verified = False
                    return None
                return f"{self.blame(text, lines, missing)}: systemd-analyze verify refused {unit}: {'; '.join(lines)}"
            return None

        return verifier

    def blame(self, text, lines, missing):
        """The option(s) behind the lines systemd complained about."""
        fields = ["exec_start"] if missing else []
        rows = text.splitlines()
        for line in lines:
            m = re.search(r"\.service:(\d+):", line)
            if not m or not 0 < int(m.group(1)) <= len(rows):
                continue
            directive = rows[int(m.group(1)) - 1].partition("=")[0]
            if directive in OWNED:
                field = OWNED[directive]
            elif directive in (self.params["settings"] or {}):
                field = f"settings.{directive}"
            else:
                field = "hardening"
            if field not in fields:
                fields.append(field)
        return ", ".join(fields) or "unit"

    def run(self):
        p = self.params
        try:
            name = validate.unit_base_name("name", p["name"])
            unit_dir = validate.absolute_path("unit_dir", p["unit_dir"].rstrip("/") or "/")
            validate.single_line("file_owner", p["file_owner"])
            validate.single_line("file_group", p["file_group"])
            owner = safe_file.resolve_uid(p["file_owner"])
            group = safe_file.resolve_gid(p["file_group"])
            text = None
            if p["state"] == "present":
                text = self.render(*self.unit_lines())
        except (validate.InputError, safe_file.FileError) as err:
            self.module.fail_json(msg=str(err))

        unit = template_unit(name)
        path = os.path.join(unit_dir, unit)
        self.verify_warnings = []
        result = {"unit": unit, "path": path, "changed": False, "daemon_reloaded": False}
        try:
            if text is None:
                outcome = safe_file.remove_file(self.module, path)
            else:
                result["unit_text"] = text
                outcome = safe_file.write_file(self.module, path, text, owner=owner, group=group, mode=0o644,
                                               validate=self.make_verifier(unit, text))
        except (safe_file.FileError, OSError) as err:
            self.module.fail_json(msg=str(err), unit=unit, path=path)
        result["changed"] = outcome.changed
        if outcome.diff is not None:
            result["diff"] = outcome.diff
        if outcome.changed and not self.module.check_mode and self.reload_wanted(unit_dir):
            systemd = Systemd(self.module)
            try:
                systemd.daemon_reload()
                result["daemon_reloaded"] = True
                if text is None:
                    left = sorted(systemd.loaded_instances(name))
                    if left:
                        self.module.warn(
                            f"{unit} was removed while instances are still loaded ({', '.join(left)}); "
                            "scale them to 0 with worker_instances first"
                        )
            except SystemdError as err:
                self.module.fail_json(msg=f"daemon-reload after writing {path} failed: {err}", **result)
        result["verify_warnings"] = self.verify_warnings
        result["hardening_overrides"] = self.overrides
        if self.overrides and outcome.changed:
            self.module.warn(f"{unit}: settings weaken the '{p['hardening']}' hardening or grant privileges: "
                             f"{', '.join(self.overrides)}")
        result["verified"] = bool(text is not None and outcome.changed and self.verified)
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            unit_dir=dict(type="path", default=SYSTEM_UNIT_DIR),
            daemon_reload=dict(type="bool"),
            file_owner=dict(type="str", default="root"),
            file_group=dict(type="str", default="root"),
            description=dict(type="str"),
            type=dict(type="str", choices=["simple", "exec", "notify"], default="exec"),
            exec_start=dict(type="list", elements="str"),
            exec_reload=dict(type="list", elements="str"),
            user=dict(type="str"),
            group=dict(type="str"),
            working_directory=dict(type="str"),
            environment_files=dict(type="list", elements="str", default=[]),
            environment=dict(type="dict", default={}),
            restart=dict(type="str", default="always",
                         choices=["no", "always", "on-failure", "on-abnormal", "on-abort", "on-watchdog",
                                  "on-success"]),
            restart_sec=dict(type="raw", default="2s"),
            start_limit_burst=dict(type="int", default=5),
            start_limit_interval_sec=dict(type="raw", default="60s"),
            kill_signal=dict(type="str", default="SIGTERM"),
            kill_mode=dict(type="str", choices=["control-group", "mixed", "process"], default="mixed"),
            timeout_stop_sec=dict(type="raw", default="30s"),
            hardening=dict(type="str", choices=["strict", "baseline", "none"], default="strict"),
            read_write_paths=dict(type="list", elements="str", default=[]),
            state_directory=dict(type="str"),
            runtime_directory=dict(type="str"),
            logs_directory=dict(type="str"),
            memory_max=dict(type="str"),
            cpu_quota=dict(type="str"),
            tasks_max=dict(type="str"),
            nice=dict(type="int"),
            settings=dict(type="dict", default={}),
            wanted_by=dict(type="str", default="multi-user.target"),
        ),
        required_if=[("state", "present", ("exec_start",))],
        supports_check_mode=True,
    )
    result = WorkerUnit(module).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
