"""Unit tests for sudo_policy: families, escape lookups, rendering, and the regrouping invariant.

The invariant tests model what the measured implementations do (see docs/sudoers.md):

* C sudo (1.9.5, 1.9.13, 1.9.16) joins the caller's argv with single spaces and compares the string
  with the rule's arguments: the caller may pass ANY regrouping of the rule's words.
* sudo-rs 0.2.5 compares argument by argument: only the rule's own grouping matches.
* A program reads its argv like glibc getopt: ``--name=value``; a cluster ``-abc`` in which any
  letter may take the rest of the word as its value (``"-c /x"`` gives ``" /x"``); a space is no
  option letter (usage error); any word may also be taken whole as the previous option's value.

For every rule the policy accepts, every regrouping must either be a usage error of the program or
hand it only values that, read as paths from the pinned working directory ``/``, land in a
directory no one but root controls (so they open nothing the caller planted). For systemctl and
journalctl, whose grammar is modelled, every regrouping must be a usage error.
"""

from __future__ import annotations

import os
import pathlib
import posixpath
import shutil
from unittest import mock

import pytest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:  # the example tests still run; the property tests are reported as skipped
    class _Absent:
        def __getattr__(self, _name):
            return self

        def __call__(self, *_args, **_kwargs):
            return self

    HealthCheck = st = _Absent()

    def given(*_args, **_kwargs):
        return pytest.mark.skip(reason="hypothesis is not installed (requirements-test.txt)")

    def settings(*_args, **_kwargs):
        return lambda test: test

    def set_hypothesis_home_dir(_path):
        return None

from ansible_collections.supervised.background.plugins.module_utils import sudo_policy, trust
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

# Hypothesis keeps its caches inside the build area, like every other tool here.
set_hypothesis_home_dir(pathlib.Path(__file__).resolve().parents[4] / ".build" / "hypothesis")
FIELD = "commands[0]"
# Where the caller (the runner) can create or change entries, in the model of the host.
CALLER_TREES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/home/runner", "/proc", "/dev")


# ---- models ---------------------------------------------------------------------------------------
def regroupings(words):
    """Every argv C sudo matches against a rule with these argument words (single-space join)."""
    if not words:
        yield []
        return
    for mask in range(2 ** (len(words) - 1)):
        groups, current = [], [words[0]]
        for i, word in enumerate(words[1:]):
            if mask >> i & 1:
                current.append(word)
            else:
                groups.append(" ".join(current))
                current = [word]
        groups.append(" ".join(current))
        yield groups


def c_sudo_matches(rule_words, argv):
    return " ".join(argv) == " ".join(rule_words)


def sudo_rs_matches(rule_words, argv):
    return list(argv) == list(rule_words)


def getopt_values(word):
    """Every string a getopt-reading program may take from one argv element, whatever its option
    string: the whole word (as the previous option's value or a positional), a long option's value,
    or the rest of a short-option cluster after any letter."""
    values = [word]
    if word.startswith("--") and word != "--":
        name, eq, value = word[2:].partition("=")
        if eq and " " not in name:
            values.append(value)
    elif word.startswith("-") and word != "-":
        for k in range(1, len(word)):
            if word[k] == " ":
                break  # a space is no option letter: usage error from here on
            values.append(word[k + 1:])
    return values


def in_caller_tree(path):
    return any(path == tree or path.startswith(tree + "/") for tree in CALLER_TREES)


def lands_in_root_only_dir(value, cwd="/"):
    """A value holding a space, opened as a path from the working directory (pinned: '/'): the entry
    with the space must be created in a directory the caller does not control (so it cannot be
    planted)."""
    path = value if value.startswith("/") else posixpath.join(cwd, value)
    head = path[: path.index(" ")]
    directory = posixpath.dirname(head + "x")
    return not in_caller_tree(directory) and ".." not in directory.split("/")


def model_trust(field, path, purpose):
    """The trust policy on the model host: what lies in a caller's tree is refused."""
    if in_caller_tree(path) or in_caller_tree(posixpath.dirname(path)):
        raise trust.TrustError(f"{field}: {path} is not trusted as {purpose.name} (model)")
    return None


@pytest.fixture
def model_host():
    with mock.patch.object(sudo_policy.trust, "check", model_trust), \
            mock.patch.object(sudo_policy, "escape_reason", lambda _path: None):
        yield


def accepted(path, args):
    try:
        sudo_policy.check_words(FIELD, [path] + list(args))
        sudo_policy.check_program(FIELD, path, list(args), False)
    except InputError:
        return False
    return True


def assert_generic_invariant(args, cwd="/"):
    for argv in regroupings(args):
        assert c_sudo_matches(args, argv)
        assert sudo_rs_matches(args, argv) == (argv == list(args))
        if argv == list(args):
            continue
        for word in argv:
            if " " not in word:
                continue
            for value in getopt_values(word):
                if " " in value:
                    assert lands_in_root_only_dir(value, cwd), (args, argv, word, value)


SYSTEMCTL_SHORT = {"-q", "-l", "-a"}


def systemctl_reading(argv):
    """What systemctl does with argv: None for a usage error, else (options, verb, units)."""
    options, positional = set(), []
    for word in argv:
        if word.startswith("--"):
            name, eq, _value = word[2:].partition("=")
            if eq or " " in name or "--" + name not in sudo_policy.SYSTEMCTL_OPTIONS:
                return None
            options.add("--" + name)
        elif word.startswith("-") and word != "-":
            if any(f"-{letter}" not in SYSTEMCTL_SHORT for letter in word[1:]):
                return None  # includes ' ': "invalid option -- ' '"
            options.update(f"-{letter}" for letter in word[1:])
        else:
            positional.append(word)
    if not positional or positional[0] not in sudo_policy.SYSTEMCTL_VERBS:
        return None  # "Unknown command verb"
    # A unit name with a space is not refused: systemctl escapes it (\x20) into ANOTHER unit.
    return frozenset(options), positional[0], tuple(positional[1:])


JOURNAL_SHORT_FLAGS = set("qxfkral")
JOURNAL_SHORT_VALUES = {"u": "unit", "n": "count", "S": "time", "U": "time", "o": "output", "p": "priority",
                        "b": "boot"}


def journalctl_reading(argv):
    """None for a usage error; else the options and values journalctl acts on. A value with a space
    fails to parse (measured for counts, times, outputs, priorities, boots) except a unit name,
    which journalctl escapes into another unit."""
    reading = []
    for word in argv:
        if not word.startswith("-") or word == "-":
            return ("positional", word) if " " in word else None
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if " " in name:
                return None
            kind = sudo_policy.JOURNALCTL_VALUES.get("--" + name)
            if eq:
                if kind is None or (" " in value and kind != "unit"):
                    return None
            reading.append((name, value))
            continue
        letters = word[1:]
        for k, letter in enumerate(letters):
            if letter in JOURNAL_SHORT_VALUES:
                value = letters[k + 1:]
                if " " in value and JOURNAL_SHORT_VALUES[letter] != "unit":
                    return None
                reading.append((letter, value))
                break
            if letter not in JOURNAL_SHORT_FLAGS:
                return None
            reading.append((letter, None))
    return tuple(reading)


# ---- families and escapes ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, family", [
    ("vim.nox", "vim"), ("vim.tiny", "vim"), ("emacs-nox", "emacs"), ("emacs29", "emacs"), ("tclsh8.6", "tclsh"),
    ("ksh93", "ksh"), ("irb3.1", "irb"), ("gdb-multiarch", "gdb"), ("wish8.6", "wish"), ("python3.11", "python"),
    ("python3.11-dbg", "python"), ("perl5.36", "perl"), ("php8.2", "php"), ("lua5.4", "lua"),
    ("x86_64-linux-gnu-gdb", "gdb"), ("nc.openbsd", "nc"), ("busybox", "busybox"), ("pypy3", "pypy"),
    ("ld-linux-x86-64.so.2", "ld"), ("clang++-16", "clang++"), ("sudo-rs", "sudo"), ("openfortivpn-1.23", "openfortivpn"),
])
def test_family_of_versioned_and_variant_names(name, family):
    assert sudo_policy.family_of(name) == family


@pytest.mark.parametrize("name", ["systemctl", "journalctl", "id", "uptime", "ip", "argv-probe", "report", "ss",
                                  "wg-quick", "nft"])
def test_family_of_innocent_names(name):
    assert sudo_policy.family_of(name) is None


@pytest.mark.parametrize("path", ["/usr/lib/python3.11/trace.py", "/usr/lib/python3/dist-packages/x/cli.py",
                                  "/usr/local/lib/python3.13/timeit.py", "/usr/share/perl5/Debconf/x.pl",
                                  "/usr/lib/ruby/3.1.0/un.rb", "/usr/share/python3/py3versions.py"])
def test_scripts_in_a_language_library_are_refused(path):
    with pytest.raises(InputError, match="script in a language's library"):
        sudo_policy.check_program("commands[0]", path, [], False)


@pytest.mark.parametrize("word", ["sh", "dash", "bash5", "python3.11", "perl", "busybox", "vim.nox", "gdb", "node",
                                  # a second adversarial pass: variants and parts
                                  "bash-static", "dash.static", "python3-dbg", "python3.11-dbg", "vim.gtk3", "gvim",
                                  "ed", "pdb3", "pydoc3", "sh.", "-sh", "perl5.36-x86_64-linux-gnu"])
def test_bare_interpreter_names_are_refused_as_arguments(word):
    assert sudo_policy.names_interpreter(word)
    with pytest.raises(InputError, match="a shell or interpreter"):
        sudo_policy.check_generic_arguments("commands[0]", ["--", word] if word.startswith("-") else [word])


@pytest.mark.parametrize("word", ["time", "info", "at", "status", "restart", "iso", "make", "r", "more", "sort"])
def test_ordinary_words_are_not_interpreters(word):
    assert not sudo_policy.names_interpreter(word)


@pytest.fixture
def host_tree(tmp_path, monkeypatch):
    """BIN_DIRS, ALTERNATIVES_DIR and SHELLS_FILE in a temp tree."""
    sysbin = tmp_path / "bin"
    sysbin.mkdir()
    shutil.copy("/usr/bin/dash", sysbin / "sh")  # a copy: /usr may be another filesystem (a container)
    alternatives = tmp_path / "alternatives"
    alternatives.mkdir()
    shells = tmp_path / "shells"
    login = tmp_path / "opt" / "loginsh"
    login.parent.mkdir()
    login.write_text("#!/bin/sh\n# a login shell outside the bin dirs\n")
    login.chmod(0o755)
    shells.write_text(f"{sysbin / 'sh'}\n{login}\n")
    monkeypatch.setattr(sudo_policy, "BIN_DIRS", (str(sysbin),))
    monkeypatch.setattr(sudo_policy, "ALTERNATIVES_DIR", str(alternatives))
    monkeypatch.setattr(sudo_policy, "SHELLS_FILE", str(shells))

    def innocent(name, content=None, copy_of=None):
        path = tmp_path / "opt" / name
        if copy_of:
            shutil.copyfile(copy_of, path)
        else:
            path.write_text(content or f"#!/bin/sh\n# {name}\n")
        path.chmod(0o755)
        return str(path)

    return sysbin, alternatives, login, innocent


def test_escape_reason_sees_links_copies_alternatives_and_login_shells(host_tree, tmp_path):
    sysbin, alternatives, login, innocent = host_tree
    assert sudo_policy.escape_reason(innocent("report")) is None
    os.link(sysbin / "sh", tmp_path / "opt" / "linked")
    assert "same file" in sudo_policy.escape_reason(str(tmp_path / "opt" / "linked"))
    assert "copy of" in sudo_policy.escape_reason(innocent("copied", copy_of="/usr/bin/dash"))
    assert "copy of" in sudo_policy.escape_reason(innocent("corp", copy_of=login))
    viewer = innocent("viewer")
    os.symlink(viewer, alternatives / "pager")
    assert "'pager'" in sudo_policy.escape_reason(viewer)
    os.symlink(innocent("columns"), alternatives / "awk.1.gz")  # a man page link of a family name counts too
    assert "'awk.1.gz'" in sudo_policy.escape_reason(str(tmp_path / "opt" / "columns"))


# ---- rule 6 and rendering ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/usr/sbin/openfortivpn", "/usr/bin/openfortivpn", "/opt/vpn/openvpn",
                                  "/usr/local/sbin/openfortivpn-1.19"])
def test_vpn_clients_have_no_safe_rule(path):
    with pytest.raises(InputError) as err:
        sudo_policy.check_no_safe_rule(FIELD, path)
    assert str(err.value).startswith(f"{FIELD}: no exact sudo rule")
    with pytest.raises(InputError):
        sudo_policy.check_program(FIELD, path, [], True)  # allow_shell_escape does not lift it


def test_render_rule_pins_cwd_before_the_tag():
    assert sudo_policy.render_rule("u", "root", True, ["/usr/bin/id"]) == 'u ALL=(root) CWD=/ NOPASSWD: /usr/bin/id ""'
    assert (sudo_policy.render_rule("%g", "svc", False, ["/usr/bin/systemctl", "start", "a@b.service"])
            == "%g ALL=(svc) CWD=/ /usr/bin/systemctl start a@b.service")
    assert (sudo_policy.render_rule("u", "root", True, ["/usr/bin/x", "--a=b", "c:d", "e,f"])
            == "u ALL=(root) CWD=/ NOPASSWD: /usr/bin/x --a\\=b c\\:d e\\,f")


def c_sudo_rule_args(line):
    """C sudo's reading of a rendered rule's arguments (toke.l fill_args: the backslash before
    , : = is dropped, words joined with one space)."""
    args = line.split(" ", 5)[5] if " NOPASSWD: " in line else line.split(" ", 4)[4]
    return "".join(ch for i, ch in enumerate(args) if not (ch == "\\" and args[i + 1:i + 2] in (",", ":", "=")))


def sudo_rs_rule_args(line):
    """sudo-rs 0.2.5's reading: split on whitespace, escapes resolved, a trailing "" popped."""
    words = line.split(" NOPASSWD: ", 1)[1].split()[1:] if " NOPASSWD: " in line else line.split()[4:]
    words = [w.replace("\\=", "=").replace("\\:", ":").replace("\\,", ",") for w in words]
    return words[:-1] if words and words[-1] == '""' else words


ARG_CHARS = "abcXYZ019@%+._/^~=:,-"


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.text(alphabet=ARG_CHARS, min_size=1, max_size=12), min_size=0, max_size=6))
def test_rendered_rule_reads_back_the_same_argv_in_both_sudos(args):
    argv = ["/usr/bin/x"] + args
    try:
        sudo_policy.check_words(FIELD, argv)
    except InputError:
        return
    line = sudo_policy.render_rule("u", "root", True, argv)
    assert " CWD=/ NOPASSWD: " in line
    assert c_sudo_rule_args(line) == (" ".join(args) if args else '""')
    assert sudo_rs_rule_args(line) == args


# ---- the regrouping invariant -----------------------------------------------------------------------
POOL = [
    "-c", "-v", "-vc", "-q", "-o", "-n5", "-c/etc/x.conf", "-c/tmp/x", "-c=/etc/x", "--config", "--verbose",
    "--config=/etc/x.conf", "--config=/tmp/x", "--path=/etc/a:/tmp/b", "--path=/etc/a:/etc/b", "--", "-",
    "/etc/x.conf", "/etc", "/", "/tmp/x", "/home/runner/x", "/proc/self/cwd", "corp.conf", "./x", "~/x", "~root",
    "x", "sync", "start", "a:b", "key=/etc/x", "key=/tmp/x", "--level=3", "@/etc/args", "..", "/etc/x/..",
]
WORD = st.one_of(st.sampled_from(POOL), st.text(alphabet="ac/-=.:~,", min_size=1, max_size=8))


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(WORD, min_size=1, max_size=6))
def test_no_regrouping_of_an_accepted_rule_reaches_what_the_caller_controls(model_host, args):
    if accepted("/usr/local/bin/argv-probe", args):
        assert " CWD=/ " in sudo_policy.render_rule("u", "root", True, ["/usr/local/bin/argv-probe"] + args)
        assert_generic_invariant(args)


@pytest.mark.parametrize("args", [
    ["-c/etc/x.conf", "--verbose"],
    ["/etc/x.conf", "--verbose", "-q", "-c/etc/y.conf"],
    ["sync", "host:443", "--level=3", "-v"],
    ["--config=/etc/x.conf", "--log=/var/log/x.log", "-q"],
    ["-a", "-b", "-c"],
])
def test_the_invariant_holds_for_typical_accepted_rules(model_host, args):
    """Not vacuous: these multi-word rules are accepted, and have regroupings to check."""
    assert accepted("/usr/local/bin/argv-probe", args)
    assert len(list(regroupings(args))) == 2 ** (len(args) - 1) > 1
    assert_generic_invariant(args)


@pytest.mark.parametrize("args, cwd", [
    (["-c", "/etc/x.conf"], "/home/runner"),   # the seed attack: ' /etc/x.conf' read from the caller's cwd
    (["--config=/tmp/x", "-v"], "/"),           # '/tmp/x -v' lies in /tmp
    (["/home/runner/a", "b"], "/"),             # the caller's home
])
def test_the_model_catches_the_attacks_it_is_for(args, cwd):
    """The invariant check itself fails on what the policy exists to refuse, and without CWD=/ on
    the seed rule (with CWD=/ that regrouping lands under '/', where only root creates names)."""
    with pytest.raises(AssertionError):
        assert_generic_invariant(args, cwd)
    if cwd != "/":
        assert_generic_invariant(args, "/")


SYSTEMCTL_POOL = sorted(sudo_policy.SYSTEMCTL_OPTIONS) + sorted(sudo_policy.SYSTEMCTL_VERBS) + [
    "x.service", "tun@a.service", "b.timer", "help", "edit", "--host=h", "-H", "--", "/tmp/x.service", "-qa"]


def _with_noise(pool, shaped):
    """Rule-shaped argv lists, sometimes with a random word inserted, and random lists."""
    @st.composite
    def noisy(draw):
        args = list(draw(shaped))
        if draw(st.booleans()):
            args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(pool)))
        return args
    return st.one_of(noisy(), st.lists(st.sampled_from(pool), min_size=1, max_size=5))


_SYSTEMCTL_OPTION = st.sampled_from(sorted(sudo_policy.SYSTEMCTL_OPTIONS))
SYSTEMCTL_ARGS = _with_noise(SYSTEMCTL_POOL, st.builds(
    lambda pre, verb, mid, unit: pre + [verb] + mid + [unit],
    st.lists(_SYSTEMCTL_OPTION, max_size=2), st.sampled_from(sorted(sudo_policy.SYSTEMCTL_VERBS)),
    st.lists(_SYSTEMCTL_OPTION, max_size=2), st.sampled_from(["x.service", "tun@a.service", "b.timer"])))


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SYSTEMCTL_ARGS)
def test_every_regrouping_of_an_accepted_systemctl_rule_is_a_usage_error(model_host, args):
    if not accepted("/usr/bin/systemctl", args):
        return
    assert systemctl_reading(args) is not None
    for argv in regroupings(args):
        if argv != list(args):
            assert systemctl_reading(argv) is None, (args, argv, systemctl_reading(argv))


def test_the_systemctl_model_sees_the_unit_escape():
    """Measured: 'systemctl start "tun@a.service b.service"' starts tun@a.service\\x20b.service."""
    reading = systemctl_reading(["start", "tun@a.service b.service"])
    assert reading == (frozenset(), "start", ("tun@a.service b.service",))
    assert not accepted("/usr/bin/systemctl", ["start", "tun@a.service", "b.service"])
    assert not accepted("/usr/bin/systemctl", ["start", "tun@a.service", "--no-block"])


JOURNAL_POOL = sorted(sudo_policy.JOURNALCTL_FLAGS) + [
    "--unit=x.service", "-ux.service", "-ua.service", "-n50", "--lines=5", "--since=-1h", "-Stoday", "-ocat",
    "--output=json", "-perr", "-b-1", "--boot=0", "-u", "x.service", "--directory=/tmp", "-n=5"]


JOURNAL_ARGS = _with_noise(JOURNAL_POOL, st.builds(
    lambda head, rest, unit: head + rest + unit,
    st.just(["--no-pager"]), st.lists(st.sampled_from(JOURNAL_POOL[:-5]), max_size=3),
    st.sampled_from([[], ["--unit=x.service"], ["-ux.service"]])))


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(JOURNAL_ARGS)
def test_every_regrouping_of_an_accepted_journalctl_rule_is_a_usage_error(model_host, args):
    if not accepted("/usr/bin/journalctl", args):
        return
    assert journalctl_reading(args) is not None
    for argv in regroupings(args):
        if argv != list(args):
            assert journalctl_reading(argv) is None, (args, argv, journalctl_reading(argv))


@pytest.mark.parametrize("tool, args", [
    ("/usr/bin/systemctl", ["--no-pager", "status", "x.service"]),
    ("/usr/bin/systemctl", ["--no-block", "-q", "restart", "tun@a.service"]),
    ("/usr/bin/journalctl", ["--no-pager", "-n50", "--since=-1h", "-ocat", "--unit=x.service"]),
])
def test_the_known_grammars_accept_useful_rules(model_host, tool, args):
    assert accepted(tool, args)
    assert len(list(regroupings(args))) > 1
