"""worker: the whole module in-process on a temp tree.

What runs for real here: input checks, the files (EnvironmentFile, credentials, unit, working
directory) through the collection's writer, systemd-analyze verify (when installed), the plan of
the instances. What is faked: systemctl (FakeSystemd answers `show` from a dict and records every
start/stop/restart/enable/daemon-reload) and the shadow tools. That a real systemd starts, restarts
and drains the instances, and that the secrets reach them, is proven in Molecule (default scenario).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time

import pytest
from ansible_collections.supervised.background.plugins.module_utils import env_rules, systemd
from ansible_collections.supervised.background.plugins.modules import worker

REAL_ANALYZE = shutil.which("systemd-analyze")
SECRET = "p@ss w0rd 'sq' \"dq\" $HOME #x =y \u00e9\U0001f600 \\back"
CRED = "line one\nline two: cred-s3cret\n"


def props(active="inactive", enabled="disabled", pid="0"):
    return {"LoadState": "loaded", "ActiveState": active, "SubState": "running" if active == "active" else "dead",
            "Result": "success", "UnitFileState": enabled, "MainPID": pid, "NRestarts": "0",
            "ActiveEnterTimestampMonotonic": str(int((time.monotonic() - 3600) * 1e6)) if active == "active" else "0"}


class FakeSystemd(systemd.Systemd):
    """systemctl as data; systemd-analyze (analyze/verify) is the real one, when installed."""

    state = {}
    calls = []
    analyze_path = REAL_ANALYZE

    def analyze(self):
        return self.analyze_path

    def show(self, units, properties=None):
        return {u: dict(self.state.get(u, props())) for u in units}

    def loaded_instances(self, name):
        return {u.split("@")[1][:-8] for u in self.state if u.startswith(name + "@")}

    def enabled_instances(self, name):
        return {u.split("@")[1][:-8] for u, s in self.state.items() if s["UnitFileState"] == "enabled"}

    def journal_tail(self, unit, lines=10, **kw):
        return [f"{unit}: journal line"]

    # UNIT_RESULT= values systemd logged per unit (what failure_results reads from the journal).
    logged_results = {}

    def failure_results(self, unit, since=None):
        return list(self.logged_results.get(unit, []))

    def _act(self, verb, units, active=None, enabled=None):
        if units:
            self.calls.append((verb, list(units)))
        for u in units:
            s = self.state.setdefault(u, props())
            if active:
                s.update(ActiveState=active, SubState="running" if active == "active" else "dead",
                         MainPID=str(int(s["MainPID"]) + 100) if active == "active" else "0",
                         ActiveEnterTimestampMonotonic=str(int(time.monotonic() * 1e6)))
            if enabled:
                s["UnitFileState"] = enabled

    def start(self, units, no_block=False):
        self._act("start", units, active="active")

    def stop(self, units):
        self._act("stop", units, active="inactive")

    def restart(self, units):
        self._act("restart", units, active="active")

    def enable(self, units):
        self._act("enable", units, enabled="enabled")

    def disable(self, units):
        self._act("disable", units, enabled="disabled")

    def reset_failed(self, units):
        self._act("reset-failed", units)

    def daemon_reload(self):
        self.calls.append(("daemon-reload", []))


@pytest.fixture
def host(provisioned_host, monkeypatch):
    """A host tree: unit dir, /etc/supervised-background, /var/lib, /var/log, /opt; fake systemctl."""
    dirs = provisioned_host(removed=lambda user: [f"user {user} removed"])
    FakeSystemd.state = {}
    FakeSystemd.calls = []
    FakeSystemd.analyze_path = REAL_ANALYZE
    monkeypatch.setattr(systemd, "Systemd", FakeSystemd)
    return dirs


def args(host, **kw):
    base = {"name": "qw", "exec_start": ["/bin/sleep", "infinity"], "count": 2, "user": "nobody",
            "group": "nogroup", "working_directory": str(host["opt"] / "qw"), "settle_sec": 0,
            "secret_env": {"DB_PASSWORD": SECRET, "PORT": 5432}, "secret_credentials": {"api_token": CRED}}
    base.update(kw)
    return base


def no_secret(result, *secrets):
    blob = json.dumps(result)
    for secret in secrets or (SECRET, CRED):
        for size in (len(secret), 8):
            for i in range(0, max(1, len(secret) - size + 1), 3):
                fragment = secret[i:i + size]
                if fragment.strip() and len(fragment) >= 4:
                    assert fragment not in blob and json.dumps(fragment)[1:-1] not in blob, fragment


def actions():
    return list(FakeSystemd.calls)


def test_first_run_writes_everything_once(run_module, host):
    res = run_module(worker.main, args(host), diff=True)
    assert res["changed"] is True, res
    env = host["own"] / "qw.env"
    st = os.lstat(env)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert env_rules.parse_file(env.read_text()) == {"DB_PASSWORD": SECRET, "PORT": "5432"}
    cred = host["own"] / "credentials" / "qw" / "api_token"
    assert cred.read_text() == CRED and stat.S_IMODE(os.lstat(cred).st_mode) == 0o600
    for d in (host["own"], host["own"] / "credentials", host["own"] / "credentials" / "qw"):
        assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    wd = os.lstat(host["opt"] / "qw")
    assert (wd.st_uid, wd.st_gid, stat.S_IMODE(wd.st_mode)) == (0, 65534, 0o750)
    unit = (host["units"] / "qw@.service").read_text()
    assert unit == res["unit_text"]
    assert f"EnvironmentFile={env}" in unit and f"LoadCredential=api_token:{cred}" in unit
    assert SECRET not in unit and "cred-s3cret" not in unit
    assert res["verified"] is (REAL_ANALYZE is not None)
    assert res["daemon_reloaded"] is True
    assert res["started"] == ["qw@1.service", "qw@2.service"] and res["restarted"] == []
    assert res["credentials"] == ["api_token"]
    assert res["changed_variables"] == {"added": ["DB_PASSWORD", "PORT"], "removed": [], "changed": []}
    assert [c[0] for c in actions()] == ["daemon-reload", "enable", "start"]
    # One diff per file and one for the instances, none with a value.
    assert isinstance(res["diff"], list) and len(res["diff"]) == 4
    headers = [d["after_header"] for d in res["diff"]]
    assert headers == [str(env), str(cred), str(host["units"] / "qw@.service"), "qw@.service instances"]
    assert res["diff"][0]["after"] == "DB_PASSWORD=<redacted, added>\nPORT=<redacted, added>\n"
    assert res["diff"][1]["after"] == "credential api_token: <redacted, added>\n"
    no_secret(res)
    assert host["accounts"] == [("ensure", "nobody", "nogroup")]


def test_rerun_changes_nothing_and_restarts_nothing(run_module, host):
    run_module(worker.main, args(host))
    FakeSystemd.calls.clear()
    again = run_module(worker.main, args(host), diff=True)
    assert again["changed"] is False, again
    assert "diff" not in again or all(d["before"] == d["after"] for d in again["diff"])
    assert actions() == [] and again["daemon_reloaded"] is False and again["verified"] is False


def test_secret_change_restarts_rolling_and_shows_no_value(run_module, host):
    run_module(worker.main, args(host))
    FakeSystemd.calls.clear()
    new = "rotated-'secret'-$x"
    res = run_module(worker.main, args(host, secret_env={"DB_PASSWORD": new, "PORT": 5432}), diff=True)
    assert res["changed"] is True and res["changed_variables"]["changed"] == ["DB_PASSWORD"]
    assert [c for c in actions() if c[0] == "restart"] == [("restart", ["qw@1.service"]), ("restart", ["qw@2.service"])]
    assert res["daemon_reloaded"] is False  # the unit did not change
    env_diff = res["diff"][0]
    assert env_diff["before"] == "DB_PASSWORD=<redacted>\nPORT=<redacted>\n"
    assert env_diff["after"] == "DB_PASSWORD=<redacted, changed>\nPORT=<redacted>\n"
    no_secret(res, SECRET, new, CRED)


def test_credential_change_restarts_all_at_once(run_module, host):
    run_module(worker.main, args(host))
    FakeSystemd.calls.clear()
    res = run_module(worker.main, args(host, secret_credentials={"api_token": "new-cred-value"},
                                       restart_strategy="all"), diff=True)
    assert [c for c in actions() if c[0] == "restart"] == [("restart", ["qw@1.service", "qw@2.service"])]
    assert any(d.get("after") == "credential api_token: <redacted, changed>\n" for d in res["diff"])
    no_secret(res, SECRET, CRED, "new-cred-value")


def test_check_mode_on_a_fresh_host_writes_nothing(run_module, host, snapshot_tree):
    before = snapshot_tree(host["root"])
    res = run_module(worker.main, args(host), check_mode=True, diff=True)
    assert res["changed"] is True, res
    assert snapshot_tree(host["root"]) == before and actions() == []
    assert res["started"] == ["qw@1.service", "qw@2.service"] and res["daemon_reloaded"] is False
    assert any(d["after"] == "DB_PASSWORD=<redacted, added>\nPORT=<redacted, added>\n" for d in res["diff"])
    no_secret(res)


def test_check_mode_after_a_real_run_is_quiet(run_module, host):
    run_module(worker.main, args(host))
    FakeSystemd.calls.clear()
    res = run_module(worker.main, args(host), check_mode=True)
    assert res["changed"] is False and actions() == []


def test_scale_down_prunes(run_module, host):
    run_module(worker.main, args(host, count=3))
    FakeSystemd.calls.clear()
    res = run_module(worker.main, args(host, count=1))
    assert res["pruned"] == ["qw@2.service", "qw@3.service"] and res["changed"] is True
    assert [c[0] for c in actions()] == ["stop", "disable", "reset-failed"]


def test_absent_removes_the_worker_and_rerun_is_quiet(run_module, host):
    run_module(worker.main, args(host))
    FakeSystemd.calls.clear()
    res = run_module(worker.main, {"name": "qw", "state": "absent", "user": "nobody", "group": "nogroup",
                                   "working_directory": str(host["opt"] / "qw")}, diff=True)
    assert res["changed"] is True, res
    assert not (host["units"] / "qw@.service").exists() and not (host["own"] / "qw.env").exists()
    assert not (host["own"] / "credentials" / "qw").exists()
    assert (host["opt"] / "qw").is_dir()  # kept without remove_working_directory
    assert res["pruned"] == ["qw@1.service", "qw@2.service"] and res["daemon_reloaded"] is True
    assert sorted(res["removed"]) == sorted([str(host["units"] / "qw@.service"), str(host["own"] / "credentials" / "qw"),
                                             str(host["own"] / "qw.env")])
    no_secret(res)
    for u in list(FakeSystemd.state):
        FakeSystemd.state[u] = props()
    FakeSystemd.calls.clear()
    again = run_module(worker.main, {"name": "qw", "state": "absent", "user": "nobody", "group": "nogroup",
                                     "working_directory": str(host["opt"] / "qw")})
    assert again["changed"] is False, again
    assert actions() == []


def test_absent_removes_only_what_is_the_workers(run_module, host):
    from ansible.module_utils.common import warnings

    run_module(worker.main, args(host))
    mine = host["var-lib"] / "qw"
    mine.mkdir()
    os.chown(mine, 65534, 65534)
    other = host["var-log"] / "qw-shared"
    other.mkdir()
    (other / "keep").write_text("x")
    res = run_module(worker.main, {"name": "qw", "state": "absent", "user": "nobody", "group": "nogroup",
                                   "working_directory": str(host["opt"] / "qw"), "remove_user": True,
                                   "remove_working_directory": True, "logs_directory": "qw-shared"})
    assert res["changed"] is True, res
    assert not mine.exists() and (other / "keep").exists()
    assert not (host["opt"] / "qw").exists()
    assert ("remove", "nobody", "nogroup") in host["accounts"]
    assert any("qw-shared is not a directory owned by nobody" in w for w in warnings.get_warning_messages())


def test_working_directory_not_made_by_the_module_is_kept(run_module, host):
    from ansible.module_utils.common import warnings

    wd = host["opt"] / "app"
    wd.mkdir(mode=0o755)
    (wd / "code.py").write_text("print()\n")
    res = run_module(worker.main, {"name": "qw", "state": "absent", "working_directory": str(wd),
                                   "remove_working_directory": True, "user": "nobody", "group": "nogroup"})
    assert res.get("failed") is not True, res
    assert (wd / "code.py").exists()
    assert any("is not the directory the worker module makes" in w for w in warnings.get_warning_messages())


def test_failure_after_a_change_says_changed(run_module, host, monkeypatch):
    def enable(self, units):
        raise systemd.SystemdError("systemctl enable -- qw@1.service failed (rc=1): Access denied")

    monkeypatch.setattr(FakeSystemd, "enable", enable)
    res = run_module(worker.main, args(host))
    assert res.get("failed") is True and "Access denied" in res["msg"]
    assert res["changed"] is True  # the files and the unit did change before systemctl failed
    no_secret(res)


@pytest.mark.skipif(REAL_ANALYZE is None, reason="systemd-analyze not installed")
def test_unit_refused_by_systemd_leaves_everything_as_it_was(run_module, host, snapshot_tree):
    run_module(worker.main, args(host))
    before = snapshot_tree(host["root"])
    accounts_before = list(host["accounts"])
    FakeSystemd.calls.clear()
    res = run_module(worker.main, args(host, exec_start=["/usr/local/bin/not-installed-qw"],
                                       secret_env={"DB_PASSWORD": "would-be-new"}))
    assert res.get("failed") is True and res["msg"].startswith("exec_start"), res
    assert "not-installed-qw is not executable" in res["msg"]
    assert res["changed"] is False
    assert snapshot_tree(host["root"]) == before and actions() == [] and host["accounts"] == accounts_before
    no_secret(res, SECRET, CRED, "would-be-new")


# -- the bad-input catalogue: each refused before anything is written -------------------------------
BAD = [
    ("name with @", {"name": "qw@"}, "name"),
    ("name with trailing newline", {"name": "qw\n"}, "name"),
    ("name with colon", {"name": "q:w"}, "name"),
    ("user with trailing newline", {"user": "nobody\n"}, "user"),
    ("numeric user", {"user": "1000"}, "user"),
    ("group with space", {"group": "no group"}, "group"),
    ("working directory /", {"working_directory": "/"}, "working_directory"),
    ("working directory /opt", {"working_directory": "/opt"}, "working_directory"),
    ("working directory /usr/local/bin", {"working_directory": "/usr/local/bin"}, "working_directory"),
    ("working directory /var/lib", {"working_directory": "/var/lib"}, "working_directory"),
    ("working directory relative", {"working_directory": "opt/qw"}, "working_directory"),
    ("working directory with ..", {"working_directory": "/opt/../etc"}, "working_directory"),
    ("state directory ..", {"state_directory": ".."}, "state_directory"),
    ("state directory absolute", {"state_directory": "/var/lib/qw"}, "state_directory"),
    ("logs directory .", {"logs_directory": "."}, "logs_directory"),
    ("secret_env_file relative", {"secret_env_file": "qw.env"}, "secret_env_file"),
    ("secret_env key reserved", {"secret_env": {"NOTIFY_SOCKET": SECRET}}, "NOTIFY_SOCKET"),
    ("secret_env key invalid", {"secret_env": {"DB-PASSWORD": SECRET}}, "DB-PASSWORD"),
    ("secret_env key trailing newline", {"secret_env": {"LEAK\n": SECRET}}, "secret_env"),
    ("secret_env value newline", {"secret_env": {"DB_PASSWORD": SECRET + "\nX=1"}}, "DB_PASSWORD"),
    ("secret_env value U+2028", {"secret_env": {"DB_PASSWORD": SECRET + "\u2028"}}, "DB_PASSWORD"),
    ("secret_env value NEL", {"secret_env": {"DB_PASSWORD": SECRET + "\x85"}}, "DB_PASSWORD"),
    ("secret_env value noncharacter", {"secret_env": {"DB_PASSWORD": SECRET + "\ufffe"}}, "DB_PASSWORD"),
    ("secret_env value null", {"secret_env": {"DB_PASSWORD": None}}, "DB_PASSWORD"),
    ("secret_env value too long", {"secret_env": {"DB_PASSWORD": SECRET + "y" * 131072}}, "DB_PASSWORD"),
    ("credential id with slash", {"secret_credentials": {"a/b": CRED}}, "secret_credentials"),
    ("credential id with trailing newline", {"secret_credentials": {"tok\n": CRED}}, "secret_credentials"),
    ("credential value surrogate", {"secret_credentials": {"tok": CRED + "\udc80"}}, "secret_credentials.tok"),
    ("credential also in credentials", {"credentials": {"api_token": "/etc/x"}}, "secret_credentials.api_token"),
    ("exec_start relative", {"exec_start": ["sleep", "1"]}, "exec_start"),
    ("exec_start arg newline", {"exec_start": ["/bin/sleep", "1\nExecStartPre=+/bin/sh"]}, "exec_start[1]"),
    ("settings refused", {"settings": {"ExecStartPre": "+/bin/sh -c id"}}, "settings.ExecStartPre"),
    ("settings unknown", {"settings": {"Frobnicate": "1"}}, "settings.Frobnicate"),
    ("count negative", {"count": -1}, "count"),
    ("instance with space", {"instances": ["a b"]}, "instances"),
    ("settle too long", {"settle_sec": "2h"}, "settle_sec"),
    ("lock_timeout bad", {"lock_timeout": "eventually"}, "lock_timeout"),
    ("restart_strategy bad", {"restart_strategy": "some"}, "restart_strategy"),
    ("environment secret-looking value newline", {"environment": {"A": "x\ny"}}, "environment"),
]


@pytest.mark.parametrize("label,override,field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_refused_and_nothing_changed(run_module, host, snapshot_tree, label, override, field):
    run_module(worker.main, args(host))
    before = snapshot_tree(host["root"])
    accounts_before = list(host["accounts"])
    FakeSystemd.calls.clear()
    res = run_module(worker.main, args(host, **override), diff=True)
    assert res.get("failed") is True, (label, res)
    assert field in res["msg"], (label, res["msg"])
    assert snapshot_tree(host["root"]) == before, label
    assert actions() == [] and host["accounts"] == accounts_before, label
    assert not res.get("changed")
    no_secret(res)


def test_catalogue_is_large_enough():
    assert len(BAD) >= 35


def test_secret_env_file_in_a_shared_directory_leaves_it_as_it_is(run_module, host):
    shared = host["etc"] / "queue"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    res = run_module(worker.main, args(host, secret_env_file=str(shared / "qw.env")))
    assert res["changed"] is True, res
    assert stat.S_IMODE(os.lstat(shared).st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(shared / "qw.env").st_mode) == 0o600


ABSENT_BAD = [
    ("state directory ..", {"state_directory": ".."}, "state_directory"),
    ("state directory .", {"state_directory": "."}, "state_directory"),
    ("state directory ../..", {"state_directory": "../../etc"}, "state_directory"),
    ("logs directory absolute", {"logs_directory": "/var/log"}, "logs_directory"),
    ("working directory /", {"working_directory": "/"}, "working_directory"),
    ("working directory /etc/ssl", {"working_directory": "/etc/ssl"}, "working_directory"),
]


@pytest.mark.parametrize("label,override,field", ABSENT_BAD, ids=[b[0] for b in ABSENT_BAD])
def test_absent_refuses_paths_that_would_remove_the_system(run_module, host, snapshot_tree, label, override, field):
    """state=absent with remove_user/remove_working_directory once ran shutil.rmtree on
    /var/lib/.. (that is /var) or on /."""
    run_module(worker.main, args(host))
    before = snapshot_tree(host["root"])
    FakeSystemd.calls.clear()
    params = {"name": "qw", "state": "absent", "user": "nobody", "group": "nogroup", "remove_user": True,
              "remove_working_directory": True, "working_directory": str(host["opt"] / "qw")}
    params.update(override)
    res = run_module(worker.main, params)
    assert res.get("failed") is True and res["msg"].startswith(field), (label, res)
    assert snapshot_tree(host["root"]) == before and actions() == []


def test_without_systemd_analyze_one_warning_and_the_unit_lands(run_module, host):
    from ansible.module_utils.common import warnings

    FakeSystemd.analyze_path = None
    res = run_module(worker.main, args(host))
    assert res["changed"] is True and res["verified"] is False
    assert sum("without verification" in w for w in warnings.get_warning_messages()) == 1
