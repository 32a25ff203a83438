"""validate: the one text rule, names, paths, numbers, time spans, sizes, modes.

The tables are the documentation of the rules: one row per case, the reason in the row.
"""

from __future__ import annotations

import pytest
from ansible_collections.supervised.background.plugins.module_utils import validate as v

# -- the text rule --------------------------------------------------------------------------------
# (character, why bad_char refuses it). Every consumer of the collection's files either splits a
# line there (systemd: \n \r NUL; Python's splitlines: also \v \f \x1c-\x1e \x85 \u2028 \u2029),
# trims it (tab), or refuses the whole file and logs the value (systemd's UTF-8 check:
# noncharacters, surrogates).
REFUSED_CHARS = [
    ("\x00", "a control character"),          # NUL: systemd's read fails (EBADMSG), C strings end
    ("\t", "a control character"),            # trimmed around values
    ("\n", "a control character"),
    ("\x0b", "a control character"),          # \v: C isspace, str.splitlines
    ("\x0c", "a control character"),          # \f
    ("\r", "a control character"),            # systemd ends a line at \r
    ("\x1b", "a control character"),          # ESC: terminal escapes in a diff
    ("\x1c", "a control character"),          # str.splitlines splits at \x1c..\x1e
    ("\x1f", "a control character"),
    ("\x7f", "a control character"),          # DEL
    ("\x80", "a C1 control character"),
    ("\x85", "a C1 control character"),       # NEL: str.splitlines
    ("\x9b", "a C1 control character"),       # CSI: terminal escape
    ("\x9f", "a C1 control character"),
    ("\u2028", "a Unicode line or paragraph separator"),
    ("\u2029", "a Unicode line or paragraph separator"),
    ("\ud800", "a lone surrogate (not valid UTF-8)"),
    ("\udc80", "a lone surrogate (not valid UTF-8)"),   # what surrogateescape makes of byte 0x80
    ("\udfff", "a lone surrogate (not valid UTF-8)"),
    ("\ufdd0", "a Unicode noncharacter"),     # first of U+FDD0..U+FDEF
    ("\ufde0", "a Unicode noncharacter"),
    ("\ufdef", "a Unicode noncharacter"),     # last
    ("\ufffe", "a Unicode noncharacter"),     # plane 0
    ("\uffff", "a Unicode noncharacter"),
    ("\U0001fffe", "a Unicode noncharacter"),  # plane 1
    ("\U0001ffff", "a Unicode noncharacter"),
    ("\U0002fffe", "a Unicode noncharacter"),  # plane 2
    ("\U0007ffff", "a Unicode noncharacter"),  # plane 7
    ("\U000efffe", "a Unicode noncharacter"),  # plane 14
    ("\U0010fffe", "a Unicode noncharacter"),  # plane 16, the last
    ("\U0010ffff", "a Unicode noncharacter"),
]
# Characters right next to the refused ranges, and others a naive rule might refuse.
ACCEPTED_CHARS = [
    " ", "~", "\xa0", "\xff", "\u2027", "\u202a", "\ud7ff", "\ue000", "\ufdcf", "\ufdf0", "\ufeff",
    "\ufffd", "\ufffc", "\U0001fffd", "\U00010000", "\U0010fffd", "\U000e0001", "'", '"', "\\", "$", "`",
    "%", "#", ";", "=", "\u00e9", "\u65e5", "\U0001f600",
]


@pytest.mark.parametrize("ch,reason", REFUSED_CHARS, ids=[f"U+{ord(c):04X}" for c, _r in REFUSED_CHARS])
def test_bad_char_refuses(ch, reason):
    assert v.bad_char(ch) == reason


@pytest.mark.parametrize("ch", ACCEPTED_CHARS, ids=[f"U+{ord(c):04X}" for c in ACCEPTED_CHARS])
def test_bad_char_accepts(ch):
    assert v.bad_char(ch) is None


def test_bad_char_covers_every_control_and_noncharacter():
    controls = [chr(c) for c in list(range(0x20)) + [0x7F] + list(range(0x80, 0xA0))]
    assert all(v.bad_char(c) for c in controls)
    nonchars = [chr(c) for c in range(0xFDD0, 0xFDF0)]
    nonchars += [chr((plane << 16) | low) for plane in range(17) for low in (0xFFFE, 0xFFFF)]
    assert len(nonchars) == 32 + 34 and all(v.bad_char(c) == "a Unicode noncharacter" for c in nonchars)
    assert all(v.bad_char(chr(c)) for c in range(0xD800, 0xE000))
    # Everything str.splitlines() splits at is refused: a redaction that splits differently from
    # the consumer cannot hide half a line.
    splitters = [chr(c) for c in range(0x110000) if len(("a" + chr(c) + "b").splitlines()) > 1]
    assert splitters and all(v.bad_char(c) for c in splitters)


@pytest.mark.parametrize("value,message", [
    ("one\ntwo", "f: must be a single line of text; a control character (U+000A) is at position 3"),
    ("x\u2028", "f: must be a single line of text; a Unicode line or paragraph separator (U+2028) is at position 1"),
    ("\x85", "f: must be a single line of text; a C1 control character (U+0085) is at position 0"),
    ("ab\ufdd0", "f: must be a single line of text; a Unicode noncharacter (U+FDD0) is at position 2"),
    ("\U0001ffff", "f: must be a single line of text; a Unicode noncharacter (U+1FFFF) is at position 0"),
    ("\udc80", "f: must be a single line of text; a lone surrogate (not valid UTF-8) (U+DC80) is at position 0"),
])
def test_text_names_the_character_when_not_secret(value, message):
    with pytest.raises(v.InputError) as err:
        v.text("f", value)
    assert str(err.value) == message


SECRET_BODY = "hunter2-correct-horse"


@pytest.mark.parametrize("ch", [c for c, _r in REFUSED_CHARS], ids=[f"U+{ord(c):04X}" for c, _r in REFUSED_CHARS])
def test_text_secret_message_shows_neither_value_nor_character_nor_position(ch):
    value = SECRET_BODY + ch + SECRET_BODY[::-1]
    with pytest.raises(v.InputError) as err:
        v.text("password", value, secret=True)
    msg = str(err.value)
    assert msg.startswith("password: contains a character that cannot be written safely")
    assert SECRET_BODY[:4] not in msg and SECRET_BODY[::-1][:4] not in msg
    assert f"{ord(ch):04X}" not in msg and "position" not in msg


@pytest.mark.parametrize("kwargs,value,words", [
    ({"empty": False}, "", "must not be empty"),
    ({"edges": False}, " x", "must not start or end with whitespace"),
    ({"edges": False}, "x ", "must not start or end with whitespace"),
    ({"edges": False}, "x\u3000", "must not start or end with whitespace"),
    ({"max_bytes": 3}, "\u00e9\u00e9", "longer than 3 bytes"),     # 4 bytes in UTF-8
    ({}, None, "must be a string"),
    ({}, True, "must be a string"),
    ({}, ["x"], "must be a string"),
    ({}, {"x": 1}, "must be a string"),
])
def test_text_other_rules(kwargs, value, words):
    with pytest.raises(v.InputError) as err:
        v.text("f", value, **kwargs)
    assert str(err.value).startswith("f: ") and words in str(err.value)


@pytest.mark.parametrize("kwargs,value", [
    ({}, ""), ({"max_bytes": 4}, "\u00e9\u00e9"), ({"edges": False}, "a b"), ({}, " both edges "),
    ({}, 5), ({}, "\U0001f600 \ufffd \ufeff"),
])
def test_text_accepts(kwargs, value):
    assert v.text("f", value, **kwargs) == str(value)


# -- patterns are matched whole (the trailing-newline class) --------------------------------------
@pytest.mark.parametrize("value", ["abc\n", "abc\r\n", "\nabc", "ab\nc"])
def test_pattern_fullmatch_refuses_newlines(value):
    with pytest.raises(v.InputError, match="^f:"):
        v.pattern("f", value, r"[a-z]+", "is lower case")


def test_pattern_error_escapes_nothing_but_states_rule():
    with pytest.raises(v.InputError) as err:
        v.pattern("f", "AB", r"[a-z]+", "must be lower case")
    assert str(err.value) == "f: 'AB' must be lower case"


@pytest.mark.parametrize("value", ["worker", "_svc", "a.b-c_d", "x" * 32, "0", "65534", "4294967294"])
def test_account_name_ok(value):
    assert v.account_name("user", value) == value


@pytest.mark.parametrize("value,numeric,words", [
    ("worker\n", True, "single line"),          # re.match('...$') once let this through
    ("root\n", True, "single line"),
    ("-rf", True, "not a valid user or group name"),
    ("a b", True, "not a valid"),
    ("x" * 33, True, "not a valid"),
    ("4294967295", True, "beyond the range"),
    ("1000", False, "not a valid"),
    ("", True, "not a valid"),
    (None, True, "must be a user or group name"),
    ("r\u00f6ot", True, "not a valid"),
])
def test_account_name_bad(value, numeric, words):
    with pytest.raises(v.InputError) as err:
        v.account_name("user", value, numeric=numeric)
    assert str(err.value).startswith("user:") and words in str(err.value)


def test_natural_key():
    assert sorted(["10", "2", "1", "eu-10", "eu-2", "b", "a"], key=v.natural_key) == [
        "1", "2", "10", "a", "b", "eu-2", "eu-10"]


# -- time spans -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value, seconds", [
    (5, 5.0), ("5", 5.0), ("1.5s", 1.5), ("500ms", 0.5), ("2min 30s", 150.0), ("1h", 3600.0),
    ("2min30s", 150.0), (0, 0.0), (0.25, 0.25), ("1d", 86400.0), ("1w", 604800.0), ("3us", 3e-6),
    (" 5s ", 5.0),
])
def test_timespan_ok(value, seconds):
    assert v.timespan("t", value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [-1, "-1", "abc", "5 parsecs", "", True, "1s;2", "5s\n", "5s\r", None,
                                   "infinity", float("nan"), float("inf"), "0.0000001", "5ss"])
def test_timespan_bad(value):
    with pytest.raises(v.InputError) as err:
        v.timespan("restart_sec", value)
    assert str(err.value).startswith("restart_sec:")


def test_timespan_infinity_and_bounds():
    assert v.timespan("t", "infinity", allow_infinity=True) == float("inf")
    with pytest.raises(v.InputError, match="more than 60s"):
        v.timespan("t", "2min", maximum=60.0)
    with pytest.raises(v.InputError, match="at least 1"):
        v.timespan("t", "0.5", minimum=1.0)
    with pytest.raises(v.InputError, match="longer than systemd can hold"):
        v.timespan("t", 2 ** 63)


def test_format_timespan():
    assert v.format_timespan(5.0) == "5s"
    assert v.format_timespan(1.5) == "1500ms"
    assert v.format_timespan(0.0000015) == "2us"
    assert v.format_timespan(120.0) == "120s"
    assert v.format_timespan(float("inf")) == "infinity"
    assert v.unit_timespan("t", "1.001") == "1001ms"


# -- modes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, mode", [("0600", 0o600), ("600", 0o600), (0o600, 0o600), ("0o640", 0o640),
                                         (0o400, 0o400), ("0000", 0)])
def test_file_mode_ok(value, mode):
    assert v.file_mode("mode", value) == mode


@pytest.mark.parametrize("value", ["0644", "0604", "0660", 0o644, "0777", "0606", "0620"])
def test_file_mode_forbidden(value):
    with pytest.raises(v.InputError) as err:
        v.file_mode("mode", value, forbid_bits=0o077)
    assert str(err.value).startswith("mode:") and "refused" in str(err.value)


@pytest.mark.parametrize("value", [600, "rw-------", "99", True, "01777", "0600\n", -1, "4755"])
def test_file_mode_not_a_mode(value):
    with pytest.raises(v.InputError, match="^mode:"):
        v.file_mode("mode", value)


def test_file_mode_default_and_describe():
    assert v.file_mode("mode", None, default=0o600) == 0o600
    assert v.describe_bits(0o044) == "the group and every user access the file"


# -- paths ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["/usr/bin/x", "/", "/a b/c", "/etc/x.d"])
def test_absolute_path_ok(value):
    assert v.absolute_path("p", value) == value


@pytest.mark.parametrize("value", ["usr/bin/x", "/usr/../bin", "/usr//bin", "/usr/./bin", "", "/a\nb", "/etc/",
                                   "/etc\n", None, "/x\u2028y"])
def test_absolute_path_bad(value):
    with pytest.raises(v.InputError, match="^p:"):
        v.absolute_path("p", value)


# -- numbers, booleans, signals -------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [(5, 5), ("5", 5), (" 7 ", 7), (3.0, 3), ("-2", -2)])
def test_integer_ok(value, expected):
    assert v.integer("n", value, -10, 10) == expected


@pytest.mark.parametrize("value", [True, False, None, 11, "11", "1e3", "0x5", 2.5, "\u0665", "5\n", ""])
def test_integer_bad(value):
    with pytest.raises(v.InputError, match="^n:"):
        v.integer("n", value, -10, 10)


@pytest.mark.parametrize("value, expected", [(True, True), ("yes", True), ("on", True), ("1", True), (0, False),
                                             ("No", False), ("false", False)])
def test_boolean(value, expected):
    assert v.boolean("b", value) is expected
    assert v.yes_no("b", value) == ("yes" if expected else "no")


@pytest.mark.parametrize("value", ["maybe", "", None, "2", [True]])
def test_boolean_bad(value):
    with pytest.raises(v.InputError, match="^b:"):
        v.boolean("b", value)


@pytest.mark.parametrize("value, expected", [("term", "SIGTERM"), ("SIGINT", "SIGINT"), (" hup ", "SIGHUP"),
                                             ("sigusr1", "SIGUSR1")])
def test_signal_ok(value, expected):
    assert v.signal("s", value) == expected


@pytest.mark.parametrize("value", ["SIGSTOP", "STOP", "9", "SIGTERM\n", "", "SIGFOO"])
def test_signal_bad(value):
    with pytest.raises(v.InputError, match="^s:"):
        v.signal("s", value)


# -- sizes and shares -----------------------------------------------------------------------------
@pytest.mark.parametrize("fn, good, bad", [
    (v.memory_size, ["512M", "2G", "50%", "infinity", "1024", "100%", "1.5G"],
     ["lots", "-1G", "1Q", "0", "0M", "0%", "101%", "", "1G\n", True, None]),
    (v.cpu_quota, ["50%", "200%", "0.5%"], ["50", "0%", "x%", "", True]),
    (v.tasks_max, ["10", "infinity", "50%", "1"], ["0", "-3", "many", "0%", "150%", True]),
])
def test_limits(fn, good, bad):
    for value in good:
        assert fn("limit", value) == value
    for value in bad:
        with pytest.raises(v.InputError, match="^limit:"):
            fn("limit", value)


def test_printable_name_escapes_controls_and_separators():
    assert v.printable_name("A\nB\u2028C D") == "A\\u000aB\\u2028C D"
