# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The service a worker (or a periodic job) runs as: options, and the unit they render to.

One argument spec and one renderer, shared by worker_unit, worker and worker_timer (their options
are documented once, in the ``supervised.background.service`` doc fragment). Pure: nothing here
touches the host.
"""

from __future__ import annotations

import os
import pwd

from ansible_collections.supervised.background.plugins.module_utils import env_rules, secret_files, systemd, unit_file, validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import UNIT_SUFFIXES, unit_name
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

HEADER = "# Managed by supervised.background; do not edit (changes are overwritten)"

# Options every service of the collection takes (workers and periodic jobs).
EXEC_SPEC = dict(
    description=dict(type="str"),
    exec_start=dict(type="list", elements="str"),
    user=dict(type="str"),
    group=dict(type="str"),
    working_directory=dict(type="str"),
    environment_files=dict(type="list", elements="str", default=[]),
    environment=dict(type="dict", default={}),
    credentials=dict(type="dict", default={}),
    encrypted_credentials=dict(type="dict", default={}),
    kill_signal=dict(type="str", default="SIGTERM"),
    kill_mode=dict(type="str", choices=["control-group", "mixed"], default="mixed"),
    timeout_stop_sec=dict(type="raw", default="30s"),
    runtime_max_sec=dict(type="raw"),
    hardening=dict(type="str", choices=list(unit_file.HARDENING_LEVELS), default="strict"),
    read_write_paths=dict(type="list", elements="str", default=[]),
    state_directory=dict(type="str"),
    runtime_directory=dict(type="str"),
    logs_directory=dict(type="str"),
    memory_max=dict(type="str"),
    cpu_quota=dict(type="str"),
    tasks_max=dict(type="str"),
    nice=dict(type="int"),
    settings=dict(type="dict", default={}),
    after=dict(type="list", elements="str", default=[]),
    before=dict(type="list", elements="str", default=[]),
    wants=dict(type="list", elements="str", default=[]),
    requires=dict(type="list", elements="str", default=[]),
    binds_to=dict(type="list", elements="str", default=[]),
    part_of=dict(type="list", elements="str", default=[]),
    on_failure=dict(type="list", elements="str", default=[]),
    wait_for_network=dict(type="bool", default=False),
)

# Options only a long-running worker takes.
WORKER_SPEC = dict(
    type=dict(type="str", choices=["simple", "exec", "notify"], default="exec"),
    exec_reload=dict(type="list", elements="str"),
    restart=dict(type="str", default="always",
                 choices=["no", "always", "on-failure", "on-abnormal", "on-abort", "on-watchdog", "on-success"]),
    restart_sec=dict(type="raw", default="2s"),
    start_limit_burst=dict(type="int", default=5),
    start_limit_interval_sec=dict(type="raw", default="60s"),
    watchdog_sec=dict(type="raw"),
    wanted_by=dict(type="str", default="multi-user.target"),
)

# Directives an option owns: ``settings`` may not set them (the message names the option).
OWNED = {
    "Description": "description", "Type": "type", "ExecStart": "exec_start", "ExecReload": "exec_reload",
    "User": "user", "Group": "group", "WorkingDirectory": "working_directory", "EnvironmentFile": "environment_files",
    "Environment": "environment", "Restart": "restart", "RestartSec": "restart_sec",
    "KillSignal": "kill_signal", "KillMode": "kill_mode", "TimeoutStopSec": "timeout_stop_sec",
    "RuntimeMaxSec": "runtime_max_sec", "ReadWritePaths": "read_write_paths",
    "StateDirectory": "state_directory", "RuntimeDirectory": "runtime_directory",
    "LogsDirectory": "logs_directory", "MemoryMax": "memory_max", "CPUQuota": "cpu_quota",
    "TasksMax": "tasks_max", "Nice": "nice", "WatchdogSec": "watchdog_sec", "NotifyAccess": "watchdog_sec",
    "StartLimitBurst": "start_limit_burst", "StartLimitIntervalSec": "start_limit_interval_sec",
    "WantedBy": "wanted_by",
}

# The options of a timer unit (periodic_job), for naming the option behind a refused line.
TIMER_OPTIONS = {"OnCalendar": "on_calendar", "OnBootSec": "on_boot_sec", "OnUnitActiveSec": "on_unit_active_sec",
                 "RandomizedDelaySec": "randomized_delay_sec", "AccuracySec": "accuracy_sec",
                 "Persistent": "persistent", "Unit": "unit"}


def blame(settings):
    """``directive -> option``: the option behind a line systemd complained about."""
    def name(directive):
        if directive in OWNED:
            return OWNED[directive]
        if directive in TIMER_OPTIONS:
            return TIMER_OPTIONS[directive]
        return f"settings.{directive}" if directive in (settings or {}) else "hardening"
    return name


DEPENDENCIES = (("after", "After"), ("before", "Before"), ("wants", "Wants"), ("requires", "Requires"),
                ("binds_to", "BindsTo"), ("part_of", "PartOf"), ("on_failure", "OnFailure"))

_CREDENTIAL_ID = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"


class ServicePlan:
    """What one service renders to; ``text`` is the unit file."""

    def __init__(self, text, executables, overrides, credentials, needed_units):
        self.text = text
        self.executables = executables
        self.overrides = overrides
        self.credentials = credentials
        self.needed_units = needed_units


def _deps(params):
    lines = []
    wants = list(params.get("wants") or [])
    after = list(params.get("after") or [])
    if params.get("wait_for_network"):
        wants.append("network-online.target")
        after.append("network-online.target")
    values = dict(params)
    values.update(wants=wants, after=after)
    for option, directive in DEPENDENCIES:
        names = []
        for index, name in enumerate(values.get(option) or []):
            field = f"{option}[{index}]"
            names.append(unit_name(field, name, suffixes=UNIT_SUFFIXES, template=False, specifiers=True))
        lines += [(directive, name) for name in dict.fromkeys(names)]
    return lines


# Where a credential may be loaded from: the stores systemd itself searches, and the collection's own.
# PID 1 reads the file as root and hands it to the service, so a path anywhere else could hand a worker
# any root-readable file (/etc/shadow).
SYSTEM_CREDENTIAL_STORES = ("/etc/credstore", "/etc/credstore.encrypted", "/run/credstore", "/run/credstore.encrypted")


def credential_stores():
    return (secret_files.CREDENTIAL_DIR,) + SYSTEM_CREDENTIAL_STORES


def secrets_dir():
    """The collection's secrets directory: EnvironmentFiles elsewhere are reported as overrides (PID 1
    reads them as root for the service, and logs the lines it cannot parse)."""
    return os.path.dirname(secret_files.CREDENTIAL_DIR)


# Where systemd creates each directory it hands to the service's user.
OWNED_DIR_BASES = (("state_directory", "/var/lib"), ("runtime_directory", "/run"), ("logs_directory", "/var/log"))


def _taken_directories(name, kind, params):
    """On a first deploy (no unit file of this name yet), a directory systemd would hand to the
    service's user must not exist already unless that user owns it: it belongs to someone else (a
    worker named 'sudo' with runtime_directory 'sudo/ts' would be handed sudo's /run/sudo/ts)."""
    user = params.get("user")
    if not user or user in ("root", "0"):
        return
    unit = f"{name}@.service" if kind == "worker" else f"{name}.service"
    if os.path.lexists(os.path.join(systemd.SYSTEM_UNIT_DIR, unit)):
        return
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        uid = None
    for option, base in OWNED_DIR_BASES:
        if not params.get(option):
            continue
        first = os.path.join(base, str(params[option]).split("/", 1)[0])
        try:
            owner = os.lstat(first).st_uid
        except OSError:
            continue
        if owner != uid:
            raise InputError(
                f"{option}: {first} already exists and belongs to uid {owner}, not to {user}; systemd would hand it "
                f"(or what lies below it) to {user}. This is the first deploy of {unit}, so it is someone else's: "
                "choose another name, or remove the directory if it is a leftover")


def _credentials(params):
    """``{ID: path}`` options -> (LoadCredential lines, ids)."""
    lines = []
    ids = []
    for option, directive in (("credentials", "LoadCredential"), ("encrypted_credentials", "LoadCredentialEncrypted")):
        for cred_id in sorted(params.get(option) or {}, key=str):
            field = f"{option}.{cred_id}"
            validate.pattern(option, cred_id, _CREDENTIAL_ID,
                             "is not a credential name (letters, digits, '_', '.', '-', at most 64)")
            if cred_id in ids:
                raise InputError(f"{field}: the credential name is given twice")
            path = unit_file.path_value(field, params[option][cred_id])
            if ":" in path:
                raise InputError(f"{field}: the path must not contain ':'")
            if not any(path.startswith(store + "/") for store in credential_stores()):
                raise InputError(
                    f"{field}: '{path}' is outside the credential stores ({', '.join(credential_stores())}): PID 1 reads "
                    "the file as root and hands it to the service, so any root-readable file (/etc/shadow) could be "
                    "given away; write the secret with the credential module instead")
            ids.append(cred_id)
            lines.append((directive, f"{cred_id}:{path}"))
    return lines, ids


def _environment(params):
    env = env_rules.environment("environment", params.get("environment") or {})
    return [("Environment", unit_file.quote_environment(k, v)) for k, v in env.items()]


def render(name, params, kind="worker"):
    """Render the unit of service ``name`` (``kind`` 'worker': a template NAME@.service with Restart=;
    'oneshot': a periodic job's service). Raises InputError naming the option."""
    p = params
    if not p.get("exec_start"):
        raise InputError("exec_start: required when state=present (a list, the executable first)")
    default_description = f"{name} worker %i" if kind == "worker" else f"{name} periodic job"
    desc = unit_file.description("description", p["description"] if p.get("description") is not None
                                 else default_description)
    exec_start, exe = unit_file.command_line("exec_start", p["exec_start"])
    executables = {exe}
    unit = [("Description", desc)]
    if kind == "worker":
        unit += [
            ("StartLimitIntervalSec", validate.unit_timespan("start_limit_interval_sec", p["start_limit_interval_sec"])),
            ("StartLimitBurst", str(validate.integer("start_limit_burst", p["start_limit_burst"], 0, 2 ** 32 - 2))),
        ]
    unit += _deps(p)

    service = []
    if kind == "worker":
        service.append(("Type", p["type"]))
    else:
        service.append(("Type", "oneshot"))
    service.append(("ExecStart", exec_start))
    if kind == "worker" and p.get("exec_reload"):
        exec_reload, exe = unit_file.command_line("exec_reload", p["exec_reload"])
        executables.add(exe)
        service.append(("ExecReload", exec_reload))
    if kind == "worker" and p.get("watchdog_sec") is not None:
        watchdog = validate.timespan("watchdog_sec", p["watchdog_sec"], minimum=0.001)
        if p["type"] != "notify":
            raise InputError("watchdog_sec: needs type=notify (the worker pings systemd with sd_notify WATCHDOG=1)")
        service += [("WatchdogSec", validate.format_timespan(watchdog)), ("NotifyAccess", "main")]
    elif kind == "worker" and p["type"] == "notify":
        service.append(("NotifyAccess", "main"))
    for field in ("user", "group"):
        if p.get(field) is not None:
            service.append((field.capitalize(), validate.account_name(field, p[field])))
    if p.get("working_directory") is not None:
        service.append(("WorkingDirectory", unit_file.path_value("working_directory", p["working_directory"])))
    env_reads = []
    for i, path in enumerate(p.get("environment_files") or []):
        rendered = unit_file.path_value(f"environment_files[{i}]", path, optional_prefix=True)
        service.append(("EnvironmentFile", rendered))
        if not rendered.lstrip("-").startswith(secrets_dir() + "/"):
            env_reads.append(f"EnvironmentFile={rendered}")
    service += _environment(p)
    cred_lines, cred_ids = _credentials(p)
    service += cred_lines
    if kind == "worker":
        service += [("Restart", p["restart"]), ("RestartSec", validate.unit_timespan("restart_sec", p["restart_sec"]))]
    service += [
        ("KillMode", p["kill_mode"]),
        ("KillSignal", validate.signal("kill_signal", p["kill_signal"])),
        ("TimeoutStopSec", validate.unit_timespan("timeout_stop_sec", p["timeout_stop_sec"], allow_infinity=True)),
    ]
    if p.get("runtime_max_sec") is not None:
        # A oneshot service is "activating" while it runs, which RuntimeMaxSec does not bound:
        # TimeoutStartSec does.
        service.append(("RuntimeMaxSec" if kind == "worker" else "TimeoutStartSec",
                        validate.unit_timespan("runtime_max_sec", p["runtime_max_sec"], allow_infinity=True,
                                               minimum=0.001)))
    for option, directive in (("state_directory", "StateDirectory"), ("runtime_directory", "RuntimeDirectory"),
                              ("logs_directory", "LogsDirectory")):
        if p.get(option) is not None:
            service.append((directive, unit_file.owned_dir(option, p[option], name)))
    _taken_directories(name, kind, p)
    if p.get("read_write_paths"):
        paths = [unit_file.path_value(f"read_write_paths[{i}]", path, optional_prefix=True)
                 for i, path in enumerate(p["read_write_paths"])]
        service.append(("ReadWritePaths", " ".join(paths)))
    if p.get("memory_max") is not None:
        service.append(("MemoryMax", validate.memory_size("memory_max", p["memory_max"])))
    if p.get("cpu_quota") is not None:
        service.append(("CPUQuota", validate.cpu_quota("cpu_quota", p["cpu_quota"])))
    if p.get("tasks_max") is not None:
        service.append(("TasksMax", validate.tasks_max("tasks_max", p["tasks_max"])))
    if p.get("nice") is not None:
        service.append(("Nice", str(validate.integer("nice", p["nice"], -20, 19))))

    owned = dict(OWNED, TimeoutStartSec="runtime_max_sec") if kind == "oneshot" else OWNED
    settings = unit_file.settings("settings", p.get("settings"), owned=owned)
    if cred_ids and p["hardening"] == "none" and "PrivateMounts" not in settings:
        # Credentials are only for the service: it needs a mount namespace of its own (see
        # provision.hide_credentials_dir).
        settings["PrivateMounts"] = ["yes"]
    overrides = env_reads + unit_file.overrides(settings, p["hardening"])
    service += unit_file.merge_hardening(settings, p["hardening"])
    sections = [("Unit", unit), ("Service", service)]
    if kind == "worker":
        wanted_by = unit_name("wanted_by", p["wanted_by"], suffixes=(".target",), template=False)
        sections.append(("Install", [("WantedBy", wanted_by)]))
    needed = {}
    for option in ("requires", "binds_to", "wants", "part_of", "on_failure", "after", "before"):
        for dep in p.get(option) or []:
            needed.setdefault(dep, option)
    return ServicePlan(unit_file.render(HEADER, sections), executables, overrides, cred_ids, needed)
