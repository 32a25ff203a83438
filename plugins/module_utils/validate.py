# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Input rules shared by every module of the collection.

Every check raises :class:`InputError` with a message that starts with the field's name and
says which rule was broken, so a module can hand it straight to ``fail_json`` before it touches
the host. Nothing here reads or writes the host.
"""

from __future__ import annotations

import math
import re

# Unit name parts we accept: a strict subset of what systemd allows, chosen so a name never needs
# escaping, never looks like an option and never walks out of a directory.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIRECTIVE_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_TIMESPAN_PART_RE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(usec|us|msec|ms|seconds|second|sec|s|minutes|minute|min|m|hours|hour|hr|h"
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
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTPE]?)$|^(\d+(?:\.\d+)?)%$|^infinity$")
_PERCENT_RE = re.compile(r"^\d+(?:\.\d+)?%$")

MAX_UNIT_NAME = 255
# systemd keeps time spans in microseconds in a uint64; UINT64_MAX means infinity.
MAX_USEC = 2 ** 63


class InputError(ValueError):
    """A user input that breaks a rule. ``str(err)`` is ready for ``fail_json(msg=...)``."""


def single_line(field, value):
    """Refuse control characters (newline, carriage return, NUL, tab...) in a value.

    Unit files, sudoers and config files are line based: a newline in a value would add a line of
    the attacker's choice.
    """
    if value is None:
        return value
    text = str(value)
    for ch in text:
        if ch in "\n\r":
            raise InputError(f"{field}: must be a single line (newline found)")
        if ch == "\x00":
            raise InputError(f"{field}: must not contain a NUL byte")
        if ord(ch) < 32 or ord(ch) == 127:
            raise InputError(f"{field}: must not contain control characters (found {ord(ch):#04x})")
    return text


def unit_base_name(field, value):
    """A unit prefix such as ``queue-worker`` (no ``@``, no ``/``, no spaces, no leading dash)."""
    single_line(field, value)
    if not value:
        raise InputError(f"{field}: must not be empty")
    if "@" in value:
        raise InputError(f"{field}: '{value}' must not contain '@' (the template's '@' is added for you)")
    if "/" in value:
        raise InputError(f"{field}: '{value}' must not contain '/'")
    if not _NAME_RE.match(value):
        raise InputError(
            f"{field}: '{value}' may only use letters, digits, '_', '.', ':' and '-', "
            "and must start with a letter, digit or '_'"
        )
    if value.endswith((".service", ".socket", ".timer", ".target")):
        raise InputError(f"{field}: '{value}' is a name without the unit suffix (drop '.service')")
    if len(value) > MAX_UNIT_NAME - len("@.service") - 16:
        raise InputError(f"{field}: '{value}' is too long")
    return value


def instance_name(field, value):
    """An instance name such as ``1`` or ``eu-west`` in ``worker@eu-west.service``."""
    value = str(value)
    single_line(field, value)
    if not value:
        raise InputError(f"{field}: instance names must not be empty")
    if "@" in value or "/" in value:
        raise InputError(f"{field}: instance '{value}' must not contain '@' or '/'")
    if not _NAME_RE.match(value):
        raise InputError(
            f"{field}: instance '{value}' may only use letters, digits, '_', '.', ':' and '-', "
            "and must start with a letter, digit or '_'"
        )
    if len(value) > 64:
        raise InputError(f"{field}: instance '{value}' is longer than 64 characters")
    return value


def full_unit_name(field, value, suffixes=(".service",)):
    """A complete unit name, e.g. ``worker@1.service`` or ``migrate-2026.service``."""
    single_line(field, value)
    if not value:
        raise InputError(f"{field}: must not be empty")
    suffix = next((s for s in suffixes if value.endswith(s)), None)
    if suffix is None:
        raise InputError(f"{field}: '{value}' must end with one of {', '.join(suffixes)}")
    stem = value[: -len(suffix)]
    if "@" in stem:
        base, _sep, inst = stem.partition("@")
        unit_base_name(field, base)
        if inst:
            instance_name(field, inst)
    else:
        unit_base_name(field, stem)
    if len(value) > MAX_UNIT_NAME:
        raise InputError(f"{field}: '{value}' is longer than {MAX_UNIT_NAME} characters")
    return value


def absolute_path(field, value):
    """An absolute, normalised path: no ``..`` or ``.`` parts, no doubled slashes."""
    single_line(field, value)
    if not value or not value.startswith("/"):
        raise InputError(f"{field}: '{value}' must be an absolute path")
    parts = value.split("/")[1:]
    if value != "/" and any(p in ("", ".", "..") for p in parts):
        raise InputError(f"{field}: '{value}' must be a normalised path (no '..', '.' or '//' parts)")
    return value


def env_key(field, key):
    """An environment variable name systemd accepts and shells can use: ``[A-Za-z_][A-Za-z0-9_]*``."""
    if not isinstance(key, str) or not _ENV_KEY_RE.match(key):
        raise InputError(
            f"{field}: key '{key}' is not a valid variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    return key


def directive_name(field, name):
    """A unit file directive name such as ``LimitNOFILE`` (CamelCase letters and digits)."""
    if not isinstance(name, str) or not _DIRECTIVE_RE.match(name):
        raise InputError(f"{field}: '{name}' is not a valid directive name (CamelCase letters and digits)")
    return name


def timespan(field, value, allow_infinity=False, minimum=0.0):
    """Parse a systemd time span ("5", "1.5s", "2min 30s", "500ms") into seconds (float)."""
    if isinstance(value, bool):
        raise InputError(f"{field}: '{value}' is not a time span")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = single_line(field, value).strip()
        if allow_infinity and text == "infinity":
            return float("inf")
        if not text:
            raise InputError(f"{field}: must not be empty")
        pos = 0
        seconds = 0.0
        matched = False
        while pos < len(text):
            m = _TIMESPAN_PART_RE.match(text, pos)
            if not m or m.end() == pos:
                raise InputError(
                    f"{field}: '{text}' is not a time span (use seconds, or e.g. '500ms', '30s', '2min 30s')"
                )
            seconds += float(m.group(1)) * _TIMESPAN_UNITS[m.group(2)]
            matched = True
            pos = m.end()
            while pos < len(text) and text[pos] == " ":
                pos += 1
        if not matched:
            raise InputError(f"{field}: '{text}' is not a time span")
    if math.isnan(seconds) or seconds < minimum:
        raise InputError(f"{field}: '{value}' must be at least {minimum:g} seconds")
    if math.isinf(seconds) or round(seconds * 1e6) >= MAX_USEC:
        raise InputError(f"{field}: '{value}' is longer than systemd can hold")
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


def memory_size(field, value):
    """A memory limit (MemoryMax= and friends): bytes, K/M/G/T/P/E suffix, a percentage of RAM
    above 0 and at most 100, or ``infinity``. Zero is refused: nothing could run."""
    text = single_line(field, str(value)).strip()
    if not _SIZE_RE.match(text):
        raise InputError(f"{field}: '{text}' is not a size (e.g. 512M, 2G, 50% or infinity)")
    if text.endswith("%") and not 0 < float(text[:-1]) <= 100:
        raise InputError(f"{field}: '{text}' must be a percentage above 0% and at most 100%")
    if text != "infinity" and not text.endswith("%") and float(text.rstrip("KMGTPE")) == 0:
        raise InputError(f"{field}: '{text}' would leave no memory at all")
    return text


def cpu_quota(field, value):
    """A CPUQuota= value: a percentage such as ``50%`` or ``200%``."""
    text = single_line(field, str(value)).strip()
    if not _PERCENT_RE.match(text) or float(text[:-1]) <= 0:
        raise InputError(f"{field}: '{text}' must be a positive percentage such as 50% or 200%")
    return text


def tasks_max(field, value):
    """A TasksMax= value: a positive count, a percentage above 0 and at most 100, or ``infinity``."""
    text = single_line(field, str(value)).strip()
    if text == "infinity":
        return text
    if _PERCENT_RE.match(text):
        if not 0 < float(text[:-1]) <= 100:
            raise InputError(f"{field}: '{text}' must be a percentage above 0% and at most 100%")
        return text
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{field}: '{text}' must be a positive number, a percentage or infinity")
    return text


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
        if mode > 0o777:
            raise InputError(f"{field}: {value} is not a permission mode; quote octal modes, e.g. '0600'")
    else:
        text = str(value).strip()
        if not re.fullmatch(r"0?[0-7]{3}|0o[0-7]{3}", text):
            raise InputError(f"{field}: '{value}' is not an octal mode such as '0600'")
        mode = int(text.replace("0o", ""), 8)
    if mode < 0 or mode > 0o777:
        raise InputError(f"{field}: '{value}' is not a permission mode between 0000 and 0777")
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
    if bits & 0o100 or bits & 0o200 or bits & 0o400:
        who.append("the owner")
    return " and ".join(who) + " access the file"
