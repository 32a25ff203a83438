"""instances: the plan (pure), the order it is carried out in, and the health gate.

systemd's answers are data here (FakeSystemd records every action); what a real systemd does with
them is proven in the Molecule scenario."""

from __future__ import annotations

import time

import pytest
from ansible_collections.supervised.background.plugins.module_utils import instances
from ansible_collections.supervised.background.plugins.module_utils.instances import (
    make_plan,
    state_lines,
    wanted_instances,
)
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError


def props(active="inactive", enabled="disabled", pid="0", restarts="0", since=None):
    entered = 0 if active != "active" else int(((time.monotonic() - 3600) if since is None else since) * 1e6)
    return {"ActiveState": active, "SubState": "running" if active == "active" else "dead", "Result": "success",
            "UnitFileState": enabled, "MainPID": pid, "NRestarts": restarts, "LoadState": "loaded",
            "ActiveEnterTimestampMonotonic": str(entered)}


# -- wanted ---------------------------------------------------------------------------------------
def test_wanted_instances():
    assert wanted_instances(3, None) == ["1", "2", "3"]
    assert wanted_instances(0, None) == []
    assert wanted_instances(None, ["10", "2", "eu", "2"]) == ["2", "10", "eu"]
    assert len(wanted_instances(1000, None)) == 1000


@pytest.mark.parametrize("count,names,field", [
    (-1, None, "count"), (1001, None, "count"), (True, None, "count"), (None, [str(i) for i in range(1001)], "instances"),
    (None, ["a b"], "instances[0]"), (None, ["1", "1\n"], "instances[1]"), (None, [""], "instances[0]"),
])
def test_wanted_instances_bad(count, names, field):
    with pytest.raises(InputError) as err:
        wanted_instances(count, names)
    assert str(err.value).startswith(field)


# -- the plan, as a table -------------------------------------------------------------------------
def test_plan_scale_up_from_nothing():
    p = make_plan("w", ["1", "2"], [], {"1": props(), "2": props()}, set(), "started", True, True, "none")
    assert p["start"] == ["w@1.service", "w@2.service"] and p["enable"] == ["w@1.service", "w@2.service"]
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
    state = {"1": props("active", "enabled"), "2": props("failed", "enabled"), "3": props("reloading", "enabled")}
    p = make_plan("w", ["1", "2", "3"], [], state, set(), "started", True, True, "rolling")
    assert p["restart"] == ["w@1.service", "w@3.service"] and p["start"] == ["w@2.service"]


def test_plan_activating_is_started_not_restarted():
    state = {"1": dict(props("inactive", "enabled"), ActiveState="activating", SubState="auto-restart")}
    p = make_plan("w", ["1"], [], state, set(), "started", True, True, "all")
    assert p["start"] == ["w@1.service"] and not p["restart"]


def test_plan_stopped_and_disabled():
    state = {"1": props("active", "enabled"), "2": props("failed", "enabled"), "3": props("inactive")}
    p = make_plan("w", ["1", "2", "3"], [], state, set(), "stopped", False, True, "all")
    assert p["stop"] == ["w@1.service"]
    assert p["disable"] == ["w@1.service", "w@2.service"]
    assert not p["start"] and not p["restart"]


def test_plan_enabled_through_a_link_only():
    p = make_plan("w", ["1"], [], {"1": props("active", "disabled")}, {"1"}, "started", True, True, "none")
    assert not p["enable"]


def test_diff_lines():
    state = {"1": props("active", "enabled"), "3": props("active", "enabled"), "2": props()}
    p = make_plan("w", ["1", "2"], ["3"], state, set(), "started", True, True, "none")
    assert state_lines("w", ["1", "2", "3"], state, set()) == (
        "w@1.service: active/enabled\nw@2.service: inactive/disabled\nw@3.service: active/enabled\n")
    assert state_lines("w", ["1", "2", "3"], state, set(), p, "started", True) == (
        "w@1.service: active/enabled\nw@2.service: active/enabled\nw@3.service: inactive/disabled\n")
    assert state_lines("w", ["1"], {"1": props("failed")}, set(), p, "stopped", False) == (
        "w@1.service: failed/disabled\n")


# -- the Reconciler ---------------------------------------------------------------------------------
class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode=False, diff=False):
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def fail_json(self, msg, **kw):
        raise Failed(msg, kw)

    def warn(self, msg):
        self.warnings.append(msg)


class FakeSystemd:
    """systemd as data: ``state`` maps unit -> properties; every action is recorded."""

    def __init__(self, state=None):
        self.state = state or {}
        self.calls = []
        self.after_start = {}

    def show(self, units, properties=None):
        return {u: dict(self.state.get(u, props())) for u in units}

    def enabled_instances(self, name):
        return {u.split("@")[1][:-8] for u, s in self.state.items() if s.get("UnitFileState") == "enabled"}

    def loaded_instances(self, name):
        return {u.split("@")[1][:-8] for u in self.state}

    def journal_tail(self, unit, lines=10, **kw):
        return [f"{unit}: last words"]

    # UNIT_RESULT= values systemd logged per unit (what failure_results reads from the journal).
    logged_results = {}

    def failure_results(self, unit, since=None):
        return list(self.logged_results.get(unit, []))

    # How each unit's attempt before the current one ended (what finished_run reads from the journal).
    finished = {}

    def finished_run(self, unit, current):
        return self.finished.get(unit)

    def _act(self, verb, units, active=None, enabled=None):
        if units:
            self.calls.append((verb, list(units)))
        for u in units:
            s = self.state.setdefault(u, props())
            if active:
                s.update(ActiveState=active, SubState="running" if active == "active" else "dead",
                         MainPID=str(int(s["MainPID"]) + 100) if active == "active" else "0",
                         ActiveEnterTimestampMonotonic=str(int(time.monotonic() * 1e6)))
                s.update(self.after_start.get(u, {}))
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


def reconcile(sd, wanted, check_mode=False, diff=False, **params):
    p = {"state": "started", "enabled": True, "prune": True, "restart": "none", "settle": 0.0}
    p.update(params)
    return instances.Reconciler(FakeModule(check_mode, diff), sd, p).reconcile("w", wanted)


def test_order_prune_first_then_enable_then_start():
    sd = FakeSystemd({"w@1.service": props("active", "enabled", "10"), "w@3.service": props("active", "enabled", "30")})
    res = reconcile(sd, ["1", "2"])
    assert [c[0] for c in sd.calls] == ["stop", "disable", "reset-failed", "enable", "start"]
    assert res["pruned"] == ["w@3.service"] and res["started"] == ["w@2.service"] and res["changed"] is True
    assert res["instances"]["2"]["active_state"] == "active" and res["instances"]["2"]["main_pid"] == 100
    sd.calls.clear()
    assert reconcile(sd, ["1", "2"])["changed"] is False and sd.calls == []


def test_check_mode_plans_and_acts_not():
    sd = FakeSystemd({"w@1.service": props("active", "enabled", "10"), "w@3.service": props("active", "enabled", "30")})
    res = reconcile(sd, ["1", "2"], check_mode=True, diff=True)
    assert res["changed"] and res["started"] == ["w@2.service"] and res["pruned"] == ["w@3.service"]
    assert res["disabled_units"] == ["w@3.service"] and sd.calls == []
    assert res["diff"]["before_header"] == "w@.service instances"
    assert "w@3.service: inactive/disabled" in res["diff"]["after"]


def test_rolling_restart_one_by_one_each_watched():
    sd = FakeSystemd({f"w@{i}.service": props("active", "enabled", str(i)) for i in (1, 2, 3)})
    start = time.monotonic()
    res = reconcile(sd, ["1", "2", "3"], restart="rolling", settle=0.2)
    assert [c for c in sd.calls if c[0] == "restart"] == [("restart", [f"w@{i}.service"]) for i in (1, 2, 3)]
    assert res["restarted"] == ["w@1.service", "w@2.service", "w@3.service"]
    assert time.monotonic() - start >= 0.6  # each restarted instance watched for the window


def test_restart_all_at_once():
    sd = FakeSystemd({f"w@{i}.service": props("active", "enabled", str(i)) for i in (1, 2)})
    reconcile(sd, ["1", "2"], restart="all")
    assert [c for c in sd.calls if c[0] == "restart"] == [("restart", ["w@1.service", "w@2.service"])]


def test_rolling_restart_stops_at_the_first_failing_instance():
    sd = FakeSystemd({f"w@{i}.service": props("active", "enabled", str(i)) for i in (1, 2, 3)})
    sd.after_start["w@2.service"] = {"ActiveState": "activating", "SubState": "auto-restart", "Result": "exit-code"}
    with pytest.raises(Failed) as err:
        reconcile(sd, ["1", "2", "3"], restart="rolling", settle=0.1)
    msg, kw = err.value.args
    assert "rolling restart stopped: w@2.service did not stay active" in msg
    assert kw["restarted"] == ["w@1.service", "w@2.service"] and kw["changed"] is True
    assert kw["failing"]["w@2.service"]["journal"] == ["w@2.service: last words"]
    assert ("restart", ["w@3.service"]) not in sd.calls


def test_health_gate_passes_long_running_instances_at_once():
    sd = FakeSystemd({f"w@{i}.service": props("active", "enabled", str(i)) for i in (1, 2)})
    start = time.monotonic()
    res = reconcile(sd, ["1", "2"], settle=30.0)
    assert time.monotonic() - start < 2 and res["changed"] is False


def test_health_gate_catches_a_restart_within_the_window(monkeypatch):
    sd = FakeSystemd({"w@1.service": props("active", "enabled", "1", since=time.monotonic())})
    shows = {"n": 0}
    real_show = sd.show

    def show(units, properties=None):
        shows["n"] += 1
        if shows["n"] == 3:  # the watch's second look: systemd restarted it meanwhile
            sd.state["w@1.service"].update(MainPID="77", NRestarts="1")
        return real_show(units, properties)

    monkeypatch.setattr(sd, "show", show)
    with pytest.raises(Failed) as err:
        reconcile(sd, ["1"], settle=5.0)
    assert "instances not healthy within 5s" in err.value.args[0]
    assert "NRestarts=1, MainPID=77" in err.value.args[0]


def test_a_crash_looping_instance_is_reported_by_its_last_crash_not_its_new_attempt():
    """Read during the next attempt, show says Result=success and status 0 (systemd resets them)."""
    sd = FakeSystemd({})
    sd.after_start["w@1.service"] = {"ActiveState": "activating", "SubState": "start", "Result": "success",
                                     "ExecMainStatus": "0", "NRestarts": "2", "InvocationID": "b" * 32}
    sd.finished = {"w@1.service": {"last_result": "exit-code", "last_exit_status": 3}}
    with pytest.raises(Failed) as err:
        reconcile(sd, ["1"])
    assert "w@1.service (activating/start, result=exit-code, NRestarts=2" in err.value.args[0], err.value.args[0]
    assert err.value.args[1]["failing"]["w@1.service"]["exec_main_status"] == 3
    # The journal holds no finished attempt (no start entry found): the last failure logged in this
    # run, or nothing, but never show's reset success/0.
    sd.finished = {}
    sd.logged_results = {"w@1.service": ["exit-code"]}
    with pytest.raises(Failed) as err:
        reconcile(sd, ["1"])
    assert "result=exit-code" in err.value.args[0]
    assert err.value.args[1]["failing"]["w@1.service"]["exec_main_status"] is None
    sd.logged_results = {}
    with pytest.raises(Failed) as err:
        reconcile(sd, ["1"])
    assert "result=None" in err.value.args[0] and "result=success" not in err.value.args[0]
    # A finished attempt whose result field is missing says no more than no attempt at all.
    sd.finished = {"w@1.service": {"last_result": None, "last_exit_status": None}}
    with pytest.raises(Failed) as err:
        reconcile(sd, ["1"])
    assert "result=None" in err.value.args[0] and "result=success" not in err.value.args[0]


def test_watchdog_kill_is_named():
    sd = FakeSystemd({})
    sd.after_start["w@1.service"] = {"ActiveState": "failed", "Result": "watchdog"}
    with pytest.raises(Failed, match="killed by its watchdog"):
        reconcile(sd, ["1"])


def test_watchdog_kill_is_named_after_the_restart(monkeypatch):
    # Restart= brought it back (Result is success again); systemd's UNIT_RESULT=watchdog entry names it.
    sd = FakeSystemd({})
    real_show = sd.show
    shows = {"n": 0}

    def show(units, properties=None):
        shows["n"] += 1
        if shows["n"] == 3:
            sd.state["w@1.service"].update(MainPID="77", NRestarts="1")
        return real_show(units, properties)

    monkeypatch.setattr(sd, "show", show)
    sd.logged_results = {"w@1.service": ["watchdog"]}
    with pytest.raises(Failed, match="NRestarts=1, MainPID=77\\) killed by its watchdog"):
        reconcile(sd, ["1"], settle=5.0)
    # A unit whose failures were for other reasons is not called a watchdog kill.
    sd2 = FakeSystemd({})
    sd2.after_start["w@1.service"] = {"ActiveState": "failed", "Result": "exit-code"}
    sd2.logged_results = {"w@1.service": ["exit-code", "timeout"]}
    with pytest.raises(Failed) as err:
        reconcile(sd2, ["1"])
    assert "watchdog" not in err.value.args[0]


def test_missing_template():
    sd = FakeSystemd({})
    sd.show = lambda units, properties=None: {u: {"LoadState": "not-found"} for u in units}
    with pytest.raises(Failed, match="name: template w@.service is not installed"):
        reconcile(sd, ["1"])
    assert sd.calls == []
    res = reconcile(sd, ["1"], check_mode=True)
    assert res["started"] == ["w@1.service"]
    sd.show = lambda units, properties=None: {u: {"LoadState": "masked"} for u in units}
    with pytest.raises(Failed, match="cannot be used \\(LoadState of w@1.service is masked\\)"):
        reconcile(sd, ["1"])


def test_scale_to_zero_needs_no_template():
    sd = FakeSystemd({"w@1.service": props("active", "enabled", "1")})
    res = reconcile(sd, [], state="stopped", enabled=False)
    assert res["pruned"] == ["w@1.service"] and res["instances"] == {}
