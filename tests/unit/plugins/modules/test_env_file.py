"""env_file: quoting that systemd reads back exactly, secrecy of values, and refusals that write nothing."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat

import pytest
from ansible_collections.supervised.background.plugins.modules import env_file
from ansible_collections.supervised.background.plugins.modules.env_file import parse, quote_value, render

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
SECRET = "s3cr3t-'$HOME'-\"x\""

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
    ("ünïcødé ✓ 日本", "'ünïcødé ✓ 日本'"),
    ("it's", '"it\'s"'),
    ("'", '"\'"'),
    ("it's $HOME", '"it\'s \\$HOME"'),
    ("it's `id`", '"it\'s \\`id\\`"'),
    ("it's \"q\"", '"it\'s \\"q\\""'),
    ("it's a\\b\\", '"it\'s a\\\\b\\\\"'),
    ("it's  ", '"it\'s  "'),
    ("it's \\n", '"it\'s \\\\n"'),
]


@pytest.mark.parametrize("value,written", TRICKY)
def test_quoting_is_exact_and_reads_back(value, written):
    assert quote_value(value) == written
    text = render({"K": value, "OTHER": "x"})
    assert f"K={written}\n" in text
    assert parse(text) == {"K": value, "OTHER": "x"}


def test_parser_matches_systemd_rules():
    # Cases taken from the behaviour of systemd's env-file state machine.
    text = (
        "# comment\n; also a comment\n"
        "a=a\n  b  =  b  \n"
        "c='  c  '\n"
        "d=\"d \\$ \\x \\\\\"\n"
        "e=x\\\ny\n"
        "f=\n"
        "g='one'two\" three\"\n"
        "h=not # a comment\n"
    )
    assert parse(text) == {
        "a": "a", "b": "b", "c": "  c  ", "d": "d $ \\x \\", "e": "xy", "f": "",
        "g": 'onetwo" three"', "h": "not # a comment",
    }


def test_all_tricky_values_in_one_file_round_trip():
    env = {f"K{i}": value for i, (value, _w) in enumerate(TRICKY)}
    assert parse(render(env)) == env


def test_keys_sorted_and_header():
    text = render({"B": "2", "A": "1", "_C": "3"})
    assert text.splitlines() == [env_file.HEADER.strip(), "A='1'", "B='2'", "_C='3'"]


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
    assert res["changed_keys"] == {"added": ["DB_PASSWORD", "DEBUG", "PORT"], "removed": [], "changed": []}
    assert "DB_PASSWORD=<redacted, added>" in res["diff"]["after"]
    _no_secret(res, SECRET, "5432")
    again = run_module(env_file.main, _args(target, env=env), diff=True)
    assert again["changed"] is False and "diff" not in again


def test_change_and_remove_keys_redacted(run_module, tmp_path):
    target = tmp_path / "app.env"
    run_module(env_file.main, _args(target, env={"A": "old-secret", "B": "keep", "C": "gone-secret"}))
    res = run_module(env_file.main, _args(target, env={"A": "new-secret", "B": "keep"}), diff=True)
    assert res["changed"] is True
    assert res["changed_keys"] == {"added": [], "removed": ["C"], "changed": ["A"]}
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
    assert res["changed_keys"]["removed"] == ["A"]
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
    _no_secret(res, SECRET)


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


@pytest.mark.parametrize("mode", [0o775, 0o777, 0o757])
def test_loose_parent_refused(run_module, tmp_path, snapshot_tree, mode):
    parent = tmp_path / "loose"
    parent.mkdir()
    os.chmod(parent, mode)
    before = snapshot_tree(tmp_path)
    res = run_module(env_file.main, _args(parent / "app.env", env={"A": SECRET}))
    assert res.get("failed") is True and "path" in res["msg"] and "writable" in res["msg"]
    assert snapshot_tree(tmp_path) == before


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
    assert res["changed"] is True and res["changed_keys"]["added"] == ["A"]
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


def test_parent_reached_through_trusted_symlink_is_fine(run_module, tmp_path):
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(safe)
    res = run_module(env_file.main, _args(tmp_path / "link" / "app.env", env={"A": SECRET}))
    assert res["changed"] is True and (safe / "app.env").is_file()
