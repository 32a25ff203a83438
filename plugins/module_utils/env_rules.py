# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Rules for environment variables handed to a systemd service (EnvironmentFile= and Environment=).

Shared by env_file and worker_unit. Nothing here reads or writes the host, and no message ever
contains a value (values may be secrets), only the key.
"""

from __future__ import annotations

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

# The kernel refuses an execve() whose single "KEY=value" string (with its NUL) is longer than
# MAX_ARG_STRLEN (32 pages = 131072 bytes): the service would fail with "Argument list too long"
# (status 203/EXEC). Measured on systemd 252: 131071 bytes start, 131072 do not.
MAX_ASSIGNMENT_BYTES = 131071
# All strings of argv + environ share ARG_MAX (2 MiB with the default 8 MiB stack); keep half of it
# for the command line and the variables systemd adds.
MAX_TOTAL_BYTES = 1 << 20


def reserved_key(field, key):
    """Refuse a key systemd sets for the service itself."""
    if key in RESERVED_KEYS or key.startswith(RESERVED_PREFIXES):
        raise InputError(
            f"{field}: key '{key}' is set by systemd for the service (it would replace systemd's own value); "
            "choose another name"
        )
    return key


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


def utf8_value(field, key, value):
    """Refuse a value that is not valid UTF-8 text (systemd drops it and logs the value)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{field}: value of key '{key}' is not valid UTF-8 text") from None
    return value
