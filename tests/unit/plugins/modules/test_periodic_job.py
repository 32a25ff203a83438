"""periodic_job: the whole module in-process on a temp tree.

What runs for real: input checks, the files (EnvironmentFile, credentials, service, timer) through the
collection's writer, and systemd-analyze (``calendar`` and ``verify``) when it is installed (Debian 12 has
it; rows and tests that need systemd's own verdict are skipped without it). A second set of calendar tests
always runs with a fake ``systemd-analyze`` script (the way test_worker_unit fakes it), so the module's
handling of systemd's answer is covered on any host. Faked: systemctl (FakeSystemd answers ``show`` from a
dict and records every state-changing call) and the shadow tools. That a real systemd triggers the job is
proven in Molecule.
"""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible_collections.supervised.background.plugins.module_utils import env_rules, systemd
from ansible_collections.supervised.background.plugins.modules import periodic_job

REAL_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(REAL_ANALYZE is None, reason="systemd-analyze not installed")

SECRET = "Zq7vK9xQ2wJ8 'sq' \"dq\" $HOME \u00e9\U0001f600 \\b"
CRED = "cR3d-Lm4Np8Rt\nQx9Wv2 Hy6Gd3\n"
NEW_SECRET = "Rq0tX7-Pw5Xc1Vb"
STATE_CHANGING = ("start", "stop", "restart", "enable", "disable", "reset-failed", "daemon-reload")


class FakeSystemd(systemd.Systemd):
    """systemctl as data; systemd-analyze is the real one when installed (``analyze_path``)."""

    state = {}
    calls = []
    verified = []
    analyze_path = REAL_ANALYZE

    def analyze(self):
        return self.analyze_path

    def run(self, args, check=True):
        raise AssertionError(f"periodic_job ran systemctl directly: {args}")

    def show(self, units, properties=None):
        return {u: dict(self.state.get(u, {"LoadState": "not-found", "ActiveState": "inactive",
                                           "UnitFileState": ""})) for u in units}

    def verify(self, unit_name, text=None, dropins=None, instance="verify", strict=True, dropin_unit=None):
        FakeSystemd.verified.append(unit_name)
        return super().verify(unit_name, text, dropins, instance=instance, strict=strict, dropin_unit=dropin_unit)

    def _act(self, verb, units, **change):
        self.calls.append((verb, list(units)))
        for unit in units:
            entry = self.state.setdefault(unit, {"LoadState": "loaded", "ActiveState": "inactive",
                                                 "UnitFileState": "disabled"})
            entry.update(change)

    def start(self, units, no_block=False):
        self._act("start", units, ActiveState="active")

    def stop(self, units):
        self._act("stop", units, ActiveState="inactive")

    def restart(self, units):
        self._act("restart", units, ActiveState="active")

    def enable(self, units):
        self._act("enable", units, UnitFileState="enabled")

    def disable(self, units):
        self._act("disable", units, UnitFileState="disabled")

    def reset_failed(self, units):
        self._act("reset-failed", units)

    def daemon_reload(self):
        self.calls.append(("daemon-reload", []))


@pytest.fixture
def host(provisioned_host, monkeypatch):
    """A host tree (unit dir, /etc/supervised-background, /opt) and a fake systemctl."""
    dirs = provisioned_host()
    FakeSystemd.state = {}
    FakeSystemd.calls = []
    FakeSystemd.verified = []
    FakeSystemd.analyze_path = REAL_ANALYZE
    monkeypatch.setattr(systemd, "Systemd", FakeSystemd)
    return dirs


def args(host, **kw):
    base = {"name": "pj", "exec_start": ["/bin/true"], "user": "nobody", "group": "nogroup",
            "working_directory": str(host["opt"] / "pj"), "on_calendar": ["daily"],
            "secret_env": {"TOK": SECRET}, "secret_credentials": {"api": CRED}}
    base.update(kw)
    return base


def absent_args(host, **kw):
    base = {"name": "pj", "state": "absent", "user": "nobody", "group": "nogroup",
            "working_directory": str(host["opt"] / "pj")}
    base.update(kw)
    return base


def no_secret(result, *secrets):
    """Neither a secret nor any piece of it (4 characters or more) is anywhere in the result."""
    blob = json.dumps(result)
    raw = json.dumps(result, ensure_ascii=False)
    for secret in secrets or (SECRET, CRED):
        for i in range(len(secret) - 3):
            fragment = secret[i:i + 4]
            escaped = json.dumps(fragment)[1:-1]
            assert fragment not in raw and escaped not in blob, fragment


def changes():
    return [c for c in FakeSystemd.calls if c[0] in STATE_CHANGING]


def unit_paths(host):
    return host["units"] / "pj.service", host["units"] / "pj.timer"


# -- rendering --------------------------------------------------------------------------------------
def test_first_run_writes_service_and_timer_and_starts_the_timer(run_module, host):
    res = run_module(periodic_job.main, args(host, randomized_delay_sec="10min", accuracy_sec=1, persistent=True,
                                             runtime_max_sec="2h"))
    assert res["changed"] is True and res.get("failed") is not True, res
    service, timer = unit_paths(host)
    assert service.read_text() == res["unit_text"] and timer.read_text() == res["timer_text"]
    for path in (service, timer):
        st = os.lstat(path)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    assert res["timer_text"] == (
        "# Managed by supervised.background.periodic_job; do not edit\n"
        "[Unit]\nDescription=Timer of pj periodic job\n\n"
        "[Timer]\nOnCalendar=" + ("*-*-* 00:00:00" if REAL_ANALYZE else "daily") + "\n"
        "RandomizedDelaySec=600s\nAccuracySec=1s\nPersistent=yes\nUnit=pj.service\n\n"
        "[Install]\nWantedBy=timers.target\n")
    lines = res["unit_text"].splitlines()
    assert "Type=oneshot" in lines and "ExecStart=/bin/true" in lines
    assert "TimeoutStartSec=7200s" in lines
    assert not [ln for ln in lines if ln.startswith(("RuntimeMaxSec=", "Restart=", "WatchdogSec="))]
    assert "[Install]" not in lines  # the timer starts the service; the service is never enabled itself
    env = host["own"] / "pj.env"
    assert f"EnvironmentFile={env}" in lines
    assert env_rules.parse_file(env.read_text()) == {"TOK": SECRET}
    assert stat.S_IMODE(os.lstat(env).st_mode) == 0o600
    cred = host["own"] / "credentials" / "pj" / "api"
    assert cred.read_text() == CRED and f"LoadCredential=api:{cred}" in lines
    assert res["timer"] == "pj.timer" and res["service"] == "pj.service"
    assert res["daemon_reloaded"] is True
    assert changes() == [("daemon-reload", []), ("enable", ["pj.timer"]), ("start", ["pj.timer"])]
    assert res["status"]["timer"] == "pj.timer" and res["status"]["active"] is True and res["status"]["enabled"] is True
    if REAL_ANALYZE:
        assert FakeSystemd.verified == ["pj.service", "pj.service", "pj.timer"]  # preflight, then each write
    assert host["accounts"] == [("ensure", "nobody", "nogroup")]
    no_secret(res)


@needs_analyze
@pytest.mark.parametrize("given,normalized", [
    ("daily", "*-*-* 00:00:00"),
    ("hourly", "*-*-* *:00:00"),
    ("weekly", "Mon *-*-* 00:00:00"),
    ("Mon..Fri *:0/15", "Mon..Fri *-*-* *:00/15:00"),
    ("Sat,Sun 10:00", "Sat,Sun *-*-* 10:00:00"),
    ("Mon,Tue..Fri 9:00", "Mon..Fri *-*-* 09:00:00"),
    ("*-*-* 02:30:00", "*-*-* 02:30:00"),
])
def test_calendar_is_normalized_by_systemd(run_module, host, given, normalized):
    res = run_module(periodic_job.main, args(host, on_calendar=[given]))
    assert res["calendar"] == [normalized], res
    assert f"\nOnCalendar={normalized}\n" in res["timer_text"]
    assert (host["units"] / "pj.timer").read_text() == res["timer_text"]


@needs_analyze
def test_several_calendar_expressions_keep_their_order(run_module, host):
    res = run_module(periodic_job.main, args(host, on_calendar=["Mon..Fri *:0/15", "daily", "Sat,Sun 10:00"]))
    assert res["calendar"] == ["Mon..Fri *-*-* *:00/15:00", "*-*-* 00:00:00", "Sat,Sun *-*-* 10:00:00"]
    timer_lines = res["timer_text"].splitlines()
    assert [ln for ln in timer_lines if ln.startswith("OnCalendar=")] == [
        "OnCalendar=Mon..Fri *-*-* *:00/15:00", "OnCalendar=*-*-* 00:00:00", "OnCalendar=Sat,Sun *-*-* 10:00:00"]


def _fake_analyze(bindir, script):
    path = bindir / "systemd-analyze"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_calendar_uses_the_normalized_form_systemd_prints(run_module, host, tmp_path):
    """A fake systemd-analyze (runs on hosts without systemd): the module takes the 'Normalized form'."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    FakeSystemd.analyze_path = _fake_analyze(bindir, (
        'if [ "$1" = calendar ]; then\n'
        '  printf "  Original form: %s\\nNormalized form: *-*-* 04:05:00\\n    Next elapse: never\\n" "$3"\n'
        "fi\nexit 0\n"))
    res = run_module(periodic_job.main, args(host, on_calendar=["at five past four"]))
    assert res["calendar"] == ["*-*-* 04:05:00"], res
    assert "\nOnCalendar=*-*-* 04:05:00\n" in res["timer_text"]


def test_calendar_refused_by_a_fake_systemd_writes_nothing(run_module, host, tmp_path, snapshot_tree):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    FakeSystemd.analyze_path = _fake_analyze(bindir, (
        'if [ "$1" = calendar ]; then\n'
        "  echo \"Failed to parse calendar specification '$3': Invalid argument\" >&2; exit 1\n"
        "fi\nexit 0\n"))
    before = snapshot_tree(host["root"])
    res = run_module(periodic_job.main, args(host, on_calendar=["Funday"]))
    assert res.get("failed") is True, res
    assert res["msg"].startswith("on_calendar[0]: systemd refuses the calendar expression 'Funday'")
    assert "Failed to parse calendar specification" in res["msg"]
    assert snapshot_tree(host["root"]) == before and FakeSystemd.calls == []
    no_secret(res)


def test_without_systemd_analyze_the_expression_is_kept_with_a_warning(run_module, host):
    FakeSystemd.analyze_path = None
    res = run_module(periodic_job.main, args(host, on_calendar=["Mon..Fri *:0/15"]))
    assert res["changed"] is True and res["calendar"] == ["Mon..Fri *:0/15"], res
    warned = ansible_warnings.get_warning_messages()
    assert any("on_calendar[0]: systemd-analyze is not installed" in w for w in warned)
    assert any("without verification" in w for w in warned)


def test_monotonic_triggers(run_module, host):
    res = run_module(periodic_job.main, args(host, on_calendar=[], on_boot_sec="1min", on_unit_active_sec="5min",
                                             accuracy_sec="500ms"))
    assert res["calendar"] == [] and res.get("failed") is not True, res
    assert res["timer_text"] == (
        "# Managed by supervised.background.periodic_job; do not edit\n"
        "[Unit]\nDescription=Timer of pj periodic job\n\n"
        "[Timer]\nOnBootSec=60s\nOnUnitActiveSec=300s\nAccuracySec=500ms\nUnit=pj.service\n\n"
        "[Install]\nWantedBy=timers.target\n")
    assert (host["units"] / "pj.timer").read_text() == res["timer_text"]


@pytest.mark.parametrize("option,value,line", [
    ("randomized_delay_sec", "10min", "RandomizedDelaySec=600s"),
    ("randomized_delay_sec", 0, "RandomizedDelaySec=0s"),
    ("randomized_delay_sec", "1h 30min", "RandomizedDelaySec=5400s"),
    ("accuracy_sec", "1us", "AccuracySec=1us"),
    ("accuracy_sec", 1.5, "AccuracySec=1500ms"),
    ("on_unit_active_sec", "2min 30s", "OnUnitActiveSec=150s"),
    ("on_boot_sec", 90, "OnBootSec=90s"),
])
def test_timer_time_spans(run_module, host, option, value, line):
    res = run_module(periodic_job.main, args(host, **{option: value}))
    assert res.get("failed") is not True, res
    assert line in res["timer_text"].splitlines()


def test_persistent_is_off_by_default(run_module, host):
    res = run_module(periodic_job.main, args(host))
    assert "Persistent" not in res["timer_text"]
    assert "RandomizedDelaySec" not in res["timer_text"] and "AccuracySec" not in res["timer_text"]


@pytest.mark.parametrize("value,line", [("2h", "TimeoutStartSec=7200s"), ("infinity", "TimeoutStartSec=infinity"),
                                        (0.25, "TimeoutStartSec=250ms")])
def test_runtime_max_sec_is_the_oneshot_start_timeout(run_module, host, value, line):
    res = run_module(periodic_job.main, args(host, runtime_max_sec=value))
    lines = res["unit_text"].splitlines()
    assert line in lines and not [ln for ln in lines if ln.startswith("RuntimeMaxSec")], res


def test_no_runtime_max_sec_no_start_timeout(run_module, host):
    res = run_module(periodic_job.main, args(host))
    assert "TimeoutStartSec" not in res["unit_text"] and "Type=oneshot" in res["unit_text"].splitlines()


def test_secrets_are_nowhere_but_in_their_files(run_module, host):
    res = run_module(periodic_job.main, args(host), diff=True)
    assert res["changed"] is True, res
    service, timer = unit_paths(host)
    for text in (service.read_text(), timer.read_text()):
        no_secret({"text": text})
    no_secret(res)
    assert res["diff"][0]["after"] == "TOK=<redacted, added>\n"
    assert res["diff"][1]["after"] == "credential api: <redacted, added>\n"
    rotated = run_module(periodic_job.main, args(host, secret_env={"TOK": NEW_SECRET}), diff=True)
    assert rotated["changed"] is True and rotated["changed_variables"]["changed"] == ["TOK"]
    assert rotated["diff"] == [{"before": "TOK=<redacted>\n", "after": "TOK=<redacted, changed>\n",
                                "before_header": str(host["own"] / "pj.env"),
                                "after_header": str(host["own"] / "pj.env")}]
    no_secret(rotated, SECRET, CRED, NEW_SECRET)


def test_unit_option_triggers_an_existing_service(run_module, host):
    FakeSystemd.state["backup.service"] = {"LoadState": "loaded", "ActiveState": "inactive"}
    res = run_module(periodic_job.main, {"name": "pj", "unit": "backup.service", "on_calendar": ["daily"],
                                         "user": "nobody", "working_directory": str(host["opt"] / "pj")})
    assert res["changed"] is True and res["service"] == "backup.service", res
    assert "unit_text" not in res and not (host["units"] / "pj.service").exists()
    assert "\nUnit=backup.service\n" in (host["units"] / "pj.timer").read_text()
    assert not (host["own"] / "pj.env").exists() and host["accounts"] == []


def test_unit_option_rerun_is_quiet_and_absent_leaves_the_service(run_module, host):
    FakeSystemd.state["backup.service"] = {"LoadState": "loaded", "ActiveState": "inactive"}
    (host["units"] / "backup.service").write_text("[Service]\nExecStart=/bin/true\n")
    params = {"name": "pj", "unit": "backup.service", "on_calendar": ["daily"]}
    run_module(periodic_job.main, params)
    FakeSystemd.calls.clear()
    again = run_module(periodic_job.main, params)
    assert again["changed"] is False and changes() == [], again
    FakeSystemd.state["backup.service"]["ActiveState"] = "activating"
    res = run_module(periodic_job.main, dict(params, state="absent"))
    assert res["changed"] is True and res["removed"] == [str(host["units"] / "pj.timer")], res
    assert (host["units"] / "backup.service").exists() and not (host["units"] / "pj.timer").exists()
    assert ("stop", ["backup.service"]) not in changes()  # not this module's service: a run of it goes on
    assert ("reset-failed", ["pj.timer"]) in changes()


def test_unit_option_for_a_missing_service_is_a_warning_in_check_mode(run_module, host, snapshot_tree):
    before = snapshot_tree(host["root"])
    res = run_module(periodic_job.main, {"name": "pj", "unit": "backup.service", "on_calendar": ["daily"]},
                     check_mode=True)
    assert res["changed"] is True and res.get("failed") is not True, res
    assert any("check mode: unit: backup.service is not installed" in w for w in ansible_warnings.get_warning_messages())
    assert snapshot_tree(host["root"]) == before and changes() == []


def test_weakened_hardening_is_reported(run_module, host):
    res = run_module(periodic_job.main, args(host, settings={"MemoryDenyWriteExecute": False, "LimitNOFILE": 4096}))
    assert res["hardening_overrides"] == ["MemoryDenyWriteExecute=no"], res
    assert "MemoryDenyWriteExecute=no" in res["unit_text"].splitlines()
    assert any("weaken" in w and "MemoryDenyWriteExecute=no" in w for w in ansible_warnings.get_warning_messages())


def test_unit_option_for_a_missing_service_is_refused(run_module, host, snapshot_tree):
    before = snapshot_tree(host["root"])
    res = run_module(periodic_job.main, {"name": "pj", "unit": "backup.service", "on_calendar": ["daily"]})
    assert res.get("failed") is True, res
    assert res["msg"].startswith("unit: backup.service is not installed (LoadState not-found)")
    assert snapshot_tree(host["root"]) == before and changes() == []


def test_enabled_false_installs_but_does_not_start(run_module, host):
    res = run_module(periodic_job.main, args(host, enabled=False))
    assert res["changed"] is True and (host["units"] / "pj.timer").exists(), res
    assert changes() == [("daemon-reload", [])]
    run_module(periodic_job.main, args(host))
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, args(host, enabled=False))
    assert res["changed"] is True
    assert changes() == [("stop", ["pj.timer"]), ("disable", ["pj.timer"])]


def test_status_comes_from_systemd(run_module, host):
    FakeSystemd.state["pj.timer"] = {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled",
                                     "LastTriggerUSec": "Sat 2026-12-05 00:00:03 UTC",
                                     "NextElapseUSecRealtime": "Sun 2026-12-06 00:00:00 UTC", "Unit": "pj.service"}
    FakeSystemd.state["pj.service"] = {"LoadState": "loaded", "ActiveState": "inactive", "Result": "exit-code",
                                       "ExecMainStatus": "3", "ExecMainCode": "1",
                                       "ExecMainStartTimestamp": "Sat 2026-12-05 00:00:03 UTC",
                                       "ExecMainExitTimestamp": "Sat 2026-12-05 00:00:04 UTC"}
    res = run_module(periodic_job.main, args(host))
    status = res["status"]
    assert status["last_trigger"] == "Sat 2026-12-05 00:00:03 UTC"
    assert status["next_elapse"] == "Sun 2026-12-06 00:00:00 UTC"
    assert (status["last_result"], status["last_exit_status"], status["last_exit_code"]) == ("exit-code", 3, "exited")
    assert changes() == [("daemon-reload", [])]  # enabled and active already: not started again


# -- idempotence, check mode, diff ------------------------------------------------------------------
def test_second_run_changes_nothing(run_module, host, snapshot_tree):
    run_module(periodic_job.main, args(host, randomized_delay_sec="10min", persistent=True))
    before = snapshot_tree(host["root"])
    FakeSystemd.calls.clear()
    FakeSystemd.verified = []
    again = run_module(periodic_job.main, args(host, randomized_delay_sec="10min", persistent=True), diff=True)
    assert again["changed"] is False, again
    assert again["daemon_reloaded"] is False and changes() == [] and FakeSystemd.verified == []
    assert "diff" not in again or all(d["before"] == d["after"] for d in again["diff"])
    assert snapshot_tree(host["root"]) == before
    no_secret(again)


def test_check_mode_on_a_fresh_host_writes_nothing(run_module, host, snapshot_tree):
    before = snapshot_tree(host["root"])
    res = run_module(periodic_job.main, args(host), check_mode=True, diff=True)
    assert res["changed"] is True and res.get("failed") is not True, res
    assert snapshot_tree(host["root"]) == before
    assert changes() == [] and res["daemon_reloaded"] is False and "status" not in res
    headers = [d["after_header"] for d in res["diff"]]
    assert str(host["units"] / "pj.service") in headers and str(host["units"] / "pj.timer") in headers
    assert any(d["after"] == "TOK=<redacted, added>\n" for d in res["diff"])
    no_secret(res)


def test_check_mode_after_a_real_run_is_quiet(run_module, host, snapshot_tree):
    run_module(periodic_job.main, args(host))
    before = snapshot_tree(host["root"])
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, args(host), check_mode=True)
    assert res["changed"] is False and changes() == [], res
    assert snapshot_tree(host["root"]) == before


def test_check_mode_of_a_schedule_change_writes_nothing(run_module, host, snapshot_tree):
    run_module(periodic_job.main, args(host))
    before = snapshot_tree(host["root"])
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, args(host, on_calendar=["hourly"]), check_mode=True, diff=True)
    assert res["changed"] is True and changes() == [], res
    assert snapshot_tree(host["root"]) == before
    assert [d["after_header"] for d in res["diff"]] == [str(host["units"] / "pj.timer")]


def test_diff_of_a_schedule_change(run_module, host):
    run_module(periodic_job.main, args(host))
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, args(host, on_calendar=["hourly"]), diff=True)
    assert res["changed"] is True and res["daemon_reloaded"] is True, res
    assert len(res["diff"]) == 1
    diff = res["diff"][0]
    assert diff["before_header"] == diff["after_header"] == str(host["units"] / "pj.timer")
    old, new = ("*-*-* 00:00:00", "*-*-* *:00:00") if REAL_ANALYZE else ("daily", "hourly")
    assert f"OnCalendar={old}\n" in diff["before"] and f"OnCalendar={new}\n" in diff["after"]
    assert diff["after"] == (host["units"] / "pj.timer").read_text()
    assert changes() == [("daemon-reload", [])]  # the timer is running already: systemd re-reads the schedule
    no_secret(res)


# -- absent -----------------------------------------------------------------------------------------
def test_absent_removes_timer_service_and_secrets_then_is_quiet(run_module, host):
    run_module(periodic_job.main, args(host))
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, absent_args(host), diff=True)
    assert res["changed"] is True, res
    service, timer = unit_paths(host)
    assert not service.exists() and not timer.exists() and not (host["own"] / "pj.env").exists()
    assert not (host["own"] / "credentials" / "pj").exists()
    assert (host["opt"] / "pj").is_dir()  # kept without remove_working_directory
    assert sorted(res["removed"]) == sorted([str(timer), str(service), str(host["own"] / "credentials" / "pj"),
                                             str(host["own"] / "pj.env")])
    assert changes() == [("stop", ["pj.timer"]), ("disable", ["pj.timer"]), ("daemon-reload", []),
                         ("reset-failed", ["pj.timer", "pj.service"])]
    assert res["daemon_reloaded"] is True
    assert all(d["after"] == "" for d in res["diff"])
    no_secret(res)
    FakeSystemd.calls.clear()
    again = run_module(periodic_job.main, absent_args(host))
    assert again["changed"] is False and again["removed"] == [], again
    assert changes() == []


def test_absent_stops_a_running_run(run_module, host):
    run_module(periodic_job.main, args(host))
    FakeSystemd.state["pj.service"] = {"LoadState": "loaded", "ActiveState": "activating"}
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, absent_args(host))
    assert res["changed"] is True
    assert ("stop", ["pj.service"]) in changes()


def test_absent_in_check_mode_removes_nothing(run_module, host, snapshot_tree):
    run_module(periodic_job.main, args(host))
    before = snapshot_tree(host["root"])
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, absent_args(host), check_mode=True)
    assert res["changed"] is True and changes() == [], res
    assert snapshot_tree(host["root"]) == before


@needs_analyze
def test_service_refused_by_systemd_leaves_everything_as_it_was(run_module, host, snapshot_tree):
    run_module(periodic_job.main, args(host))
    before = snapshot_tree(host["root"])
    accounts_before = list(host["accounts"])
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, args(host, exec_start=["/usr/local/bin/not-installed-pj"],
                                             secret_env={"TOK": NEW_SECRET}))
    assert res.get("failed") is True and res["msg"].startswith("exec_start"), res
    assert "not-installed-pj is not executable" in res["msg"]
    assert snapshot_tree(host["root"]) == before and changes() == [] and host["accounts"] == accounts_before
    no_secret(res, SECRET, CRED, NEW_SECRET)


# -- the bad-input catalogue: refused, naming the field and the rule, before anything is written -----
LONG = "j" * 183
NAME_RULE = ["may only use letters, digits"]
SPAN = ["is not a time span"]
SINGLE = ["must be a single line of text", "control character"]
UNSAFE = ["TOK", "cannot be written safely"]
# Expressions only systemd itself can judge (skipped without systemd-analyze).
CALENDAR_BAD = [
    ("calendar hour 25", {"on_calendar": ["*-*-* 25:00"]}, "on_calendar[0]",
     ["systemd refuses the calendar expression", "25:00", "Failed to parse calendar specification"]),
    ("calendar Funday", {"on_calendar": ["daily", "Funday"]}, "on_calendar[1]",
     ["systemd refuses the calendar expression", "Funday"]),
    ("calendar unknown time zone", {"on_calendar": ["*-*-* 02:30:00 Europe/Nowhere"]}, "on_calendar[0]",
     ["systemd refuses the calendar expression"]),
    ("calendar nonsense range", {"on_calendar": ["Mon..Sun..Fri"]}, "on_calendar[0]",
     ["systemd refuses the calendar expression"]),
]
BAD = [
    ("calendar empty string", {"on_calendar": [""]}, "on_calendar[0]", ["must not be empty"]),
    ("calendar with newline", {"on_calendar": ["daily\nOnCalendar=minutely"]}, "on_calendar[0]", SINGLE),
    ("calendar trailing space", {"on_calendar": ["daily "]}, "on_calendar[0]", ["must not start or end with whitespace"]),
    ("no trigger at all", {"on_calendar": []}, "on_calendar", ["a timer needs a trigger"]),
    ("on_unit_active_sec alone never fires", {"on_calendar": [], "on_unit_active_sec": "5min"}, "on_unit_active_sec",
     ["needs on_boot_sec or on_calendar", "never be started"]),
    ("persistent without on_calendar", {"on_calendar": [], "on_boot_sec": "1min", "persistent": True}, "persistent",
     ["only applies to on_calendar"]),
    ("unit and exec_start", {"unit": "backup.service"}, "unit", ["either unit", "or exec_start, not both"]),
    ("no exec_start and no unit", {"exec_start": None}, "exec_start", ["required with state=present"]),
    ("randomized_delay_sec words", {"randomized_delay_sec": "soon"}, "randomized_delay_sec", SPAN),
    ("randomized_delay_sec negative", {"randomized_delay_sec": "-5min"}, "randomized_delay_sec", SPAN),
    ("randomized_delay_sec infinity", {"randomized_delay_sec": "infinity"}, "randomized_delay_sec", SPAN),
    ("randomized_delay_sec boolean", {"randomized_delay_sec": True}, "randomized_delay_sec", SPAN),
    ("accuracy_sec negative number", {"accuracy_sec": -1}, "accuracy_sec", ["must be at least 0 seconds"]),
    ("accuracy_sec below 1us", {"accuracy_sec": "0.0000001"}, "accuracy_sec", ["shorter than systemd's resolution"]),
    ("accuracy_sec with newline", {"accuracy_sec": "1s\nPersistent=yes"}, "accuracy_sec", SINGLE),
    ("runtime_max_sec zero", {"runtime_max_sec": 0}, "runtime_max_sec", ["must be at least 0.001 seconds"]),
    ("runtime_max_sec fortnight", {"runtime_max_sec": "1 fortnight"}, "runtime_max_sec", SPAN),
    ("runtime_max_sec beyond usec_t", {"runtime_max_sec": 1e30}, "runtime_max_sec", ["longer than systemd can hold"]),
    ("on_boot_sec zero", {"on_boot_sec": 0}, "on_boot_sec", ["must be at least 0.001 seconds"]),
    ("on_boot_sec words", {"on_boot_sec": "after boot"}, "on_boot_sec", SPAN),
    ("on_unit_active_sec empty", {"on_unit_active_sec": ""}, "on_unit_active_sec", ["must not be empty"]),
    ("on_unit_active_sec NaN", {"on_unit_active_sec": float("nan")}, "on_unit_active_sec", ["must be at least"]),
    ("on_unit_active_sec unit typo", {"on_unit_active_sec": "5 mins"}, "on_unit_active_sec", SPAN),
    ("name trailing newline", {"name": "pj\n"}, "name", SINGLE),
    ("name with slash", {"name": "p/j"}, "name", ["must not contain '/'"]),
    ("name with dot-dot path", {"name": "../pj"}, "name", ["must not contain '/'"]),
    ("name dot-dot", {"name": ".."}, "name", NAME_RULE),
    ("name with @", {"name": "pj@"}, "name", ["must not contain '@'"]),
    ("name with unit suffix", {"name": "pj.timer"}, "name", ["without the unit suffix"]),
    ("name with space", {"name": "p j"}, "name", NAME_RULE),
    ("name empty", {"name": ""}, "name", ["must not be empty"]),
    ("name too long", {"name": LONG}, "name", ["is too long"]),
    ("unit without suffix", {"unit": "backup", "exec_start": None}, "unit", ["must end with one of .service"]),
    ("unit is a template", {"unit": "backup@.service", "exec_start": None}, "unit", ["is a template"]),
    ("unit with newline", {"unit": "backup.service\n", "exec_start": None}, "unit", SINGLE),
    ("after with newline", {"after": ["db.service\nExecStartPre=/bin/sh"]}, "after[0]", SINGLE),
    ("wants with space", {"wants": ["my db.service"]}, "wants[0]", NAME_RULE),
    ("requires without suffix", {"requires": ["postgresql"]}, "requires[0]", ["must end with one of"]),
    ("binds_to template", {"binds_to": ["db@.service"]}, "binds_to[0]", ["is a template"]),
    ("part_of specifier as prefix", {"part_of": ["%n.service"]}, "part_of[0]", NAME_RULE),
    ("on_failure unknown specifier", {"on_failure": ["alert@%h.service"]}, "on_failure[0]",
     ["instance '%h'", "may only use letters"]),
    ("before with colon", {"before": ["a:b.service"]}, "before[0]", NAME_RULE),
    ("exec_start relative", {"exec_start": ["true"]}, "exec_start", ["must be an absolute path"]),
    ("exec_start dot-dot", {"exec_start": ["/usr/../bin/true"]}, "exec_start", ["normalised path"]),
    ("exec_start escape character", {"exec_start": ["/bin/echo", "a\x1b[2Jb"]}, "exec_start[1]", SINGLE),
    ("exec_start carriage return", {"exec_start": ["/bin/echo", "a\rExecStartPre=/bin/sh"]}, "exec_start[1]", SINGLE),
    ("exec_start executable newline", {"exec_start": ["/bin/true\n"]}, "exec_start[0]", SINGLE),
    ("exec_start NUL", {"exec_start": ["/bin/echo", "a\x00b"]}, "exec_start[1]", SINGLE),
    ("secret_env reserved key", {"secret_env": {"NOTIFY_SOCKET": SECRET}}, "secret_env",
     ["NOTIFY_SOCKET", "is set by systemd"]),
    ("secret_env timer key", {"secret_env": {"TRIGGER_UNIT": SECRET}}, "secret_env", ["TRIGGER_UNIT", "is set by systemd"]),
    ("secret_env timer prefix", {"secret_env": {"TRIGGER_TIMER_REALTIME_USEC": SECRET}}, "secret_env",
     ["is set by systemd"]),
    ("secret_env key trailing newline", {"secret_env": {"TOK\n": SECRET}}, "secret_env", ["is not a valid variable name"]),
    ("secret_env key with dash", {"secret_env": {"DB-PW": SECRET}}, "secret_env", ["is not a valid variable name"]),
    ("secret_env value U+2028", {"secret_env": {"TOK": SECRET + "\u2028X=1"}}, "secret_env", UNSAFE),
    ("secret_env value U+FDD0", {"secret_env": {"TOK": SECRET + "\ufdd0"}}, "secret_env", UNSAFE),
    ("secret_env value U+FFFE", {"secret_env": {"TOK": "\ufffe" + SECRET}}, "secret_env", UNSAFE),
    ("secret_env value newline", {"secret_env": {"TOK": SECRET + "\nX=1"}}, "secret_env", UNSAFE),
    ("secret_env value null", {"secret_env": {"TOK": None}}, "secret_env", ["TOK", "is null"]),
    ("credential id with slash", {"secret_credentials": {"a/b": CRED}}, "secret_credentials",
     ["is not a credential name"]),
    ("settings StandardOutput append", {"settings": {"StandardOutput": "append:/etc/x"}}, "settings.StandardOutput",
     ["must be one of journal, null, inherit, kmsg"]),
    ("settings StandardError file", {"settings": {"StandardError": "file:/etc/shadow"}}, "settings.StandardError",
     ["must be one of"]),
    ("settings ExecStartPre", {"settings": {"ExecStartPre": "+/bin/sh -c id"}}, "settings.ExecStartPre",
     ["is refused", "as root outside the sandbox"]),
    ("settings BindPaths", {"settings": {"BindPaths": "/etc:/srv/etc"}}, "settings.BindPaths",
     ["is refused", "binds a host path"]),
    ("settings LoadCredential", {"settings": {"LoadCredential": "x:/etc/shadow"}}, "settings.LoadCredential",
     ["is refused", "credentials option"]),
    ("settings TimeoutStartSec", {"settings": {"TimeoutStartSec": "1h"}}, "settings.TimeoutStartSec",
     ["is set by the option 'runtime_max_sec'"]),
    ("settings User", {"settings": {"User": "root"}}, "settings.User", ["is set by the option 'user'"]),
    ("settings unknown", {"settings": {"Frobnicate": "yes"}}, "settings.Frobnicate",
     ["is not a directive this collection lets you set"]),
    ("settings value newline", {"settings": {"LimitNOFILE": "1\nUser=root"}}, "settings.LimitNOFILE", SINGLE),
    ("description newline", {"description": "job\nExecStartPre=/bin/sh"}, "description", SINGLE),
    ("user with newline", {"user": "nobody\n"}, "user", SINGLE),
    ("working directory /etc", {"working_directory": "/etc"}, "working_directory", ["a directory the system"]),
    ("lock_timeout bad", {"lock_timeout": "eventually"}, "lock_timeout", SPAN),
]
CASES = ([pytest.param(*row, marks=needs_analyze, id=row[0]) for row in CALENDAR_BAD]
         + [pytest.param(*row, id=row[0]) for row in BAD])


@pytest.mark.parametrize("label,override,field,words", CASES)
def test_bad_input_refused_and_nothing_changed(run_module, host, snapshot_tree, label, override, field, words):
    run_module(periodic_job.main, args(host))
    before = snapshot_tree(host["root"])
    accounts_before = list(host["accounts"])
    FakeSystemd.calls.clear()
    res = run_module(periodic_job.main, args(host, **override), diff=True)
    assert res.get("failed") is True, (label, res)
    assert res["msg"].startswith(field + ":") or res["msg"].startswith(field + "."), (label, res["msg"])
    for word in words:
        assert word in res["msg"], (label, word, res["msg"])
    assert not res.get("changed") and "diff" not in res, label
    assert snapshot_tree(host["root"]) == before, label
    assert changes() == [] and host["accounts"] == accounts_before, label
    no_secret(res)


def test_bad_input_on_a_fresh_host_writes_nothing(run_module, host, snapshot_tree):
    before = snapshot_tree(host["root"])
    res = run_module(periodic_job.main, args(host, on_calendar=[], settings={"BindPaths": "/etc"}))
    assert res.get("failed") is True and snapshot_tree(host["root"]) == before and FakeSystemd.calls == [], res


def test_catalogue_is_large_enough():
    assert len(BAD) + len(CALENDAR_BAD) >= 60
