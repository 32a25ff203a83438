"""Real sudo / sudo-rs enforcing the rules sudoers_exact wrote for the CI runner.

Every platform runs the same tests; what differs between C sudo 1.9.5 / 1.9.13 / 1.9.16 and
sudo-rs 0.2.5 is asked of the host (``sudo_impl``) and asserted per implementation, with the
measured behaviour (docs/sudoers.md). Every denial, and every regrouped call that ran harmlessly,
is counted (conftest.py); the tally is printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile

import pytest

RUNNER = "gitlab-runner"
UNIT = "openfortivpn@corp.service"
SYSTEMCTL = "/usr/bin/systemctl"
OPENFORTIVPN = "/usr/bin/openfortivpn"
RULE_FILE = "/etc/sudoers.d/ci-runner-vpn"
PROBE_FILE = "/etc/sudoers.d/ci-runner-probe"
GRANTED = {f"{SYSTEMCTL} start {UNIT}", f"{SYSTEMCTL} stop {UNIT}"}
# The probe rule the module accepted: several words, positional first, values joined.
PROBE = "/usr/local/bin/argv-probe"
PROBE_CONF = "/etc/argv-probe/corp.conf"
PROBE_WORDS = [PROBE_CONF, f"-c{PROBE_CONF}", f"--config={PROBE_CONF}", "-v"]
PROBE_LOG = "/var/log/argv-probe.log"
ROOT_MARKER = "marker-root-config = 1"
ATTACKER_MARKER = "marker-ATTACKER-config = 1"
ATTACK_DIR = f"/home/{RUNNER}/attack"


# ---- helpers --------------------------------------------------------------------------------------
def as_runner(host, argv, env=None, cwd=None):
    """Run argv as the runner through a login-less runuser (no tty, like a CI job), in ``cwd``."""
    prefix = ["runuser", "-u", RUNNER, "--"]
    if env:
        prefix += ["env"] + [f"{k}={v}" for k, v in env.items()]
    if cwd:
        prefix += ["sh", "-c", 'cd "$0" && exec "$@"', cwd]
    return host.run(shlex.join(prefix + list(argv)))


def sudo_runner(host, *argv, cwd=None):
    return as_runner(host, ["sudo", "-n"] + list(argv), cwd=cwd)


def sudo_impl(host):
    """('rs', (0, 2, 5)) or ('c', (1, 9, 13)) for the sudo that `sudo` runs."""
    first = host.run("sudo --version 2>&1 | head -n1").stdout.strip()
    m = re.match(r"sudo-rs (\d+)\.(\d+)\.(\d+)", first)
    if m:
        return "rs", tuple(int(x) for x in m.groups())
    m = re.match(r"Sudo version (\d+)\.(\d+)\.(\d+)", first)
    assert m, f"unknown sudo: {first}"
    return "c", tuple(int(x) for x in m.groups())


def is_sudo_rs(host):
    return sudo_impl(host)[0] == "rs"


def sudoers_snapshot(host):
    """Every name, owner, mode and content hash under /etc/sudoers.d, plus /etc/sudoers."""
    out = host.run(
        "cd /etc/sudoers.d && for f in .* *; do [ \"$f\" = . ] || [ \"$f\" = .. ] || "
        "echo \"$f $(stat -c '%U:%G %a %F' \"$f\") $(sha256sum < \"$f\" | cut -c1-64)\"; done; "
        "sha256sum /etc/sudoers"
    )
    assert out.rc == 0, out.stderr
    return out.stdout


def unit_state(host):
    return host.run(f"systemctl show -p ActiveState --value {UNIT}").stdout.strip()


def probe_records(host):
    out = host.run(f"cat {PROBE_LOG} 2>/dev/null")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def regroupings(words):
    """Every argv C sudo matches against a rule with these argument words (single-space join)."""
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


def plant(host, relative, content=ATTACKER_MARKER):
    """As the runner, create ATTACK_DIR/relative holding the attacker's marker."""
    path = os.path.join(ATTACK_DIR, relative)
    script = 'mkdir -p "$(dirname "$1")" && printf "%s\\n" "$2" > "$1"'
    out = as_runner(host, ["sh", "-c", script, "plant", path, content])
    assert out.rc == 0, out.stderr


def runner_can_create(host, path):
    out = as_runner(host, ["sh", "-c", 'mkdir -p "$(dirname "$1")" 2>/dev/null && : > "$1" 2>/dev/null', "try", path])
    return out.rc == 0


@pytest.fixture(autouse=True)
def tunnel_stopped(host):
    host.run(f"systemctl stop {UNIT}")
    host.run("rm -rf /tmp/trick")
    yield
    host.run(f"systemctl stop {UNIT}")


@pytest.fixture
def attack_dir(host):
    """A directory the runner owns, with the planted config a separate-value rule would read."""
    host.run(f"rm -rf {ATTACK_DIR}")
    assert as_runner(host, ["mkdir", "-p", ATTACK_DIR]).rc == 0
    plant(host, " /etc/argv-probe/corp.conf")      # what '-c /etc/argv-probe/corp.conf' as one word reads
    plant(host, " /etc/openfortivpn/corp.conf")    # the same for the seed openfortivpn rule
    plant(host, "etc/argv-probe/corp.conf")
    plant(host, '""')                               # what 1.9.5's literal "" argument names
    yield ATTACK_DIR
    host.run(f"rm -rf {ATTACK_DIR}")


# ---- which sudo ----------------------------------------------------------------------------------
def test_sudo_implementation_is_the_one_the_platform_asks_for(host):
    wanted = host.ansible.get_variables().get("access_sudo")
    if wanted is None:  # what prepare decided from the run's variant
        wanted = "rs" if os.environ.get("MOLECULE_VARIANT") == "-sudo-rs" else "c"
    impl, version = sudo_impl(host)
    assert impl == str(wanted).lower(), (wanted, impl, version)
    if impl == "rs":
        assert host.run("dpkg-query -W -f '${Status}' sudo").stdout.strip() != "install ok installed"
        assert host.run("command -v visudo").rc != 0, "C sudo's visudo is still installed"
        assert host.run("command -v visudo-rs").rc == 0
    else:
        assert version >= (1, 9, 3), "CWD= needs sudo 1.9.3 or later"


# ---- what is granted -----------------------------------------------------------------------------
def rule_lines(host, path):
    return [line for line in host.file(path).content_string.splitlines() if not line.startswith("#")]


def test_rule_files_are_root_0440_pinned_and_exact(host):
    for path in (RULE_FILE, PROBE_FILE):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o440)
    assert sorted(rule_lines(host, RULE_FILE)) == sorted(f"{RUNNER} ALL=(root) CWD=/ NOPASSWD: {c}" for c in GRANTED)
    assert rule_lines(host, PROBE_FILE) == [
        f"{RUNNER} ALL=(root) CWD=/ NOPASSWD: {PROBE} {PROBE_CONF} -c{PROBE_CONF} --config\\={PROBE_CONF} -v",
        f'{RUNNER} ALL=(root) CWD=/ NOPASSWD: {PROBE} ""',
    ]


def test_sudo_list_shows_exactly_the_granted_commands_with_cwd(host):
    """`sudo -l` shows CWD=/ on every rule (C sudo prints the escapes, sudo-rs the parsed words and
    no "" for a command allowed without arguments)."""
    out = sudo_runner(host, "-l")
    assert out.rc == 0, out.stderr
    listed = set()
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("(root)"):
            assert line.startswith("(root) CWD=/ NOPASSWD: "), line
            listed.add(line.split("NOPASSWD: ", 1)[1].replace("\\", ""))
    no_args = PROBE if is_sudo_rs(host) else f'{PROBE} ""'
    assert listed == GRANTED | {f"{PROBE} {' '.join(PROBE_WORDS)}", no_args}, out.stdout


def test_granted_commands_run(host):
    out = sudo_runner(host, SYSTEMCTL, "start", UNIT)
    assert out.rc == 0, out.stderr
    assert unit_state(host) == "active"
    out = sudo_runner(host, "systemctl", "stop", UNIT)  # found through secure_path
    assert out.rc == 0, out.stderr
    assert unit_state(host) == "inactive"


def test_the_probe_rule_runs_as_written_in_root_and_reads_roots_file(host, attack_dir):
    """The exact argv matches under both sudos (so sudo-rs reads the escaped '=' as '=') and the
    program runs in / although the runner called it from its own directory."""
    before = len(probe_records(host))
    out = sudo_runner(host, PROBE, *PROBE_WORDS, cwd=attack_dir)
    assert out.rc == 0, out.stderr
    (record,) = probe_records(host)[before:]
    assert record["argv"] == PROBE_WORDS and record["cwd"] == "/" and record["uid"] == 0
    assert [e.get("first_line") for e in record["opened"]] == [ROOT_MARKER] * 3, record


# ---- argument merging, end to end ------------------------------------------------------------------
def test_every_regrouping_of_the_probe_rule_is_denied_or_harmless(host, attack_dir, denied, defeated):
    """C sudo matches every regrouping of the rule's words (it joins the caller's argv with spaces);
    sudo-rs only the rule's own grouping. Whatever runs sees cwd / and opens only root's file or
    names no one but root could create; never the runner's planted file."""
    impl, _version = sudo_impl(host)
    ran = 0
    for argv in regroupings(PROBE_WORDS):
        before = len(probe_records(host))
        out = sudo_runner(host, PROBE, *argv, cwd=attack_dir)
        records = probe_records(host)[before:]
        if argv == PROBE_WORDS:
            assert out.rc == 0 and len(records) == 1, out.stderr
            continue
        if not records:
            assert out.rc != 0 and impl == "rs", (argv, out.rc, out.stderr)
            denied(argv)
            continue
        assert impl == "c", f"sudo-rs ran a regrouped call {argv}"
        (record,) = records
        assert record["cwd"] == "/" and record["argv"] == argv, record
        for entry in record["opened"]:
            assert entry.get("first_line") != ATTACKER_MARKER, record
            assert entry.get("first_line") in (ROOT_MARKER, None), record
            assert not entry["resolved"].startswith(f"/home/{RUNNER}"), record
            if entry.get("error"):
                assert not runner_can_create(host, entry["resolved"]), entry  # nobody but root can plant it
        ran += 1
        defeated(argv)
    assert ran == (0 if impl == "rs" else 2 ** (len(PROBE_WORDS) - 1) - 1)


@pytest.mark.parametrize("argv", [
    [""] + PROBE_WORDS,
    PROBE_WORDS + [""],
    [PROBE_WORDS[0], ""] + PROBE_WORDS[1:],
    [f"{PROBE_WORDS[0]}  {PROBE_WORDS[1]}"] + PROBE_WORDS[2:],
    [f" {PROBE_WORDS[0]}"] + PROBE_WORDS[1:],
    [f"{PROBE_WORDS[0]}\t{PROBE_WORDS[1]}"] + PROBE_WORDS[2:],
    PROBE_WORDS[:-1],
    PROBE_WORDS + ["-q"],
    [PROBE_WORDS[0], f"-c {PROBE_CONF}"] + PROBE_WORDS[2:],
    [PROBE_WORDS[0], f"-c{PROBE_CONF}x"] + PROBE_WORDS[2:],
], ids=["empty-first", "empty-last", "empty-middle", "two-spaces", "leading-space", "tab", "one-missing",
        "one-extra", "space-after-option", "changed-value"])
def test_no_sudo_matches_other_whitespace_or_words(host, attack_dir, denied, argv):
    before = len(probe_records(host))
    out = sudo_runner(host, PROBE, *argv, cwd=attack_dir)
    assert out.rc != 0 and probe_records(host)[before:] == [], (argv, out.stdout)
    denied(argv)


@pytest.mark.parametrize("with_cwd", [False, True], ids=["seed-rule-as-it-was", "seed-rule-with-CWD"])
def test_the_seed_openfortivpn_rule_attack(host, attack_dir, denied, defeated, with_cwd):
    """The issue's attack with the real openfortivpn, on a rule written by hand (the module refuses
    it): `sudo openfortivpn "-c /etc/openfortivpn/corp.conf"` from the runner's directory. Without
    CWD=/, C sudo runs it and openfortivpn reads the runner's ` /etc/openfortivpn/corp.conf` as root
    (the attack is real); with CWD=/ it finds no such file under /. sudo-rs denies both."""
    tag = "CWD=/ " if with_cwd else ""
    host.run(f"printf '%s\\n' '{RUNNER} ALL=(root) {tag}NOPASSWD: {OPENFORTIVPN} -c /etc/openfortivpn/corp.conf' "
             "> /etc/sudoers.d/zz-seed && chmod 0440 /etc/sudoers.d/zz-seed")
    try:
        out = as_runner(host, ["timeout", "30", "sudo", "-n", OPENFORTIVPN, "-c /etc/openfortivpn/corp.conf"],
                        cwd=attack_dir)
        text = out.stdout + out.stderr
        if is_sudo_rs(host):
            assert out.rc != 0 and "Bad key" not in text and "config" not in text.lower(), text
            denied("seed rule, merged -c")
        elif not with_cwd:
            assert re.search(r'Bad key in config(uration)? file: "marker-ATTACKER-config"', text), text
        else:
            assert "marker-ATTACKER" not in text, text
            assert re.search(r'Could not load config(uration)? file " /etc/openfortivpn/corp.conf"', text), text
            defeated("seed rule with CWD=/, merged -c")
    finally:
        host.run("rm -f /etc/sudoers.d/zz-seed")


def test_chdir_never_moves_the_command_out_of_root(host, attack_dir, denied, defeated):
    """-D is refused with CWD=/ (1.9.5 and 1.9.13 silently accept -D equal to the caller's own cwd,
    and the command still runs in /)."""
    impl, version = sudo_impl(host)
    for target in ("/tmp", attack_dir):
        before = len(probe_records(host))
        out = sudo_runner(host, "-D", target, PROBE, cwd=attack_dir)
        records = probe_records(host)[before:]
        if records:
            assert impl == "c" and version < (1, 9, 16) and target == attack_dir, (target, records)
            assert records[0]["cwd"] == "/"
            defeated(f"-D {target}")
        else:
            assert out.rc != 0
            denied(f"-D {target}")


def test_a_command_without_arguments_gets_none_or_runs_in_root(host, attack_dir, denied, defeated):
    """`""` means no arguments. sudo 1.9.5 still matches the literal argument '""' (two quote
    characters); with CWD=/ that names /"", which the runner cannot create."""
    impl, version = sudo_impl(host)
    before = len(probe_records(host))
    out = sudo_runner(host, PROBE, cwd=attack_dir)
    assert out.rc == 0 and probe_records(host)[before:][0]["argv"] == []
    for argv in (['""'], ["x"], [""], [PROBE_CONF]):
        before = len(probe_records(host))
        out = sudo_runner(host, PROBE, *argv, cwd=attack_dir)
        records = probe_records(host)[before:]
        if records:
            assert impl == "c" and version < (1, 9, 13) and argv == ['""'], (argv, records)
            assert records[0]["cwd"] == "/" and records[0]["opened"][0]["resolved"] == '/""'
            assert records[0]["opened"][0].get("first_line") is None
            defeated('literal "" argument')
        else:
            assert out.rc != 0
            denied(argv)


# ---- what is denied ------------------------------------------------------------------------------
DENIED_ARGV = [
    ("other verb", [SYSTEMCTL, "restart", UNIT]),
    ("other instance", [SYSTEMCTL, "start", "openfortivpn@other.service"]),
    ("extra argument", [SYSTEMCTL, "start", UNIT, "ssh.service"]),
    ("extra option", [SYSTEMCTL, "--no-block", "start", UNIT]),
    ("fewer arguments", [SYSTEMCTL, "start"]),
    ("no arguments", [SYSTEMCTL]),
    ("pager verb", [SYSTEMCTL, "status", UNIT]),
    ("help verb", [SYSTEMCTL, "--no-pager", "help", UNIT]),
    ("edit verb", [SYSTEMCTL, "edit", UNIT]),
    ("wildcard-looking argument", [SYSTEMCTL, "start", "openfortivpn@*"]),
    (".. in the argument", [SYSTEMCTL, "start", f"../{UNIT}"]),
    (".. path with other arguments", ["/usr/bin/../bin/systemctl", "restart", UNIT]),
    ("other command", ["/usr/bin/id"]),
    ("a shell", ["/bin/sh", "-c", "id"]),
    ("sudo -s", ["-s"]),
    ("sudo -i", ["-i"]),
    ("sudo -D", ["-D", "/tmp", SYSTEMCTL, "start", UNIT]),
    ("other runas user", ["-u", "nobody", SYSTEMCTL, "start", UNIT]),
    ("other runas group", ["-g", "adm", SYSTEMCTL, "start", UNIT]),
    ("sudoedit", ["-e", RULE_FILE]),
    ("environment variable", ["SYSTEMD_LOG_LEVEL=debug", SYSTEMCTL, "start", UNIT]),
    ("LD_PRELOAD", ["LD_PRELOAD=/tmp/x.so", SYSTEMCTL, "start", UNIT]),
]


@pytest.mark.parametrize("argv", [a for _n, a in DENIED_ARGV], ids=[n for n, _a in DENIED_ARGV])
def test_denied(host, denied, argv):
    out = sudo_runner(host, *argv)
    assert out.rc != 0, f"sudo allowed {argv}: {out.stdout}"
    assert unit_state(host) == "inactive"
    denied(argv)


@pytest.mark.parametrize("verb", ["start", "stop"])
def test_the_regrouped_systemctl_rule_is_a_usage_error(host, denied, defeated, verb):
    """C sudo matches `systemctl "start openfortivpn@corp.service"`; systemctl refuses the verb
    (Unknown command verb) and nothing starts. sudo-rs denies it."""
    if verb == "stop":
        host.run(f"systemctl start {UNIT}")
    expected = "active" if verb == "stop" else "inactive"
    out = sudo_runner(host, SYSTEMCTL, f"{verb} {UNIT}")
    assert out.rc != 0 and unit_state(host) == expected, (out.stdout, out.stderr)
    if is_sudo_rs(host):
        denied(f"systemctl '{verb} {UNIT}'")
    else:
        assert "nknown command verb" in out.stderr, out.stderr
        defeated(f"systemctl '{verb} {UNIT}'")


def test_copy_of_the_binary_is_denied(host, denied):
    assert as_runner(host, ["sh", "-c", f"mkdir -p /tmp/trick && cp {SYSTEMCTL} /tmp/trick/systemctl"]).rc == 0
    out = sudo_runner(host, "/tmp/trick/systemctl", "start", UNIT)
    assert out.rc != 0 and unit_state(host) == "inactive"
    denied("copy")


def test_symlink_under_another_name_is_denied(host, denied):
    assert as_runner(host, ["sh", "-c", f"mkdir -p /tmp/trick && ln -s {SYSTEMCTL} /tmp/trick/sc"]).rc == 0
    out = sudo_runner(host, "/tmp/trick/sc", "start", UNIT)
    assert out.rc != 0 and unit_state(host) == "inactive"
    denied("symlink, other name")


def test_symlink_named_like_the_binary_never_runs_anything_else(host, denied):
    """C sudo before 1.9.14 matches the real file (basename and inode): a same-named symlink in /tmp
    is accepted, and sudo executes the path from the rule, never the link. sudo 1.9.14 and later
    canonicalise the path first, and sudo-rs matches the canonical path: both refuse it. Pointing
    the same-named link at a shell is refused by all."""
    impl, version = sudo_impl(host)
    as_runner(host, ["sh", "-c", f"mkdir -p /tmp/trick && ln -s {SYSTEMCTL} /tmp/trick/systemctl"])
    out = sudo_runner(host, "/tmp/trick/systemctl", "start", UNIT)
    if impl == "rs" or version >= (1, 9, 14):
        assert out.rc != 0 and unit_state(host) == "inactive", out.stdout
        denied("symlink, same name")
    else:
        assert out.rc == 0, out.stderr
        log = host.run("journalctl --sync; journalctl -q --no-pager -t sudo -n 5").stdout
        assert f"COMMAND={SYSTEMCTL} start {UNIT}" in log and "COMMAND=/tmp/trick" not in log
    as_runner(host, ["ln", "-sfn", "/bin/bash", "/tmp/trick/systemctl"])
    out = sudo_runner(host, "/tmp/trick/systemctl", "start", UNIT)
    assert out.rc != 0
    denied("symlink to a shell named like the binary")


def test_path_trick_to_a_planted_binary_is_denied(host, denied):
    """A systemctl earlier on the runner's PATH is ignored: sudo resolves through secure_path."""
    plant_script = ("mkdir -p /tmp/trick && printf '#!/bin/sh\\nid -u > /tmp/trick/ran\\n' "
                    "> /tmp/trick/systemctl && chmod +x /tmp/trick/systemctl")
    as_runner(host, ["sh", "-c", plant_script])
    out = as_runner(host, ["sudo", "-n", "systemctl", "start", UNIT], env={"PATH": "/tmp/trick:/usr/bin:/bin"})
    assert not host.file("/tmp/trick/ran").exists
    assert out.rc == 0 and unit_state(host) == "active"  # the real systemctl ran, as granted
    denied("planted binary on PATH")


# ---- secrets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/etc/openfortivpn/corp.conf", "/etc/ci-runner/runner.env"])
def test_secret_files_are_root_only(host, denied, path):
    f = host.file(path)
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
    d = host.file(path.rsplit("/", 1)[0])
    assert (d.user, d.group, d.mode) == ("root", "root", 0o700)
    out = as_runner(host, ["cat", path])
    assert out.rc != 0 and out.stdout == ""
    denied(f"read {path}")
    out = sudo_runner(host, "cat", path)
    assert out.rc != 0 and out.stdout == ""
    denied(f"sudo read {path}")


def test_openfortivpn_config_content(host):
    text = host.file("/etc/openfortivpn/corp.conf").content_string
    assert "password = not-a-real-password-4711" in text
    assert "pppd-plugin" not in text and "pppd-log" not in text


# ---- the module refuses dangerous or broken rules and leaves sudo as it was ---------------------
def run_play(host, tasks, check=False, verbosity=None):
    """Run tasks in a real play against this host; return (play rc, [task results], output).

    A play rather than testinfra's ad-hoc helper: its rc is exactly what a user's play would get,
    and the json callback keeps each task's 'failed' flag."""
    name = host.backend.get_hostname()
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or host.backend.ansible_runner.inventory_file
    play = [{"name": "Attempt sudo rules", "hosts": name, "gather_facts": False, "tasks": tasks}]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "attempt.yml")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(play, handle)
        env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_FORCE_COLOR="0")
        cmd = ["ansible-playbook", "-i", inventory, path] + (["--check"] if check else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    try:
        data = json.loads(proc.stdout)
        results = [task["hosts"][name] for task in data["plays"][0]["tasks"]]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"unexpected ansible-playbook output: {proc.stdout[-2000:]} {proc.stderr[-2000:]}") from None
    return proc.returncode, results


def run_module(host, args, check=False, module="sudoers_exact"):
    rc, results = run_play(host, [{"name": module, f"supervised.background.{module}": args}], check=check)
    return rc, results[0]


def sudo_works_for_everyone(host):
    assert sudo_runner(host, "-l").rc == 0
    assert host.run("sudo -n true").rc == 0  # root
    assert sudo_runner(host, SYSTEMCTL, "start", UNIT).rc == 0
    assert sudo_runner(host, SYSTEMCTL, "stop", UNIT).rc == 0


PROBE_SEPARATE = [PROBE, "-c", PROBE_CONF]
BAD_ATTEMPTS = [
    # (what, module arguments, field, words the message holds)
    ("seed openfortivpn rule", {"commands": [[OPENFORTIVPN, "-c", "/etc/openfortivpn/corp.conf"]]},
     "commands[0]", "systemctl start openfortivpn@NAME.service"),
    ("openfortivpn, value joined", {"commands": [[OPENFORTIVPN, "-c/etc/openfortivpn/corp.conf"]]},
     "commands[0]", "can be safe"),
    ("openfortivpn with allow_shell_escape", {"commands": [[OPENFORTIVPN]], "allow_shell_escape": True},
     "commands[0]", "can be safe"),
    ("openvpn", {"commands": [["/usr/sbin/openvpn", "--config=/etc/openvpn/x.conf"]]}, "commands[0]",
     "openvpn-client@NAME.service"),
    ("separate -c value", {"commands": [PROBE_SEPARATE]}, "commands[0]", "joined"),
    ("separate --config value", {"commands": [[PROBE, "--config", PROBE_CONF]]}, "commands[0]", "joined"),
    ("separate value in a cluster", {"commands": [[PROBE, "-vc", PROBE_CONF]]}, "commands[0]", "joined"),
    ("-c=FILE", {"commands": [[PROBE, f"-c={PROBE_CONF}"]]}, "commands[0]", "getopt hands"),
    ("relative config name", {"commands": [[PROBE, "--config=corp.conf"]]}, "commands[0]", "relative to the working"),
    ("relative ./ config", {"commands": [[PROBE, "-c./corp.conf"]]}, "commands[0]", "relative path"),
    ("home-relative config", {"commands": [[PROBE, "~/corp.conf"]]}, "commands[0]", "relative path"),
    ("other user's home", {"commands": [[PROBE, "~root/x.conf"]]}, "commands[0]", "relative path"),
    ("config in /tmp", {"commands": [[PROBE, "--config=/tmp/corp.conf"]]}, "commands[0]", "not trusted"),
    ("config in /var/tmp", {"commands": [[PROBE, "-c/var/tmp/corp.conf"]]}, "commands[0]", "not trusted"),
    ("config in /dev/shm", {"commands": [[PROBE, "--config=/dev/shm/corp.conf"]]}, "commands[0]", "under /dev"),
    ("config from the terminal", {"commands": [[PROBE, "--config=/dev/tty"]]}, "commands[0]", "under /dev"),
    ("config in the runner's cwd via /proc", {"commands": [[PROBE, "--config=/proc/self/cwd/x.conf"]]},
     "commands[0]", "under /proc"),
    ("config file the runner owns", {"commands": [[PROBE, f"--config=/home/{RUNNER}/x.conf"]]}, "commands[0]",
     "not trusted"),
    ("runner's file in a path list", {"commands": [[PROBE, f"--path={PROBE_CONF}:/tmp/x"]]}, "commands[0]",
     "not trusted"),
    ("argument naming a shell", {"commands": [[PROBE, "--shell=/usr/bin/dash"]]}, "commands[0]",
     "hands the program the path"),
    ("a shell", {"commands": [["/usr/bin/bash"]]}, "commands[0]", "family"),
    ("versioned interpreter", {"commands": [["@PYTHON@"]]}, "commands[0]", "'python' family"),
    ("vim.nox", {"commands": [["/usr/local/bin/vim.nox"]]}, "commands[0]", "'vim' family"),
    ("tclsh8.6", {"commands": [["/usr/local/bin/tclsh8.6"]]}, "commands[0]", "'tclsh' family"),
    ("copy of dash, innocent name", {"commands": [["/usr/local/bin/report"]]}, "commands[0]", "copy of"),
    ("hard link of dash, innocent name", {"commands": [["/usr/local/sbin/summary"]]}, "commands[0]", "same file"),
    ("what the alternatives system runs as a browser", {"commands": [["/usr/local/bin/pretty"]]}, "commands[0]",
     "alternatives system runs as 'x-www-browser'"),
    ("systemctl help", {"commands": [[SYSTEMCTL, "--no-pager", "help", UNIT]]}, "commands[0]", "help runs man"),
    ("systemctl edit", {"commands": [[SYSTEMCTL, "edit", UNIT]]}, "commands[0]", "not an allowed verb"),
    ("systemctl status with a pager", {"commands": [[SYSTEMCTL, "status", UNIT]]}, "commands[0]", "--no-pager"),
    ("systemctl two units", {"commands": [[SYSTEMCTL, "start", UNIT, "ssh.service"]]}, "commands[0]",
     "one unit per rule"),
    ("systemctl option after the unit", {"commands": [[SYSTEMCTL, "start", UNIT, "--no-block"]]}, "commands[0]",
     "last argument"),
    ("systemctl --host abbreviated", {"commands": [[SYSTEMCTL, "--ho=root@evil", "start", UNIT]]}, "commands[0]",
     "not an option"),
    ("systemctl -H attached", {"commands": [[SYSTEMCTL, "-Hroot@evil", "start", UNIT]]}, "commands[0]",
     "not an option"),
    ("journalctl --directory", {"commands": [["/usr/bin/journalctl", "--no-pager", "--directory=/tmp"]]},
     "commands[0]", "not an allowed option"),
    ("journalctl unit not last", {"commands": [["/usr/bin/journalctl", "--no-pager", f"--unit={UNIT}", "-n5"]]},
     "commands[0]", "last argument"),
    ("wildcard", {"commands": [[SYSTEMCTL, "start", "openfortivpn@*"]]}, "commands[0]", "wildcard"),
    ("newline injection", {"commands": [[SYSTEMCTL, "start", UNIT + "\nALL ALL=(ALL) NOPASSWD: ALL"]]},
     "commands[0]", "single line"),
    ("ALL", {"commands": ["ALL"]}, "commands[0]", "'ALL'"),
    ("runas ALL", {"runas": "ALL"}, "runas", "'ALL'"),
    ("ignored file name", {"name": "ci-runner.vpn"}, "name", "silently ignored"),
    ("relative command", {"commands": [["systemctl", "start", UNIT]]}, "commands[0]", "absolute"),
    ("binary the runner wrote", {"commands": [["/tmp/trick/tool"]]}, "commands[0]", "not trusted"),
    ("symlink to the binary", {"commands": [["/tmp/trick/sc", "start", UNIT]]}, "commands[0]", "symlink"),
    ("space inside an argument", {"commands": [[SYSTEMCTL, "start", f"{UNIT} ssh.service"]]}, "commands[0]",
     "cannot be written safely"),
    ("all-capitals name is an alias", {"user": "RUNNERS"}, "user", "alias"),
    ("runas alias", {"runas": "OPERATORS"}, "runas", "alias"),
    ("ip netns exec", {"commands": [["/usr/bin/ip", "netns", "exec", "x", "/usr/bin/id"]]}, "commands[0]",
     "runs other"),
]

STAND_INS = (
    "cp /usr/bin/dash /usr/local/bin/report && ln -f /usr/bin/dash /usr/local/sbin/summary && "
    "install -m 0755 /dev/null /usr/local/bin/vim.nox && install -m 0755 /dev/null /usr/local/bin/tclsh8.6 && "
    "printf '#!/bin/sh\\n# pretty-printer stand-in\\n' > /usr/local/bin/pretty && chmod 0755 /usr/local/bin/pretty && "
    "ln -sfn /usr/local/bin/pretty /etc/alternatives/x-www-browser"
)
STAND_INS_GONE = ("rm -f /usr/local/bin/report /usr/local/sbin/summary /usr/local/bin/vim.nox "
                  "/usr/local/bin/tclsh8.6 /usr/local/bin/pretty /etc/alternatives/x-www-browser")


def test_module_refuses_each_bad_rule_and_leaves_sudoers_byte_for_byte(host, denied):
    """One play, one task per bad rule (ignore_errors): every task fails naming the field and the
    rule, and /etc/sudoers.d and /etc/sudoers are byte for byte what they were."""
    as_runner(host, ["sh", "-c", "mkdir -p /tmp/trick && cp /usr/bin/true /tmp/trick/tool && "
                                 f"ln -sf {SYSTEMCTL} /tmp/trick/sc"])
    assert host.run(STAND_INS).rc == 0
    python = host.run("readlink -f /usr/bin/python3").stdout.strip()
    try:
        before = sudoers_snapshot(host)
        tasks = []
        for what, overrides, _field, _words in BAD_ATTEMPTS:
            args = {"name": "ci-runner-vpn", "user": RUNNER, "commands": sorted(GRANTED)}
            args.update(json.loads(json.dumps(overrides).replace("@PYTHON@", python)))
            tasks.append({"name": what, "supervised.background.sudoers_exact": args, "ignore_errors": True})
        _rc, results = run_play(host, tasks)
        assert len(results) == len(BAD_ATTEMPTS)
        for (what, _overrides, field, words), result in zip(BAD_ATTEMPTS, results):
            assert result.get("failed") is True, (what, result)
            assert result.get("msg", "").startswith(f"{field}:"), (what, result.get("msg"))
            assert words in result.get("msg", ""), (what, result.get("msg"))
            assert not result.get("changed"), (what, result)
            denied(what)
        assert sudoers_snapshot(host) == before
    finally:
        host.run(STAND_INS_GONE)
    sudo_works_for_everyone(host)


def test_whole_config_failure_puts_the_old_file_back(host, denied):
    """visudo -c fails for the whole configuration after the new file landed: the module must put
    the previous file back. The trigger is a legacy file that sudo itself still runs with but visudo
    -c refuses: C sudo's visudo refuses a loose mode (0644), sudo-rs' visudo a C-sudo-only Defaults
    setting (which sudo-rs ignores at run time)."""
    if is_sudo_rs(host):
        legacy, mode, visudo = "Defaults lecture_file=/etc/sudo-lecture", "0440", "visudo-rs"
    else:
        legacy, mode, visudo = "Defaults:nobody !lecture", "0644", "visudo"
    host.run(f"printf '%s\\n' '{legacy}' > /etc/sudoers.d/zz-legacy && chmod {mode} /etc/sudoers.d/zz-legacy")
    try:
        assert host.run(f"{visudo} -c").rc == 1, "the legacy file does not trip visudo -c"
        sudo_works_for_everyone(host)
        before = sudoers_snapshot(host)
        rc, result = run_module(host, {"name": "ci-runner-vpn", "user": RUNNER,
                                       "commands": [[SYSTEMCTL, "start", UNIT]]})
        assert rc != 0 and result.get("failed") is True and "put back" in result["msg"], result
        assert sudoers_snapshot(host) == before
        denied("whole-config rollback")
    finally:
        host.run("rm -f /etc/sudoers.d/zz-legacy")
    sudo_works_for_everyone(host)


def test_check_mode_changes_nothing(host):
    before = sudoers_snapshot(host)
    rc, result = run_module(host, {"name": "ci-runner-vpn", "user": RUNNER,
                                   "commands": [[SYSTEMCTL, "restart", UNIT]]}, check=True)
    assert rc == 0 and result.get("changed") is True, result
    assert sudoers_snapshot(host) == before


def test_converged_rule_is_idempotent(host):
    rc, result = run_module(host, {"name": "ci-runner-vpn", "user": RUNNER,
                                   "commands": [[SYSTEMCTL, "start", UNIT], f"{SYSTEMCTL} stop {UNIT}"]})
    assert rc == 0 and result.get("changed") is False, result


def test_unit_file_the_runner_can_change_is_refused(host, denied):
    """systemctl start runs what the unit file says: a drop-in the runner owns makes the grant a
    root shell, so the module must ask the real systemd for the unit's files and refuse."""
    dropin_dir = f"/etc/systemd/system/{UNIT}.d"
    host.run(f"mkdir -p {dropin_dir} && printf '[Unit]\\n' > {dropin_dir}/runner.conf && "
             f"chown {RUNNER} {dropin_dir}/runner.conf && systemctl daemon-reload")
    try:
        before = sudoers_snapshot(host)
        rc, result = run_module(host, {"name": "ci-runner-vpn", "user": RUNNER,
                                       "commands": [[SYSTEMCTL, "start", UNIT]]})
        assert rc != 0 and result.get("failed") is True, result
        assert f"unit '{UNIT}'" in result["msg"] and "runner.conf" in result["msg"], result
        assert sudoers_snapshot(host) == before
        denied("runner-owned unit drop-in")
    finally:
        host.run(f"rm -rf {dropin_dir} && systemctl daemon-reload")


VPN_SECRETS = {"password": "leak-canary-pw-5150", "otp": "leak-canary-otp-8086",
               "pem_passphrase": "leak-canary-pem-6502"}


def test_vpn_secrets_never_leave_the_file(host):
    """At -vvv --diff, in a refused task, in the host's journal and in temp files: the secrets
    appear only in the root-only file itself."""
    name = host.backend.get_hostname()
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or host.backend.ansible_runner.inventory_file
    base = {"path": "/etc/openfortivpn/leak.conf", "host": "vpn.example.com", "username": "ci-bot"}
    module = "supervised.background.openfortivpn_config"
    found = re.match(r"(\d+)\.(\d+)", host.run("openfortivpn --version 2>&1").stdout.strip())
    secrets = dict(VPN_SECRETS)
    if found and tuple(map(int, found.groups())) < (1, 17):
        del secrets["pem_passphrase"]  # the pem-passphrase key arrived in openfortivpn 1.17 (Debian 11 has 1.15)
    tasks = [
        {"name": "write", module: dict(base, **secrets)},
        {"name": "refused", "ignore_errors": True, module: dict(base, **secrets, extra={"pppd_plugin": "/tmp/x.so"})},
        {"name": "change", module: dict(base, **{k: v + "-2" for k, v in secrets.items()})},
    ]
    play = [{"name": "Leak check", "hosts": name, "gather_facts": False, "tasks": tasks}]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "leak.yml")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(play, handle)
        env = dict(os.environ, ANSIBLE_FORCE_COLOR="0")
        proc = subprocess.run(["ansible-playbook", "-vvv", "--diff", "-i", inventory, path],
                              capture_output=True, text=True, env=env, check=False)
    try:
        assert proc.returncode == 0, proc.stdout[-3000:]
        output = proc.stdout + proc.stderr
        assert "pppd_plugin" in output  # the refused task really ran
        for secret in secrets.values():
            assert secret not in output
        journal = host.run("journalctl --sync; journalctl --no-pager -o cat").stdout
        for secret in secrets.values():
            assert secret not in journal
        text = host.file("/etc/openfortivpn/leak.conf").content_string
        assert "password = leak-canary-pw-5150-2" in text and "otp = leak-canary-otp-8086-2" in text
        found = host.run("grep -rl leak-canary / --exclude-dir=proc --exclude-dir=sys "
                         "--exclude-dir=dev 2>/dev/null").stdout.split()
        assert found == ["/etc/openfortivpn/leak.conf"], found
    finally:
        host.run("rm -f /etc/openfortivpn/leak.conf")
