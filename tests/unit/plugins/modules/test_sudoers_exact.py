"""Unit tests for sudoers_exact: rendering, the refusal catalogue, visudo wiring and rollback.

The real sudo / sudo-rs behaviour is proven in molecule/access; here visudo is a stand-in script so
every branch (temp-file check, whole-config check, restore) can be driven.
"""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.supervised.background.plugins.modules import sudoers_exact
from ansible_collections.supervised.background.plugins.modules.sudoers_exact import (
    render_rule,
    shell_escape_reason,
)

GRANTEE = "nobody"  # exists on every Debian host and is not root


@pytest.fixture
def env(tmp_path):
    """A sudoers dir and a fake visudo: `-c -f FILE` fails when FILE holds 'REJECT', `-c` alone
    fails when the flag file 'whole-fails' exists. Every call is logged."""
    sudoers = tmp_path / "sudoers.d"
    sudoers.mkdir(mode=0o750)
    log = tmp_path / "visudo.log"
    fake = tmp_path / "visudo"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" >> {log}\n"
        "if [ \"$1\" = -c ] && [ \"$2\" = -f ]; then\n"
        "  if grep -q REJECT \"$3\"; then echo \"$3: syntax error\"; exit 1; fi\n"
        f"  cp \"$3\" {tmp_path}/validated; exit 0\n"
        "fi\n"
        f"if [ -e {tmp_path}/whole-fails ]; then echo 'whole config broken'; exit 1; fi\n"
        "exit 0\n"
    )
    fake.chmod(0o755)

    class Env:
        dir = sudoers
        visudo = str(fake)
        root = tmp_path

        def args(self, **kw):
            base = {"name": "ci", "user": GRANTEE, "sudoers_dir": str(sudoers), "visudo": str(fake),
                    "commands": [["/usr/bin/systemctl", "start", "openfortivpn@corp.service"]]}
            base.update(kw)
            return {k: v for k, v in base.items() if v is not None}

        def calls(self):
            return log.read_text().splitlines() if log.exists() else []

    return Env()


# ---- rendering --------------------------------------------------------------------------------
def test_render_exact_arguments_and_no_arguments():
    assert render_rule("u", "root", True, ["/usr/bin/id"]) == 'u ALL=(root) NOPASSWD: /usr/bin/id ""'
    assert (render_rule("%g", "svc", False, ["/usr/bin/systemctl", "start", "a@b.service"])
            == "%g ALL=(svc) /usr/bin/systemctl start a@b.service")
    assert (render_rule("u", "root", True, ["/usr/bin/x", "--a=b", "c:d", "e,f"])
            == "u ALL=(root) NOPASSWD: /usr/bin/x --a\\=b c\\:d e\\,f")


def test_present_writes_one_line_per_command(run_module, env):
    result = run_module(sudoers_exact.main, env.args(commands=[
        "/usr/bin/systemctl start openfortivpn@corp.service",
        ["/usr/bin/systemctl", "stop", "openfortivpn@corp.service"],
        ["/usr/bin/uptime"],
    ]), diff=True)
    assert result["changed"] is True, result
    path = env.dir / "ci"
    text = path.read_text()
    assert text.splitlines()[1:] == [
        "nobody ALL=(root) NOPASSWD: /usr/bin/systemctl start openfortivpn@corp.service",
        "nobody ALL=(root) NOPASSWD: /usr/bin/systemctl stop openfortivpn@corp.service",
        'nobody ALL=(root) NOPASSWD: /usr/bin/uptime ""',
    ]
    assert result["rules"] == text.splitlines()[1:]
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o440)
    # The temp file (inside the sudoers dir, with a name sudo ignores) was validated, then the whole config.
    calls = env.calls()
    assert calls[0].startswith(f"-c -f {env.dir}/.ci.") and calls[0].endswith(".tmp")
    assert calls[1] == "-c"
    assert (env.root / "validated").read_text() == text
    assert "NOPASSWD" in result["diff"]["after"]
    again = run_module(sudoers_exact.main, env.args(commands=[
        "/usr/bin/systemctl start openfortivpn@corp.service",
        ["/usr/bin/systemctl", "stop", "openfortivpn@corp.service"],
        ["/usr/bin/uptime"],
    ]))
    assert again["changed"] is False


def test_group_runas_and_password(run_module, env):
    result = run_module(sudoers_exact.main, env.args(
        user=None, group="nogroup", runas="nobody", nopasswd=False, commands=[["/usr/bin/id", "-u"]]))
    assert result["rules"] == ["%nogroup ALL=(nobody) /usr/bin/id -u"]


def test_check_mode_validates_a_private_copy_and_writes_nothing(run_module, env, snapshot_tree):
    before = snapshot_tree(str(env.dir))
    result = run_module(sudoers_exact.main, env.args(), check_mode=True, diff=True)
    assert result["changed"] is True
    assert snapshot_tree(str(env.dir)) == before
    calls = env.calls()
    assert len(calls) == 1 and "supervised-check-" in calls[0]


def test_visudo_rejecting_the_temp_file_leaves_the_live_file(run_module, env, snapshot_tree):
    run_module(sudoers_exact.main, env.args())
    bad = env.root / "visudo-bad"
    bad.write_text("#!/bin/sh\necho 'parse error near line 2'; exit 1\n")
    bad.chmod(0o755)
    before = snapshot_tree(str(env.dir))
    result = run_module(sudoers_exact.main, env.args(commands=[["/usr/bin/id", "-u"]], visudo=str(bad)))
    assert result["failed"] and result["msg"].startswith("visudo:"), result
    assert "parse error" in result["msg"]
    assert snapshot_tree(str(env.dir)) == before


def test_whole_config_failure_restores_previous_file(run_module, env, snapshot_tree):
    run_module(sudoers_exact.main, env.args())
    before = snapshot_tree(str(env.dir))
    (env.root / "whole-fails").write_text("")
    result = run_module(sudoers_exact.main, env.args(commands=[["/usr/bin/uptime"]]))
    assert result["failed"] and "previous file was put back" in result["msg"], result
    assert snapshot_tree(str(env.dir)) == before


def test_whole_config_failure_on_a_new_file_removes_it(run_module, env, snapshot_tree):
    before = snapshot_tree(str(env.dir))
    (env.root / "whole-fails").write_text("")
    result = run_module(sudoers_exact.main, env.args())
    assert result["failed"] and "put back" in result["msg"]
    assert snapshot_tree(str(env.dir)) == before


def test_absent_removes_and_is_idempotent(run_module, env):
    run_module(sudoers_exact.main, env.args())
    result = run_module(sudoers_exact.main, {"name": "ci", "state": "absent", "sudoers_dir": str(env.dir),
                                             "visudo": env.visudo})
    assert result["changed"] is True and not (env.dir / "ci").exists()
    assert env.calls()[-1] == "-c"
    result = run_module(sudoers_exact.main, {"name": "ci", "state": "absent", "sudoers_dir": str(env.dir),
                                             "visudo": env.visudo})
    assert result["changed"] is False


# ---- shell escapes ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["/usr/bin/bash"], ["/usr/bin/sh", "-c", "id"], ["/usr/bin/env"], ["/usr/bin/python3.11"],
    ["/usr/bin/perl5.36"], ["/usr/bin/less", "/etc/hosts"], ["/usr/bin/vim"], ["/usr/bin/find"],
    ["/usr/bin/sudo"], ["/usr/bin/su"], ["/usr/bin/tee", "/etc/x"], ["/usr/bin/systemd-run"],
    ["/usr/bin/systemctl", "edit", "x.service"], ["/usr/bin/systemctl", "status", "x.service"],
    ["/usr/bin/systemctl", "--root=/tmp", "start", "x.service"],
    ["/usr/bin/systemctl", "enable", "/tmp/evil.service"], ["/usr/bin/systemctl"],
    ["/usr/bin/journalctl", "-u", "x.service"],
])
def test_shell_escape_reasons(argv):
    assert shell_escape_reason(argv[0], argv[1:]) is not None


@pytest.mark.parametrize("argv", [
    ["/usr/bin/systemctl", "start", "openfortivpn@corp.service"],
    ["/usr/bin/systemctl", "--no-pager", "status", "x.service"],
    ["/usr/bin/journalctl", "--no-pager", "-u", "x.service"],
    ["/usr/bin/id"], ["/usr/bin/uptime"],
])
def test_harmless_commands_pass(argv):
    assert shell_escape_reason(argv[0], argv[1:]) is None


def test_allow_shell_escape_is_explicit(run_module, env):
    result = run_module(sudoers_exact.main, env.args(commands=[["/usr/bin/bash"]], allow_shell_escape=True))
    assert result["changed"] is True and result["rules"] == ['nobody ALL=(root) NOPASSWD: /usr/bin/bash ""']


# ---- the bad-input catalogue: each names the field and leaves the host untouched ---------------
def _writable_binary(root):
    target = root / "bin-dir"
    target.mkdir(exist_ok=True)
    binary = target / "tool"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return str(binary)


BAD = [
    # (id, overrides, field the message must start with, words the message must hold)
    ("name-with-dot", {"name": "ci.conf"}, "name", "silently ignored"),
    ("name-with-tilde", {"name": "ci~"}, "name", "silently ignored"),
    ("name-with-slash", {"name": "../sudoers"}, "name", "ignored"),
    ("name-with-space", {"name": "c i"}, "name", "letters, digits"),
    ("name-leading-dash", {"name": "-ci"}, "name", "letters, digits"),
    ("no-grantee", {"user": None}, "user", "required"),
    ("user-ALL", {"user": "ALL"}, "user", "'ALL'"),
    ("user-alias-syntax", {"user": "%sudo"}, "user", "plain user"),
    ("user-newline", {"user": "nobody\nALL ALL=(ALL) ALL"}, "user", "single line"),
    ("user-missing", {"user": "no-such-user-xyz"}, "user", "does not exist"),
    ("user-root", {"user": "root"}, "user", "root"),
    ("group-missing", {"user": None, "group": "no-such-group-xyz"}, "group", "does not exist"),
    ("runas-ALL", {"runas": "ALL"}, "runas", "'ALL'"),
    ("runas-missing", {"runas": "no-such-user-xyz"}, "runas", "does not exist"),
    ("no-commands", {"commands": []}, "commands", "at least one"),
    ("command-ALL", {"commands": ["ALL"]}, "commands[0]", "'ALL'"),
    ("relative-path", {"commands": [["systemctl", "start", "x.service"]]}, "commands[0]", "absolute"),
    ("dotdot-path", {"commands": [["/usr/bin/../bin/id"]]}, "commands[0]", "normalised"),
    ("missing-binary", {"commands": [["/usr/bin/no-such-binary-xyz"]]}, "commands[0]", "does not exist"),
    ("symlinked-dir", {"commands": [["/bin/id"]]}, "commands[0]", "symlink"),
    ("symlink-binary", {"commands": [["/usr/bin/python3"]]}, "commands[0]", "symlink"),
    ("directory-not-binary", {"commands": [["/usr/bin"]]}, "commands[0]", "executable"),
    ("wildcard-star-arg", {"commands": [["/usr/bin/systemctl", "start", "openfortivpn@*"]]}, "commands[0]", "wildcard"),
    ("wildcard-question", {"commands": [["/usr/bin/id", "?"]]}, "commands[0]", "wildcard"),
    ("wildcard-bracket", {"commands": [["/usr/bin/id", "[a]"]]}, "commands[0]", "wildcard"),
    ("backslash-arg", {"commands": [["/usr/bin/id", "a\\,b"]]}, "commands[0]", "escape"),
    ("wildcard-in-path", {"commands": [["/usr/bin/i*"]]}, "commands[0]", "wildcard"),
    ("space-in-arg", {"commands": [["/usr/bin/id", "a b"]]}, "commands[0]", "cannot be written safely"),
    ("quote-in-arg", {"commands": [["/usr/bin/id", '"']]}, "commands[0]", "cannot be written safely"),
    ("hash-arg", {"commands": [["/usr/bin/id", "#0"]]}, "commands[0]", "cannot be written safely"),
    ("bang-arg", {"commands": [["/usr/bin/id", "!x"]]}, "commands[0]", "cannot be written safely"),
    ("empty-arg", {"commands": [["/usr/bin/id", ""]]}, "commands[0]", "empty argument"),
    ("newline-arg", {"commands": [["/usr/bin/id", "a\nroot ALL=(ALL) ALL"]]}, "commands[0]", "single line"),
    ("unsplittable-string", {"commands": ["/usr/bin/id 'unterminated"]}, "commands[0]", "split"),
    ("not-a-list", {"commands": [{"cmd": "/usr/bin/id"}]}, "commands[0]", "argv list"),
    ("empty-entry", {"commands": [[]]}, "commands[0]", "empty"),
    ("shell", {"commands": [["/usr/bin/bash"]]}, "commands[0]", "root shell"),
    ("env", {"commands": [["/usr/bin/env", "id"]]}, "commands[0]", "root shell"),
    ("pager", {"commands": [["/usr/bin/less", "/var/log/syslog"]]}, "commands[0]", "root shell"),
    ("systemctl-edit", {"commands": [["/usr/bin/systemctl", "edit", "x.service"]]}, "commands[0]", "systemctl edit"),
    ("systemctl-status-pager", {"commands": [["/usr/bin/systemctl", "status", "x.service"]]}, "commands[0]", "pager"),
    ("second-entry-named", {"commands": [["/usr/bin/id"], ["/usr/bin/dash"]]}, "commands[1]", "root shell"),
    ("writable-directory", "WRITABLE", "commands[0]", "writable by anyone but root"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_catalogue(run_module, env, snapshot_tree, case):
    _id, overrides, field, words = case
    if overrides == "WRITABLE":
        overrides = {"commands": [[_writable_binary(env.root)]]}
    before = snapshot_tree(str(env.root))
    result = run_module(sudoers_exact.main, env.args(**overrides), diff=True)
    assert result.get("failed"), result
    assert result["msg"].startswith(f"{field}:"), result["msg"]
    assert words in result["msg"], result["msg"]
    after = snapshot_tree(str(env.root))
    assert after == before
    assert env.calls() == []  # not even visudo ran


def test_binary_owned_by_someone_else_is_refused(run_module, env, tmp_path):
    binary = _writable_binary(tmp_path)
    os.chown(binary, 65534, 65534)
    result = run_module(sudoers_exact.main, env.args(commands=[[binary]]))
    assert result["failed"] and result["msg"].startswith("commands[0]:")
    assert "owned by uid 65534" in result["msg"] or "writable" in result["msg"]


def test_symlink_at_target_is_refused(run_module, env, tmp_path):
    (tmp_path / "elsewhere").write_text("keep\n")
    os.symlink(tmp_path / "elsewhere", env.dir / "ci")
    result = run_module(sudoers_exact.main, env.args())
    assert result["failed"] and "symlink" in result["msg"]
    assert (tmp_path / "elsewhere").read_text() == "keep\n"


def test_missing_grantee_is_a_warning_in_check_mode_only(run_module, env, snapshot_tree):
    before = snapshot_tree(str(env.dir))
    result = run_module(sudoers_exact.main, env.args(user="not-created-yet"), check_mode=True)
    assert result["changed"] is True and not result.get("failed")
    assert snapshot_tree(str(env.dir)) == before
    result = run_module(sudoers_exact.main, env.args(user="not-created-yet"))
    assert result["failed"] and result["msg"].startswith("user:")
