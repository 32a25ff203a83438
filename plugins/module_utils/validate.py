# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Input rules shared by every module of the collection.

Every check raises :class:`InputError` with a message that starts with the field's name and says
which rule was broken, so a module can hand it straight to ``fail_json`` before it touches the
host. Nothing here reads or writes the host. Each rule lives here once; modules ask, they do not
keep copies (rules about systemd names and unit files live in ``systemd`` and ``unit_file``, the
trust rules for paths on the host in ``trust``).

Patterns are always matched whole (``re.fullmatch``): ``re.match`` with ``$`` also accepts a
trailing newline, which is how ``"LEAK\\n"`` once passed a key check.
"""

from __future__ import annotations

import math
import re
import unicodedata

from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE


class InputError(ValueError):
    """A user input that breaks a rule. ``str(err)`` is ready for ``fail_json(msg=...)``."""


# -- text -----------------------------------------------------------------------------------------
# What the line-based files the collection writes (unit files, EnvironmentFiles, sudoers,
# openfortivpn configs) can carry in a value and read back unchanged, whatever splits their lines:
#  * C0 controls (newline, carriage return, NUL, tab...), DEL and the C1 controls U+0080..U+009F
#    (U+0085 is NEL): systemd ends a line at \n, \r and NUL, sudoers at \n; tabs are trimmed;
#  * U+2028/U+2029: Python's str.splitlines() splits there (a redaction that splits differently
#    from the consumer leaks the rest of the line);
#  * Unicode noncharacters (U+FDD0..U+FDEF and U+xFFFE/U+xFFFF in every plane) and lone surrogates:
#    systemd's UTF-8 check (unichar_is_valid) refuses them, and then refuses the whole
#    EnvironmentFile while printing the value to the journal.
_LINE_BREAKERS = frozenset("\u2028\u2029")


def bad_char(ch):
    """Why one character cannot be carried in a value (None when it can)."""
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return "a control character"
    if 0x80 <= code <= 0x9F:
        return "a C1 control character"
    if ch in _LINE_BREAKERS:
        return "a Unicode line or paragraph separator"
    if 0xD800 <= code <= 0xDFFF:
        return "a lone surrogate (not valid UTF-8)"
    if 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
        return "a Unicode noncharacter"
    return None


def text(field, value, secret=False, empty=True, max_bytes=None, edges=True):
    """One line of text every consumer of the collection's files reads back unchanged.

    ``secret``: the message never shows the value or which character broke the rule (not even
    in part). ``empty``: whether '' is allowed. ``edges``: whether leading/trailing whitespace is
    allowed (unit file and config parsers strip it, so a value that must survive exactly cannot
    start or end with it). ``max_bytes``: a limit on the UTF-8 length.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list, tuple, set)):
        raise InputError(f"{field}: must be a string")
    value = str(value)
    if not empty and value == "":
        raise InputError(f"{field}: must not be empty")
    for pos, ch in enumerate(value):
        reason = bad_char(ch)
        if reason:
            if secret:
                raise InputError(f"{field}: contains a character that cannot be written safely "
                                 "(control characters, line separators and Unicode noncharacters are refused)")
            raise InputError(f"{field}: must be a single line of text; {reason} (U+{ord(ch):04X}) is at "
                             f"position {pos}")
    if not edges and value != value.strip():
        raise InputError(f"{field}: must not start or end with whitespace (the file's reader strips it)")
    if max_bytes is not None and len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InputError(f"{field}: is longer than {max_bytes} bytes")
    return value


def single_line(field, value):
    """A non-secret single line (None passes through)."""
    if value is None:
        return value
    return text(field, value)


def pattern(field, value, regex, rule):
    """``value`` must match ``regex`` as a whole; ``rule`` says in words what is allowed."""
    value = single_line(field, value)
    if value is None or not re.fullmatch(regex, value):
        raise InputError(f"{field}: '{value}' {rule}")
    return value


# -- names ----------------------------------------------------------------------------------------
ACCOUNT_RE = r"[A-Za-z_][A-Za-z0-9_.-]{0,31}"
UID_RE = r"[0-9]{1,10}"


def account_name(field, value, numeric=True):
    """A user or group name as every consumer (useradd, systemd User=, sudoers, tmpfiles) reads it:
    a letter or '_' first, then letters, digits, '_', '.', '-', at most 32; or a number."""
    text_value = single_line(field, value)
    if text_value is None:
        raise InputError(f"{field}: must be a user or group name")
    if numeric and re.fullmatch(UID_RE, text_value):
        if int(text_value) >= 2 ** 32 - 1:
            raise InputError(f"{field}: {text_value} is beyond the range of user and group ids")
        return text_value
    if not re.fullmatch(ACCOUNT_RE, text_value):
        raise InputError(
            f"{field}: '{text_value}' is not a valid user or group name (a letter or '_' first, then letters, "
            "digits, '_', '.', '-', at most 32)" + ("; or a number" if numeric else "")
        )
    return text_value


def natural_key(name):
    """Sort ``2`` before ``10`` and ``eu-2`` before ``eu-10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"([0-9]+)", name) if part]


# -- paths ----------------------------------------------------------------------------------------
def absolute_path(field, value):
    """An absolute, normalised path: no ``..`` or ``.`` parts, no doubled or trailing slashes."""
    value = single_line(field, value)
    if not value or not value.startswith("/"):
        raise InputError(f"{field}: '{value}' must be an absolute path")
    if value != "/" and any(p in ("", ".", "..") for p in value.split("/")[1:]):
        raise InputError(f"{field}: '{value}' must be a normalised path (no '..', '.', '//' or trailing '/')")
    return value


# -- numbers and booleans -------------------------------------------------------------------------
def integer(field, value, low, high):
    """A whole number in [low, high]; booleans are refused (YAML 'yes' is not 1), digit strings
    in ASCII are accepted."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{field}: '{value}' must be a whole number from {low} to {high}")
    if isinstance(value, float):
        if not value.is_integer():
            raise InputError(f"{field}: {value} must be a whole number from {low} to {high}")
        value = int(value)
    if isinstance(value, str):
        stripped = single_line(field, value).strip()
        if not re.fullmatch(r"-?[0-9]+", stripped):
            raise InputError(f"{field}: '{value}' must be a whole number from {low} to {high}")
        value = int(stripped)
    if not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{field}: {value} must be a whole number from {low} to {high}")
    return value


def boolean(field, value):
    """A boolean as Ansible reads one (yes/no, true/false, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, (str, int, float)):
        raise InputError(f"{field}: '{value}' is not a boolean (yes/no, true/false)")
    key = value.lower() if isinstance(value, str) else value
    if key in BOOLEANS_TRUE:
        return True
    if key in BOOLEANS_FALSE:
        return False
    raise InputError(f"{field}: '{value}' is not a boolean (yes/no, true/false)")


def yes_no(field, value):
    """A boolean rendered the way unit files write it."""
    return "yes" if boolean(field, value) else "no"


# -- signals --------------------------------------------------------------------------------------
# Signals a unit's KillSignal=/RestartKillSignal=/FinalKillSignal= or a job may use: the standard
# ones that end or ask a process to do something; never SIGSTOP (a stop that never ends).
SIGNALS = (
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGABRT", "SIGALRM",
    "SIGCONT", "SIGWINCH", "SIGPWR",
)


def signal(field, value):
    """A signal name, with or without the SIG prefix, any case: returns ``SIGNAME``."""
    name = single_line(field, str(value)).strip().upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if name not in SIGNALS:
        raise InputError(f"{field}: '{value}' is not one of {', '.join(SIGNALS)}")
    return name


# -- time spans -----------------------------------------------------------------------------------
# One way to write every time option: a number of seconds, or a systemd time span ("500ms",
# "2min 30s", "1h"); "infinity" where the option allows it.
_TIMESPAN_PART_RE = re.compile(
    r"([0-9]+(?:\.[0-9]+)?)\s*(usec|us|msec|ms|seconds|second|sec|s|minutes|minute|min|m|hours|hour|hr|h"
    r"|days|day|d|weeks|week|w)?(?![A-Za-z])"
)
_TIMESPAN_UNITS = {
    None: 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}
# systemd keeps time spans in microseconds in a uint64; UINT64_MAX means infinity.
MAX_USEC = 2 ** 63


def timespan(field, value, allow_infinity=False, minimum=0.0, maximum=None):
    """Parse seconds or a systemd time span into seconds (float)."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{field}: '{value}' is not a time span (seconds, or e.g. '500ms', '30s', '2min 30s')")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        span = single_line(field, str(value)).strip()
        if allow_infinity and span == "infinity":
            return float("inf")
        if not span:
            raise InputError(f"{field}: must not be empty")
        pos = 0
        seconds = 0.0
        while pos < len(span):
            m = _TIMESPAN_PART_RE.match(span, pos)
            if not m or m.end() == pos:
                raise InputError(
                    f"{field}: '{span}' is not a time span (seconds, or e.g. '500ms', '30s', '2min 30s'"
                    + (", 'infinity'" if allow_infinity else "") + ")"
                )
            seconds += float(m.group(1)) * _TIMESPAN_UNITS[m.group(2)]
            pos = m.end()
            while pos < len(span) and span[pos] == " ":
                pos += 1
    if math.isnan(seconds) or seconds < minimum:
        raise InputError(f"{field}: '{value}' must be at least {minimum:g} seconds")
    if math.isinf(seconds) or round(seconds * 1e6) >= MAX_USEC:
        raise InputError(f"{field}: '{value}' is longer than systemd can hold")
    if maximum is not None and seconds > maximum:
        raise InputError(f"{field}: '{value}' is more than {format_timespan(maximum)}")
    if seconds and not round(seconds * 1e6):
        raise InputError(f"{field}: '{value}' is shorter than systemd's resolution of 1us")
    return seconds


def format_timespan(seconds):
    """Render seconds the way a unit file says it, without losing precision: ``5s``, ``1500ms``,
    ``1500us``, ``infinity``."""
    if seconds == float("inf"):
        return "infinity"
    usec = round(seconds * 1e6)
    if usec % 1_000_000 == 0:
        return f"{usec // 1_000_000}s"
    if usec % 1000 == 0:
        return f"{usec // 1000}ms"
    return f"{usec}us"


def unit_timespan(field, value, allow_infinity=False, minimum=0.0, maximum=None):
    """A time option validated and rendered for a unit file in one step."""
    return format_timespan(timespan(field, value, allow_infinity=allow_infinity, minimum=minimum, maximum=maximum))


# -- sizes and shares -----------------------------------------------------------------------------
_SIZE_RE = r"([0-9]+(?:\.[0-9]+)?)([KMGTPE]?)|([0-9]+(?:\.[0-9]+)?)%|infinity"
_PERCENT_RE = r"[0-9]+(?:\.[0-9]+)?%"


def _scalar(field, value):
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise InputError(f"{field}: '{value}' must be a single value")
    return single_line(field, str(value)).strip()


def memory_size(field, value):
    """A memory limit (MemoryMax= and friends): bytes, K/M/G/T/P/E suffix, a percentage of RAM
    above 0 and at most 100, or ``infinity``. Zero is refused: nothing could run."""
    size = _scalar(field, value)
    if not re.fullmatch(_SIZE_RE, size):
        raise InputError(f"{field}: '{size}' is not a size (e.g. 512M, 2G, 50% or infinity)")
    if size.endswith("%") and not 0 < float(size[:-1]) <= 100:
        raise InputError(f"{field}: '{size}' must be a percentage above 0% and at most 100%")
    if size != "infinity" and not size.endswith("%") and float(size.rstrip("KMGTPE")) == 0:
        raise InputError(f"{field}: '{size}' would leave no memory at all")
    return size


def cpu_quota(field, value):
    """A CPUQuota= value: a percentage such as ``50%`` or ``200%``."""
    quota = _scalar(field, value)
    if not re.fullmatch(_PERCENT_RE, quota) or float(quota[:-1]) <= 0:
        raise InputError(f"{field}: '{quota}' must be a positive percentage such as 50% or 200%")
    return quota


def tasks_max(field, value):
    """A TasksMax= value: a positive count, a percentage above 0 and at most 100, or ``infinity``."""
    limit = _scalar(field, value)
    if limit == "infinity":
        return limit
    if re.fullmatch(_PERCENT_RE, limit):
        if not 0 < float(limit[:-1]) <= 100:
            raise InputError(f"{field}: '{limit}' must be a percentage above 0% and at most 100%")
        return limit
    if not re.fullmatch(r"[0-9]+", limit) or int(limit) < 1:
        raise InputError(f"{field}: '{limit}' must be a positive number, a percentage or infinity")
    return limit


def file_mode(field, value, forbid_bits=0, default=None):
    """Parse an octal mode given as '0600', '600' or an int; refuse bits in ``forbid_bits``."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise InputError(f"{field}: '{value}' is not an octal mode")
    if isinstance(value, int):
        # A YAML 0600 arrives as the int 384 and is used as it is (like ansible.builtin.file); an
        # unquoted 600 would mean 0o1130, so values above 0o777 are refused with a hint.
        mode = value
        if mode > 0o777 or mode < 0:
            raise InputError(f"{field}: {value} is not a permission mode; quote octal modes, e.g. '0600'")
    else:
        given = single_line(field, str(value)).strip()
        if not re.fullmatch(r"0?[0-7]{3}|0o[0-7]{3}", given):
            raise InputError(f"{field}: '{value}' is not an octal mode such as '0600'")
        mode = int(given.replace("0o", ""), 8)
    if mode & forbid_bits:
        raise InputError(
            f"{field}: mode {mode:04o} is refused: it would let {describe_bits(mode & forbid_bits)} "
            f"(allowed at most {(0o777 & ~forbid_bits):04o})"
        )
    return mode


def describe_bits(bits):
    who = []
    if bits & 0o070:
        who.append("the group")
    if bits & 0o007:
        who.append("every user")
    if bits & 0o700:
        who.append("the owner")
    return " and ".join(who) + " access the file"


def printable_name(value):
    """A name shown in a message, with anything odd escaped (never used for secrets)."""
    return "".join(ch if unicodedata.category(ch)[0] not in "CZ" or ch == " " else f"\\u{ord(ch):04x}"
                   for ch in str(value))
