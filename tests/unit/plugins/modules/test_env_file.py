"""env_file: the module end to end on a temp tree: secrecy of values, diffs, check mode, and the
bad-input catalogue (every refusal leaves the tree exactly as it was). Quoting and parsing rules are
tested in module_utils/test_env_rules.py; the round trip through a running service in Molecule."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat

import pytest
from ansible_collections.supervised.background.plugins.module_utils import env_rules, secret_files
from ansible_collections.supervised.background.plugins.modules import env_file

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
SECRET = "s3cr3t-'$HOME'-\"x\""


def parse(text):
    return env_rules.parse_file(text)


def render(env):
    return env_rules.render_file(secret_files.ENV_HEADER, env)


def _args(path, **kw):
    args = {"path": str(path), "owner": OWNER, "group": GROUP}
    args.update(kw)
    return args


def _no_secret(result, *secrets):
    blob = json.dumps(result)
    for secret in secrets:
        assert secret not in blob


def test_write_mode_idempotent_and_redacted(run_module, tmp_path):
    target = tmp_path / "app.env"
    env = {"DB_PASSWORD": SECRET, "PORT": 5432, "DEBUG": False}
    res = run_module(env_file.main, _args(target, env=env), diff=True)
    assert res["changed"] is True, res
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o600
    assert parse(target.read_text()) == {"DB_PASSWORD": SECRET, "PORT": "5432", "DEBUG": "false"}
    assert res["changed_variables"] == {"added": ["DB_PASSWORD", "DEBUG", "PORT"], "removed": [], "changed": []}
    assert res["variables"] == ["DB_PASSWORD", "DEBUG", "PORT"] and res["path"] == str(target)
    assert "DB_PASSWORD=<redacted, added>" in res["diff"]["after"]
    _no_secret(res, SECRET, "5432")
    again = run_module(env_file.main, _args(target, env=env), diff=True)
    assert again["changed"] is False and "diff" not in again


def test_change_and_remove_keys_redacted(run_module, tmp_path):
    target = tmp_path / "app.env"
    run_module(env_file.main, _args(target, env={"A": "old-secret", "B": "keep", "C": "gone-secret"}))
    res = run_module(env_file.main, _args(target, env={"A": "new-secret", "B": "keep"}), diff=True)
    assert res["changed"] is True
    assert res["changed_variables"] == {"added": [], "removed": ["C"], "changed": ["A"]}
    assert res["diff"]["before"] == "A=<redacted>\nB=<redacted>\nC=<redacted>\n"
    assert res["diff"]["after"] == "A=<redacted, changed>\nB=<redacted>\n"
    _no_secret(res, "old-secret", "new-secret", "gone-secret", "keep")


def test_check_mode_writes_nothing(run_module, tmp_path, snapshot_tree):
    target = tmp_path / "app.env"
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(target, env={"A": SECRET}), check_mode=True, diff=True)
    assert res["changed"] is True
    assert snapshot_tree(tmp_path) == before
    _no_secret(res, SECRET)


def test_mode_tightened_from_loose_file(run_module, tmp_path):
    target = tmp_path / "app.env"
    target.write_text(render({"A": "x"}))
    os.chmod(target, 0o644)
    res = run_module(env_file.main, _args(target, env={"A": "x"}))
    assert res["changed"] is True
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o600


def test_absent(run_module, tmp_path):
    target = tmp_path / "app.env"
    run_module(env_file.main, _args(target, env={"A": SECRET}))
    res = run_module(env_file.main, _args(target, state="absent"), diff=True)
    assert res["changed"] is True and not target.exists()
    assert res["changed_variables"]["removed"] == ["A"]
    _no_secret(res, SECRET)
    assert run_module(env_file.main, _args(target, state="absent"))["changed"] is False


def test_absent_parent_missing_is_ok(run_module, tmp_path):
    res = run_module(env_file.main, _args(tmp_path / "nope" / "x.env", state="absent"))
    assert res["changed"] is False


BAD = [
    ("relative path", {"path": "relative.env"}, "path"),
    ("path with newline", {"path": "{d}/a\nb.env"}, "path"),
    ("path with dot-dot", {"path": "{d}/../x.env"}, "path"),
    ("key starts with digit", {"env": {"1BAD": "x"}}, "env"),
    ("key with dash", {"env": {"BAD-KEY": "x"}}, "env"),
    ("key with space", {"env": {"BAD KEY": "x"}}, "env"),
    ("key with equals", {"env": {"A=B": "x"}}, "env"),
    ("newline in value", {"env": {"SECRET_KEY": SECRET + "\nINJECTED=1"}}, "SECRET_KEY"),
    ("CR in value", {"env": {"SECRET_KEY": SECRET + "\r"}}, "SECRET_KEY"),
    ("NUL in value", {"env": {"SECRET_KEY": SECRET + "\x00"}}, "SECRET_KEY"),
    ("tab in value", {"env": {"SECRET_KEY": SECRET + "\t"}}, "SECRET_KEY"),
    ("escape char in value", {"env": {"SECRET_KEY": SECRET + "\x1b[0m"}}, "SECRET_KEY"),
    ("null value", {"env": {"SECRET_KEY": None}}, "SECRET_KEY"),
    ("list value", {"env": {"SECRET_KEY": [SECRET]}}, "SECRET_KEY"),
    ("mode 0644", {"mode": "0644"}, "mode"),
    ("mode 0640", {"mode": "0640"}, "mode"),
    ("mode 0604", {"mode": "0604"}, "mode"),
    ("mode 0660", {"mode": "0660"}, "mode"),
    ("mode not octal", {"mode": "rw-------"}, "mode"),
    ("unknown owner", {"owner": "no-such-user-xyz"}, "owner"),
    ("unknown group", {"group": "no-such-group-xyz"}, "group"),
    # Keys systemd sets for the service: an EnvironmentFile overrides them (measured on systemd 252).
    ("reserved NOTIFY_SOCKET", {"env": {"NOTIFY_SOCKET": "/run/x", "SECRET_KEY": SECRET}}, "NOTIFY_SOCKET"),
    ("reserved INVOCATION_ID", {"env": {"INVOCATION_ID": SECRET}}, "INVOCATION_ID"),
    ("reserved LISTEN_FDS", {"env": {"LISTEN_FDS": "3"}}, "LISTEN_FDS"),
    ("reserved MONITOR_ prefix", {"env": {"MONITOR_SERVICE_RESULT": "x"}}, "MONITOR_SERVICE_RESULT"),
    ("reserved STATE_DIRECTORY", {"env": {"STATE_DIRECTORY": "/tmp"}}, "STATE_DIRECTORY"),
    # execve() refuses one KEY=value over 131071 bytes: the service would fail with 203/EXEC.
    ("value over MAX_ARG_STRLEN", {"env": {"SECRET_KEY": SECRET + "y" * 131072}}, "SECRET_KEY"),
    ("value just over the limit", {"env": {"BIG": "y" * (131072 - len("BIG="))}}, "BIG"),
    ("variables over 1 MiB in total", {"env": {f"K{i}": "z" * 120000 for i in range(10)}}, "env"),
    ("lone surrogate in value", {"env": {"SECRET_KEY": SECRET + "\udc80"}}, "SECRET_KEY"),
    ("mode as unquoted decimal 600", {"mode": 600}, "mode"),
    ("mode as bool", {"mode": True}, "mode"),
    # The trailing-newline class: keys and names are matched whole.
    ("key with trailing newline", {"env": {"LEAK\n": SECRET}}, "LEAK\\u000a"),
    ("owner with trailing newline", {"owner": "root\n"}, "owner"),
    ("group with trailing newline", {"group": "root\n"}, "group"),
    ("path with trailing newline", {"path": "{d}/app.env\n"}, "path"),
    # Everything some reader splits a line at, or systemd refuses and logs.
    ("U+2028 in value", {"env": {"SECRET_KEY": SECRET + "\u2028INJECTED=1"}}, "SECRET_KEY"),
    ("U+2029 in value", {"env": {"SECRET_KEY": SECRET + "\u2029"}}, "SECRET_KEY"),
    ("NEL in value", {"env": {"SECRET_KEY": SECRET + "\x85"}}, "SECRET_KEY"),
    ("C1 CSI in value", {"env": {"SECRET_KEY": SECRET + "\x9b"}}, "SECRET_KEY"),
    ("vertical tab in value", {"env": {"SECRET_KEY": SECRET + "\x0b"}}, "SECRET_KEY"),
    ("DEL in value", {"env": {"SECRET_KEY": SECRET + "\x7f"}}, "SECRET_KEY"),
    ("noncharacter U+FDD0", {"env": {"SECRET_KEY": SECRET + "\ufdd0"}}, "SECRET_KEY"),
    ("noncharacter U+FFFE", {"env": {"SECRET_KEY": SECRET + "\ufffe"}}, "SECRET_KEY"),
    ("noncharacter U+10FFFF", {"env": {"SECRET_KEY": SECRET + "\U0010ffff"}}, "SECRET_KEY"),
    ("a good key before a bad value", {"env": {"A_OK": "fine", "B_BAD": SECRET + "\n"}}, "B_BAD"),
    ("dict value", {"env": {"SECRET_KEY": {"nested": SECRET}}}, "SECRET_KEY"),
    ("env not a mapping", {"env": [SECRET]}, "env"),
    ("lock_timeout not a time", {"lock_timeout": "soon"}, "lock_timeout"),
    ("state unknown", {"state": "gone"}, "state"),
]


@pytest.mark.parametrize("label,override,field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_refused_and_nothing_written(run_module, tmp_path, snapshot_tree, label, override, field):
    (tmp_path / "keep.env").write_text("KEEP='1'\n")
    os.chmod(tmp_path / "keep.env", 0o600)
    args = _args(tmp_path / "app.env", env={"SECRET_KEY": SECRET})
    for key, value in override.items():
        args[key] = value.format(d=tmp_path) if isinstance(value, str) else value
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, args, diff=True)
    assert res.get("failed") is True, (label, res)
    assert field in res["msg"], (label, res["msg"])
    assert snapshot_tree(tmp_path) == before
    _no_secret(res, SECRET, SECRET[:8], SECRET[-8:])


def test_symlink_at_target_refused(run_module, tmp_path, snapshot_tree):
    real = tmp_path / "real.env"
    real.write_text("X='1'\n")
    (tmp_path / "app.env").symlink_to(real)
    before = snapshot_tree(tmp_path)
    for state in ("present", "absent"):
        res = run_module(env_file.main, _args(tmp_path / "app.env", env={"A": SECRET}, state=state))
        assert res.get("failed") is True and "path" in res["msg"] and "symlink" in res["msg"]
        assert snapshot_tree(tmp_path) == before
        _no_secret(res, SECRET)


@pytest.mark.parametrize("mode", [0o775, 0o777, 0o757, 0o1777])
def test_loose_parent_refused(run_module, tmp_path, snapshot_tree, mode):
    parent = tmp_path / "loose"
    parent.mkdir()
    os.chmod(parent, mode)
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(parent / "app.env", env={"A": SECRET}))
    assert res.get("failed") is True and res["msg"].startswith("path:") and "writable by no one else" in res["msg"]
    assert snapshot_tree(tmp_path) == before
    _no_secret(res, SECRET)


def test_missing_parent_refused(run_module, tmp_path, snapshot_tree):
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(tmp_path / "missing" / "app.env", env={"A": SECRET}))
    assert res.get("failed") is True and "path" in res["msg"] and "does not exist" in res["msg"]
    assert snapshot_tree(tmp_path) == before


def test_no_log_values_hold_every_value(monkeypatch, run_module, tmp_path):
    seen = {}
    real_run = env_file.EnvFile.run

    def spy(self):
        try:
            return real_run(self)
        finally:
            seen["values"] = set(self.module.no_log_values)

    monkeypatch.setattr(env_file.EnvFile, "run", spy)
    run_module(env_file.main, _args(tmp_path / "a.env", env={"A": SECRET, "B": "other-secret"}))
    assert {SECRET, "other-secret"} <= seen["values"]


def test_missing_parent_in_check_mode_is_a_planned_change(run_module, tmp_path, snapshot_tree):
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(tmp_path / "later" / "app.env", env={"A": SECRET}), check_mode=True, diff=True)
    assert res["changed"] is True and res["changed_variables"]["added"] == ["A"]
    assert res["diff"]["after"] == "A=<redacted, added>\n"
    assert snapshot_tree(tmp_path) == before
    _no_secret(res, SECRET)


def test_longest_value_the_kernel_passes_is_accepted(run_module, tmp_path):
    # 131071 bytes for "BIG=value" is the largest assignment a service started with (systemd 252).
    value = "y" * (131071 - len("BIG="))
    res = run_module(env_file.main, _args(tmp_path / "a.env", env={"BIG": value}))
    assert res["changed"] is True and parse((tmp_path / "a.env").read_text()) == {"BIG": value}


def test_mode_as_int_is_used_as_is(run_module, tmp_path):
    res = run_module(env_file.main, _args(tmp_path / "a.env", env={"A": "1"}, mode=0o400))
    assert res["changed"] is True and stat.S_IMODE(os.lstat(tmp_path / "a.env").st_mode) == 0o400


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another user")


@needs_root
@pytest.mark.parametrize("state", ["present", "absent"])
def test_ancestor_owned_by_another_user_refused(run_module, tmp_path, snapshot_tree, state):
    # /srv/app owned by the worker's user, /srv/app/etc root 0700: the worker could rename etc/ away
    # and put its own directory (or a symlink) in its place between our checks and the rename.
    owned = tmp_path / "app"
    owned.mkdir()
    (owned / "etc").mkdir(mode=0o700)
    (owned / "etc" / "app.env").write_text("A='old-secret'\n")
    os.chmod(owned / "etc" / "app.env", 0o600)
    os.chown(owned, 65534, 65534)
    os.chmod(owned, 0o755)
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(owned / "etc" / "app.env", env={"A": SECRET}, state=state))
    assert res.get("failed") is True and "path" in res["msg"] and str(owned) in res["msg"], res
    assert snapshot_tree(tmp_path) == before
    _no_secret(res, SECRET, "old-secret")


@needs_root
def test_parent_reached_through_symlink_in_foreign_dir_refused(run_module, tmp_path, snapshot_tree):
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o700)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)
    (foreign / "link").symlink_to(safe)
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(foreign / "link" / "app.env", env={"A": SECRET}))
    assert res.get("failed") is True and str(foreign) in res["msg"], res
    assert snapshot_tree(tmp_path) == before


def test_ancestor_reached_through_trusted_symlink_is_fine(run_module, tmp_path):
    safe = tmp_path / "safe"
    (safe / "etc").mkdir(parents=True, mode=0o700)
    (tmp_path / "link").symlink_to(safe)
    res = run_module(env_file.main, _args(tmp_path / "link" / "etc" / "app.env", env={"A": SECRET}))
    assert res["changed"] is True and (safe / "etc" / "app.env").is_file()


def test_directory_that_is_itself_a_symlink_is_refused(run_module, tmp_path, snapshot_tree):
    # The trust policy wants a secret's directory named by its real path.
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(safe)
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(tmp_path / "link" / "app.env", env={"A": SECRET}))
    assert res.get("failed") is True and "is a symlink" in res["msg"] and res["msg"].startswith("path:"), res
    assert snapshot_tree(tmp_path) == before


def test_hand_edited_previous_file_leaks_nothing(run_module, tmp_path):
    """Secrets in comments, under unknown or invalid keys, and values of keys that go away."""
    target = tmp_path / "app.env"
    target.write_text("# old token: hand-secret-1\n; hand-secret-2\nexport TOKEN=hand-secret-3\n"
                      "hand-secret-4\nGONE='hand-secret-5'\nA=\"hand-secret-6\"\n")
    os.chmod(target, 0o600)
    res = run_module(env_file.main, _args(target, env={"A": SECRET}), diff=True)
    assert res["changed"] is True
    assert res["changed_variables"] == {"added": [], "removed": ["GONE"], "changed": ["A"]}
    assert res["diff"]["before"] == "A=<redacted>\nGONE=<redacted>\n<redacted> (1 more lines)\n"
    for n in range(1, 7):
        _no_secret(res, f"hand-secret-{n}", f"secret-{n}")
    _no_secret(res, SECRET)


def test_check_mode_diff_of_a_change(run_module, tmp_path, snapshot_tree):
    target = tmp_path / "app.env"
    run_module(env_file.main, _args(target, env={"A": "old-secret", "B": "b"}))
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(target, env={"A": "new-secret", "C": "c"}), check_mode=True, diff=True)
    assert res["changed"] is True and snapshot_tree(tmp_path) == before
    assert res["diff"]["after"] == "A=<redacted, changed>\nC=<redacted, added>\n"
    assert res["changed_variables"] == {"added": ["C"], "removed": ["B"], "changed": ["A"]}
    _no_secret(res, "old-secret", "new-secret")


def test_held_lock_times_out_and_writes_nothing(run_module, tmp_path, snapshot_tree):
    import subprocess
    import sys

    from ansible_collections.supervised.background.plugins.module_utils import locking

    target = tmp_path / "app.env"
    locking._ensure_dir(locking.LOCK_DIR)
    lock = os.path.join(locking.LOCK_DIR, locking._file_name("file", str(target)))
    code = ("import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR|os.O_CREAT, 0o600); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code, lock], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        before = snapshot_tree(tmp_path)
        res = run_module(env_file.main, _args(target, env={"A": SECRET}, lock_timeout="0.2s"))
        assert res.get("failed") is True and res.get("lock_timeout") is True
        assert res["msg"].startswith(f"lock_timeout: file {target} is being changed by")
        assert snapshot_tree(tmp_path) == before
    finally:
        proc.kill()
        proc.wait()


def test_result_keys(run_module, tmp_path):
    res = run_module(env_file.main, _args(tmp_path / "a.env", env={"B": "1", "A": "2"}))
    assert set(res) == {"changed", "path", "variables", "changed_variables"}
    assert res["variables"] == ["A", "B"]
    absent = run_module(env_file.main, _args(tmp_path / "a.env", state="absent"))
    assert absent["variables"] == [] and absent["changed_variables"]["removed"] == ["A", "B"]
