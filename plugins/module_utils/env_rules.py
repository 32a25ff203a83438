# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Environment variables handed to a systemd service: what systemd accepts, and the one
EnvironmentFile format (writer and reader).

Shared by env_file, worker_unit (``Environment=``), the worker module and periodic jobs. Nothing
here reads or writes the host, and no message ever contains a value (values may be secrets), not
even the character that broke a rule: only the key.
"""

from __future__ import annotations

import re

from ansible_collections.supervised.background.plugins.module_utils import validate
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

# Variables systemd itself sets for a service process. Environment= and EnvironmentFile= are merged
# AFTER them (measured on systemd 252: NOTIFY_SOCKET, INVOCATION_ID, LISTEN_FDS... from a file win),
# so a key here would silently replace what systemd gave the process and break sd_notify, socket
# activation, journal stream detection or the watchdog.
RESERVED_KEYS = frozenset((
    "NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
    "MAINPID", "MANAGERPID", "WATCHDOG_PID", "WATCHDOG_USEC", "SYSTEMD_EXEC_PID", "SERVICE_RESULT",
    "EXIT_CODE", "EXIT_STATUS", "PIDFILE", "RUNTIME_DIRECTORY", "STATE_DIRECTORY", "CACHE_DIRECTORY",
    "LOGS_DIRECTORY", "CONFIGURATION_DIRECTORY", "CREDENTIALS_DIRECTORY", "MEMORY_PRESSURE_WATCH",
    "MEMORY_PRESSURE_WRITE", "FDSTORE", "TRIGGER_UNIT", "TRIGGER_PATH",
))
RESERVED_PREFIXES = ("MONITOR_", "TRIGGER_TIMER_")
KEY_RE = r"[A-Za-z_][A-Za-z0-9_]*"
MAX_KEY = 255

# The kernel refuses an execve() whose single "KEY=value" string (with its NUL) is longer than
# MAX_ARG_STRLEN (32 pages = 131072 bytes): the service would fail with "Argument list too long"
# (status 203/EXEC). Measured on systemd 252: 131071 bytes start, 131072 do not.
MAX_ASSIGNMENT_BYTES = 131071
# All strings of argv + environ share ARG_MAX (2 MiB with the default 8 MiB stack); keep half of it
# for the command line and the variables systemd adds.
MAX_TOTAL_BYTES = 1 << 20


def env_key(field, key):
    """A variable name systemd accepts and shells can use: ``[A-Za-z_][A-Za-z0-9_]*``, not one
    systemd sets for the service itself."""
    if not isinstance(key, str) or len(key) > MAX_KEY or not re.fullmatch(KEY_RE, key):
        raise InputError(
            f"{field}: key '{validate.printable_name(key)}' is not a valid variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    if key in RESERVED_KEYS or key.startswith(RESERVED_PREFIXES):
        raise InputError(
            f"{field}: key '{key}' is set by systemd for the service (it would replace systemd's own value); "
            "choose another name"
        )
    return key


def env_value(field, key, value):
    """The string a value is written as; refuse what systemd cannot carry. Never echoes it.

    Strings, numbers (``str()``) and booleans (``true``/``false``) are accepted; everything the
    shared text rule refuses (control characters, line separators, noncharacters) is refused,
    naming the key only.
    """
    if value is None:
        raise InputError(f"{field}: value of key '{key}' is null; give a string (use '' for empty)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise InputError(f"{field}: value of key '{key}' must be a string, number or boolean, not a "
                         f"{type(value).__name__}")
    return validate.text(f"{field}: value of key '{key}'", value, secret=True)


def check_sizes(field, assignments):
    """``assignments`` maps key -> value (str). Refuse what execve() could not pass to the service."""
    total = 0
    for key, value in assignments.items():
        size = len(key.encode("utf-8")) + 1 + len(value.encode("utf-8"))
        if size > MAX_ASSIGNMENT_BYTES:
            raise InputError(
                f"{field}: value of key '{key}' is too long ({size} bytes with its name; the kernel passes at most "
                f"{MAX_ASSIGNMENT_BYTES} per variable, the service would not start)"
            )
        total += size + 1
    if total > MAX_TOTAL_BYTES:
        raise InputError(
            f"{field}: the variables total {total} bytes, more than {MAX_TOTAL_BYTES} "
            "(the kernel's ARG_MAX is shared with the command line; the service would not start)"
        )


def environment(field, given):
    """Validate a ``{key: value}`` mapping: ``{key: str}`` with keys sorted."""
    if not isinstance(given, dict):
        raise InputError(f"{field}: must be a mapping of variable names to values")
    result = {}
    for key in sorted(given, key=str):
        env_key(field, key)
        result[key] = env_value(field, key, given[key])
    check_sizes(field, result)
    return result


# -- the EnvironmentFile format ---------------------------------------------------------------------
# Characters systemd unescapes after a backslash inside double quotes (SHELL_NEED_ESCAPE).
_DQ_ESCAPE = '\\"$`'


def quote_value(value):
    """Quote ``value`` so systemd's EnvironmentFile parser returns exactly ``value``: single quotes
    (taken literally up to the closing quote), or double quotes with ``\\ " $ ` `` escaped when the
    value holds a single quote."""
    if "'" not in value:
        return "'" + value + "'"
    return '"' + "".join("\\" + ch if ch in _DQ_ESCAPE else ch for ch in value) + '"'


def render_file(header, env):
    """The file text for an already validated ``{key: str}`` mapping, keys sorted."""
    return header + "".join(f"{key}={quote_value(env[key])}\n" for key in sorted(env))


def parse_file(content):
    """Read an environment file the way systemd does (used to compare with and diff an existing
    file; the values never leave the module).

    Mirrors the state machine of systemd's env-file parser: lines end at \\n and \\r, comments only
    where a key would start, whitespace around keys and unquoted values trimmed, single quotes
    literal, backslash escapes in double quotes for the shell's special characters,
    backslash-newline continues a line.
    """
    result = {}
    key, value, state = [], [], "pre_key"
    key_ws = value_ws = None

    def push():
        name = "".join(key[:key_ws] if key_ws is not None else key)
        val = "".join(value[:value_ws] if (state == "value" and value_ws is not None) else value)
        result[name] = val

    for ch in content:
        if state == "pre_key":
            if ch in "#;":
                state = "comment"
            elif ch not in " \t\n\r":
                state, key, key_ws, value, value_ws = "key", [ch], None, [], None
        elif state == "key":
            if ch in "\n\r":
                state = "pre_key"
            elif ch == "=":
                state, value_ws = "pre_value", None
            else:
                if ch not in " \t":
                    key_ws = None
                elif key_ws is None:
                    key_ws = len(key)
                key.append(ch)
        elif state == "pre_value":
            if ch in "\n\r":
                push()
                state = "pre_key"
            elif ch == "'":
                state = "single"
            elif ch == '"':
                state = "double"
            elif ch == "\\":
                state = "value_escape"
            elif ch not in " \t":
                state = "value"
                value.append(ch)
        elif state == "value":
            if ch in "\n\r":
                push()
                state = "pre_key"
            elif ch == "\\":
                state, value_ws = "value_escape", None
            else:
                if ch not in " \t":
                    value_ws = None
                elif value_ws is None:
                    value_ws = len(value)
                value.append(ch)
        elif state == "value_escape":
            state = "value"
            if ch not in "\n\r":
                value.append(ch)
        elif state == "single":
            if ch == "'":
                state = "pre_value"
            else:
                value.append(ch)
        elif state == "double":
            if ch == '"':
                state = "pre_value"
            elif ch == "\\":
                state = "double_escape"
            else:
                value.append(ch)
        elif state == "double_escape":
            state = "double"
            if ch in _DQ_ESCAPE:
                value.append(ch)
            elif ch != "\n":
                value += ["\\", ch]
        elif state == "comment":
            if ch == "\\":
                state = "comment_escape"
            elif ch in "\n\r":
                state = "pre_key"
        elif state == "comment_escape":
            state = "pre_key" if ch in "\n\r" else "comment"
    if state in ("pre_value", "value", "value_escape", "single", "double", "double_escape"):
        push()
    return result


def shown_keys(parsed):
    """Keys of a parsed file that may be shown in a diff: only valid variable names (a hand-edited
    file can hold a secret where a key would be)."""
    return [k for k in parsed if isinstance(k, str) and re.fullmatch(KEY_RE, k) and len(k) <= MAX_KEY]
