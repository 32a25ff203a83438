"""worker_instances: the module around instances.Reconciler: check mode, action order, failure
reports, and refusals that run nothing. The plan itself is tested in module_utils/test_instances.py.

Real systemd behaviour (start, prune, rolling restart, settle failures) is proven by the Molecule
scenario; here systemd's answers are given as data.
"""

from __future__ import annotations

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings
from ansible_collections.supervised.background.plugins.module_utils.systemd import INSTANCE_PROPERTIES
from ansible_collections.supervised.background.plugins.module_utils.instances import (
    make_plan,
    state_lines,
    wanted_instances,
)
from ansible_collections.supervised.background.plugins.module_utils.validate import natural_key
from ansible_collections.supervised.background.plugins.modules import worker_instances


def props(active="inactive", enabled="disabled", pid="0", restarts="0"):
    return {"ActiveState": active, "SubState": "running" if active == "active" else "dead", "Result": "success",
            "UnitFileState": enabled, "MainPID": pid, "NRestarts": restarts, "LoadState": "loaded"}


def test_wanted_instances():
    assert wanted_instances(3, None) == ["1", "2", "3"]
    assert wanted_instances(0, None) == []
    assert wanted_instances(None, ["10", "2", "eu", "2"]) == ["2", "10", "eu"]
    assert sorted(["w10", "w2", "w1"], key=natural_key) == ["w1", "w2", "w10"]


def test_plan_scale_up_from_nothing():
    p = make_plan("w", ["1", "2"], [], {"1": props(), "2": props()}, set(), "started", True, True, "none")
    assert p["start"] == ["w@1.service", "w@2.service"]
    assert p["enable"] == ["w@1.service", "w@2.service"]
    assert not p["restart"] and not p["prune"]


def test_plan_idempotent_when_converged():
    state = {"1": props("active", "enabled"), "2": props("active", "enabled")}
    p = make_plan("w", ["1", "2"], [], state, set(), "started", True, True, "none")
    assert not any(p.values())


def test_plan_prunes_running_failed_and_enabled_only():
    state = {"1": props("active", "enabled"), "3": props("active", "enabled"), "4": props("failed"),
             "5": props("inactive"), "6": props("inactive")}
    p = make_plan("w", ["1"], ["3", "4", "5", "6"], state, {"6"}, "started", True, True, "none")
    assert p["prune"] == ["w@3.service", "w@4.service", "w@6.service"]
    assert p["prune_stop"] == ["w@3.service"]
    assert p["prune_disable"] == ["w@3.service", "w@6.service"]
    p = make_plan("w", ["1"], ["3", "4", "5", "6"], state, {"6"}, "started", True, False, "none")
    assert not p["prune"]


def test_plan_restart_only_running_and_not_freshly_started():
    state = {"1": props("active", "enabled"), "2": props("failed", "enabled")}
    p = make_plan("w", ["1", "2"], [], state, set(), "started", True, True, "rolling")
    assert p["restart"] == ["w@1.service"] and p["start"] == ["w@2.service"]


def test_plan_stopped_and_disabled():
    state = {"1": props("active", "enabled"), "2": props("failed", "enabled"), "3": props("inactive")}
    p = make_plan("w", ["1", "2", "3"], [], state, set(), "stopped", False, True, "all")
    assert p["stop"] == ["w@1.service"]
    assert p["disable"] == ["w@1.service", "w@2.service"]
    assert not p["start"] and not p["restart"]


def test_diff_lines():
    state = {"1": props("active", "enabled"), "3": props("active", "enabled")}
    p = make_plan("w", ["1", "2"], ["3"], {**state, "2": props()}, set(), "started", True, True, "none")
    all_props = {**state, "2": props()}
    assert state_lines("w", ["1", "2", "3"], all_props, set()) == (
        "w@1.service: active/enabled\nw@2.service: inactive/disabled\nw@3.service: active/enabled\n")
    assert state_lines("w", ["1", "2", "3"], all_props, set(), p, "started", True) == (
        "w@1.service: active/enabled\nw@2.service: active/enabled\nw@3.service: inactive/disabled\n")


class FakeSystemd:
    """Stands in for the Systemd util in-process: answers from a dict, records every action."""

    calls = []
    state = {}

    def __init__(self, module):
        self.module = module

    def show(self, units, properties=None):
        return {u: dict(self.state.get(u, props())) for u in units}

    def enabled_instances(self, name):
        return {u.split("@")[1][:-8] for u, s in self.state.items() if s.get("UnitFileState") == "enabled"}

    def loaded_instances(self, name):
        return {u.split("@")[1][:-8] for u in self.state}

    known_instances = loaded_instances

    def journal_tail(self, unit, lines=10, invocation=None, **kw):
        return [f"{unit}: log line"]

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
                s["ActiveState"] = active
                s["MainPID"] = str(int(s["MainPID"]) + 100)
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


@pytest.fixture
def fake(monkeypatch):
    FakeSystemd.calls = []
    FakeSystemd.state = {"w@1.service": props("active", "enabled", "10"), "w@3.service": props("active", "enabled", "30")}
    monkeypatch.setattr(worker_instances, "Systemd", FakeSystemd)
    return FakeSystemd


def test_check_mode_reports_plan_and_acts_not(run_module, fake):
    res = run_module(worker_instances.main, {"name": "w", "count": 2}, check_mode=True, diff=True)
    assert res["changed"] is True
    assert res["started"] == ["w@2.service"] and res["pruned"] == ["w@3.service"]
    assert "w@3.service: inactive/disabled" in res["diff"]["after"]
    assert fake.calls == []


def test_order_prune_first_then_enable_then_start(run_module, fake):
    res = run_module(worker_instances.main, {"name": "w", "count": 2})
    assert res["changed"] is True, res
    assert [c[0] for c in fake.calls] == ["stop", "disable", "reset-failed", "enable", "start"]
    assert res["instances"]["2"]["active_state"] == "active"
    again = run_module(worker_instances.main, {"name": "w", "count": 2})
    assert again["changed"] is False and fake.calls[-1][0] == "start"


def test_rolling_restart_one_by_one(run_module, fake):
    fake.state["w@2.service"] = props("active", "enabled", "20")
    res = run_module(worker_instances.main, {"name": "w", "count": 3, "restart": "rolling"})
    assert [c for c in fake.calls if c[0] == "restart"] == [
        ("restart", ["w@1.service"]), ("restart", ["w@2.service"]), ("restart", ["w@3.service"])]
    assert res["restarted"] == ["w@1.service", "w@2.service", "w@3.service"]


def test_instance_that_does_not_come_up_fails_with_report(run_module, fake, monkeypatch):
    def start(self, units, no_block=False):
        self._act("start", units)
        for u in units:
            self.state[u].update(ActiveState="activating", SubState="auto-restart", Result="exit-code")

    monkeypatch.setattr(FakeSystemd, "start", start)
    res = run_module(worker_instances.main, {"name": "w", "count": 2})
    assert res.get("failed") is True
    assert "w@2.service" in res["msg"] and "w@1.service (" not in res["msg"]
    report = res["failing"]["w@2.service"]
    assert report["sub_state"] == "auto-restart" and report["journal"] == ["w@2.service: log line"]
    assert res["started"] == ["w@2.service"] and res["changed"] is True


def test_missing_template_is_a_clear_error(run_module, fake, monkeypatch):
    monkeypatch.setattr(FakeSystemd, "show", lambda self, units, properties=None: {u: {"LoadState": "not-found"} for u in units})
    res = run_module(worker_instances.main, {"name": "w", "count": 1})
    assert res.get("failed") is True and "name: template w@.service is not installed" in res["msg"]
    assert fake.calls == []


def test_missing_template_in_check_mode_plans_a_start(run_module, fake, monkeypatch):
    monkeypatch.setattr(FakeSystemd, "show", lambda self, units, properties=None: {u: {"LoadState": "not-found"} for u in units})
    monkeypatch.setattr(FakeSystemd, "loaded_instances", lambda self, name: set())
    monkeypatch.setattr(FakeSystemd, "enabled_instances", lambda self, name: set())
    res = run_module(worker_instances.main, {"name": "w", "count": 2}, check_mode=True)
    assert res["changed"] is True and res["started"] == ["w@1.service", "w@2.service"]
    assert res["enabled_units"] == ["w@1.service", "w@2.service"]
    assert fake.calls == []


BAD = [
    ("negative count", {"count": -1}, "count"),
    ("huge count", {"count": 100000}, "count"),
    ("instance with space", {"instances": ["a b"]}, "instances"),
    ("instance with @", {"instances": ["a@b"]}, "instances"),
    ("instance with /", {"instances": ["a/b"]}, "instances"),
    ("empty instance", {"instances": [""]}, "instances"),
    ("instance with newline", {"instances": ["1\n2"]}, "instances"),
    ("instance starting with dash", {"instances": ["-1"]}, "instances"),
    ("name with @", {"name": "w@", "count": 1}, "name"),
    ("name with space", {"name": "w x", "count": 1}, "name"),
    ("name with newline", {"name": "w\nx", "count": 1}, "name"),
    ("negative settle_sec", {"count": 1, "settle_sec": -2}, "settle_sec"),
    ("non-numeric settle_sec", {"count": 1, "settle_sec": "a while"}, "settle_sec"),
    ("count and instances", {"count": 1, "instances": ["1"]}, "count"),
    ("neither count nor instances", {}, "count"),
    ("bad restart choice", {"count": 1, "restart": "sometimes"}, "restart"),
    ("count just over the cap", {"count": 1001}, "count"),
    ("count as boolean", {"count": True}, "count"),
    ("too many instance names", {"instances": [str(i) for i in range(1001)]}, "instances"),
    ("instance with semicolon", {"instances": ["1;reboot"]}, "instances"),
    ("instance with shell", {"instances": ["$(id)"]}, "instances"),
    ("instance with glob", {"instances": ["*"]}, "instances"),
    ("instance too long", {"instances": ["a" * 65]}, "instances"),
    ("settle_sec over an hour", {"count": 1, "settle_sec": "2h"}, "settle_sec"),
    ("settle_sec infinity", {"count": 1, "settle_sec": "infinity"}, "settle_sec"),
    ("settle_sec boolean", {"count": 1, "settle_sec": True}, "settle_sec"),
    ("name with trailing newline", {"name": "w\n", "count": 1}, "name"),
    ("name with colon", {"name": "w:x", "count": 1}, "name"),
    ("name with suffix", {"name": "w.service", "count": 1}, "name"),
    ("instance with trailing newline", {"instances": ["eu\n"]}, "instances"),
    ("instance with U+2028", {"instances": ["eu\u2028"]}, "instances"),
    ("lock_timeout not a time", {"count": 1, "lock_timeout": "later"}, "lock_timeout"),
]


@pytest.mark.parametrize("label,override,field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_refused_and_nothing_run(run_module, monkeypatch, label, override, field):
    ran = []
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, *a, **k: ran.append(a) or (1, "", ""))
    args = {"name": "w"}
    args.update(override)
    res = run_module(worker_instances.main, args)
    assert res.get("failed") is True, (label, res)
    assert field in res["msg"], (label, res["msg"])
    assert ran == []


def test_count_at_the_cap_is_accepted():
    assert len(wanted_instances(1000, None)) == 1000


def test_stopped_but_enabled_warns(run_module, fake):
    res = run_module(worker_instances.main, {"name": "w", "count": 2, "state": "stopped"})
    assert res["changed"] is True
    assert any("start again at the next boot" in w for w in ansible_warnings.get_warning_messages())


def test_failure_report_holds_no_environment(run_module, fake, monkeypatch):
    # The report is built from systemctl show properties (no Environment=) and the unit's journal.
    fake.state["w@1.service"] = props("failed", "enabled", "0")
    monkeypatch.setattr(FakeSystemd, "start", lambda self, units, no_block=False: self._act("start", units))
    res = run_module(worker_instances.main, {"name": "w", "count": 1})
    assert res["failed"] is True
    assert set(res["failing"]["w@1.service"]) == {
        "unit", "instance", "load_state", "active_state", "sub_state", "result", "main_pid", "n_restarts",
        "exec_main_status", "enabled", "unit_file_state", "active_since", "memory_bytes", "tasks", "invocation_id",
        "journal", "watchdog"}
    assert not [p for p in INSTANCE_PROPERTIES if "Environment" in p]


def test_systemctl_failure_midway_reports_what_was_done(run_module, fake, monkeypatch):
    from ansible_collections.supervised.background.plugins.module_utils.systemd import SystemdError

    def enable(self, units):
        raise SystemdError("systemctl enable -- w@2.service failed (rc=1): Access denied")

    monkeypatch.setattr(FakeSystemd, "enable", enable)
    res = run_module(worker_instances.main, {"name": "w", "count": 2})
    assert res["failed"] is True and "Access denied" in res["msg"]
    assert res["pruned"] == ["w@3.service"] and res["changed"] is True


def test_settle_window_waits_for_fresh_instances(run_module, fake):
    import time

    start = time.monotonic()
    res = run_module(worker_instances.main, {"name": "w", "count": 2, "settle_sec": "300ms"})
    assert res["changed"] is True and time.monotonic() - start >= 0.3
