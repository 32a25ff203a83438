"""unit_dropin: the whole module in-process on a temp unit directory.

Faked: systemctl (FakeSystemd answers ``show`` - LoadState, which is how the module asks whether the unit
is installed, and ActiveState - from a dict and records daemon-reloads) and, for most tests,
``systemd-analyze verify`` (FakeSystemd.verify records what it was given and what was on disk at that
moment, or refuses like systemd does). The real ``systemd-analyze`` (installed on Debian 12) verifies a
drop-in of a unit every systemd host has in ``test_real_systemd_analyze``; that test is skipped without it.
"""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible_collections.supervised.background.plugins.module_utils import systemd
from ansible_collections.supervised.background.plugins.modules import unit_dropin

REAL_ANALYZE = shutil.which("systemd-analyze")
HOST_UNIT = "systemd-journald.service"
HOST_UNIT_INSTALLED = any(os.path.exists(os.path.join(d, HOST_UNIT))
                          for d in ("/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system"))
FAKE_ANALYZE = "/nonexistent/systemd-analyze"
HEADER = "# Managed by supervised.background.unit_dropin; do not edit\n"


class FakeSystemd(systemd.Systemd):
    """systemctl as data. ``verify_error``: a message systemd-analyze refuses with; ``real_verify``: run
    the real one."""

    state = {}
    calls = []
    verified = []
    verify_error = None
    real_verify = False
    analyze_path = FAKE_ANALYZE

    def analyze(self):
        return self.analyze_path

    def run(self, args, check=True):
        raise AssertionError(f"unit_dropin ran systemctl directly: {args}")

    def show(self, units, properties=None):
        self.calls.append(("show", list(units)))
        return {u: dict(self.state.get(u, {"LoadState": "not-found", "ActiveState": "inactive"})) for u in units}

    def loaded_instances(self, name):
        return {u.split("@", 1)[1][:-len(".service")] for u in self.state
                if u.startswith(name + "@") and not u.startswith(name + "@probe.")}

    def verify(self, unit_name, text=None, dropins=None, instance="verify", strict=True, dropin_unit=None):
        directory = os.path.join(systemd.SYSTEM_UNIT_DIR, f"{unit_name}.d")
        landed = {}
        for file_name in dropins or {}:
            path = os.path.join(directory, file_name)
            landed[file_name] = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        temps = sorted(n for n in os.listdir(directory) if n.endswith(".tmp")) if os.path.isdir(directory) else []
        FakeSystemd.verified.append({"unit": unit_name, "text": text, "dropins": dict(dropins or {}),
                                     "on_disk": landed, "temps": temps})
        if self.real_verify:
            return super().verify(unit_name, text, dropins, instance=instance, strict=strict, dropin_unit=dropin_unit)
        if self.verify_error:
            raise systemd.SystemdError(self.verify_error)
        return []

    def daemon_reload(self):
        self.calls.append(("daemon-reload", []))

    def _act(self, verb, units):
        self.calls.append((verb, list(units)))

    def start(self, units, no_block=False):
        self._act("start", units)

    def stop(self, units):
        self._act("stop", units)

    def restart(self, units):
        self._act("restart", units)

    def enable(self, units):
        self._act("enable", units)

    def disable(self, units):
        self._act("disable", units)


@pytest.fixture
def units(tmp_path, monkeypatch):
    directory = tmp_path / "units"
    directory.mkdir()
    monkeypatch.setattr(systemd, "SYSTEM_UNIT_DIR", str(directory))
    FakeSystemd.state = {"app.service": {"LoadState": "loaded", "ActiveState": "inactive"}}
    FakeSystemd.calls = []
    FakeSystemd.verified = []
    FakeSystemd.verify_error = None
    FakeSystemd.real_verify = False
    FakeSystemd.analyze_path = FAKE_ANALYZE
    monkeypatch.setattr(systemd, "Systemd", FakeSystemd)
    return directory


def args(**kw):
    base = {"unit": "app.service", "name": "graceful-stop",
            "sections": {"Service": {"KillSignal": "SIGQUIT", "TimeoutStopSec": "2h"}}}
    base.update(kw)
    return base


def changes():
    return [c for c in FakeSystemd.calls if c[0] != "show"]


def dropin(units, unit="app.service", name="graceful-stop"):
    return units / f"{unit}.d" / f"{name}.conf"


# -- writing ---------------------------------------------------------------------------------------
def test_writes_the_dropin_and_reloads(run_module, units):
    res = run_module(unit_dropin.main, args())
    assert res["changed"] is True and res.get("failed") is not True, res
    path = dropin(units)
    assert res["path"] == str(path)
    text = HEADER + "[Service]\nKillSignal=SIGQUIT\nTimeoutStopSec=7200s\n"
    assert res["text"] == text and path.read_text() == text
    st = os.lstat(path)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o755
    assert res["daemon_reloaded"] is True and changes() == [("daemon-reload", [])]
    assert res["restart_needed"] is False  # app.service is not running
    assert res["overrides"] == []


def test_sections_render_sorted_with_lists(run_module, units):
    res = run_module(unit_dropin.main, args(name="deps", sections={
        "Unit": {"After": ["network-online.target", "db.service"], "Wants": "network-online.target",
                 "Description": "App (100% managed)"},
        "Service": {"LimitNOFILE": 65536, "ReadOnlyPaths": ["/srv/a", "-/srv/b"], "Restart": "on-failure"}}))
    assert res["text"] == (HEADER + "[Service]\nLimitNOFILE=65536\nReadOnlyPaths=/srv/a\nReadOnlyPaths=-/srv/b\n"
                           "Restart=on-failure\n\n[Unit]\nAfter=network-online.target\nAfter=db.service\n"
                           "Description=App (100%% managed)\nWants=network-online.target\n"), res
    assert dropin(units, name="deps").read_text() == res["text"]


def test_verify_runs_before_the_dropin_lands(run_module, units):
    res = run_module(unit_dropin.main, args())
    assert res["changed"] is True
    (seen,) = FakeSystemd.verified
    assert seen["unit"] == "app.service" and seen["text"] is None  # the installed unit, by name
    assert seen["dropins"] == {"graceful-stop.conf": res["text"]}
    assert seen["on_disk"] == {"graceful-stop.conf": None}  # not renamed into place yet
    assert len(seen["temps"]) == 1 and seen["temps"][0].startswith(".graceful-stop.conf.")
    FakeSystemd.verified = []
    update = run_module(unit_dropin.main, args(sections={"Service": {"KillSignal": "SIGINT"}}))
    assert update["changed"] is True
    (seen,) = FakeSystemd.verified
    assert seen["on_disk"] == {"graceful-stop.conf": res["text"]}  # the old drop-in is still the one in place
    assert dropin(units).read_text() == update["text"]


def test_verify_failure_leaves_no_file(run_module, units):
    FakeSystemd.verify_error = ("/tmp/x/app.service.d/graceful-stop.conf:3: Failed to parse resource value, "
                                "ignoring: 99999999999999999999")
    res = run_module(unit_dropin.main, args(sections={"Service": {"LimitNOFILE": "99999999999999999999"}}))
    assert res.get("failed") is True, res
    assert res["msg"].startswith("LimitNOFILE: systemd-analyze verify refused app.service:"), res["msg"]
    assert "Failed to parse resource value" in res["msg"]
    assert not dropin(units).exists()
    assert [p for p in units.rglob("*") if p.is_file()] == []
    # Nor the drop-in directory this run made: the host is left as it was.
    assert not dropin(units).parent.exists()
    assert changes() == [] and res["daemon_reloaded"] is False and res["changed"] is False


def test_verify_failure_keeps_the_old_dropin(run_module, units, snapshot_tree):
    run_module(unit_dropin.main, args())
    before = snapshot_tree(units)
    FakeSystemd.calls = []
    FakeSystemd.verify_error = "/tmp/x/app.service.d/graceful-stop.conf:3: Unknown key name 'X', ignoring."
    res = run_module(unit_dropin.main, args(sections={"Service": {"KillSignal": "SIGINT"}}), check_mode=True)
    assert res.get("failed") is True and "Unknown key name" in res["msg"], res
    res = run_module(unit_dropin.main, args(sections={"Service": {"KillSignal": "SIGINT"}}))
    assert res.get("failed") is True and "Unknown key name" in res["msg"], res
    assert snapshot_tree(units) == before and changes() == []


def test_second_run_changes_nothing_and_does_not_reload(run_module, units, snapshot_tree):
    FakeSystemd.state["app.service"]["ActiveState"] = "active"
    first = run_module(unit_dropin.main, args())
    assert first["changed"] is True and first["restart_needed"] is True
    before = snapshot_tree(units)
    FakeSystemd.calls = []
    FakeSystemd.verified = []
    again = run_module(unit_dropin.main, args(), diff=True)
    assert again["changed"] is False and again["daemon_reloaded"] is False, again
    assert again["restart_needed"] is False  # the unit already runs with this drop-in's settings
    assert "diff" not in again and changes() == [] and FakeSystemd.verified == []
    assert snapshot_tree(units) == before


@pytest.mark.parametrize("active,restart", [("active", True), ("reloading", True), ("activating", True),
                                            ("inactive", False), ("failed", False)])
def test_restart_needed_only_when_the_unit_runs_and_the_dropin_changed(run_module, units, active, restart):
    FakeSystemd.state["app.service"]["ActiveState"] = active
    res = run_module(unit_dropin.main, args())
    assert res["changed"] is True and res["restart_needed"] is restart, res
    assert not [c for c in changes() if c[0] in ("restart", "start", "stop")]  # never restarts it itself


def test_template_asks_through_one_instance(run_module, units):
    FakeSystemd.state = {"worker@probe.service": {"LoadState": "loaded", "ActiveState": "inactive"},
                         "worker@1.service": {"LoadState": "loaded", "ActiveState": "active"}}
    res = run_module(unit_dropin.main, args(unit="worker@.service"))
    assert res["changed"] is True and res["restart_needed"] is True, res
    assert dropin(units, unit="worker@.service").exists()
    assert ("show", ["worker@probe.service"]) in FakeSystemd.calls
    FakeSystemd.state = {"worker@probe.service": {"LoadState": "loaded", "ActiveState": "inactive"}}
    res = run_module(unit_dropin.main, args(unit="worker@.service", name="other"))
    assert res["changed"] is True and res["restart_needed"] is False, res


def test_unit_that_is_not_installed_is_refused(run_module, units, snapshot_tree):
    before = snapshot_tree(units)
    res = run_module(unit_dropin.main, args(unit="missing.service"))
    assert res.get("failed") is True, res
    assert res["msg"] == ("unit: missing.service is not installed (LoadState not-found); "
                          "a drop-in for it would never apply")
    assert ("show", ["missing.service"]) in FakeSystemd.calls  # asked systemd, not the file system
    assert snapshot_tree(units) == before and changes() == [] and FakeSystemd.verified == []


def test_unit_that_is_not_installed_is_a_warning_in_check_mode(run_module, units, snapshot_tree):
    before = snapshot_tree(units)
    res = run_module(unit_dropin.main, args(unit="missing.service"), check_mode=True, diff=True)
    assert res["changed"] is True and res.get("failed") is not True, res
    assert any("check mode: unit: missing.service is not installed" in w
               for w in ansible_warnings.get_warning_messages())
    assert res["diff"]["after"] == res["text"] and res["diff"]["before"] == ""
    assert snapshot_tree(units) == before and changes() == []


def test_check_mode_writes_nothing_and_verifies_a_private_copy(run_module, units, snapshot_tree):
    (units / "app.service.d").mkdir()
    before = snapshot_tree(units)
    res = run_module(unit_dropin.main, args(), check_mode=True, diff=True)
    assert res["changed"] is True and res["daemon_reloaded"] is False, res
    assert snapshot_tree(units) == before and changes() == []
    assert len(FakeSystemd.verified) == 1 and FakeSystemd.verified[0]["on_disk"] == {"graceful-stop.conf": None}
    assert res["diff"] == {"before": "", "after": res["text"], "before_header": f"{dropin(units)} (absent)",
                           "after_header": str(dropin(units))}


def test_check_mode_after_a_real_run_is_quiet(run_module, units):
    run_module(unit_dropin.main, args())
    FakeSystemd.calls = []
    res = run_module(unit_dropin.main, args(), check_mode=True)
    assert res["changed"] is False and changes() == [], res


def test_diff_of_a_change(run_module, units):
    old = run_module(unit_dropin.main, args())["text"]
    res = run_module(unit_dropin.main, args(sections={"Service": {"KillSignal": "SIGINT"}}), diff=True)
    assert res["diff"]["before"] == old and res["diff"]["after"] == res["text"]
    assert res["diff"]["before_header"] == res["diff"]["after_header"] == str(dropin(units))


def test_absent_removes_and_reloads_then_is_quiet(run_module, units):
    run_module(unit_dropin.main, args())
    FakeSystemd.calls = []
    res = run_module(unit_dropin.main, args(state="absent"), diff=True)
    assert res["changed"] is True and res["daemon_reloaded"] is True, res
    assert not dropin(units).exists() and "text" not in res
    assert changes() == [("daemon-reload", [])]
    FakeSystemd.calls = []
    again = run_module(unit_dropin.main, args(state="absent"))
    assert again["changed"] is False and again["daemon_reloaded"] is False and changes() == [], again


def test_absent_for_a_unit_that_is_gone(run_module, units):
    FakeSystemd.state = {}
    res = run_module(unit_dropin.main, args(state="absent"))
    assert res["changed"] is False and res.get("failed") is not True, res


def test_privileges_are_reported(run_module, units):
    res = run_module(unit_dropin.main, args(sections={"Service": {"AmbientCapabilities": "CAP_NET_BIND_SERVICE",
                                                                  "LimitNOFILE": 4096}}))
    assert res["overrides"] == ["AmbientCapabilities=CAP_NET_BIND_SERVICE"], res
    assert any("grants privileges" in w and "AmbientCapabilities" in w for w in ansible_warnings.get_warning_messages())


def test_symlink_at_the_dropin_is_refused(run_module, units, tmp_path, snapshot_tree):
    (units / "app.service.d").mkdir()
    elsewhere = tmp_path / "elsewhere.conf"
    elsewhere.write_text("[Service]\n")
    dropin(units).symlink_to(elsewhere)
    before = snapshot_tree(tmp_path)
    res = run_module(unit_dropin.main, args())
    assert res.get("failed") is True and "symlink" in res["msg"], res
    assert snapshot_tree(tmp_path) == before and changes() == []


@pytest.mark.skipif(REAL_ANALYZE is None or not HOST_UNIT_INSTALLED, reason=f"needs systemd-analyze and {HOST_UNIT}")
def test_real_systemd_analyze(run_module, units, snapshot_tree):
    FakeSystemd.analyze_path = REAL_ANALYZE
    FakeSystemd.real_verify = True
    FakeSystemd.state = {HOST_UNIT: {"LoadState": "loaded", "ActiveState": "active"}}
    ok = run_module(unit_dropin.main, args(unit=HOST_UNIT, sections={"Service": {"LimitNOFILE": "4096:8192"}}))
    assert ok["changed"] is True and ok["restart_needed"] is True, ok
    before = snapshot_tree(units)
    # Passes the collection's validator, but systemd ignores the line (soft above hard): never lands.
    bad = run_module(unit_dropin.main, args(unit=HOST_UNIT, sections={"Service": {"LimitNOFILE": "5:3"}}))
    assert bad.get("failed") is True, bad
    assert bad["msg"].startswith("LimitNOFILE: systemd-analyze verify refused"), bad["msg"]
    assert "Soft resource limit chosen higher than hard limit" in bad["msg"]
    assert snapshot_tree(units) == before
    fresh = run_module(unit_dropin.main, args(unit=HOST_UNIT, name="other", sections={"Service": {"LimitNOFILE": "5:3"}}))
    assert fresh.get("failed") is True and not dropin(units, unit=HOST_UNIT, name="other").exists(), fresh


# -- the bad-input catalogue: refused, naming the field and the rule, before anything is written -----
NAME_RULE = ["may only use letters, digits"]
DROPIN_RULE = ["may only use letters, digits, '_', '.' and '-' (at most 64)"]
SINGLE = ["must be a single line of text"]
NL = "x\nExecStartPre=+/bin/sh"
BAD = [
    ("unit without suffix", {"unit": "app"}, "unit", ["must end with one of .service"]),
    ("unit with space", {"unit": "my app.service"}, "unit", NAME_RULE),
    ("unit trailing newline", {"unit": "app.service\n"}, "unit", SINGLE),
    ("unit newline inside", {"unit": "app.service\nx.service"}, "unit", SINGLE),
    ("unit with slash", {"unit": "../app.service"}, "unit", ["must not contain '/'"]),
    ("unit specifier instance", {"unit": "app@%i.service"}, "unit", ["instance '%i'"]),
    ("unit empty", {"unit": ""}, "unit", ["must not be empty"]),
    ("unit colon", {"unit": "app:1.service"}, "unit", NAME_RULE),
    ("unit unknown suffix", {"unit": "app.conf"}, "unit", ["must end with one of"]),
    ("name with slash", {"name": "a/b"}, "name", DROPIN_RULE),
    ("name dot-dot", {"name": ".."}, "name", DROPIN_RULE),
    ("name dot-dot path", {"name": "../../sudoers.d/x"}, "name", DROPIN_RULE),
    ("name trailing newline", {"name": "graceful-stop\n"}, "name", SINGLE),
    ("name newline inside", {"name": "a\nb"}, "name", SINGLE),
    ("name too long", {"name": "d" * 65}, "name", DROPIN_RULE),
    ("name empty", {"name": ""}, "name", DROPIN_RULE),
    ("name hidden", {"name": ".hidden"}, "name", DROPIN_RULE),
    ("section Install", {"sections": {"Install": {"WantedBy": "multi-user.target"}}}, "sections",
     ["'Install' is not a section this module writes"]),
    ("section Timer", {"sections": {"Timer": {"OnCalendar": "daily"}}}, "sections", ["'Timer' is not a section"]),
    ("section lowercase", {"sections": {"service": {"KillSignal": "SIGINT"}}}, "sections",
     ["'service' is not a section"]),
    ("no directive", {"sections": {}}, "sections", ["give at least one directive"]),
    ("empty section", {"sections": {"Service": {}}}, "sections", ["give at least one directive"]),
    ("ExecStartPre with +", {"sections": {"Service": {"ExecStartPre": "+/bin/sh -c id"}}},
     "sections.Service.ExecStartPre", ["is refused", "as root outside the sandbox"]),
    ("ExecStart", {"sections": {"Service": {"ExecStart": "/bin/sh"}}}, "sections.Service.ExecStart",
     ["is not a directive this collection lets you set"]),
    ("User", {"sections": {"Service": {"User": "root"}}}, "sections.Service.User",
     ["is refused", "replaces the user the service runs as"]),
    ("Group", {"sections": {"Service": {"Group": "root"}}}, "sections.Service.Group", ["is refused"]),
    ("DynamicUser", {"sections": {"Service": {"DynamicUser": "yes"}}}, "sections.Service.DynamicUser", ["is refused"]),
    ("BindPaths", {"sections": {"Service": {"BindPaths": "/etc:/srv/etc"}}}, "sections.Service.BindPaths",
     ["is refused", "binds a host path"]),
    ("BindReadOnlyPaths", {"sections": {"Service": {"BindReadOnlyPaths": "/root"}}},
     "sections.Service.BindReadOnlyPaths", ["is refused"]),
    ("StandardOutput file", {"sections": {"Service": {"StandardOutput": "file:/etc/sudoers.d/x"}}},
     "sections.Service.StandardOutput", ["must be one of journal, null, inherit, kmsg"]),
    ("StandardError append", {"sections": {"Service": {"StandardError": "append:/etc/x"}}},
     "sections.Service.StandardError", ["must be one of"]),
    ("LoadCredential", {"sections": {"Service": {"LoadCredential": "x:/etc/shadow"}}},
     "sections.Service.LoadCredential", ["is refused", "credentials option"]),
    ("Environment", {"sections": {"Service": {"Environment": "A=1"}}}, "sections.Service.Environment",
     ["is not a directive this collection lets you set"]),
    ("unknown Service directive", {"sections": {"Service": {"Frobnicate": "yes"}}}, "sections.Service.Frobnicate",
     ["is not a directive this collection lets you set"]),
    ("Service directive in Unit", {"sections": {"Unit": {"KillSignal": "SIGINT"}}}, "sections.Unit.KillSignal",
     ["is not a directive this collection lets you set"]),
    ("Exec directive in Unit", {"sections": {"Unit": {"ExecStartPre": "/bin/sh"}}}, "sections.Unit.ExecStartPre",
     ["is refused"]),
    ("directive name with newline", {"sections": {"Service": {"KillSignal\n": "SIGINT"}}}, "sections.Service",
     ["is not a directive name"]),
    ("lowercase directive", {"sections": {"Service": {"killsignal": "SIGINT"}}}, "sections.Service",
     ["is not a directive name"]),
    ("value newline", {"sections": {"Service": {"LimitNOFILE": "1\nUser=root"}}}, "sections.Service.LimitNOFILE",
     SINGLE),
    ("signal value newline", {"sections": {"Service": {"KillSignal": NL}}}, "sections.Service.KillSignal", SINGLE),
    ("description newline", {"sections": {"Unit": {"Description": NL}}}, "sections.Unit.Description", SINGLE),
    ("description trailing newline", {"sections": {"Unit": {"Description": "app\n"}}}, "sections.Unit.Description",
     SINGLE),
    ("description U+2028", {"sections": {"Unit": {"Description": "a\u2028b"}}}, "sections.Unit.Description",
     ["line or paragraph separator"]),
    ("list value newline", {"sections": {"Service": {"ReadOnlyPaths": ["/srv", NL]}}},
     "sections.Service.ReadOnlyPaths", SINGLE),
    ("After newline", {"sections": {"Unit": {"After": ["db.service\nUser=root"]}}}, "sections.Unit.After", SINGLE),
    ("After without suffix", {"sections": {"Unit": {"After": "db"}}}, "sections.Unit.After", ["must end with one of"]),
    ("Wants template", {"sections": {"Unit": {"Wants": "db@.service"}}}, "sections.Unit.Wants", ["is a template"]),
    ("Requires with slash", {"sections": {"Unit": {"Requires": "../db.service"}}}, "sections.Unit.Requires",
     ["must not contain '/'"]),
    ("KillSignal SIGSTOP", {"sections": {"Service": {"KillSignal": "SIGSTOP"}}}, "sections.Service.KillSignal",
     ["is not one of"]),
    ("TimeoutStopSec words", {"sections": {"Service": {"TimeoutStopSec": "a while"}}},
     "sections.Service.TimeoutStopSec", ["is not a time span"]),
    ("Slice with path", {"sections": {"Service": {"Slice": "../x.slice"}}}, "sections.Service.Slice",
     ["must not contain '/'"]),
    ("lock_timeout bad", {"lock_timeout": "eventually"}, "lock_timeout", ["is not a time span"]),
]


@pytest.mark.parametrize("label,override,field,words", BAD, ids=[row[0] for row in BAD])
def test_bad_input_refused_and_nothing_written(run_module, units, snapshot_tree, label, override, field, words):
    run_module(unit_dropin.main, args())
    before = snapshot_tree(units)
    FakeSystemd.calls = []
    FakeSystemd.verified = []
    res = run_module(unit_dropin.main, args(**override), diff=True)
    assert res.get("failed") is True, (label, res)
    assert res["msg"].startswith(field + ":") or res["msg"].startswith(field + "."), (label, res["msg"])
    for word in words:
        assert word in res["msg"], (label, word, res["msg"])
    assert not res.get("changed") and "diff" not in res, label
    assert snapshot_tree(units) == before, label
    assert FakeSystemd.calls == [] and FakeSystemd.verified == [], label


def test_catalogue_is_large_enough():
    assert len(BAD) >= 45


@pytest.mark.parametrize("directive,value", [("ProtectSystem", "no"), ("PrivateTmp", "no"), ("NoNewPrivileges", "no")])
def test_loosening_a_hardened_units_sandbox_is_reported(run_module, units, directive, value):
    res = run_module(unit_dropin.main, args(sections={"Service": {directive: value}}))
    assert res.get("failed") is not True, res
    assert f"{directive}={value}" in res["overrides"], res
