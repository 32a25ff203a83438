"""env_rules: keys and values systemd accepts, and the one EnvironmentFile writer/reader.

The reader mirrors systemd's env-file state machine (src/basic/env-file.c); the writer's output
must read back exactly. The same round trip against a running service is proven in Molecule
(molecule/default/tests/test_env_roundtrip.py).
"""

from __future__ import annotations

import pytest
from ansible_collections.supervised.background.plugins.module_utils import env_rules
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

HEADER = "# header\n"

# value -> exact text written after KEY= (derived by hand from systemd's env-file rules).
TRICKY = [
    ("", "''"),
    ("plain", "'plain'"),
    ("with space", "'with space'"),
    ("  leading", "'  leading'"),
    ("trailing  ", "'trailing  '"),
    ("$HOME ${X} `id`", "'$HOME ${X} `id`'"),
    ("back\\slash\\", "'back\\slash\\'"),
    ('say "hi"', "'say \"hi\"'"),
    ("#not-a-comment", "'#not-a-comment'"),
    ("a=b=c", "'a=b=c'"),
    (";semi", "';semi'"),
    ("%i %% 100%", "'%i %% 100%'"),
    ("\u00fcn\u00efc\u00f8d\u00e9 \u2713 \u65e5\u672c", "'\u00fcn\u00efc\u00f8d\u00e9 \u2713 \u65e5\u672c'"),
    ("it's", '"it\'s"'),
    ("'", '"\'"'),
    ("it's $HOME", '"it\'s \\$HOME"'),
    ("it's `id`", '"it\'s \\`id\\`"'),
    ("it's \"q\"", '"it\'s \\"q\\""'),
    ("it's a\\b\\", '"it\'s a\\\\b\\\\"'),
    ("it's  ", '"it\'s  "'),
    ("it's \\n", '"it\'s \\\\n"'),
    ("\ufeffbom", "'\ufeffbom'"),
    ("\U0001f600 \ufffd", "'\U0001f600 \ufffd'"),
]


@pytest.mark.parametrize("value,written", TRICKY)
def test_quoting_is_exact_and_reads_back(value, written):
    assert env_rules.quote_value(value) == written
    text = env_rules.render_file(HEADER, {"K": value, "OTHER": "x"})
    assert f"K={written}\n" in text
    assert env_rules.parse_file(text) == {"K": value, "OTHER": "x"}


def test_all_tricky_values_in_one_file_round_trip():
    env = {f"K{i}": value for i, (value, _w) in enumerate(TRICKY)}
    assert env_rules.parse_file(env_rules.render_file(HEADER, env)) == env


def test_keys_sorted_and_header():
    text = env_rules.render_file(HEADER, {"B": "2", "A": "1", "_C": "3"})
    assert text.splitlines() == ["# header", "A='1'", "B='2'", "_C='3'"]


# -- the reader, case by case (systemd's state machine) -------------------------------------------
PARSE = [
    ("comments at line start only", "# c\n; c\n  # indented c\nA=1 # not a comment\n", {"A": "1 # not a comment"}),
    ("whitespace around keys and unquoted values", "  b  =  b  \n", {"b": "b"}),
    ("single quotes literal", "c='  c \\ $x  '\n", {"c": "  c \\ $x  "}),
    ("double-quote escapes", 'd="d \\$ \\x \\\\ \\` \\""\n', {"d": 'd $ \\x \\ ` "'}),
    ("backslash-newline continues unquoted", "e=x\\\ny\n", {"e": "xy"}),
    ("backslash-newline eaten in double quotes", 'e="x\\\ny"\n', {"e": "xy"}),
    ("empty value", "f=\n", {"f": ""}),
    ("quotes concatenate", "g='one'two\" three\"\n", {"g": 'onetwo" three"'}),
    ("after a closing quote a '#' is value", "h=\"x\" # c\n", {"h": "x# c"}),
    ("CR ends a line", "i=1\rj=2\r\n", {"i": "1", "j": "2"}),
    ("line without '=' is dropped", "NOEQUALS\nk=1\n", {"k": "1"}),
    ("later duplicate wins", "l=1\nl=2\n", {"l": "2"}),
    ("unquoted backslash escapes anything", "m=a\\ b\\'c\n", {"m": "a b'c"}),
    ("newline inside quotes kept", "n='a\nb'\n", {"n": "a\nb"}),
    ("value at end of file without newline", "o='x'", {"o": "x"}),
    ("unterminated quote runs to the end", "p='x\nq=1\n", {"p": "x\nq=1\n"}),
    ("trailing whitespace of unquoted value cut, inner kept", "r=a b  \n", {"r": "a b"}),
    ("comment ending in backslash (systemd >= 254)", "# c \\\ns=1\n", {"s": "1"}),
    ("key with spaces inside kept as written", "export T=1\n", {"export T": "1"}),
]


@pytest.mark.parametrize("label,text,expected", PARSE, ids=[p[0] for p in PARSE])
def test_parser_matches_systemd_rules(label, text, expected):
    assert env_rules.parse_file(text) == expected


def test_shown_keys_only_valid_names():
    parsed = env_rules.parse_file("GOOD=1\nexport BAD=2\nhunter 2=3\n_OK=4\n")
    assert env_rules.shown_keys(parsed) == ["GOOD", "_OK"]


# -- keys -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["A", "_", "a1", "DB_PASSWORD", "x" * 255, "Path"])
def test_env_key_ok(key):
    assert env_rules.env_key("env", key) == key


@pytest.mark.parametrize("key,words", [
    ("1A", "not a valid variable name"), ("A-B", "not a valid"), ("A B", "not a valid"), ("", "not a valid"),
    ("A=B", "not a valid"), ("\u00c9", "not a valid"), ("A\n", "not a valid"), ("LEAK\n", "not a valid"),
    ("x" * 256, "not a valid"), (5, "not a valid"), (None, "not a valid"),
    ("NOTIFY_SOCKET", "set by systemd"), ("INVOCATION_ID", "set by systemd"), ("LISTEN_FDS", "set by systemd"),
    ("CREDENTIALS_DIRECTORY", "set by systemd"), ("MONITOR_SERVICE_RESULT", "set by systemd"),
    ("TRIGGER_TIMER_REALTIME_USEC", "set by systemd"), ("WATCHDOG_USEC", "set by systemd"),
])
def test_env_key_bad(key, words):
    with pytest.raises(InputError) as err:
        env_rules.env_key("env", key)
    assert str(err.value).startswith("env: key '") and words in str(err.value)


def test_env_key_message_escapes_the_key():
    with pytest.raises(InputError) as err:
        env_rules.env_key("env", "A\nB\u2028")
    assert "\n" not in str(err.value) and "\u2028" not in str(err.value) and "A\\u000aB\\u2028" in str(err.value)


# -- values ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value,written", [(True, "true"), (False, "false"), (5432, "5432"), (1.5, "1.5"),
                                           ("x", "x"), ("", "")])
def test_env_value_types(value, written):
    assert env_rules.env_value("env", "K", value) == written


SECRET = "s3cr3t-'$HOME'-\"x\""


@pytest.mark.parametrize("value,words", [
    (None, "is null"), ([SECRET], "must be a string"), ({"a": SECRET}, "must be a string"),
    (SECRET + "\n", "cannot be written safely"), (SECRET + "\r", "cannot be written safely"),
    (SECRET + "\x00", "cannot be written safely"), (SECRET + "\t", "cannot be written safely"),
    (SECRET + "\x85", "cannot be written safely"), (SECRET + "\u2028", "cannot be written safely"),
    (SECRET + "\ufdd0", "cannot be written safely"), (SECRET + "\U0010ffff", "cannot be written safely"),
    (SECRET + "\udc80", "cannot be written safely"), (SECRET + "\x1b[0m", "cannot be written safely"),
])
def test_env_value_bad_names_key_never_value(value, words):
    with pytest.raises(InputError) as err:
        env_rules.env_value("env", "SECRET_KEY", value)
    msg = str(err.value)
    assert msg.startswith("env: value of key 'SECRET_KEY'") and words in msg
    assert "s3cr3t" not in msg and "HOME" not in msg


def test_sizes_at_and_over_the_kernel_limit():
    env_rules.check_sizes("env", {"BIG": "y" * (131071 - len("BIG="))})
    with pytest.raises(InputError, match="value of key 'BIG' is too long"):
        env_rules.check_sizes("env", {"BIG": "y" * (131072 - len("BIG="))})
    # Multi-byte characters count in bytes.
    with pytest.raises(InputError, match="too long"):
        env_rules.check_sizes("env", {"U": "\u00e9" * 65535})
    with pytest.raises(InputError, match="the variables total"):
        env_rules.check_sizes("env", {f"K{i}": "z" * 120000 for i in range(10)})


def test_environment_sorts_and_validates():
    assert list(env_rules.environment("env", {"B": 1, "A": True})) == ["A", "B"]
    with pytest.raises(InputError, match="^env: must be a mapping"):
        env_rules.environment("env", ["A=1"])
    with pytest.raises(InputError, match="^env: key '1A'"):
        env_rules.environment("env", {"OK": "1", "1A": SECRET})


# -- the round trip, as a property ----------------------------------------------------------------
_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
KEYS = st.builds(lambda first, rest: first + rest, st.sampled_from(_FIRST),
                 st.text(st.sampled_from(_FIRST + "0123456789"), max_size=20)).filter(
    lambda k: k not in env_rules.RESERVED_KEYS and not k.startswith(env_rules.RESERVED_PREFIXES))
# Every code point, surrogates included: the property is about what env_rules accepts.
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
# Characters the quoting cares about, so the interesting cases come up often.
SPECIAL = st.sampled_from(list(" '\"\\$`#;=%\n\r\t\x00\x0b\x85\u2028\u2029\ufdd0\ufffe\U0001ffff\udc80\ufeff\u00a0"))
VALUES = st.text(st.one_of(ANY_CHAR, SPECIAL), max_size=40)


def _accepted(value):
    try:
        return env_rules.env_value("env", "K", value)
    except InputError:
        return None


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, VALUES, max_size=12))
@example({"A": "it's \\ \"x\" $y `z`", "B": "''", "C": "\\", "D": ""})
@example({"K": " '\\'' "})
def test_round_trip_property(env):
    accepted = {k: v for k, v in env.items() if _accepted(v) is not None}
    refused = {k: v for k, v in env.items() if k not in accepted}
    for key, value in refused.items():
        with pytest.raises(InputError) as err:
            env_rules.environment("env", {key: value})
        # The refusal names the key; what it shows of the value is nothing.
        msg = str(err.value)
        assert f"key '{key}'" in msg
        rest = msg.replace(f"'{key}'", "")
        assert not [f for f in _fragments(value, 4) if f.strip() and f in rest]
    validated = env_rules.environment("env", accepted)
    text = env_rules.render_file(HEADER, validated)
    assert env_rules.parse_file(text) == validated
    # One line per variable, whatever Python or systemd splits lines at.
    assert len(text.splitlines()) == len(validated) + 1


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(VALUES)
def test_every_accepted_value_is_one_line_for_every_reader(value):
    written = _accepted(value)
    if written is None:
        return
    line = f"K={env_rules.quote_value(written)}"
    assert line.splitlines() == [line]
    assert not any(ch in line for ch in "\n\r\x00")


def _fragments(value, size):
    return {value[i:i + size] for i in range(max(0, len(value) - size + 1))}


def test_reading_a_file_of_the_largest_size_is_linear():
    """parse_file once copied the value list for every character: a 128 KiB value took a minute."""
    import time

    env = {f"K{i}": "y" * 100000 for i in range(10)}
    text = env_rules.render_file(HEADER, env)
    start = time.monotonic()
    assert env_rules.parse_file(text) == env
    assert time.monotonic() - start < 5
