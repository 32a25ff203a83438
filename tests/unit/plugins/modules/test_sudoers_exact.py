"""Unit tests for sudoers_exact: rendering, the refusal catalogue, visudo wiring and rollback.

The real sudo / sudo-rs behaviour is proven in molecule/access; here visudo is a stand-in script so
every branch (temp-file check, whole-config check, restore) can be driven.
"""

from __future__ import annotations

import os
import stat
import struct

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
    # getopt_long abbreviations, attached short options and option arguments that hide the verb
    ["/usr/bin/systemctl", "--ho=root@evil", "start", "x.service"],
    ["/usr/bin/systemctl", "-Hroot@evil", "start", "x.service"],
    ["/usr/bin/systemctl", "--roo=/tmp", "start", "x.service"],
    ["/usr/bin/systemctl", "-p", "Id", "show", "x.service"],
    ["/usr/bin/systemctl", "status", "--", "--no-pager"],
    ["/usr/bin/systemctl", "bind", "x.service", "/tmp/a", "/etc/a"],
    ["/usr/bin/systemctl", "--no-pager", "set-environment", "LD_PRELOAD=/tmp/x.so"],
    ["/usr/bin/systemctl", "daemon-reexec"],
    ["/usr/bin/journalctl", "--no-pager", "--", "-u"],
    ["/usr/bin/journalctl", "--no-pager", "--dir=/tmp/j"],
    ["/usr/bin/journalctl", "--no-pager", "-D/tmp/j"],
    ["/usr/bin/ip", "netns", "exec", "ns", "/usr/bin/id"],
    ["/usr/bin/ip", "netns", "e", "ns", "/usr/bin/id"],
    ["/usr/bin/ip", "vrf", "exec", "red", "/usr/bin/id"],
    ["/usr/bin/ip", "-b", "/tmp/cmds"],
    ["/usr/sbin/openfortivpn", "--pppd-plugin=/tmp/evil.so"],
    ["/usr/sbin/openfortivpn", "--pppd-pl=/tmp/evil.so"],
    ["/usr/sbin/openfortivpn", "--pinentry=/tmp/evil"],
    ["/usr/sbin/openfortivpn", "-pSecret"],
    ["/usr/sbin/openvpn", "--config", "/etc/openvpn/x.conf", "--up", "/tmp/evil"],
    ["/usr/sbin/openvpn", "--log", "/etc/shadow"],
    ["/usr/sbin/pppd", "call", "x"],
    ["/usr/sbin/service", "ssh", "status"],
    ["/usr/bin/dmesg", "-H"],
    ["/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/usr/bin/bash"],
    ["/usr/bin/run0"], ["/usr/bin/machinectl", "shell"], ["/usr/bin/setarch", "x86_64", "/bin/sh"],
    ["/usr/bin/prlimit", "/bin/sh"], ["/usr/bin/chrt", "1", "/bin/sh"], ["/usr/bin/split"],
    ["/usr/bin/sort"], ["/usr/bin/curl"], ["/usr/bin/tcpdump"], ["/usr/bin/pager"],
    ["/usr/bin/systemd-tmpfiles", "--create"], ["/usr/sbin/modprobe", "x"],
])
def test_shell_escape_reasons(argv):
    assert shell_escape_reason(argv[0], argv[1:]) is not None


@pytest.mark.parametrize("argv", [
    ["/usr/bin/systemctl", "start", "openfortivpn@corp.service"],
    ["/usr/bin/systemctl", "--no-pager", "status", "x.service"],
    ["/usr/bin/journalctl", "--no-pager", "-u", "x.service"],
    ["/usr/bin/id"], ["/usr/bin/uptime"],
    ["/usr/bin/systemctl", "--no-pager", "show", "-a", "x.service"],
    ["/usr/bin/systemctl", "--no-block", "restart", "openfortivpn@corp.service"],
    ["/usr/bin/systemctl", "is-active", "--quiet", "x.service"],
    ["/usr/bin/ip", "-br", "link", "show"],
    ["/usr/sbin/openfortivpn", "-c", "/etc/openfortivpn/corp.conf"],
    ["/usr/bin/dmesg", "--nopager", "-H"],
    ["/usr/sbin/service", "ssh", "restart"],
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
    # principals sudoers would read as something other than one user or group
    ("user-caps-alias", {"user": "ADMINS"}, "user", "alias"),
    ("runas-caps-alias", {"runas": "OPERATORS"}, "runas", "alias"),
    ("group-caps-alias", {"user": None, "group": "WHEEL"}, "group", "alias"),
    ("user-Defaults", {"user": "Defaults"}, "user", "keyword"),
    ("user-uid", {"user": "#0"}, "user", "plain user"),
    ("runas-uid", {"runas": "#0"}, "runas", "plain user"),
    ("user-netgroup", {"user": "+admins"}, "user", "plain user"),
    ("group-percent", {"user": None, "group": "%sudo"}, "group", "plain user"),
    ("user-negated", {"user": "!nobody"}, "user", "plain user"),
    ("user-list", {"user": "nobody,root"}, "user", "plain user"),
    ("user-colon", {"user": "nobody:ALL"}, "user", "plain user"),
    ("user-equals", {"user": "nobody=ALL"}, "user", "plain user"),
    ("user-space", {"user": "nobody ALL"}, "user", "plain user"),
    ("user-lookalike", {"user": "nob\u043edy"}, "user", "plain user"),
    ("user-trailing-newline", {"user": "nobody\n"}, "user", "single line"),
    ("user-too-long", {"user": "u" * 40}, "user", "plain user"),
    ("name-include", {"name": "@include"}, "name", "letters, digits"),
    ("name-hash-include", {"name": "#include"}, "name", "letters, digits"),
    ("name-lookalike", {"name": "c\u0456"}, "name", "letters, digits"),
    ("name-trailing-newline", {"name": "ci\n"}, "name", "single line"),
    ("name-too-long", {"name": "n" * 65}, "name", "at most 64"),
    ("regex-arg", {"commands": [["/usr/bin/id", "^a.*$"]]}, "commands[0]", "wildcard"),
    ("regex-arg-no-star", {"commands": [["/usr/bin/id", "^a$"]]}, "commands[0]", "cannot be written safely"),
    ("lookalike-arg", {"commands": [["/usr/bin/id", "\u2010u"]]}, "commands[0]", "cannot be written safely"),
    ("path-trailing-newline", {"commands": [["/usr/bin/id\n"]]}, "commands[0]", "single line"),
    # option tricks that change what the granted binary does (binaries present on every host)
    ("systemctl-host-abbrev", {"commands": [["/usr/bin/systemctl", "--ho=root@evil", "start", "x.service"]]},
     "commands[0]", "not an option"),
    ("systemctl-attached-host", {"commands": [["/usr/bin/systemctl", "-Hevil", "start", "x.service"]]},
     "commands[0]", "not an option"),
    ("systemctl-hidden-verb", {"commands": [["/usr/bin/systemctl", "-p", "Id", "show", "x.service"]]},
     "commands[0]", "not an option"),
    ("systemctl-set-env", {"commands": [["/usr/bin/systemctl", "set-environment", "A=b"]]},
     "commands[0]", "arbitrary units"),
    ("systemctl-reexec", {"commands": [["/usr/bin/systemctl", "daemon-reexec"]]}, "commands[0]", "arbitrary units"),
    ("journalctl-after-dashdash", {"commands": [["/usr/bin/journalctl", "--", "--no-pager"]]},
     "commands[0]", "pager"),
    ("journalctl-directory", {"commands": [["/usr/bin/journalctl", "--no-pager", "--direc=/var/log"]]},
     "commands[0]", "as root"),
    ("ip-netns-exec", {"commands": [["/usr/bin/ip", "netns", "exec", "x", "/usr/bin/id"]]}, "commands[0]", "runs other"),
    ("dmesg-pager", {"commands": [["/usr/bin/dmesg", "-H"]]}, "commands[0]", "pager"),
    # files named in arguments must be out of the grantee's reach
    ("relative-path-arg", {"commands": [["/usr/bin/id", "conf/x"]]}, "commands[0]", "relative path"),
    ("url-arg", {"commands": [["/usr/bin/id", "http://x/y"]]}, "commands[0]", "relative path"),
    ("dotdot-path-arg", {"commands": [["/usr/bin/id", "--config=/etc/../tmp/x"]]}, "commands[0]", "normalised"),
    ("missing-file-in-tmp", {"commands": [["/usr/bin/id", "--config=/tmp/sb-no-such-file"]]},
     "commands[0]", "can be written"),
    ("short-option-path-in-tmp", {"commands": [["/usr/bin/id", "-c/tmp/sb-no-such-file"]]},
     "commands[0]", "can be written"),
    ("symlinked-dir-arg", {"commands": [["/usr/bin/id", "/bin/id"]]}, "commands[0]", "symlink"),
    ("grantee-owned-arg", "GRANTEE_FILE", "commands[0]", "can be written"),
    ("acl-writable-arg", "ACL_FILE", "commands[0]", "can be written"),
    ("group-member-owned-arg", "GROUP_MEMBER_FILE", "commands[0]", "can be written"),
    ("visudo-untrusted", "LOOSE_VISUDO", "visudo", "visudo"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_catalogue(run_module, env, snapshot_tree, case):
    _id, overrides, field, words = case
    if overrides == "WRITABLE":
        overrides = {"commands": [[_writable_binary(env.root)]]}
    elif overrides == "GRANTEE_FILE":
        conf = env.root / "grantee.conf"
        conf.write_text("x\n")
        os.chown(conf, 65534, 65534)  # nobody, the grantee
        overrides = {"commands": [["/usr/bin/id", f"--config={conf}"]]}
    elif overrides == "GROUP_MEMBER_FILE":
        conf = env.root / "member.conf"
        conf.write_text("x\n")
        conf.chmod(0o644)
        os.chown(conf, 65534, 0)  # nobody, a member of nogroup through its primary group
        overrides = {"user": None, "group": "nogroup", "commands": [["/usr/bin/id", f"--config={conf}"]]}
    elif overrides == "ACL_FILE":
        conf = env.root / "acl.conf"
        conf.write_text("x\n")
        conf.chmod(0o644)
        # user:nobody:rw- through a POSIX ACL (mask rw-): the mode shows 0664, the group is root's
        entries = [(1, 6, 0xFFFFFFFF), (2, 6, 65534), (4, 4, 0xFFFFFFFF), (0x10, 6, 0xFFFFFFFF),
                   (0x20, 4, 0xFFFFFFFF)]
        acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
        try:
            os.setxattr(conf, "system.posix_acl_access", acl)
        except OSError:
            pytest.skip("no POSIX ACL support on this filesystem")
        overrides = {"commands": [["/usr/bin/id", f"--config={conf}"]]}
    elif overrides == "LOOSE_VISUDO":
        loose = env.root / "loose"
        loose.mkdir(mode=0o777)
        os.chmod(loose, 0o777)
        fake = loose / "visudo"
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
        overrides = {"visudo": str(fake)}
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


def test_check_mode_leaves_no_temp_file_anywhere(run_module, env, snapshot_tree):
    import glob
    import tempfile

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "supervised-check-*")))
    dir_before = snapshot_tree(str(env.dir))
    run_module(sudoers_exact.main, env.args(), check_mode=True)
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "supervised-check-*"))) == before
    assert snapshot_tree(str(env.dir)) == dir_before


def test_unit_file_the_grantee_can_change_is_refused(run_module, env, snapshot_tree, monkeypatch):
    """systemctl start runs whatever the unit says: a unit file or drop-in the grantee can change is
    as good as a root shell. (systemd is stood in for here; molecule/access uses the real one.)"""
    unit_dir = env.root / "system"
    unit_dir.mkdir(mode=0o755)
    fragment = unit_dir / "x.service"
    fragment.write_text("[Service]\nExecStart=/usr/bin/id\n")
    dropin = unit_dir / "override.conf"
    dropin.write_text("[Service]\n")

    def fake_show(_self, units, _props):
        return {u: {"FragmentPath": str(fragment), "SourcePath": "", "DropInPaths": f"/dev/null {dropin}"}
                for u in units}

    monkeypatch.setattr(sudoers_exact.Systemd, "show", fake_show)
    args = env.args(commands=[["/usr/bin/systemctl", "start", "x.service"]])
    assert run_module(sudoers_exact.main, args, check_mode=True)["changed"] is True
    os.chown(dropin, 65534, 65534)
    before, calls = snapshot_tree(str(env.root)), env.calls()
    result = run_module(sudoers_exact.main, args, diff=True)
    assert result["failed"] and result["msg"].startswith("commands[0]: unit 'x.service'"), result
    assert snapshot_tree(str(env.root)) == before and env.calls() == calls
