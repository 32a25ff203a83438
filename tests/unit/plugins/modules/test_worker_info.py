"""worker_info: parsing of systemctl output into facts, discovery order, input checks."""

from __future__ import annotations

import os

import pytest
from ansible.module_utils import basic

from ansible_collections.supervised.background.plugins.module_utils import systemd as systemd_util
from ansible_collections.supervised.background.plugins.module_utils.systemd import instance_view as unit_facts
from ansible_collections.supervised.background.plugins.module_utils.validate import natural_key
from ansible_collections.supervised.background.plugins.modules import worker_info
from ansible_collections.supervised.background.plugins.modules.worker_info import summarise

RUNNING = {
    "Id": "qw@1.service", "LoadState": "loaded", "ActiveState": "active", "SubState": "running",
    "Result": "success", "MainPID": "812", "NRestarts": "2", "ExecMainStatus": "0",
    "ExecMainCode": "0", "UnitFileState": "enabled", "ActiveEnterTimestamp": "Tue 2026-11-24 01:29:11 UTC",
    "ActiveEnterTimestampMonotonic": "1", "MemoryCurrent": "188416", "TasksCurrent": "3",
    "InvocationID": "f404d03d6d334326af506165e3397f60",
}
FAILED = dict(RUNNING, Id="qw@10.service", ActiveState="failed", SubState="failed", Result="exit-code",
              MainPID="0", NRestarts="5", ExecMainStatus="3", ExecMainCode="1", UnitFileState="disabled",
              ActiveEnterTimestamp="", MemoryCurrent="[not set]", TasksCurrent="18446744073709551615",
              InvocationID="")


def test_unit_facts_running():
    assert unit_facts("qw@1.service", RUNNING, "qw") == {
        "unit": "qw@1.service", "instance": "1", "load_state": "loaded", "active_state": "active",
        "sub_state": "running", "result": "success", "main_pid": 812, "n_restarts": 2,
        "exec_main_status": 0, "enabled": True, "unit_file_state": "enabled",
        "active_since": "Tue 2026-11-24 01:29:11 UTC", "memory_bytes": 188416, "tasks": 3,
        "invocation_id": "f404d03d6d334326af506165e3397f60",
    }


def test_unit_facts_unknowns_are_null():
    facts = unit_facts("qw@10.service", FAILED, "qw")
    assert facts["main_pid"] is None and facts["memory_bytes"] is None and facts["tasks"] is None
    assert facts["active_since"] is None and facts["invocation_id"] is None
    assert facts["enabled"] is False and facts["exec_main_status"] == 3 and facts["n_restarts"] == 5


def test_unit_facts_without_template_has_no_instance():
    assert unit_facts("db.service", RUNNING)["instance"] is None


def test_natural_order_and_summary():
    assert sorted(["10", "2", "1", "eu-10", "eu-2"], key=natural_key) == ["1", "2", "10", "eu-2", "eu-10"]
    entries = [unit_facts("qw@1.service", RUNNING, "qw"), unit_facts("qw@10.service", FAILED, "qw")]
    assert summarise(entries) == {"total": 2, "active": 1, "failed": 1}


class FakeSystemctl:
    def __init__(self, listed, props):
        self.listed = listed
        self.props = props
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append(list(args))
        if args[1] == "list-units":
            return 0, "".join(f"{u} loaded active running x\n" for u in self.listed), ""
        if args[1] == "show":
            units = args[args.index("--") + 1:]
            return 0, "\n".join("".join(f"{k}={v}\n" for k, v in self.props[u].items()) for u in units), ""
        raise AssertionError(f"worker_info must only read: {args}")


@pytest.fixture
def fake(monkeypatch, tmp_path):
    fake = FakeSystemctl(["qw@10.service", "qw@1.service"],
                         {"qw@1.service": RUNNING, "qw@10.service": FAILED,
                          "qw@2.service": dict(RUNNING, Id="qw@2.service", ActiveState="inactive",
                                               SubState="dead", MainPID="0")})
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake.__call__)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}")
    # An enabled but never loaded instance is found through its enablement link.
    wants = tmp_path / "multi-user.target.wants"
    wants.mkdir()
    os.symlink("/etc/systemd/system/qw@.service", wants / "qw@2.service")
    monkeypatch.setattr(systemd_util, "SYSTEM_UNIT_DIR", str(tmp_path))
    return fake


def test_discovers_instances_in_natural_order(run_module, fake):
    result = run_module(worker_info.main, {"name": "qw"}, check_mode=True)
    assert result["changed"] is False
    assert [u["instance"] for u in result["units"]] == ["1", "2", "10"]
    assert result["summary"] == {"total": 3, "active": 1, "inactive": 1, "failed": 1}
    assert {c[1] for c in fake.calls} == {"list-units", "show"}


def test_named_units(run_module, fake):
    result = run_module(worker_info.main, {"units": ["qw@10.service", "qw@10.service"]})
    assert [u["unit"] for u in result["units"]] == ["qw@10.service"]
    assert result["units"][0]["result"] == "exit-code"


@pytest.mark.parametrize("args, field", [
    ({"name": "qw@"}, "name"),
    ({"name": "qw.service"}, "name"),
    ({"name": "../qw"}, "name"),
    ({"units": ["qw@.service"]}, "units[0]"),
    ({"units": ["qw@1.service", "qw@1"]}, "units[1]"),
    ({"units": ["a\nb.service"]}, "units[0]"),
    ({"units": ["qw@1.service\n"]}, "units[0]"),
    ({"name": "qw\n"}, "name"),
    ({"units": ["qw:1.service"]}, "units[0]"),
    ({"units": ["qw@1.timer"]}, "units[0]"),
    ({"name": ""}, "name"),
])
def test_bad_input(run_module, fake, args, field):
    result = run_module(worker_info.main, args)
    assert result["failed"] and result["msg"].startswith(field)
    assert fake.calls == []


def test_name_or_units_required(run_module, fake):
    assert run_module(worker_info.main, {})["failed"]
    assert run_module(worker_info.main, {"name": "qw", "units": ["qw@1.service"]})["failed"]


def test_systemctl_failure_is_reported(run_module, fake, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, args, **kw: (1, "", "Failed to connect to bus: No such file or directory"))
    result = run_module(worker_info.main, {"units": ["qw@1.service"]})
    assert result["failed"] and "Failed to connect to bus" in result["msg"]


def test_no_instances_is_an_empty_report(run_module, fake, monkeypatch, tmp_path):
    fake.listed = []
    monkeypatch.setattr(systemd_util, "SYSTEM_UNIT_DIR", str(tmp_path / "none"))
    result = run_module(worker_info.main, {"name": "qw"})
    assert result == {"changed": False, "units": [], "summary": {"total": 0}}


def test_summary_counts_unknown_state():
    assert summarise([{"active_state": None}, {"active_state": "active"}]) == {"total": 2, "unknown": 1, "active": 1}
