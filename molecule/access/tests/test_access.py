"""Real sudo / sudo-rs enforcing the rules sudoers_exact wrote for the CI runner.

Every denial is counted (see conftest.py); the tally is printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile

import pytest

RUNNER = "gitlab-runner"
UNIT = "openfortivpn@corp.service"
SYSTEMCTL = "/usr/bin/systemctl"
RULE_FILE = "/etc/sudoers.d/ci-runner-vpn"
GRANTED = {f"{SYSTEMCTL} start {UNIT}", f"{SYSTEMCTL} stop {UNIT}"}


def as_runner(host, argv, env=None):
    """Run argv as the runner through a login-less runuser (no tty, like a CI job)."""
    prefix = ["runuser", "-u", RUNNER, "--"]
    if env:
        prefix += ["env"] + [f"{k}={v}" for k, v in env.items()]
    return host.run(shlex.join(prefix + list(argv)))


def sudo_runner(host, *argv):
    return as_runner(host, ["sudo", "-n"] + list(argv))


def is_sudo_rs(host):
    # Debian 13 keeps sudo-rs in /usr/lib/cargo/bin; the prepare step links sudo to it.
    return host.run("readlink -f \"$(command -v sudo)\"").stdout.strip() == "/usr/lib/cargo/bin/sudo"


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


@pytest.fixture(autouse=True)
def tunnel_stopped(host):
    host.run(f"systemctl stop {UNIT}")
    host.run("rm -rf /tmp/trick")
    yield
    host.run(f"systemctl stop {UNIT}")


# ---- which sudo ----------------------------------------------------------------------------------
def test_sudo_implementation_matches_the_distribution(host):
    release = host.file("/etc/os-release").content_string
    version = host.run("sudo --version 2>&1").stdout  # sudo-rs prints it on stderr
    if "trixie" in release:
        assert is_sudo_rs(host) and version.startswith("sudo-rs"), version
        assert host.run("dpkg-query -W -f '${Status}' sudo").stdout.strip() != "install ok installed"
        assert host.run("command -v visudo").rc != 0, "C sudo's visudo is still installed"
        assert host.run("command -v visudo-rs").rc == 0
    else:
        assert not is_sudo_rs(host) and version.startswith("Sudo version"), version


# ---- what is granted -----------------------------------------------------------------------------
def test_rule_file_is_root_0440_and_exact(host):
    f = host.file(RULE_FILE)
    assert (f.user, f.group, f.mode) == ("root", "root", 0o440)
    lines = [line for line in f.content_string.splitlines() if not line.startswith("#")]
    assert sorted(lines) == sorted(f"{RUNNER} ALL=(root) NOPASSWD: {c}" for c in GRANTED)


def test_sudo_list_shows_exactly_the_granted_commands(host):
    out = sudo_runner(host, "-l")
    assert out.rc == 0, out.stderr
    listed = set()
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("(root) NOPASSWD:"):
            listed.add(line.split(":", 1)[1].strip())
    assert listed == GRANTED, out.stdout


def test_granted_commands_run(host):
    out = sudo_runner(host, SYSTEMCTL, "start", UNIT)
    assert out.rc == 0, out.stderr
    assert unit_state(host) == "active"
    out = sudo_runner(host, "systemctl", "stop", UNIT)  # found through secure_path
    assert out.rc == 0, out.stderr
    assert unit_state(host) == "inactive"


# ---- what is denied ------------------------------------------------------------------------------
DENIED_ARGV = [
    ("other verb", [SYSTEMCTL, "restart", UNIT]),
    ("other instance", [SYSTEMCTL, "start", "openfortivpn@other.service"]),
    ("extra argument", [SYSTEMCTL, "start", UNIT, "ssh.service"]),
    ("extra option", [SYSTEMCTL, "--no-block", "start", UNIT]),
    ("fewer arguments", [SYSTEMCTL, "start"]),
    ("no arguments", [SYSTEMCTL]),
    ("pager verb", [SYSTEMCTL, "status", UNIT]),
    ("edit verb", [SYSTEMCTL, "edit", UNIT]),
    ("wildcard-looking argument", [SYSTEMCTL, "start", "openfortivpn@*"]),
    (".. in the argument", [SYSTEMCTL, "start", f"../{UNIT}"]),
    (".. path with other arguments", ["/usr/bin/../bin/systemctl", "restart", UNIT]),
    ("other command", ["/usr/bin/id"]),
    ("a shell", ["/bin/sh", "-c", "id"]),
    ("sudo -s", ["-s"]),
    ("sudo -i", ["-i"]),
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
    """sudo matches the real file (inode), sudo-rs the canonical path: a same-named symlink in /tmp
    is refused by sudo-rs; C sudo accepts it but executes the path from the rule, never the link.
    Pointing the same-named link at a shell is refused by both."""
    as_runner(host, ["sh", "-c", f"mkdir -p /tmp/trick && ln -s {SYSTEMCTL} /tmp/trick/systemctl"])
    out = sudo_runner(host, "/tmp/trick/systemctl", "start", UNIT)
    if is_sudo_rs(host):
        assert out.rc != 0 and unit_state(host) == "inactive"
        denied("symlink, same name")
    else:
        assert out.rc == 0
        log = host.run("journalctl -q --no-pager -t sudo -n 5").stdout
        assert f"COMMAND={SYSTEMCTL} start {UNIT}" in log and "COMMAND=/tmp/trick" not in log
    as_runner(host, ["ln", "-sfn", "/bin/bash", "/tmp/trick/systemctl"])
    out = sudo_runner(host, "/tmp/trick/systemctl", "start", UNIT)
    assert out.rc != 0
    denied("symlink to a shell named like the binary")


def test_path_trick_to_a_planted_binary_is_denied(host, denied):
    """A systemctl earlier on the runner's PATH is ignored: sudo resolves through secure_path."""
    plant = ("mkdir -p /tmp/trick && printf '#!/bin/sh\\nid -u > /tmp/trick/ran\\n' "
             "> /tmp/trick/systemctl && chmod +x /tmp/trick/systemctl")
    as_runner(host, ["sh", "-c", plant])
    out = as_runner(host, ["sudo", "-n", "systemctl", "start", UNIT], env={"PATH": "/tmp/trick:/usr/bin:/bin"})
    assert not host.file("/tmp/trick/ran").exists
    assert out.rc == 0 and unit_state(host) == "active"  # the real systemctl ran, as granted


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


def test_vpn_config_content(host):
    text = host.file("/etc/openfortivpn/corp.conf").content_string
    assert "password = not-a-real-password-4711" in text
    assert "pppd-plugin" not in text and "pppd-log" not in text


# ---- the module refuses dangerous or broken rules and leaves sudo as it was ---------------------
BAD_ATTEMPTS = [
    ("a shell", {"commands": [["/usr/bin/bash"]]}, "root shell"),
    ("wildcard", {"commands": [[SYSTEMCTL, "start", "openfortivpn@*"]]}, "wildcard"),
    ("newline injection", {"commands": [[SYSTEMCTL, "start", UNIT + "\nALL ALL=(ALL) NOPASSWD: ALL"]]},
     "single line"),
    ("ALL", {"commands": ["ALL"]}, "'ALL'"),
    ("runas ALL", {"runas": "ALL"}, "'ALL'"),
    ("ignored file name", {"name": "ci-runner.vpn"}, "silently ignored"),
    ("bare path allowing any arguments is impossible; relative path refused",
     {"commands": [["systemctl", "start", UNIT]]}, "absolute"),
    ("binary the runner wrote", {"commands": [["/tmp/trick/tool"]]}, "not root"),
    ("symlink to the binary", {"commands": [["/tmp/trick/sc", "start", UNIT]]}, "symlink"),
    ("systemctl edit", {"commands": [[SYSTEMCTL, "edit", UNIT]]}, "systemctl edit"),
    ("space inside an argument", {"commands": [[SYSTEMCTL, "start", f"{UNIT} ssh.service"]]},
     "cannot be written safely"),
    # systemctl takes abbreviated long options: --ho= is --host=, --roo= is --root=
    ("systemctl --host abbreviated", {"commands": [[SYSTEMCTL, "--ho=root@evil", "start", UNIT]]},
     "not an option"),
    ("systemctl -H attached", {"commands": [[SYSTEMCTL, "-Hroot@evil", "start", UNIT]]}, "not an option"),
    ("all-capitals name is an alias", {"user": "RUNNERS"}, "alias"),
    ("runas alias", {"runas": "OPERATORS"}, "alias"),
    ("config file the runner owns", {"commands": [[SYSTEMCTL, "start", UNIT],
                                                  ["/usr/bin/id", "--config=/home/gitlab-runner/x.conf"]]},
     "can be written"),
    ("ip netns exec", {"commands": [["/usr/bin/ip", "netns", "exec", "x", "/usr/bin/id"]]}, "runs other"),
]


def run_module(host, args, check=False, module="sudoers_exact"):
    """Run a module in a real one-task play against this host; return (play rc, task result).

    A play rather than testinfra's ad-hoc helper: its rc is exactly what a user's play would get,
    and the json callback keeps the task's 'failed' flag."""
    name = host.backend.get_hostname()
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or host.backend.ansible_runner.inventory_file
    play = [{"name": "Attempt a sudo rule", "hosts": name, "gather_facts": False,
             "tasks": [{"name": module, f"supervised.background.{module}": args}]}]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "attempt.yml")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(play, handle)
        env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_FORCE_COLOR="0")
        cmd = ["ansible-playbook", "-i", inventory, path] + (["--check"] if check else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    try:
        data = json.loads(proc.stdout)
        result = data["plays"][0]["tasks"][0]["hosts"][name]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"unexpected ansible-playbook output: {proc.stdout[-2000:]} {proc.stderr[-2000:]}") from None
    return proc.returncode, result


def sudo_works_for_everyone(host):
    assert sudo_runner(host, "-l").rc == 0
    assert host.run("sudo -n true").rc == 0  # root
    assert sudo_runner(host, SYSTEMCTL, "start", UNIT).rc == 0
    assert sudo_runner(host, SYSTEMCTL, "stop", UNIT).rc == 0


@pytest.mark.parametrize("case", BAD_ATTEMPTS, ids=[c[0] for c in BAD_ATTEMPTS])
def test_module_refuses_and_leaves_sudoers_byte_for_byte(host, denied, case):
    _name, overrides, words = case
    as_runner(host, ["sh", "-c", "mkdir -p /tmp/trick && cp /usr/bin/true /tmp/trick/tool && "
                                 f"ln -sf {SYSTEMCTL} /tmp/trick/sc"])
    before = sudoers_snapshot(host)
    args = {"name": "ci-runner-vpn", "user": RUNNER, "commands": sorted(GRANTED)}
    args.update(overrides)
    rc, result = run_module(host, args)
    assert rc != 0 and result.get("failed") is True, result
    assert words in result.get("msg", ""), result
    assert sudoers_snapshot(host) == before
    sudo_works_for_everyone(host)
    denied(overrides)


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
    tasks = [
        {"name": "write", "supervised.background.vpn_config": dict(base, **VPN_SECRETS)},
        {"name": "refused", "ignore_errors": True,
         "supervised.background.vpn_config": dict(base, **VPN_SECRETS, extra={"pppd_plugin": "/tmp/x.so"})},
        {"name": "change", "supervised.background.vpn_config": dict(base, **{k: v + "-2" for k, v in VPN_SECRETS.items()})},
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
        for secret in VPN_SECRETS.values():
            assert secret not in output
        journal = host.run("journalctl --no-pager -o cat").stdout
        for secret in VPN_SECRETS.values():
            assert secret not in journal
        text = host.file("/etc/openfortivpn/leak.conf").content_string
        assert "password = leak-canary-pw-5150-2" in text and "otp = leak-canary-otp-8086-2" in text
        found = host.run("grep -rl leak-canary / --exclude-dir=proc --exclude-dir=sys "
                         "--exclude-dir=dev 2>/dev/null").stdout.split()
        assert found == ["/etc/openfortivpn/leak.conf"], found
    finally:
        host.run("rm -f /etc/openfortivpn/leak.conf")
