"""Unit tests for sudoers_exact: rendering, the bad-input catalogue, visudo wiring, locking, rollback.

The real sudo / sudo-rs behaviour is proven in molecule/access; here ``visudo`` is a stand-in script
put first on PATH (root-owned, in the trusted build tree: the module trust-checks the visudo it
runs), ``SUDOERS_DIR`` is a temp directory, and the shell-escape lookups (bin directories,
/etc/alternatives, /etc/shells) read temp trees, so every case is hermetic.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import struct

import pytest

from ansible_collections.supervised.background.plugins.module_utils import locking, sudo_policy
from ansible_collections.supervised.background.plugins.modules import sudoers_exact

GRANTEE = "nobody"  # exists on every Debian host and is not root
NOBODY = 65534
SYSTEMCTL = "/usr/bin/systemctl"
JOURNALCTL = "/usr/bin/journalctl"
UNIT = "openfortivpn@corp.service"


def _script(path, text, mode=0o755):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return str(path)


class Env:
    """A host in a temp tree: sudoers.d, a stand-in visudo first on PATH, stand-in programs, trusted
    config files, and the system directories the shell-escape checks read."""

    def __init__(self, root, monkeypatch):
        self.root = root
        self.monkeypatch = monkeypatch
        self.dir = root / "sudoers.d"
        self.dir.mkdir(mode=0o750)
        os.chmod(self.dir, 0o750)
        other = self.dir / "zz-other"
        other.write_text("# a file someone else manages\n")
        other.chmod(0o440)
        self.log = root / "visudo.log"
        self.bin = root / "bin"
        _script(self.bin / "visudo",
                "#!/bin/sh\n"
                f"echo \"$@\" >> {self.log}\n"
                "if [ \"$1\" = -c ] && [ \"$2\" = -f ]; then\n"
                f"  if [ -e {root}/temp-fails ]; then echo \"$3: syntax error near line 2\"; exit 1; fi\n"
                f"  cp \"$3\" {root}/validated; exit 0\n"
                "fi\n"
                f"if [ -e {root}/whole-fails ]; then echo 'whole config broken'; exit 1; fi\n"
                "exit 0\n")
        monkeypatch.setenv("PATH", f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        monkeypatch.setattr(sudoers_exact, "SUDOERS_DIR", str(self.dir))
        # What the shell-escape checks see as the host's binaries, alternatives and login shells.
        self.sysbin = root / "sys" / "bin"
        self.sysbin.mkdir(parents=True)
        shutil.copy("/usr/bin/dash", self.sysbin / "sh")  # a copy: /usr may be another filesystem (a container)
        _script(self.sysbin / "less", "#!/bin/sh\n# stand-in less\nexit 0\n")
        self.alternatives = root / "sys" / "alternatives"
        self.alternatives.mkdir()
        self.shells = root / "sys" / "shells"
        self.login_shell = _script(root / "opt" / "shells" / "corpsh", "#!/bin/sh\n# the corporate login shell\n")
        self.shells.write_text(f"# /etc/shells\n{self.sysbin / 'sh'}\n{self.login_shell}\n")
        monkeypatch.setattr(sudo_policy, "BIN_DIRS", (str(self.sysbin),))
        monkeypatch.setattr(sudo_policy, "ALTERNATIVES_DIR", str(self.alternatives))
        monkeypatch.setattr(sudo_policy, "SHELLS_FILE", str(self.shells))
        # systemd is stood in for: the units' files are none (molecule/access asks the real one).
        monkeypatch.setattr(sudoers_exact.Systemd, "show", lambda _self, units, _props: {
            u: {"FragmentPath": "", "SourcePath": "", "DropInPaths": ""} for u in units})
        self.probe = self.tool("argv-probe")
        self.conf = root / "etc" / "probe" / "corp.conf"
        self.conf.parent.mkdir(parents=True)
        self.conf.write_text("marker = root\n")
        self.conf.chmod(0o644)

    def tool(self, name, content=None):
        """A root-owned stand-in program (unique content, so it is nobody's copy)."""
        return _script(self.root / "opt" / "bin" / name, content or f"#!/bin/sh\n# stand-in {name}\nexit 0\n")

    def path(self, rel, content="x\n", mode=0o644, owner=None, dir_mode=None):
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if dir_mode is not None:
            os.chmod(target.parent, dir_mode)
        if content is not None:
            target.write_text(content)
            target.chmod(mode)
            if owner is not None:
                os.chown(target, owner, owner)
        return str(target)

    def args(self, **kw):
        base = {"name": "ci", "user": GRANTEE, "commands": [[SYSTEMCTL, "start", UNIT]]}
        base.update(kw)
        return {k: v for k, v in base.items() if v is not None}

    def calls(self):
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def env(tmp_path, monkeypatch):
    return Env(tmp_path, monkeypatch)


def rule(argv, who=GRANTEE):
    return sudo_policy.render_rule(who, "root", True, argv)


# ---- what is written ---------------------------------------------------------------------------
def test_present_writes_one_pinned_line_per_command(run_module, env):
    commands = [
        f"{SYSTEMCTL} start {UNIT}",
        [SYSTEMCTL, "stop", UNIT],
        ["/usr/bin/id"],
        [env.probe, f"-c{env.conf}", "--mode=fast", "a:b", "c,d"],
    ]
    result = run_module(sudoers_exact.main, env.args(commands=commands), diff=True)
    assert result["changed"] is True, result
    path = env.dir / "ci"
    text = path.read_text()
    assert text.splitlines()[1:] == [
        f"nobody ALL=(root) CWD=/ NOPASSWD: {SYSTEMCTL} start {UNIT}",
        f"nobody ALL=(root) CWD=/ NOPASSWD: {SYSTEMCTL} stop {UNIT}",
        'nobody ALL=(root) CWD=/ NOPASSWD: /usr/bin/id ""',
        f"nobody ALL=(root) CWD=/ NOPASSWD: {env.probe} -c{env.conf} --mode\\=fast a\\:b c\\,d",
    ]
    assert result["rules"] == text.splitlines()[1:]
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o440)
    # The temp file (inside the sudoers dir, with a name sudo ignores) was validated, then the whole config.
    calls = env.calls()
    assert calls[0].startswith(f"-c -f {env.dir}/.ci.") and calls[0].endswith(".tmp")
    assert calls[1] == "-c"
    assert (env.root / "validated").read_text() == text
    assert "CWD=/ NOPASSWD" in result["diff"]["after"]
    again = run_module(sudoers_exact.main, env.args(commands=commands))
    assert again["changed"] is False


def test_every_rule_carries_cwd_before_the_tag(run_module, env):
    result = run_module(sudoers_exact.main, env.args(user=None, group="nogroup", runas="nobody", nopasswd=False,
                                                     commands=[["/usr/bin/id", "-u"], ["/usr/bin/uptime"]]))
    assert result["rules"] == ["%nogroup ALL=(nobody) CWD=/ /usr/bin/id -u", '%nogroup ALL=(nobody) CWD=/ /usr/bin/uptime ""']


def test_the_visudo_that_runs_is_the_resolved_path_that_was_checked(run_module, env, tmp_path):
    """PATH finds a link named visudo; the module runs (and checked) the file it resolves to."""
    real = tmp_path / "real" / "visudo-impl"
    real.parent.mkdir()
    shutil.copy(env.bin / "visudo", real)
    (env.bin / "visudo").unlink()
    os.symlink(real, env.bin / "visudo")
    result = run_module(sudoers_exact.main, env.args())
    assert result["changed"] is True, result
    assert env.calls()[0].startswith("-c -f ")


def test_check_mode_validates_a_private_copy_and_writes_nothing(run_module, env, snapshot_tree):
    before = snapshot_tree(str(env.dir))
    result = run_module(sudoers_exact.main, env.args(), check_mode=True, diff=True)
    assert result["changed"] is True
    assert snapshot_tree(str(env.dir)) == before
    calls = env.calls()
    assert len(calls) == 1 and "supervised-check-" in calls[0]


def test_visudo_rejecting_the_temp_file_leaves_the_live_file(run_module, env, snapshot_tree):
    run_module(sudoers_exact.main, env.args())
    (env.root / "temp-fails").write_text("")
    before = snapshot_tree(str(env.dir))
    result = run_module(sudoers_exact.main, env.args(commands=[["/usr/bin/id", "-u"]]))
    assert result["failed"] and result["msg"].startswith("visudo:"), result
    assert "syntax error near line 2" in result["msg"]
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
    result = run_module(sudoers_exact.main, {"name": "ci", "state": "absent"})
    assert result["changed"] is True and not (env.dir / "ci").exists()
    assert env.calls()[-1] == "-c"
    result = run_module(sudoers_exact.main, {"name": "ci", "state": "absent"})
    assert result["changed"] is False
    assert (env.dir / "zz-other").exists()


def test_the_sudoers_lock_covers_write_and_check(run_module, env, snapshot_tree):
    """Another run holding the sudoers lock: the module waits, gives up after lock_timeout, names the
    object, and neither writes nor runs visudo."""
    lock_dir = locking.LOCK_DIR
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    path = os.path.join(lock_dir, locking._file_name("sudoers", str(env.dir)))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = snapshot_tree(str(env.dir))
        result = run_module(sudoers_exact.main, env.args(lock_timeout="300ms"))
        assert result["failed"] and result["msg"].startswith("lock_timeout:"), result
        assert f"sudoers {env.dir}" in result["msg"]
        assert snapshot_tree(str(env.dir)) == before and env.calls() == []
    finally:
        os.close(fd)
    assert run_module(sudoers_exact.main, env.args())["changed"] is True


def test_allow_shell_escape_is_explicit(run_module, env):
    bash = env.tool("bash")
    result = run_module(sudoers_exact.main, env.args(commands=[[bash]], allow_shell_escape=True))
    assert result["changed"] is True and result["rules"] == [f'nobody ALL=(root) CWD=/ NOPASSWD: {bash} ""']


def test_missing_grantee_is_a_warning_in_check_mode_only(run_module, env, snapshot_tree):
    before = snapshot_tree(str(env.dir))
    result = run_module(sudoers_exact.main, env.args(user="not-created-yet"), check_mode=True)
    assert result["changed"] is True and not result.get("failed")
    assert snapshot_tree(str(env.dir)) == before
    result = run_module(sudoers_exact.main, env.args(user="not-created-yet"))
    assert result["failed"] and result["msg"].startswith("user:")


def test_symlink_at_target_is_refused(run_module, env, tmp_path):
    (tmp_path / "elsewhere").write_text("keep\n")
    os.symlink(tmp_path / "elsewhere", env.dir / "ci")
    result = run_module(sudoers_exact.main, env.args())
    assert result["failed"] and "symlink" in result["msg"]
    assert (tmp_path / "elsewhere").read_text() == "keep\n"


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
    args = env.args(commands=[[SYSTEMCTL, "start", "x.service"]])
    assert run_module(sudoers_exact.main, args, check_mode=True)["changed"] is True
    os.chown(dropin, NOBODY, NOBODY)
    before, calls = snapshot_tree(str(env.dir)), env.calls()
    result = run_module(sudoers_exact.main, args, diff=True)
    assert result["failed"] and result["msg"].startswith("commands[0]: unit 'x.service'"), result
    assert snapshot_tree(str(env.dir)) == before and env.calls() == calls


# ---- accepted shapes (each is also checked by the invariant tests in test_sudo_policy.py) -------
GOOD = [
    ("systemctl-start", lambda e: [SYSTEMCTL, "start", UNIT]),
    ("systemctl-options-first", lambda e: [SYSTEMCTL, "--no-block", "--quiet", "restart", UNIT]),
    ("systemctl-status-no-pager", lambda e: [SYSTEMCTL, "--no-pager", "status", "x.service"]),
    ("systemctl-option-after-verb", lambda e: [SYSTEMCTL, "show", "--no-pager", "-a", "x.service"]),
    ("systemctl-enable-now", lambda e: [SYSTEMCTL, "enable", "--now", "x.timer"]),
    ("journalctl-unit-last", lambda e: [JOURNALCTL, "--no-pager", "-n50", "--since=-1h", "--unit=x.service"]),
    ("journalctl-short-unit-last", lambda e: [JOURNALCTL, "--no-pager", "-q", "-ocat", "-ux.service"]),
    ("joined-short-value", lambda e: [e.probe, f"-c{e.conf}"]),
    ("joined-long-value", lambda e: [e.probe, f"--config={e.conf}", "--verbose"]),
    ("positional-first", lambda e: [e.probe, str(e.conf), "--verbose", "-q"]),
    ("key-value-path", lambda e: [e.probe, f"config={e.conf}"]),
    ("path-list-all-absolute", lambda e: [e.probe, f"--path={e.conf}:{e.conf.parent}"]),
    ("missing-file-in-root-dir", lambda e: [e.probe, f"--log={e.conf.parent}/new.log"]),
    ("words-without-paths", lambda e: [e.probe, "sync", "host:443", "--level=3", "-v"]),
    ("bare-dash-last", lambda e: [e.probe, "-"]),
    ("dashdash-then-absolute", lambda e: [e.probe, "-v", "--", str(e.conf)]),
    ("loginctl-no-pager-first", lambda e: [e.tool("loginctl"), "--no-pager", "list-sessions"]),
    ("dmesg-nopager-first", lambda e: [e.tool("dmesg"), "--nopager", "-H"]),
    ("no-arguments", lambda e: ["/usr/bin/id"]),
]


@pytest.mark.parametrize("case", GOOD, ids=[c[0] for c in GOOD])
def test_accepted(run_module, env, case):
    argv = case[1](env)
    result = run_module(sudoers_exact.main, env.args(commands=[argv]))
    assert result.get("changed") is True, result
    assert result["rules"] == [rule(argv)] and " CWD=/ NOPASSWD: " in result["rules"][0]


# ---- the bad-input catalogue: each names the field and the rule and leaves sudoers.d untouched --
def _acl_file(e):
    conf = e.root / "etc" / "probe" / "acl.conf"
    conf.write_text("x\n")
    conf.chmod(0o644)
    # user:nobody:rw- through a POSIX ACL (mask rw-): the mode shows 0664, the group is root's
    entries = [(1, 6, 0xFFFFFFFF), (2, 6, NOBODY), (4, 4, 0xFFFFFFFF), (0x10, 6, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)]
    acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
    try:
        os.setxattr(conf, "system.posix_acl_access", acl)
    except OSError:
        pytest.skip("no POSIX ACL support on this filesystem")
    return str(conf)


def _hardlink_of_sh(e):
    target = e.root / "opt" / "bin" / "report"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(e.sysbin / "sh", target)
    return str(target)


def _copy_of(e, source, name):
    target = e.root / "opt" / "bin" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o755)
    return str(target)


def _alternative(e, generic, name):
    binary = e.tool(name)
    os.symlink(binary, e.alternatives / generic)
    return binary


def _loose_dir(e, name):
    loose = e.root / name
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    return loose


def _world_writable_binary(e):
    return _script(_loose_dir(e, "ww") / "tool", "#!/bin/sh\n# in a world-writable directory\n")


def _loose_visudo(e):
    loose = _loose_dir(e, "loose")
    _script(loose / "visudo", "#!/bin/sh\nexit 0\n")
    e.monkeypatch.setenv("PATH", f"{loose}:{os.environ['PATH']}")
    return {}


def cmd(*argv):
    return lambda e: {"commands": [list(argv)]}


def probe(*args):
    return lambda e: {"commands": [[e.probe] + [a.format(conf=e.conf, root=e.root) for a in args]]}


def tool(name, *args):
    return lambda e: {"commands": [[e.tool(name)] + list(args)]}


def with_file(make, template="--config={}"):
    return lambda e: {"commands": [[e.probe, template.format(make(e))]]}


def with_binary(make, *args):
    return lambda e: {"commands": [[make(e)] + list(args)]}


BAD = [
    # (id, overrides (a function of the Env), field the message starts with, words the message holds)
    # --- 1. argument merging: the seed rule and every separate-value form --------------------------
    ("openfortivpn-seed-rule", tool("openfortivpn", "-c", "/etc/openfortivpn/corp.conf"), "commands[0]",
     "systemctl start openfortivpn@NAME.service"),
    ("openfortivpn-joined", tool("openfortivpn", "-c/etc/openfortivpn/corp.conf"), "commands[0]", "can be safe"),
    ("openfortivpn-not-installed", cmd("/usr/sbin/openfortivpn", "--config=/etc/openfortivpn/corp.conf"),
     "commands[0]", "ci_runner role"),
    ("openfortivpn-versioned-name", tool("openfortivpn-1.19"), "commands[0]", "can be safe"),
    ("openfortivpn-allow-shell-escape", lambda e: {"commands": [[e.tool("openfortivpn")]],
                                                   "allow_shell_escape": True}, "commands[0]", "can be safe"),
    ("openvpn", tool("openvpn", "--config=/etc/openvpn/x.conf"), "commands[0]", "openvpn-client@NAME.service"),
    ("openvpn-allow-shell-escape", lambda e: {"commands": [[e.tool("openvpn")]], "allow_shell_escape": True},
     "commands[0]", "can be safe"),
    ("probe-c-separate", probe("-c", "{conf}"), "commands[0]", "joined"),
    ("probe-f-separate", probe("-f", "{conf}"), "commands[0]", "joined"),
    ("probe-long-separate", probe("--config", "{conf}"), "commands[0]", "joined"),
    ("probe-cluster-separate", probe("-vc", "{conf}"), "commands[0]", "joined"),
    ("probe-separate-number", probe("-n", "5"), "commands[0]", "'-n5'"),
    ("probe-separate-word", probe("--mode", "fast"), "commands[0]", "'--mode=fast'"),
    ("probe-separate-after-positional", probe("{conf}", "-o", "out"), "commands[0]", "joined"),
    ("probe-separate-second-entry", lambda e: {"commands": [["/usr/bin/id"], [e.probe, "-c", str(e.conf)]]},
     "commands[1]", "joined"),
    ("short-option-equals", probe("-c={conf}"), "commands[0]", "getopt hands"),
    ("short-option-equals-relative", probe("-o=x"), "commands[0]", "getopt hands"),
    # --- relative file arguments in every form -------------------------------------------------
    ("relative-name", probe("corp.conf"), "commands[0]", "relative to the working directory"),
    ("relative-long-value", probe("--config=corp.conf"), "commands[0]", "relative to the working directory"),
    ("relative-short-value", probe("-ccorp.conf"), "commands[0]", "relative to the working directory"),
    ("relative-dot-slash", probe("./x"), "commands[0]", "relative path"),
    ("relative-dotdot-slash", probe("../etc/x"), "commands[0]", "relative path"),
    ("relative-dotdot", probe(".."), "commands[0]", "relative path"),
    ("relative-dot", probe("."), "commands[0]", "relative path"),
    ("relative-hidden", probe(".corp"), "commands[0]", "relative path"),
    ("relative-tilde-slash", probe("~/x"), "commands[0]", "relative path"),
    ("relative-tilde-user", probe("~root"), "commands[0]", "relative path"),
    ("relative-tilde-user-path", probe("--config=~root/x.conf"), "commands[0]", "relative path"),
    ("relative-tilde", probe("~"), "commands[0]", "relative path"),
    ("relative-subdir", probe("conf/x"), "commands[0]", "relative path"),
    ("relative-long-subdir", probe("--opt=rel/x"), "commands[0]", "relative path"),
    ("relative-short-subdir", probe("-orel/x"), "commands[0]", "relative path"),
    ("relative-cluster-file", probe("-vc/etc/x"), "commands[0]", "relative path"),
    ("relative-in-path-list", probe("--path={conf}:rel/b"), "commands[0]", "relative path"),
    ("relative-in-comma-list", probe("--files={conf},corp.conf"), "commands[0]", "relative to the working"),
    ("relative-key-value", probe("config=corp.conf"), "commands[0]", "relative to the working directory"),
    ("relative-at-file", probe("@args.txt"), "commands[0]", "relative to the working directory"),
    ("relative-plus-path", probe("+/etc/x"), "commands[0]", "relative path"),
    ("url", probe("--url=http://example.com/x"), "commands[0]", "URL"),
    ("file-url", probe("file:///etc/x"), "commands[0]", "URL"),
    ("not-normalised-dotdot", probe("--config=/etc/../tmp/x"), "commands[0]", "normalised"),
    ("not-normalised-double-slash", probe("//etc/x"), "commands[0]", "normalised"),
    ("not-normalised-trailing-slash", probe("/etc/"), "commands[0]", "normalised"),
    ("not-normalised-dot", probe("-c/etc/./x"), "commands[0]", "normalised"),
    # --- files named in arguments must be root's (trust.SUDO_FILE) -------------------------------
    ("file-in-tmp", probe("--config=/tmp/sb-no-such-file.conf"), "commands[0]", "not trusted"),
    ("file-in-var-tmp", probe("-c/var/tmp/sb-x.conf"), "commands[0]", "not trusted"),
    ("file-in-run-lock", probe("/run/lock/sb-x.conf"), "commands[0]", "not trusted"),
    ("dir-in-tmp", probe("--workdir=/tmp"), "commands[0]", "not trusted"),
    ("file-in-dev-shm", probe("--config=/dev/shm/x.conf"), "commands[0]", "under /dev"),
    ("dev-stdin", probe("--config=/dev/stdin"), "commands[0]", "under /dev"),
    ("dev-tty", probe("-c/dev/tty"), "commands[0]", "under /dev"),
    ("dev-pts", probe("--config=/dev/pts/7"), "commands[0]", "under /dev"),
    ("proc-self-fd", probe("--config=/proc/self/fd/0"), "commands[0]", "under /proc"),
    ("proc-pid-cwd", probe("--config=/proc/4242/cwd/x.conf"), "commands[0]", "under /proc"),
    ("tmp-in-path-list", probe("--path={conf}:/tmp/x"), "commands[0]", "not trusted"),
    ("tmp-in-comma-list", probe("--files={conf},/var/tmp/x"), "commands[0]", "not trusted"),
    ("tmp-in-key-value", probe("key=/tmp/x"), "commands[0]", "not trusted"),
    ("tmp-after-second-equals", probe("--define=key=/tmp/x"), "commands[0]", "not trusted"),
    ("file-owned-by-grantee", with_file(lambda e: e.path("etc/probe/nobody.conf", owner=NOBODY)),
     "commands[0]", "not trusted"),
    ("file-group-writable", with_file(lambda e: e.path("etc/probe/gw.conf", mode=0o664)), "commands[0]", "not trusted"),
    ("file-world-writable", with_file(lambda e: e.path("etc/probe/ww.conf", mode=0o646)), "commands[0]", "not trusted"),
    ("file-in-group-writable-dir", with_file(lambda e: e.path("gwdir/x.conf", dir_mode=0o775)),
     "commands[0]", "not trusted"),
    ("missing-file-in-group-writable-dir", with_file(lambda e: e.path("gwdir2/x.conf", content=None, dir_mode=0o775)),
     "commands[0]", "not trusted"),
    ("missing-file-in-grantee-dir", lambda e: (os.makedirs(e.root / "home" / "nobody", exist_ok=True),
                                               os.chown(e.root / "home" / "nobody", NOBODY, NOBODY),
                                               {"commands": [[e.probe, f"-c{e.root}/home/nobody/x.conf"]]})[-1],
     "commands[0]", "not trusted"),
    ("file-with-acl", with_file(_acl_file), "commands[0]", "not trusted"),
    ("file-symlink", with_file(lambda e: (os.symlink(e.conf, e.root / "etc" / "probe" / "link.conf"),
                                          str(e.root / "etc" / "probe" / "link.conf"))[1]), "commands[0]", "symlink"),
    ("missing-directory", probe("--config={root}/etc/not-yet/x.conf"), "commands[0]", "does not exist"),
    ("missing-run-user-dir", probe("-c/run/user/4242/x.conf"), "commands[0]", "/run/user/UID"),
    ("missing-home-dir", probe("--config=/home/sb-not-created-yet/x.conf"), "commands[0]", "useradd"),
    ("after-dashdash-relative", probe("--", "-c/etc/x"), "commands[0]", "relative path"),
    ("after-dashdash-file-name", probe("--", "corp.conf"), "commands[0]", "relative to the working directory"),
    ("dir-symlink-into-tmp", with_file(lambda e: (os.symlink("/tmp", e.root / "etc" / "tmplink"),
                                                  str(e.root / "etc" / "tmplink" / "x.conf"))[1]),
     "commands[0]", "not trusted"),
    # --- 2. shell escapes by family, link, copy and alternative ----------------------------------
    *[(f"family-{name}", tool(name), "commands[0]", "family") for name in (
        "vim.nox", "vim.basic", "emacs-nox", "tclsh8.6", "ksh93", "irb3.1", "gdb-multiarch", "wish8.6",
        "python3.11", "python3.11-dbg", "pypy3", "perl5.36", "perldoc", "php8.2", "php-cgi", "lua5.4", "luajit",
        "x86_64-linux-gnu-gdb", "nc.openbsd", "nc.traditional", "busybox", "mksh-static", "bsd-csh", "zsh5",
        "ruby3.1", "node18", "Rscript", "gawk", "original-awk", "zless", "bzmore", "batcat", "nvi", "rjoe",
        "clang++", "x86_64-linux-gnu-g++-12", "tcc", "sudo-rs", "su-rs", "visudo-rs", "dbus-send", "gdbus",
        "busctl", "systemd-run", "systemd-cat", "systemd-notify", "run-parts", "start-stop-daemon", "nmcli",
        "pydoc3", "ipython3", "vipe", "sponge", "rg", "fdfind", "dc", "minicom", "ssh-agent", "tshark",
        "bpftool", "portablectl", "coredumpctl", "runc", "fakeroot", "xvfb-run", "gdbserver", "ld-linux-x86-64.so.2",
        "ksh93u+m", "ld.lld", "sh.distrib", "bash-static",
        # Found by an adversarial pass after the redesign: each one gave a root shell under real sudo.
        "logsave", "choom", "debconf", "login", "newusers", "chgpasswd", "scriptlive", "bashbug", "sulogin",
        "agetty", "pam-auth-update", "pdb3", "pdb.py", "tini", "dumb-init",
    )],
    # A wrapper that runs its arguments finds a bare shell or interpreter name on secure_path.
    *[(f"bare-interpreter-{word}", probe(*args), "commands[0]", "a shell or interpreter") for word, args in (
        ("sh", ("sh",)), ("bash5", ("--", "bash5")), ("python3.11", ("--run=python3.11",)),
        ("perl", ("-eperl",)), ("vim.tiny", ("vim.tiny",)), ("in-a-list", ("--shells=/etc/x,dash",)),
    )],
    ("family-allow-is-per-rule", lambda e: {"commands": [[e.tool("uptime")], [e.tool("vim.tiny")]]},
     "commands[1]", "family"),
    ("hard-link-of-sh", with_binary(_hardlink_of_sh), "commands[0]", "same file"),
    ("copy-of-sh", with_binary(lambda e: _copy_of(e, "/usr/bin/dash", "summary")), "commands[0]", "copy of"),
    ("copy-of-login-shell", with_binary(lambda e: _copy_of(e, e.login_shell, "helper")), "commands[0]", "copy of"),
    ("copy-of-less", with_binary(lambda e: _copy_of(e, e.sysbin / "less", "viewer")), "commands[0]", "copy of"),
    ("alternative-pager", with_binary(lambda e: _alternative(e, "pager", "pretty-printer")), "commands[0]",
     "alternatives system runs as 'pager'"),
    ("alternative-editor", with_binary(lambda e: _alternative(e, "editor", "notes")), "commands[0]",
     "alternatives system runs as 'editor'"),
    ("alternative-awk", with_binary(lambda e: _alternative(e, "awk", "columns")), "commands[0]", "'awk'"),
    ("argument-names-a-shell", lambda e: {"commands": [[e.probe, f"--shell={e.sysbin}/sh"]]}, "commands[0]",
     "hands the program the path"),
    ("argument-names-a-shell-copy", lambda e: {"commands": [[e.probe, _copy_of(e, "/usr/bin/dash", "step")]]},
     "commands[0]", "hands the program the path"),
    ("binary-symlink", with_binary(lambda e: (os.symlink(e.probe, e.root / "opt" / "bin" / "probe-link"),
                                              str(e.root / "opt" / "bin" / "probe-link"))[1]), "commands[0]", "symlink"),
    ("binary-owned-by-grantee", with_binary(lambda e: (os.chown(e.tool("mine"), NOBODY, NOBODY),
                                                       str(e.root / "opt" / "bin" / "mine"))[1]),
     "commands[0]", "not trusted"),
    ("binary-in-world-writable-dir", with_binary(_world_writable_binary), "commands[0]", "not trusted"),
    # --- 3. systemctl and journalctl allowlists ---------------------------------------------------
    ("systemctl-help", cmd(SYSTEMCTL, "--no-pager", "help", "x.service"), "commands[0]", "help runs man"),
    ("systemctl-edit", cmd(SYSTEMCTL, "edit", "x.service"), "commands[0]", "not an allowed verb"),
    ("systemctl-link", cmd(SYSTEMCTL, "link", "x.service"), "commands[0]", "not an allowed verb"),
    ("systemctl-isolate", cmd(SYSTEMCTL, "isolate", "rescue.target"), "commands[0]", "not an allowed verb"),
    ("systemctl-mask", cmd(SYSTEMCTL, "mask", "x.service"), "commands[0]", "not an allowed verb"),
    ("systemctl-set-property", cmd(SYSTEMCTL, "set-property", "x.service", "CPUQuota=1%"), "commands[0]",
     "not an allowed verb"),
    ("systemctl-set-environment", cmd(SYSTEMCTL, "set-environment", "A=b"), "commands[0]", "not an allowed verb"),
    ("systemctl-daemon-reexec", cmd(SYSTEMCTL, "daemon-reexec"), "commands[0]", "not an allowed verb"),
    ("systemctl-poweroff", cmd(SYSTEMCTL, "poweroff"), "commands[0]", "not an allowed verb"),
    ("systemctl-show-pager", cmd(SYSTEMCTL, "show", "x.service"), "commands[0]", "--no-pager"),
    ("systemctl-status-pager", cmd(SYSTEMCTL, "status", "x.service"), "commands[0]", "--no-pager"),
    ("systemctl-cat-pager", cmd(SYSTEMCTL, "cat", "x.service"), "commands[0]", "--no-pager"),
    ("systemctl-host", cmd(SYSTEMCTL, "--host=root@evil", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-host-abbrev", cmd(SYSTEMCTL, "--ho=root@evil", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-H-attached", cmd(SYSTEMCTL, "-Hevil", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-H-separate", cmd(SYSTEMCTL, "-H", "evil", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-root", cmd(SYSTEMCTL, "--root=/srv", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-root-abbrev", cmd(SYSTEMCTL, "--roo=/srv", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-image", cmd(SYSTEMCTL, "--image=/srv/x.raw", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-machine", cmd(SYSTEMCTL, "-Mother", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-user", cmd(SYSTEMCTL, "--user", "start", "x.service"), "commands[0]", "not an option"),
    ("systemctl-allowed-abbrev", cmd(SYSTEMCTL, "--no-pag", "status", "x.service"), "commands[0]", "not an option"),
    ("systemctl-flag-with-value", cmd(SYSTEMCTL, "--no-pager=1", "status", "x.service"), "commands[0]",
     "not an option"),
    ("systemctl-property", cmd(SYSTEMCTL, "-p", "Id", "show", "x.service"), "commands[0]", "not an option"),
    ("systemctl-dashdash", cmd(SYSTEMCTL, "status", "--", "--no-pager"), "commands[0]", "'systemctl --'"),
    ("systemctl-two-units", cmd(SYSTEMCTL, "start", UNIT, "ssh.service"), "commands[0]", "one unit per rule"),
    ("systemctl-option-after-unit", cmd(SYSTEMCTL, "start", UNIT, "--no-block"), "commands[0]", "last argument"),
    ("systemctl-path-unit", cmd(SYSTEMCTL, "enable", "/tmp/evil.service"), "commands[0]", "path argument"),
    ("systemctl-template", cmd(SYSTEMCTL, "start", "openfortivpn@.service"), "commands[0]", "template"),
    ("systemctl-no-suffix", cmd(SYSTEMCTL, "start", "ssh"), "commands[0]", "must end with"),
    ("systemctl-no-verb", cmd(SYSTEMCTL), "commands[0]", "needs a verb"),
    ("systemctl-no-unit", cmd(SYSTEMCTL, "start"), "commands[0]", "needs the unit"),
    ("systemctl-now-with-start", cmd(SYSTEMCTL, "--now", "start", "x.service"), "commands[0]", "--now"),
    ("journalctl-pager", cmd(JOURNALCTL, "--unit=x.service"), "commands[0]", "--no-pager"),
    ("journalctl-separate-unit", cmd(JOURNALCTL, "--no-pager", "-u", "x.service"), "commands[0]", "joined"),
    ("journalctl-unit-not-last", cmd(JOURNALCTL, "--no-pager", "--unit=x.service", "-n5"), "commands[0]",
     "last argument"),
    ("journalctl-two-units", cmd(JOURNALCTL, "--no-pager", "-ua.service", "-ub.service"), "commands[0]",
     "last argument"),
    ("journalctl-directory", cmd(JOURNALCTL, "--no-pager", "--directory=/var/log/journal"), "commands[0]",
     "not an allowed option"),
    ("journalctl-directory-abbrev", cmd(JOURNALCTL, "--no-pager", "--direc=/var/log"), "commands[0]",
     "not an allowed option"),
    ("journalctl-D", cmd(JOURNALCTL, "--no-pager", "-D/var/log/journal"), "commands[0]", "not an allowed option"),
    ("journalctl-file", cmd(JOURNALCTL, "--no-pager", "--file=/var/log/x.journal"), "commands[0]",
     "not an allowed option"),
    ("journalctl-root", cmd(JOURNALCTL, "--no-pager", "--root=/srv"), "commands[0]", "not an allowed option"),
    ("journalctl-machine", cmd(JOURNALCTL, "--no-pager", "-Mother"), "commands[0]", "not an allowed option"),
    ("journalctl-merge", cmd(JOURNALCTL, "--no-pager", "-m"), "commands[0]", "not an allowed option"),
    ("journalctl-vacuum", cmd(JOURNALCTL, "--no-pager", "--vacuum-size=1"), "commands[0]", "not an allowed option"),
    ("journalctl-short-equals", cmd(JOURNALCTL, "--no-pager", "-n=5"), "commands[0]", "getopt hands"),
    ("journalctl-bad-lines", cmd(JOURNALCTL, "--no-pager", "--lines=many"), "commands[0]", "number of lines"),
    ("journalctl-bad-output", cmd(JOURNALCTL, "--no-pager", "-oxml"), "commands[0]", "output format"),
    ("journalctl-empty-value", cmd(JOURNALCTL, "--no-pager", "--since="), "commands[0]", "joined"),
    ("journalctl-dashdash", cmd(JOURNALCTL, "--no-pager", "--", "-u"), "commands[0]", "not an allowed option"),
    ("journalctl-positional-path", cmd(JOURNALCTL, "--no-pager", "/usr/bin/sudo"), "commands[0]", "positional"),
    ("paged-tool-no-pager-missing", tool("loginctl", "list-sessions"), "commands[0]", "--no-pager first"),
    ("paged-tool-no-pager-late", tool("networkctl", "status", "--no-pager"), "commands[0]", "--no-pager first"),
    ("dmesg-human-pager", tool("dmesg", "-H"), "commands[0]", "pager"),
    ("dmesg-nopager-late", tool("dmesg", "-H", "--nopager"), "commands[0]", "--nopager first"),
    ("ip-netns-exec", tool("ip", "netns", "exec", "x", "/usr/bin/id"), "commands[0]", "runs other"),
    ("ip-netns-exec-abbrev", tool("ip", "netns", "e", "x", "/usr/bin/id"), "commands[0]", "runs other"),
    ("ip-batch", tool("ip", "-batch", "/etc/x"), "commands[0]", "runs other"),
    ("service-status", tool("service", "ssh", "status"), "commands[0]", "pager"),
    # --- sudoers syntax and the command itself ------------------------------------------------
    ("command-ALL", {"commands": ["ALL"]}, "commands[0]", "'ALL'"),
    ("argument-ALL", cmd("/usr/bin/id", "ALL"), "commands[0]", "'ALL'"),
    ("relative-command", cmd("systemctl", "start", "x.service"), "commands[0]", "absolute"),
    ("dotdot-command", cmd("/usr/bin/../bin/id"), "commands[0]", "normalised"),
    ("missing-binary", cmd("/usr/bin/no-such-binary-xyz"), "commands[0]", "does not exist"),
    ("symlinked-dir-binary", cmd("/bin/id"), "commands[0]", "symlink"),
    ("directory-not-binary", cmd("/usr/bin"), "commands[0]", "regular file"),
    ("wildcard-star-arg", cmd(SYSTEMCTL, "start", "openfortivpn@*"), "commands[0]", "wildcard"),
    ("wildcard-question", cmd("/usr/bin/id", "?"), "commands[0]", "wildcard"),
    ("wildcard-bracket", cmd("/usr/bin/id", "[a]"), "commands[0]", "wildcard"),
    ("backslash-arg", cmd("/usr/bin/id", "a\\,b"), "commands[0]", "escape"),
    ("wildcard-in-path", cmd("/usr/bin/i*"), "commands[0]", "wildcard"),
    ("space-in-arg", cmd("/usr/bin/id", "-c /etc/x"), "commands[0]", "cannot be written safely"),
    ("tab-in-arg", cmd("/usr/bin/id", "a\tb"), "commands[0]", "single line"),
    ("quote-in-arg", cmd("/usr/bin/id", '""'), "commands[0]", "cannot be written safely"),
    ("hash-arg", cmd("/usr/bin/id", "#0"), "commands[0]", "cannot be written safely"),
    ("bang-arg", cmd("/usr/bin/id", "!x"), "commands[0]", "cannot be written safely"),
    ("dollar-regex-arg", cmd("/usr/bin/id", "^a$"), "commands[0]", "cannot be written safely"),
    ("empty-arg", cmd("/usr/bin/id", ""), "commands[0]", "empty argument"),
    ("newline-arg", cmd("/usr/bin/id", "a\nroot ALL=(ALL) ALL"), "commands[0]", "single line"),
    ("lookalike-arg", cmd("/usr/bin/id", "\u2010u"), "commands[0]", "cannot be written safely"),
    ("path-trailing-newline", cmd("/usr/bin/id\n"), "commands[0]", "single line"),
    ("unsplittable-string", {"commands": ["/usr/bin/id 'unterminated"]}, "commands[0]", "split"),
    ("not-a-list", {"commands": [{"cmd": "/usr/bin/id"}]}, "commands[0]", "argv list"),
    ("non-string-arg", {"commands": [["/usr/bin/id", ["-u"]]]}, "commands[0]", "must be a string"),
    ("empty-entry", {"commands": [[]]}, "commands[0]", "empty"),
    ("no-commands", {"commands": []}, "commands", "at least one"),
    # --- names and principals -----------------------------------------------------------------
    ("name-with-dot", {"name": "ci.conf"}, "name", "silently ignored"),
    ("name-with-tilde", {"name": "ci~"}, "name", "silently ignored"),
    ("name-with-slash", {"name": "../sudoers"}, "name", "ignored"),
    ("name-with-space", {"name": "c i"}, "name", "letters, digits"),
    ("name-leading-dash", {"name": "-ci"}, "name", "letters, digits"),
    ("name-include", {"name": "@include"}, "name", "letters, digits"),
    ("name-too-long", {"name": "n" * 65}, "name", "at most 64"),
    ("name-trailing-newline", {"name": "ci\n"}, "name", "single line"),
    ("no-grantee", {"user": None}, "user", "required"),
    ("user-ALL", {"user": "ALL"}, "user", "'ALL'"),
    ("user-percent", {"user": "%sudo"}, "user", "plain user"),
    ("user-newline", {"user": "nobody\nALL ALL=(ALL) ALL"}, "user", "single line"),
    ("user-missing", {"user": "no-such-user-xyz"}, "user", "does not exist"),
    ("user-root", {"user": "root"}, "user", "root"),
    ("user-caps-alias", {"user": "ADMINS"}, "user", "alias"),
    ("user-Defaults", {"user": "Defaults"}, "user", "keyword"),
    ("user-uid", {"user": "#0"}, "user", "plain user"),
    ("user-netgroup", {"user": "+admins"}, "user", "plain user"),
    ("user-list", {"user": "nobody,root"}, "user", "plain user"),
    ("user-lookalike", {"user": "nob\u043edy"}, "user", "plain user"),
    ("group-missing", {"user": None, "group": "no-such-group-xyz"}, "group", "does not exist"),
    ("group-caps-alias", {"user": None, "group": "WHEEL"}, "group", "alias"),
    ("runas-ALL", {"runas": "ALL"}, "runas", "'ALL'"),
    ("runas-uid", {"runas": "#0"}, "runas", "plain user"),
    ("runas-missing", {"runas": "no-such-user-xyz"}, "runas", "does not exist"),
    ("lock-timeout-bad", {"lock_timeout": "soon"}, "lock_timeout", "time span"),
    ("visudo-untrusted", _loose_visudo, "visudo", "not trusted"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_catalogue(run_module, env, snapshot_tree, case):
    _id, overrides, field, words = case
    if callable(overrides):
        overrides = overrides(env)
    before = snapshot_tree(str(env.dir))
    result = run_module(sudoers_exact.main, env.args(**overrides), diff=True)
    assert result.get("failed"), result
    assert result["msg"].startswith(f"{field}:"), result["msg"]
    assert words in result["msg"], result["msg"]
    assert snapshot_tree(str(env.dir)) == before  # sudoers.d byte for byte, owners and modes too
    assert env.calls() == []  # not even visudo ran
    assert not result.get("changed")


def test_catalogue_size():
    """The figure reported for the catalogue (every class of the issue, plus the members found)."""
    assert len(BAD) >= 200, len(BAD)
