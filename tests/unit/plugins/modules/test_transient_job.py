"""transient_job: input catalogue, systemd-run argv, and the start/wait/read/stop logic.

systemd itself is faked here (recorded run_command calls); the real thing runs in the Molecule
scenario ``jobs``.
"""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils import basic

from ansible_collections.supervised.background.plugins.module_utils.validate import InputError
from ansible_collections.supervised.background.plugins.modules import transient_job
from ansible_collections.supervised.background.plugins.modules.transient_job import (
    build_command_line,
    check_properties,
    job_facts,
    job_view,
    unit_name,
)

RUN = "/usr/bin/systemd-run"


class FakeHost:
    """Stands in for systemctl / systemd-run / journalctl and records every command."""

    def __init__(self):
        self.calls = []
        self.states = []          # successive `systemctl show` answers for the job unit
        self.run_rc = 0
        self.journal = ["line 1", "line 2"]
        self.after_stop = None    # what `systemctl show` answers once `systemctl stop` ran

    def props(self, **extra):
        base = {"Id": "job.service", "LoadState": "loaded", "ActiveState": "active",
                "SubState": "running", "Result": "success", "ExecMainStatus": "0",
                "ExecMainCode": "0", "MainPID": "42", "InvocationID": "a" * 32, "Transient": "yes",
                "ExecMainStartTimestampMonotonic": "1000000", "ExecMainExitTimestampMonotonic": "0"}
        base.update(extra)
        return base

    def absent(self):
        return {"Id": "job.service", "LoadState": "not-found", "ActiveState": "inactive",
                "SubState": "dead", "Result": "success", "InvocationID": "", "Transient": "no"}

    def finished(self, status=0, result="success", code="1", invocation="b" * 32):
        return self.props(ActiveState="active" if result == "success" else "failed",
                          SubState="exited" if result == "success" else "failed",
                          Result=result, ExecMainStatus=str(status), ExecMainCode=code, MainPID="0",
                          InvocationID=invocation, ExecMainExitTimestampMonotonic="3500000")

    def run_command(self, args, **kwargs):
        args = list(args)
        self.calls.append(args)
        tool = os.path.basename(args[0])
        if tool == "systemctl" and args[1] == "show":
            current = self.states[0] if len(self.states) == 1 else self.states.pop(0)
            return 0, "".join(f"{k}={v}\n" for k, v in current.items()), ""
        if tool == "systemctl" and args[1] == "stop" and self.after_stop:
            self.states = [self.after_stop]
        if tool == "systemd-run":
            assert kwargs.get("expand_user_and_vars") is False
            return self.run_rc, "", "" if self.run_rc == 0 else "Job failed"
        if tool == "journalctl":
            return 0, "" if "--sync" in args else "\n".join(self.journal) + "\n", ""
        return 0, "", ""

    def ran(self, tool):
        return [c for c in self.calls if os.path.basename(c[0]) == tool]


@pytest.fixture
def host(monkeypatch):
    fake = FakeHost()
    # A bound method is no descriptor: module.run_command(args) calls fake.run_command(args).
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake.run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}")
    monkeypatch.setattr(transient_job.time, "sleep", lambda seconds: None)
    return fake


@pytest.fixture
def env_file(tmp_path):
    path = tmp_path / "job.env"
    path.write_text("DB_PASSWORD=s3cr3t-value\n")
    path.chmod(0o600)
    return str(path)


def job(**extra):
    args = {"unit": "job", "command": ["/bin/sh", "-c", "echo hi"]}
    args.update(extra)
    return args


# -- bad input: every case names its field and runs nothing --------------------------------------
BAD_INPUT = [
    ("relative command", job(command=["sh", "-c", "true"]), "command[0]"),
    ("dotted command path", job(command=["/bin/../bin/sh"]), "command[0]"),
    ("missing program", job(command=["/nonexistent/prog"]), "command[0]"),
    ("newline in an argument", job(command=["/bin/echo", "a\nb"]), "command[1]"),
    ("no command with state=started", {"unit": "job"}, "command"),
    ("empty unit", job(unit=""), "unit"),
    ("slash in unit", job(unit="../etc/job"), "unit"),
    ("template instance", job(unit="job@1.service"), "unit"),
    ("@ in base name", job(unit="job@1"), "unit"),
    ("leading dash", job(unit="-job"), "unit"),
    ("timer suffix", job(unit="job.timer"), "unit"),
    ("newline in unit", job(unit="job\nExecStart=/bin/evil"), "unit"),
    ("newline in property", job(properties={"MemoryMax": "1G\nExecStartPre=/bin/evil"}), "properties.MemoryMax"),
    ("unknown property", job(properties={"ExecStartPre": "/bin/evil"}), "properties"),
    ("lower-case property", job(properties={"memorymax": "1G"}), "properties"),
    ("reserved property", job(properties={"User": "root"}), "properties"),
    ("Environment as property", job(properties={"Environment": "A=b"}), "properties"),
    ("bad RuntimeMaxSec", job(properties={"RuntimeMaxSec": "soon"}), "properties.RuntimeMaxSec"),
    ("zero RuntimeMaxSec", job(properties={"RuntimeMaxSec": 0}), "properties.RuntimeMaxSec"),
    ("negative TimeoutStopSec", job(properties={"TimeoutStopSec": -5}), "properties.TimeoutStopSec"),
    ("Nice out of range", job(properties={"Nice": 30}), "properties.Nice"),
    ("unknown signal", job(properties={"KillSignal": "SIGFOO"}), "properties.KillSignal"),
    ("bad KillMode", job(properties={"KillMode": "all"}), "properties.KillMode"),
    ("bad CPUQuota", job(properties={"CPUQuota": "fast"}), "properties.CPUQuota"),
    ("boolean MemoryMax", job(properties={"MemoryMax": True}), "properties.MemoryMax"),
    ("bad LimitNOFILE", job(properties={"LimitNOFILE": "lots"}), "properties.LimitNOFILE"),
    ("empty property value", job(properties={"MemoryMax": ""}), "properties.MemoryMax"),
    ("bad UMask", job(properties={"UMask": "0999"}), "properties.UMask"),
    ("shell in user", job(user="root; rm -rf /"), "user"),
    ("unknown user", job(user="no-such-user-sbtest"), "user"),
    ("unknown group", job(group="no-such-group-sbtest"), "group"),
    ("relative working directory", job(working_directory="srv/app"), "working_directory"),
    ("missing working directory", job(working_directory="/nonexistent/dir"), "working_directory"),
    ("relative env file", job(environment_files=["app.env"]), "environment_files[0]"),
    ("missing env file", job(environment_files=["/nonexistent/app.env"]), "environment_files[0]"),
    ("bad invocation id", job(state="finished", command=None, invocation_id="123"), "invocation_id"),
    ("invocation id with a trailing newline",
     job(state="finished", command=None, invocation_id="b" * 32 + "\n"), "invocation_id"),
    ("uid beyond the kernel's range", job(user="99999999999999999999"), "user"),
    ("gid beyond the kernel's range", job(group="99999999999999999999"), "group"),
    ("negative timeout", job(timeout=-1), "timeout"),
    ("too many output lines", job(output_lines=100000), "output_lines"),
]


@pytest.mark.parametrize("args, field", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_names_field_and_runs_nothing(run_module, host, args, field):
    args = {k: v for k, v in args.items() if v is not None}
    result = run_module(transient_job.main, args)
    assert result["failed"] is True
    assert field in result["msg"]
    assert result["msg"].startswith(field) or "missing" in result["msg"]
    assert host.calls == []
    assert result.get("changed") in (None, False)


def test_catalogue_is_large_enough():
    assert len(BAD_INPUT) >= 15


def test_regular_unit_is_never_touched(run_module, host):
    host.states = [host.props(Transient="no", Id="job.service")]
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"})
    assert result["failed"] and result["msg"].startswith("unit:")
    assert host.ran("systemd-run") == []
    assert not [c for c in host.ran("systemctl") if c[1] != "show"]


# -- pure helpers ------------------------------------------------------------------------------
def test_unit_name_adds_suffix():
    assert unit_name("db-migrate") == "db-migrate.service"
    assert unit_name("db-migrate.service") == "db-migrate.service"
    assert unit_name("nightly.2026") == "nightly.2026.service"


def test_properties_are_normalised_and_sorted():
    rendered = check_properties({
        "RuntimeMaxSec": "2min 30s", "TimeoutStopSec": 5, "MemoryMax": "512M", "Nice": "10",
        "SendSIGKILL": False, "ProtectSystem": "strict", "PrivateTmp": "yes", "UMask": "0077",
        "KillSignal": "SIGINT", "LimitNOFILE": "1024:4096", "CPUQuota": "50%",
    })
    assert rendered == [
        ("CPUQuota", "50%"), ("KillSignal", "SIGINT"), ("LimitNOFILE", "1024:4096"),
        ("MemoryMax", "512M"), ("Nice", "10"), ("PrivateTmp", "yes"), ("ProtectSystem", "strict"),
        ("RuntimeMaxSec", "150s"), ("SendSIGKILL", "no"), ("TimeoutStopSec", "5s"), ("UMask", "0077"),
    ]


def test_infinity_timespan_allowed():
    assert check_properties({"RuntimeMaxSec": "infinity"}) == [("RuntimeMaxSec", "infinity")]


def test_unknown_property_lists_allowed_names():
    with pytest.raises(InputError) as err:
        check_properties({"ExecStopPost": "/bin/x"})
    assert "RuntimeMaxSec" in str(err.value) and str(err.value).startswith("properties:")


def test_command_line_argv():
    argv = build_command_line(RUN, "job.service", ["/opt/app/migrate", "--to", "v2"], user="app",
                              group="app", working_directory="/opt/app",
                              environment_files=["/etc/app.env"], properties=[("RuntimeMaxSec", "60s")])
    assert argv == [
        RUN, "--quiet", "--no-ask-password", "--unit=job.service", "--service-type=exec",
        "--remain-after-exit", "-p", "User=app", "-p", "Group=app", "-p", "WorkingDirectory=/opt/app",
        "-p", "EnvironmentFile=/etc/app.env", "-p", "RuntimeMaxSec=60s", "--",
        "/opt/app/migrate", "--to", "v2",
    ]


def test_command_line_keeps_dollars_literal():
    argv = build_command_line(RUN, "job.service", ["/bin/echo", "$SECRET", "${X}", "a$$b", "-p"])
    tail = argv[argv.index("--") + 1:]
    assert tail == ["/bin/echo", "$$SECRET", "$${X}", "a$$$$b", "-p"]


def test_job_view_and_facts():
    fake = FakeHost()
    assert job_view(fake.absent()) == "absent"
    assert job_view(fake.props()) == "running"
    assert job_view(fake.props(ActiveState="deactivating", SubState="stop-sigterm")) == "running"
    assert job_view(fake.finished()) == "finished"
    assert job_view(fake.finished(status=3, result="exit-code")) == "finished"
    facts = job_facts(fake.finished(status=15, result="timeout", code="2"))
    assert facts == {"state": "finished", "running": False, "invocation_id": "b" * 32,
                     "result": "timeout", "exit_status": 15, "exit_code": "killed", "duration_sec": 2.5}
    assert job_facts(fake.props())["result"] is None


# -- flows against the fake host ---------------------------------------------------------------
def test_start_and_wait_success(run_module, host, env_file):
    host.states = [host.absent(), host.props(InvocationID="b" * 32), host.props(InvocationID="b" * 32),
                   host.finished()]
    result = run_module(transient_job.main, job(environment_files=[env_file],
                                                properties={"RuntimeMaxSec": 60}))
    assert result["changed"] is True and not result.get("failed")
    assert result["exit_status"] == 0 and result["result"] == "success"
    assert result["invocation_id"] == "b" * 32 and result["already_running"] is False
    assert result["output_lines"] == ["line 1", "line 2"]
    assert result["duration_sec"] == 2.5
    (run,) = host.ran("systemd-run")
    assert f"EnvironmentFile={env_file}" in run and "RuntimeMaxSec=60s" in run
    # The env file is handed to systemd by path; its content appears nowhere.
    assert "s3cr3t-value" not in json.dumps(result) and "s3cr3t-value" not in json.dumps(host.calls)
    journal = [c for c in host.ran("journalctl") if "--sync" not in c]
    assert journal and "_SYSTEMD_UNIT=job.service" in journal[0]


def test_non_zero_exit_fails_with_status_and_output(run_module, host):
    host.states = [host.absent(), host.finished(status=3, result="exit-code")]
    host.run_rc = 1     # systemd-run itself fails when the job exits before its start job ends
    result = run_module(transient_job.main, job())
    assert result["failed"] is True
    assert result["exit_status"] == 3 and result["result"] == "exit-code"
    assert "status 3" in result["msg"] and result["output_lines"] == ["line 1", "line 2"]


def test_fail_on_error_false_reports(run_module, host):
    host.states = [host.absent(), host.finished(status=3, result="exit-code")]
    result = run_module(transient_job.main, job(fail_on_error=False))
    assert not result.get("failed") and result["exit_status"] == 3


def test_exec_failure_is_explained(run_module, host):
    host.states = [host.absent(), host.finished(status=217, result="exit-code")]
    host.run_rc = 1
    result = run_module(transient_job.main, job())
    assert result["failed"] and "switch to the user" in result["msg"]


def test_systemd_run_refusal(run_module, host):
    host.states = [host.absent()]
    host.run_rc = 1
    result = run_module(transient_job.main, job())
    assert result["failed"] and "systemd-run failed" in result["msg"]


def test_running_job_is_not_started_twice(run_module, host):
    host.states = [host.props()]
    result = run_module(transient_job.main, job(wait=False))
    assert result["changed"] is False and result["already_running"] is True
    assert result["state"] == "running" and host.ran("systemd-run") == []


def test_running_job_with_wait_is_awaited(run_module, host):
    host.states = [host.props(), host.props(), host.finished(invocation="a" * 32)]
    result = run_module(transient_job.main, job())
    assert result["changed"] is False and result["already_running"] is True
    assert result["result"] == "success" and host.ran("systemd-run") == []


def test_finished_run_is_cleared_before_a_fresh_start(run_module, host):
    host.states = [host.finished(), host.props(InvocationID="c" * 32)]
    result = run_module(transient_job.main, job(wait=False))
    assert result["changed"] is True and result["invocation_id"] == "c" * 32
    verbs = [c[1] for c in host.ran("systemctl") if c[1] != "show"]
    assert verbs == ["stop", "reset-failed"]
    assert len(host.ran("systemd-run")) == 1


def test_check_mode_runs_nothing(run_module, host):
    host.states = [host.absent()]
    result = run_module(transient_job.main, job(), check_mode=True)
    assert result["changed"] is True and result["command_line"][0] == RUN
    assert host.ran("systemd-run") == []
    assert [c[1] for c in host.ran("systemctl")] == ["show"]


def test_timeout_leaves_job_running(run_module, host, monkeypatch):
    ticks = iter(range(0, 1000, 5))
    monkeypatch.setattr(transient_job.time, "monotonic", lambda: float(next(ticks)))
    host.states = [host.props()]
    result = run_module(transient_job.main, job(state="finished", command=None, timeout=12))
    assert result["failed"] and result["timed_out"] is True
    assert "still running" in result["msg"] and result["running"] is True
    assert [c[1] for c in host.ran("systemctl")] == ["show"] * len(host.ran("systemctl"))


def test_timeout_zero_reports_a_running_job_without_failing(run_module, host):
    host.states = [host.props()]
    result = run_module(transient_job.main, job(state="finished", command=None, timeout=0,
                                                stop_on_timeout=True))
    assert not result.get("failed"), result
    assert result["running"] is True and result["state"] == "running" and result["changed"] is False
    assert [c[1] for c in host.ran("systemctl")] == ["show"]


def test_timeout_zero_still_reports_a_failed_job(run_module, host):
    host.states = [host.finished(status=3, result="exit-code")]
    result = run_module(transient_job.main, job(state="finished", command=None, timeout=0))
    assert result["failed"] and result["exit_status"] == 3


def test_timeout_can_stop_the_job(run_module, host, monkeypatch):
    ticks = iter(range(0, 1000, 5))
    monkeypatch.setattr(transient_job.time, "monotonic", lambda: float(next(ticks)))
    host.states = [host.props()]
    host.after_stop = host.absent()
    result = run_module(transient_job.main, job(state="finished", command=None, timeout=12,
                                                stop_on_timeout=True))
    assert result["failed"] and "stopped it" in result["msg"]
    assert result["state"] == "stopped" and result["changed"] is True
    assert ["stop", "--", "job.service"] == host.ran("systemctl")[-2][1:]


def test_finished_reads_result_without_change(run_module, host):
    host.states = [host.finished()]
    result = run_module(transient_job.main, {"unit": "job", "state": "finished",
                                             "invocation_id": "b" * 32})
    assert result["changed"] is False and result["result"] == "success"


def test_finished_detects_a_replaced_run(run_module, host):
    host.states = [host.finished()]
    result = run_module(transient_job.main, {"unit": "job", "state": "finished",
                                             "invocation_id": "c" * 32})
    assert result["failed"] and result["msg"].startswith("invocation_id:")


def test_finished_unknown_job_fails(run_module, host):
    host.states = [host.absent()]
    result = run_module(transient_job.main, {"unit": "job", "state": "finished"})
    assert result["failed"] and "no job named" in result["msg"]


def test_stop_running_job(run_module, host):
    host.states = [host.props(), host.absent()]
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"})
    assert result["changed"] is True and result["state"] == "stopped"
    assert result["invocation_id"] == "a" * 32
    assert ["stop", "--", "job.service"] in [c[1:] for c in host.ran("systemctl")]


def test_stop_is_idempotent(run_module, host):
    host.states = [host.absent()]
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"})
    assert result["changed"] is False
    host.states = [host.finished()]
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"})
    assert result["changed"] is False and result["result"] == "success"
    assert not [c for c in host.ran("systemctl") if c[1] != "show"]


def test_stop_in_check_mode(run_module, host):
    host.states = [host.props()]
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"}, check_mode=True)
    assert result["changed"] is True
    assert not [c for c in host.ran("systemctl") if c[1] != "show"]
