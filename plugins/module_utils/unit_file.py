# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What may land in a unit file, and how it is written so systemd reads back exactly that.

* **Quoting** (one rule for every module that writes a command or a value into a unit): every
  argument is literal; ``$`` is written ``$$``; an argument holding a space, quote, backslash or
  ``;``, or an empty one, is double-quoted with ``\\\\`` and ``\\"`` escaped; ``%i``/``%I`` are the
  only specifiers kept, every other ``%`` is written ``%%``.
* **Directives** are an allowlist (:data:`DIRECTIVES`): an entry per directive the collection lets
  a user set, each with a typed validator that renders the value. A directive that is not in the
  list is refused, whatever its name. Entries that widen what a sandboxed service may do are
  marked, and reported as overrides, never silent.
* **Hardening profiles** (:data:`HARDENING`), shared by workers, periodic jobs and drop-ins.

Text values go through ``validate.text``, the one rule for what a line-based file can carry.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.supervised.background.plugins.module_utils import validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import UNIT_SUFFIXES, unit_name
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

# -- quoting --------------------------------------------------------------------------------------
_NOT_IN_PATHS = set(" \"'\\$;")
_NEEDS_QUOTES = set(" \"'\\;")


def escape_percent(value):
    """``%i``/``%I`` stay specifiers; every other ``%`` becomes ``%%`` (a literal percent sign)."""
    return re.sub(r"%(?![iI])", "%%", value)


def quote_exec_arg(arg):
    """One argument of an Exec*= line, taken literally by systemd except for ``%i``/``%I``."""
    quoted = escape_percent(arg).replace("$", "$$")
    if quoted == "" or any(ch in _NEEDS_QUOTES for ch in quoted):
        return '"' + quoted.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return quoted


def quote_environment(key, value):
    """One ``Environment=`` assignment; systemd does not expand ``$`` there."""
    assignment = escape_percent(f"{key}={value}")
    return '"' + assignment.replace("\\", "\\\\").replace('"', '\\"') + '"'


def executable(field, value):
    """The absolute path of a program a unit runs (written unquoted, so no space, quote, '\\\\', '$',
    ';' or '%')."""
    path = validate.text(field, value)
    if not path.startswith("/"):
        raise InputError(f"{field}: the executable '{path}' must be an absolute path")
    if set(path) & (_NOT_IN_PATHS | {"%"}):
        raise InputError(f"{field}: the executable '{path}' must not contain spaces, quotes, '\\', '$', ';' or '%'")
    validate.absolute_path(field, path)
    return path


def command_line(field, argv):
    """``(rendered Exec line, executable)`` for an argv list; every argument literal."""
    if not argv or isinstance(argv, str):
        raise InputError(f"{field}: must be a list, the absolute path of the executable first")
    args = [validate.text(f"{field}[{i}]", arg) for i, arg in enumerate(argv)]
    exe = executable(field, args[0])
    return " ".join([exe] + [quote_exec_arg(arg) for arg in args[1:]]), exe


def path_value(field, value, optional_prefix=False):
    """An absolute path written into a unit (unquoted); ``-`` first marks an optional one."""
    given = validate.text(field, value)
    optional = optional_prefix and given.startswith("-")
    bare = given[1:] if optional else given
    bad = sorted(set(bare) & _NOT_IN_PATHS)
    if bad:
        raise InputError(f"{field}: '{bare}' must not contain spaces, quotes, '\\', '$' or ';'")
    validate.absolute_path(field, bare)
    return ("-" if optional else "") + escape_percent(bare)


_DIRNAME_RE = r"[A-Za-z0-9_%][A-Za-z0-9_.%-]*"


def relative_dir(field, value):
    """A directory name relative to /var/lib, /run, /var/log... (``app`` or ``app/%i``)."""
    given = validate.text(field, value)
    if not given or given.startswith("/") or given.endswith("/"):
        raise InputError(f"{field}: '{given}' must be a relative name such as 'app' or 'app/%i'")
    for part in given.split("/"):
        if part in ("", ".", "..") or not re.fullmatch(_DIRNAME_RE, part):
            raise InputError(
                f"{field}: '{given}' may only use letters, digits, '_', '.', '-', '%i' and '/' between "
                "names (no '..')"
            )
    return escape_percent(given)


def owned_dir(field, value, owner):
    """A directory systemd creates under /var/lib, /run, /var/log... and hands to the service's user
    (StateDirectory=, LogsDirectory=...): a :func:`relative_dir` whose first part is ``owner`` (the
    unit's name) or starts with it and '-', '.' or '_'. Any other name could hand the service a
    directory the system or another service owns (``dpkg`` would give it /var/lib/dpkg, whose
    maintainer scripts root runs), and a first part chosen by the instance name (``%i``) could be any."""
    rendered = relative_dir(field, value)
    first = validate.text(field, value).split("/", 1)[0]
    if first != owner and not any(first.startswith(owner + sep) for sep in "-._"):
        raise InputError(
            f"{field}: '{first}' must be '{owner}' or start with '{owner}-' (for example '{owner}' or '{owner}/%i'): "
            "systemd hands the service's user the whole directory, so another name could give it a directory the "
            "system or another service owns (such as /var/lib/dpkg)"
        )
    return rendered


def description(field, value):
    """A Description=: one line, not empty, no trailing backslash (it would continue the line)."""
    given = validate.text(field, value, empty=False, edges=False)
    if given.endswith("\\"):
        raise InputError(f"{field}: must not end with a backslash (it would continue the line)")
    return escape_percent(given)


# -- typed validators of directive values ---------------------------------------------------------
def _scalar(field, value):
    if value is None or isinstance(value, (dict, list, tuple)):
        raise InputError(f"{field}: must be a single value")
    if isinstance(value, bool):
        return value
    return validate.text(field, str(value), edges=False)


def v_bool(field, value):
    return validate.yes_no(field, _scalar(field, value))


def v_choice(*choices, booleans=False):
    def check(field, value):
        given = _scalar(field, value)
        if booleans:
            try:
                return validate.yes_no(field, given)
            except InputError:
                pass
        if isinstance(given, str) and given in choices:
            return given
        allowed = list(choices) + (["yes", "no"] if booleans else [])
        raise InputError(f"{field}: '{value}' must be one of {', '.join(allowed)}")
    check.choices = choices
    return check


def v_int(low, high):
    def check(field, value):
        return str(validate.integer(field, _scalar(field, value), low, high))
    return check


def v_timespan(infinity=True, minimum=0.0):
    def check(field, value):
        given = _scalar(field, value)
        if isinstance(given, bool):
            raise InputError(f"{field}: '{value}' is not a time span")
        return validate.unit_timespan(field, given, allow_infinity=infinity, minimum=minimum)
    return check


def v_memory(field, value):
    return validate.memory_size(field, _scalar(field, value))


def v_cpu_quota(field, value):
    return validate.cpu_quota(field, _scalar(field, value))


def v_tasks(field, value):
    return validate.tasks_max(field, _scalar(field, value))


_RLIMIT_PART = r"(?:[0-9]+[KMGTPE]?|infinity)"


def v_rlimit(field, value):
    given = _scalar(field, value)
    if isinstance(given, bool) or not re.fullmatch(f"{_RLIMIT_PART}(?::{_RLIMIT_PART})?", str(given)):
        raise InputError(f"{field}: '{value}' must be a number, SOFT:HARD or infinity")
    return str(given)


def v_signal(field, value):
    given = _scalar(field, value)
    if isinstance(given, bool):
        raise InputError(f"{field}: '{value}' is not a signal name")
    return validate.signal(field, given)


def v_umask(field, value):
    given = _scalar(field, value)
    return f"{validate.file_mode(field, given):04o}"


def v_dir_mode(field, value):
    """A mode for a directory systemd creates for the service: never writable by others."""
    given = _scalar(field, value)
    return f"{validate.file_mode(field, given, forbid_bits=0o022):04o}"


def v_exit_statuses(field, value):
    """SuccessExitStatus= and friends: exit codes 0..255 and signal names, space separated."""
    words = _words(field, value)
    out = []
    for word in words:
        if re.fullmatch(r"[0-9]{1,3}", word) and int(word) <= 255:
            out.append(word)
        else:
            out.append(validate.signal(field, word))
    return " ".join(out)


def _words(field, value, allow_empty=False):
    if isinstance(value, (list, tuple)):
        items = [validate.text(f"{field}[{i}]", str(item), edges=False) for i, item in enumerate(value)]
        words = [w for item in items for w in item.split()]
    else:
        given = _scalar(field, value)
        if isinstance(given, bool):
            raise InputError(f"{field}: '{value}' must be a list of words")
        words = given.split()
    if not words and not allow_empty:
        raise InputError(f"{field}: must not be empty")
    return words


def v_words(regex, rule, negatable=False, allow_empty=False, special=()):
    """A space-separated list of words that each match ``regex``; ``~`` first inverts the list."""
    def check(field, value):
        words = _words(field, value, allow_empty=allow_empty)
        if len(words) == 1 and words[0] in special:
            return words[0]
        prefix = ""
        if negatable and words and words[0].startswith("~"):
            prefix = "~"
            words[0] = words[0][1:]
            if not words[0]:
                words = words[1:]
        for word in words:
            if not re.fullmatch(regex, word):
                raise InputError(f"{field}: '{word}' {rule}")
        return prefix + " ".join(words)
    return check


def v_identifier(field, value):
    given = _scalar(field, value)
    if isinstance(given, bool) or not re.fullmatch(r"[A-Za-z0-9_.%-]{1,64}", given):
        raise InputError(f"{field}: '{value}' may only use letters, digits, '_', '.', '-' and %i (at most 64)")
    return escape_percent(given)


def v_paths(field, value):
    """Absolute paths (each optionally prefixed by '-', ignore when missing), space separated."""
    words = _words(field, value)
    return " ".join(path_value(field, w, optional_prefix=True) for w in words)


def v_groups(field, value):
    words = _words(field, value, allow_empty=True)
    return " ".join(validate.account_name(field, w, numeric=False) for w in words)


def v_env_keys(field, value):
    from ansible_collections.supervised.background.plugins.module_utils import env_rules
    words = _words(field, value)
    return " ".join(env_rules.env_key(field, w) for w in words)


def v_units(suffixes=UNIT_SUFFIXES, specifiers=True):
    def check(field, value):
        words = _words(field, value)
        return " ".join(unit_name(field, w, suffixes=suffixes, template=False, specifiers=specifiers)
                        for w in words)
    return check


def v_addresses(field, value):
    words = _words(field, value)
    for word in words:
        if word in ("any", "localhost", "link-local", "multicast"):
            continue
        try:
            ipaddress.ip_network(word, strict=False)
        except ValueError:
            raise InputError(f"{field}: '{word}' is not an address, a prefix (10.0.0.0/8) or any, localhost, "
                             "link-local, multicast") from None
    return " ".join(words)


def v_cpus(field, value):
    return v_words(r"[0-9]{1,4}(?:-[0-9]{1,4})?", "is not a CPU number or range such as 0-3")(field, value)


_CAP = r"CAP_[A-Z_]{2,30}"
_AF = r"AF_[A-Z0-9]{2,16}"
_SYSCALL = r"@?[a-z0-9_-]{2,40}(?::[A-Z0-9]{1,20})?"
_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
               "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
               "local7")


# -- the allowlist --------------------------------------------------------------------------------
class Directive:
    """One directive a user may set. ``check(field, value) -> rendered value``.

    ``neutral``: for directives that grant privileges whatever the hardening profile, the values
    that grant nothing (any other value is reported as an override). ``transient``: accepted by
    ``systemd-run -p`` for a transient job. ``multi``: may be given as a list, one line each.
    ``since``: the first systemd version that knows it (documentation; ``verify`` enforces it).
    """

    def __init__(self, check, section="Service", neutral=None, transient=False, multi=False, since=None):
        self.check = check
        self.section = section
        self.neutral = neutral
        self.transient = transient
        self.multi = multi
        self.since = since


_bool = v_bool
_SERVICE = {}


def _add(names, check, **kw):
    for name in names.split():
        _SERVICE[name] = Directive(check, **kw)


# Exec, kill and service behaviour.
_add("Restart", v_choice("no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog"))
_add("RestartSec", v_timespan(infinity=False))
_add("WatchdogSec", v_timespan())
_add("TimeoutStartSec TimeoutAbortSec RuntimeMaxSec", v_timespan(), transient=True)
_add("TimeoutStopSec", v_timespan(), transient=True)
_add("SuccessExitStatus RestartPreventExitStatus RestartForceExitStatus", v_exit_statuses)
_add("OOMPolicy", v_choice("continue", "stop", "kill"), transient=True)
_add("SendSIGKILL SendSIGHUP", _bool, transient=True)
_add("KillSignal FinalKillSignal RestartKillSignal", v_signal, transient=True)
_add("KillMode", v_choice("control-group", "mixed", "process"), transient=True)
_add("LimitCPU LimitFSIZE LimitDATA LimitSTACK LimitCORE LimitRSS LimitNOFILE LimitAS LimitNPROC "
     "LimitMEMLOCK LimitLOCKS LimitSIGPENDING LimitMSGQUEUE LimitNICE LimitRTPRIO LimitRTTIME", v_rlimit,
     transient=True)
_add("UMask", v_umask, transient=True)
_add("Nice", v_int(-20, 19), transient=True)
_add("OOMScoreAdjust", v_int(-1000, 1000), transient=True)
_add("IOSchedulingClass", v_choice("best-effort", "idle"), transient=True)
_add("IOSchedulingPriority", v_int(0, 7), transient=True)
_add("CPUSchedulingPolicy", v_choice("other", "batch", "idle"), transient=True)
_add("CPUSchedulingResetOnFork IgnoreSIGPIPE", _bool, transient=True)
_add("CPUAffinity", v_cpus, transient=True)
_add("SyslogIdentifier", v_identifier, transient=True)
_add("SyslogFacility", v_choice(*_FACILITIES), transient=True)
_add("SyslogLevel LogLevelMax", v_choice(*_LEVELS), transient=True)
_add("SyslogLevelPrefix", _bool, transient=True)
_add("LogRateLimitIntervalSec", v_timespan(infinity=False))
_add("LogRateLimitBurst", v_int(0, 2 ** 32 - 1))
# Where output goes: PID 1 opens a file: or append: target as root for a worker running as nobody,
# so only the journal, nothing, the caller's or the kernel log.
_add("StandardInput", v_choice("null"), transient=True)
_add("StandardOutput StandardError", v_choice("journal", "null", "inherit", "kmsg"), transient=True)
_add("UnsetEnvironment", v_env_keys, transient=True)
_add("RuntimeDirectoryMode StateDirectoryMode CacheDirectoryMode LogsDirectoryMode ConfigurationDirectoryMode",
     v_dir_mode)
_add("RuntimeDirectoryPreserve", v_choice("restart", booleans=True))
# Resources.
_add("MemoryMax MemoryHigh MemoryLow MemoryMin MemorySwapMax", v_memory, transient=True)
_add("CPUQuota", v_cpu_quota, transient=True)
_add("TasksMax", v_tasks, transient=True)
_add("CPUWeight StartupCPUWeight IOWeight StartupIOWeight", v_int(1, 10000), transient=True)
_add("CPUQuotaPeriodSec", v_timespan(infinity=False), transient=True)
_add("Slice", v_units(suffixes=(".slice",), specifiers=False), transient=True)
_add("DevicePolicy", v_choice("auto", "closed", "strict"), transient=True)
# The sandbox. Changing one of the hardening profile's directives is reported as an override.
_add("NoNewPrivileges", _bool, transient=True, neutral=("yes",))
_add("PrivateTmp PrivateDevices PrivateNetwork PrivateMounts PrivateUsers ProtectKernelTunables "
     "ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectClock ProtectHostname "
     "RestrictRealtime RestrictSUIDSGID LockPersonality MemoryDenyWriteExecute RemoveIPC", _bool, transient=True)
_add("PrivateIPC", _bool, transient=True, since=248)
_add("ProtectSystem", v_choice("full", "strict", booleans=True), transient=True)
_add("ProtectHome", v_choice("read-only", "tmpfs", booleans=True), transient=True)
_add("ProtectProc", v_choice("noaccess", "invisible", "ptraceable", "default"), transient=True)
_add("ProcSubset", v_choice("all", "pid"), transient=True)
_add("RestrictNamespaces", v_words(r"yes|no|true|false|cgroup|ipc|net|mnt|pid|user|uts",
                                   "is not a namespace type (cgroup ipc net mnt pid user uts) or yes/no",
                                   negatable=True), transient=True)
_add("RestrictAddressFamilies", v_words(_AF, "is not an address family such as AF_INET", negatable=True,
                                        special=("none",)), transient=True)
_add("SystemCallFilter", v_words(_SYSCALL, "is not a system call or a set such as @system-service",
                                 negatable=True), transient=True, multi=True)
_add("SystemCallErrorNumber", v_words(r"[A-Z][A-Z0-9]{1,15}|kill|log", "is not an errno name such as EPERM"),
     transient=True)
_add("SystemCallArchitectures", v_words(r"native|x86|x86-64|x32|arm|arm64|s390|s390x|ppc64|ppc64-le|mips",
                                        "is not an architecture (native, x86-64...)"), transient=True)
_add("CapabilityBoundingSet", v_words(_CAP, "is not a capability such as CAP_NET_BIND_SERVICE", negatable=True,
                                      allow_empty=True), transient=True, neutral=("",))
_add("AmbientCapabilities", v_words(_CAP, "is not a capability such as CAP_NET_BIND_SERVICE", allow_empty=True),
     transient=True, neutral=("",))
_add("SupplementaryGroups", v_groups, transient=True, neutral=("",))
_add("KeyringMode", v_choice("inherit", "private", "shared"), transient=True)
_add("IPAddressAllow IPAddressDeny", v_addresses, transient=True)
_add("InaccessiblePaths ReadOnlyPaths NoExecPaths", v_paths, transient=True, multi=True)

SERVICE_DIRECTIVES = dict(_SERVICE)

# [Unit] directives a drop-in may set.
UNIT_DIRECTIVES = {
    "Description": Directive(description, section="Unit"),
    "StartLimitIntervalSec": Directive(v_timespan(infinity=False), section="Unit"),
    "StartLimitBurst": Directive(v_int(0, 2 ** 32 - 2), section="Unit"),
}
for _name in ("After", "Before", "Wants", "Requires", "BindsTo", "PartOf", "OnFailure", "Conflicts", "Upholds"):
    UNIT_DIRECTIVES[_name] = Directive(v_units(), section="Unit", multi=True)
REGISTRIES = {"Service": SERVICE_DIRECTIVES, "Unit": UNIT_DIRECTIVES}

# Directives that are never set through an allowlisted setting, with the reason the user sees. A
# name in neither list is refused as unknown.
REFUSED = {
    "ExecStartPre": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "ExecStartPost": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "ExecCondition": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "ExecStop": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "ExecStopPost": "runs a command as written; a '+' prefix runs it as root outside the sandbox",
    "PermissionsStartOnly": "runs the unit's other commands as root",
    "PAMName": "opens a PAM session as root for the service",
    "DynamicUser": "replaces the user and group the service runs as",
    "User": "replaces the user the service runs as", "Group": "replaces the group the service runs as",
    "RootDirectory": "runs the service from another root file system",
    "RootImage": "runs the service from an image", "MountImages": "mounts images into the service",
    "BindPaths": "binds a host path into the sandbox, writable: it hands the service files it could not reach",
    "BindReadOnlyPaths": "binds a host path into the sandbox, past ProtectSystem/ProtectHome/InaccessiblePaths",
    "TemporaryFileSystem": "replaces directories of the sandbox",
    "CacheDirectory": "hands the service's user a directory under /var/cache, which could be one the system owns; "
                      "use state_directory",
    "ConfigurationDirectory": "hands the service's user a directory under /etc, which could be one the system owns",
    "ReadWriteDirectories": "is an old name of ReadWritePaths, which opens paths for writing; use read_write_paths",
    "ReadOnlyDirectories": "is an old name of ReadOnlyPaths; use ReadOnlyPaths",
    "InaccessibleDirectories": "is an old name of InaccessiblePaths; use InaccessiblePaths",
    "SetCredential": "writes the secret into the unit file, which every local user can read; use credentials",
    "SetCredentialEncrypted": "is managed through the credentials option",
    "LoadCredential": "is managed through the credentials option",
    "LoadCredentialEncrypted": "is managed through the credentials option",
    "ImportCredential": "is managed through the credentials option",
    "PassEnvironment": "copies variables of the service manager into the service",
    "Delegate": "hands the service control of its own cgroup tree",
    "DeviceAllow": "opens device nodes to the service",
    "SecureBits": "changes how the kernel hands out capabilities",
    "NetworkNamespacePath": "joins another network namespace",
    "TTYPath": "connects the service to a terminal",
    "StandardInputText": "puts data into the unit file, which every local user can read",
    "StandardInputData": "puts data into the unit file, which every local user can read",
    "SELinuxContext": "changes the security context", "AppArmorProfile": "changes the security profile",
    "SmackProcessLabel": "changes the security label",
    "TimeoutSec": "sets the start and the stop timeout at once; use TimeoutStartSec and the timeout option",
    "ExecPaths": "exempts paths from NoExecPaths",
}

# -- hardening profiles ---------------------------------------------------------------------------
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
HARDENING_LEVELS = tuple(HARDENING)


def settings(field, given, owned=None, allowed=None, transient_only=False, section="Service"):
    """Validate a ``{Directive: value or [values]}`` dict against the allowlist of ``section``.

    ``owned`` maps directives an option of the calling module sets to that option's name (refused
    here with a pointer to it). ``allowed`` narrows the allowlist further (a module's own subset).
    Returns ``{name: [rendered values]}``.
    """
    owned = owned or {}
    result = {}
    for name in sorted(given or {}, key=str):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Z][A-Za-z0-9]{1,63}", name):
            raise InputError(f"{field}: '{validate.printable_name(name)}' is not a directive name (CamelCase letters and digits)")
        where = f"{field}.{name}"
        if name in owned:
            raise InputError(f"{where}: is set by the option '{owned[name]}'; use that instead")
        if name in REFUSED:
            raise InputError(f"{where}: is refused, it {REFUSED[name]}")
        registry = REGISTRIES[section]
        entry = registry.get(name)
        if entry is None or (allowed is not None and name not in allowed) or (transient_only and not entry.transient):
            names = sorted(n for n, d in registry.items()
                           if n not in owned and (allowed is None or n in allowed) and (d.transient or not transient_only))
            raise InputError(f"{where}: is not a directive this collection lets you set (allowed: {', '.join(names)})")
        value = given[name]
        values = value if isinstance(value, list) and entry.multi else [value]
        if not values:
            raise InputError(f"{where}: has an empty list")
        result[name] = [entry.check(where, v) for v in values]
    return result


def overrides(rendered, hardening):
    """``Directive=value`` lines of ``rendered`` settings that weaken the hardening profile or grant
    privileges (reported, with a warning, never silent)."""
    level = dict(HARDENING[hardening])
    found = []
    for name in sorted(rendered):
        entry = SERVICE_DIRECTIVES.get(name)
        for value in rendered[name]:
            weaker = name in level and rendered[name] != [level[name]]
            grants = entry is not None and entry.neutral is not None and value.strip() not in entry.neutral
            if weaker or grants:
                found.append(f"{name}={value}")
    return found


def merge_hardening(rendered, hardening):
    """The ``[Service]`` lines of the profile, with settings replacing its directives in place,
    then the other settings sorted by name."""
    remaining = dict(rendered)
    lines = []
    for key, value in HARDENING[hardening]:
        for v in remaining.pop(key, [value]):
            lines.append((key, v))
    for key in sorted(remaining):
        lines += [(key, v) for v in remaining[key]]
    return lines


def render(header, sections):
    """The text of a unit file: ``sections`` is a list of ``(title, [(key, value)])``."""
    out = [header]
    for index, (title, pairs) in enumerate(sections):
        if index:
            out.append("")
        out.append(f"[{title}]")
        out += [f"{key}={value}" for key, value in pairs]
    return "\n".join(out) + "\n"
