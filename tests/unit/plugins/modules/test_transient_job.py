"""transient_job: input catalogue, systemd-run argv, and the start/wait/read/stop logic.

systemd itself is faked here (recorded run_command calls, successive ``systemctl show`` answers),
the job-finish helper by records written with job_record into a private directory. The real thing
runs in the Molecule scenario ``jobs``.
"""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings

from ansible_collections.supervised.background.plugins.module_utils import job_record, safe_file
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError
from ansible_collections.supervised.background.plugins.modules import transient_job
from ansible_collections.supervised.background.plugins.modules.transient_job import (
    check_properties,
    job_facts,
    job_unit,
    job_view,
    record_facts,
    unit_facts,
)

RUN = "/usr/bin/systemd-run"
A, B, C = "a" * 32, "b" * 32, "c" * 32


def props(**extra):
    """A running transient job as ``systemctl show`` reports it."""
    base = {"Id": "job.service", "LoadState": "loaded", "ActiveState": "active",
            "SubState": "running", "Result": "success", "ExecMainStatus": "0",
            "ExecMainCode": "0", "MainPID": "42", "InvocationID": A, "Transient": "yes",
            "ExecMainStartTimestampMonotonic": "1000000", "ExecMainExitTimestampMonotonic": "0"}
    base.update(extra)
    return base


def absent():
    return {"Id": "job.service", "LoadState": "not-found", "ActiveState": "inactive",
            "SubState": "dead", "Result": "success", "InvocationID": "", "Transient": "no"}


def failed(result="timeout", code="1", status="0", invocation=A):
    """A unit systemd keeps loaded after a failure."""
    return props(ActiveState="failed", SubState="failed", Result=result, ExecMainCode=code,
                 ExecMainStatus=status, MainPID="0", InvocationID=invocation,
                 ExecMainExitTimestampMonotonic="3500000")


def record(invocation=A, code="1", status="0", result="success", stopped=False, found=()):
    """What the helper writes, built by the helper's own function."""
    view = {"InvocationID": invocation, "Result": result, "MainPID": "42" if stopped else "0",
            "ExecMainCode": "0" if stopped else code, "ExecMainStatus": status,
            "ExecMainStartTimestampMonotonic": "1000000",
            "ExecMainExitTimestampMonotonic": "0" if stopped else "3500000"}
    found = [{"pid": 42 if stopped else 7, "name": "job", "executable": "/bin/sh"}] * bool(stopped) + list(found)
    return job_record.finish("job.service", {}, view, found, now_usec=11_000_000)


SLEEP = {"pid": 7, "name": "sleep", "executable": "/usr/bin/sleep"}


class FakeHost:
    """Stands in for systemctl / systemd-run / journalctl and the helper, and records every command."""

    def __init__(self):
        self.calls = []
        self.states = []          # successive `systemctl show` answers for the job unit
        self.version = 252
        self.run_rc = 0
        self.run_err = "Job failed"
        self.journal = ["line 1", "line 2"]
        self.after_run = None     # (states, record) once systemd-run ran
        self.after_stop = None    # (states, record) once systemctl stop ran
        self.installed = []

    def land(self, after):
        states, rec = after
        self.states = list(states)
        if rec is not None:
            job_record.write_record(rec, "job.service")

    def run_command(self, args, **kwargs):
        args = list(args)
        self.calls.append(args)
        tool = os.path.basename(args[0])
        if tool == "systemctl" and args[1] == "--version":
            return 0, f"systemd {self.version} ({self.version}.3-1)\n+PAM +AUDIT\n", ""
        if tool == "systemctl" and args[1] == "show":
            current = self.states[0] if len(self.states) == 1 else self.states.pop(0)
            return 0, "".join(f"{k}={v}\n" for k, v in current.items()), ""
        if tool == "systemctl" and args[1] == "stop" and self.after_stop:
            self.land(self.after_stop)
        if tool == "systemd-run":
            assert kwargs.get("expand_user_and_vars") is False
            if self.after_run:
                self.land(self.after_run)
            return self.run_rc, "", "" if self.run_rc == 0 else self.run_err
        if tool == "journalctl":
            if "--sync" in args:
                return 0, "", ""
            assert "-r" in args and "json" in args, args  # newest first, as journal_tail asks
            return 0, "".join(json.dumps({"MESSAGE": line}) + "\n" for line in reversed(self.journal)), ""
        return 0, "", ""

    def ran(self, tool):
        return [c for c in self.calls if os.path.basename(c[0]) == tool]

    def verbs(self):
        return [c[1] for c in self.ran("systemctl") if c[1] not in ("show", "--version")]


@pytest.fixture
def records(tmp_path, monkeypatch):
    base = tmp_path / "run"
    base.mkdir(mode=0o755)
    monkeypatch.setattr(job_record, "RUN_DIR", str(base / "supervised-background"))
    monkeypatch.setattr(job_record, "RECORD_DIR", str(base / "supervised-background" / "jobs"))
    return base


@pytest.fixture
def host(monkeypatch, records, tmp_path):
    fake = FakeHost()
    # A bound method is no descriptor: module.run_command(args) calls fake.run_command(args).
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake.run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}")
    monkeypatch.setattr(transient_job.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(safe_file, "install_program",
                        lambda module, path, util: fake.installed.append((path, util.__name__)) or True)
    python = tmp_path / "python3"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    monkeypatch.setattr(job_record, "PYTHON", str(python))
    return fake


@pytest.fixture
def warned():
    """The module's warnings (module.warn) of this test."""
    ansible_warnings._global_warnings.clear()
    yield ansible_warnings.get_warning_messages
    ansible_warnings._global_warnings.clear()


@pytest.fixture
def env_file(tmp_path):
    path = tmp_path / "job.env"
    path.write_text("DB_PASSWORD=s3cr3t-value\n")
    path.chmod(0o600)
    return str(path)


def job(**extra):
    args = {"unit": "job", "command": ["/bin/sh", "-c", "echo hi"]}
    args.update(extra)
    return {k: v for k, v in args.items() if v is not None}


# -- bad input: every case names its field and the rule, and runs nothing ---------------------------
BAD_INPUT = [
    # name, arguments, field, words of the rule
    ("relative command", job(command=["sh", "-c", "true"]), "command[0]", "absolute path"),
    ("dotted command path", job(command=["/bin/../bin/sh"]), "command[0]", "normalised"),
    ("missing program", job(command=["/nonexistent/prog"]), "command[0]", "does not exist"),
    ("newline in an argument", job(command=["/bin/echo", "a\nb"]), "command[1]", "control character"),
    ("trailing newline in an argument", job(command=["/bin/echo", "ab\n"]), "command[1]", "control character"),
    ("trailing newline in the program", job(command=["/bin/sh\n"]), "command[0]", "control character"),
    ("noncharacter U+FDD0 in an argument", job(command=["/bin/echo", "a\ufdd0b"]), "command[1]", "noncharacter"),
    ("noncharacter U+FFFE in an argument", job(command=["/bin/echo", "\ufffe"]), "command[1]", "noncharacter"),
    ("line separator U+2028 in an argument", job(command=["/bin/echo", "a\u2028b"]), "command[1]",
     "line or paragraph separator"),
    ("NUL in an argument", job(command=["/bin/echo", "a\x00b"]), "command[1]", "control character"),
    ("C1 control NEL in an argument", job(command=["/bin/echo", "a\x85b"]), "command[1]", "C1 control"),
    ("no command with state=started", {"unit": "job"}, "command", "is required with state=started"),
    ("empty unit", job(unit=""), "unit", "empty"),
    ("slash in unit", job(unit="../etc/job"), "unit", "'/'"),
    ("template instance", job(unit="job@1.service"), "unit", "'@'"),
    ("@ in base name", job(unit="job@1"), "unit", "'@'"),
    ("colon in unit", job(unit="db:migrate"), "unit", "may only use"),
    ("colon in unit with suffix", job(unit="db:migrate.service"), "unit", "may only use"),
    ("leading dash", job(unit="-job"), "unit", "must start with"),
    ("timer suffix", job(unit="job.timer"), "unit", "without the unit suffix"),
    ("newline in unit", job(unit="job\nExecStart=/bin/evil"), "unit", "control character"),
    ("trailing newline in unit", job(unit="job\n"), "unit", "control character"),
    ("newline in property", job(properties={"MemoryMax": "1G\nExecStartPre=/bin/evil"}), "properties.MemoryMax",
     "control character"),
    ("trailing newline in a property", job(properties={"RuntimeMaxSec": "5min\n"}), "properties.RuntimeMaxSec",
     "control character"),
    ("ExecStartPre", job(properties={"ExecStartPre": "/bin/evil"}), "properties.ExecStartPre", "refused"),
    ("ExecStopPost", job(properties={"ExecStopPost": "/bin/evil"}), "properties.ExecStopPost", "refused"),
    ("Delegate", job(properties={"Delegate": "yes"}), "properties.Delegate", "cgroup"),
    ("BindPaths", job(properties={"BindPaths": "/etc"}), "properties.BindPaths", "refused"),
    ("PassEnvironment", job(properties={"PassEnvironment": "PATH"}), "properties.PassEnvironment", "refused"),
    ("unknown property", job(properties={"FooBar": "1"}), "properties.FooBar", "not a directive"),
    ("not for a transient job", job(properties={"LogRateLimitBurst": 5}), "properties.LogRateLimitBurst",
     "not a directive"),
    ("lower-case property", job(properties={"memorymax": "1G"}), "properties", "not a directive name"),
    ("User as property", job(properties={"User": "root"}), "properties.User", "option 'user'"),
    ("Environment as property", job(properties={"Environment": "A=b"}), "properties.Environment",
     "environment_files"),
    ("EnvironmentFile as property", job(properties={"EnvironmentFile": "/etc/x"}), "properties.EnvironmentFile",
     "environment_files"),
    ("ExecStop is the module's", job(properties={"ExecStop": "/bin/true"}), "properties.ExecStop",
     "set by the module"),
    ("SuccessExitStatus is the module's", job(properties={"SuccessExitStatus": "3"}),
     "properties.SuccessExitStatus", "set by the module"),
    ("RemainAfterExit is the module's", job(properties={"RemainAfterExit": True}), "properties.RemainAfterExit",
     "set by the module"),
    ("Type is the module's", job(properties={"Type": "forking"}), "properties.Type", "set by the module"),
    ("KillMode=process", job(properties={"KillMode": "process"}), "properties.KillMode", "leave the job's other"),
    ("SendSIGKILL=no", job(properties={"SendSIGKILL": False}), "properties.SendSIGKILL", "left running"),
    ("FinalKillSignal=SIGTERM", job(properties={"FinalKillSignal": "SIGTERM"}), "properties.FinalKillSignal",
     "only SIGKILL"),
    ("FinalKillSignal=SIGCONT", job(properties={"FinalKillSignal": "CONT"}), "properties.FinalKillSignal",
     "only SIGKILL"),
    ("TimeoutStopSec=infinity", job(properties={"TimeoutStopSec": "infinity"}), "properties.TimeoutStopSec",
     "never be killed"),
    ("TimeoutStopSec shorter than the helper", job(properties={"TimeoutStopSec": "200ms"}),
     "properties.TimeoutStopSec", "at least 5s"),
    ("TimeoutStopSec of 4 s", job(properties={"TimeoutStopSec": 4}), "properties.TimeoutStopSec", "at least 5s"),
    # Found by an adversarial pass: the leftovers of a job lived on for TimeoutStopSec.
    ("TimeoutStopSec of 1000 weeks", job(properties={"TimeoutStopSec": "1000w"}), "properties.TimeoutStopSec",
     "at most 30min"),
    ("TimeoutStopSec of 31 min", job(properties={"TimeoutStopSec": "31min"}), "properties.TimeoutStopSec",
     "at most 30min"),
    ("KillSignal SIGCONT", job(properties={"KillSignal": "SIGCONT"}), "properties.KillSignal", "does not end a process"),
    ("KillSignal WINCH", job(properties={"KillSignal": "WINCH"}), "properties.KillSignal", "does not end a process"),
    ("bad RuntimeMaxSec", job(properties={"RuntimeMaxSec": "soon"}), "properties.RuntimeMaxSec", "time span"),
    ("negative TimeoutStopSec", job(properties={"TimeoutStopSec": -5}), "properties.TimeoutStopSec", "not a time span"),
    ("Nice out of range", job(properties={"Nice": 30}), "properties.Nice", "-20 to 19"),
    ("unknown signal", job(properties={"KillSignal": "SIGFOO"}), "properties.KillSignal", "is not one of"),
    ("SIGSTOP as KillSignal", job(properties={"KillSignal": "SIGSTOP"}), "properties.KillSignal", "is not one of"),
    ("bad KillMode", job(properties={"KillMode": "all"}), "properties.KillMode", "must be one of"),
    ("bad CPUQuota", job(properties={"CPUQuota": "fast"}), "properties.CPUQuota", "percentage"),
    ("boolean MemoryMax", job(properties={"MemoryMax": True}), "properties.MemoryMax", "single value"),
    ("zero MemoryMax", job(properties={"MemoryMax": "0"}), "properties.MemoryMax", "no memory"),
    ("bad LimitNOFILE", job(properties={"LimitNOFILE": "lots"}), "properties.LimitNOFILE", "SOFT:HARD"),
    ("empty property value", job(properties={"MemoryMax": ""}), "properties.MemoryMax", "size"),
    ("list for a single property", job(properties={"MemoryMax": ["1G", "2G"]}), "properties.MemoryMax",
     "single value"),
    ("bad UMask", job(properties={"UMask": "0999"}), "properties.UMask", "octal"),
    ("shell in user", job(user="root; rm -rf /"), "user", "not a valid user"),
    ("trailing newline in user", job(user="nobody\n"), "user", "control character"),
    ("unknown user", job(user="no-such-user-sbtest"), "user", "does not exist"),
    ("unknown group", job(group="no-such-group-sbtest"), "group", "does not exist"),
    ("uid beyond the kernel's range", job(user="99999999999999999999"), "user", "not a valid user"),
    ("uid 2**32-1 (the kernel's 'no uid')", job(user=str(2 ** 32 - 1)), "user", "beyond the range"),
    ("gid beyond the kernel's range", job(group="99999999999999999999"), "group", "not a valid user"),
    ("relative working directory", job(working_directory="srv/app"), "working_directory", "absolute"),
    ("space in working directory", job(working_directory="/srv/my app"), "working_directory", "spaces"),
    ("missing working directory", job(working_directory="/nonexistent/dir"), "working_directory",
     "not an existing directory"),
    ("relative env file", job(environment_files=["app.env"]), "environment_files[0]", "absolute"),
    ("missing env file", job(environment_files=["/nonexistent/app.env"]), "environment_files[0]", "does not exist"),
    ("bad invocation id", job(state="finished", command=None, invocation_id="123"), "invocation_id",
     "32 lowercase hexadecimal"),
    ("upper-case invocation id", job(state="finished", command=None, invocation_id="B" * 32), "invocation_id",
     "32 lowercase hexadecimal"),
    ("invocation id with a trailing newline", job(state="finished", command=None, invocation_id=B + "\n"),
     "invocation_id", "control character"),
    ("negative timeout", job(timeout=-1), "timeout", "at least 0"),
    ("timeout not a span", job(timeout="soon"), "timeout", "not a time span"),
    ("timeout in fortnights", job(timeout="1 fortnight"), "timeout", "not a time span"),
    ("timeout with a trailing newline", job(timeout="5min\n"), "timeout", "control character"),
    ("boolean timeout", job(timeout=True), "timeout", "not a time span"),
    ("infinite timeout", job(timeout="infinity"), "timeout", "not a time span"),
    ("bad lock_timeout", job(lock_timeout="later"), "lock_timeout", "not a time span"),
    ("too many output lines", job(output_lines=100000), "output_lines", "0 to 10000"),
    ("negative output lines", job(output_lines=-1), "output_lines", "0 to 10000"),
]


@pytest.mark.parametrize("args, field, rule", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_names_field_and_rule_and_runs_nothing(run_module, host, args, field, rule):
    result = run_module(transient_job.main, args)
    assert result["failed"] is True
    assert result["msg"].startswith(field + ":") or result["msg"].startswith(field + "."), result["msg"]
    assert rule in result["msg"], result["msg"]
    assert host.calls == [], "nothing may run for a refused input"
    assert host.installed == []
    assert result.get("changed") in (None, False)


def test_catalogue_is_large_enough():
    assert len(BAD_INPUT) >= 60


@pytest.mark.parametrize("mode, owner", [(0o666, 0), (0o620, 0), (0o600, 65534)], ids=["world", "group", "nobody"])
def test_env_file_another_user_could_change_is_refused(run_module, host, tmp_path, mode, owner):
    """systemd gives the env file's variables to the root helper too: LD_PRELOAD there runs as root."""
    path = tmp_path / "app.env"
    path.write_text("LD_PRELOAD=/tmp/evil.so\n")
    os.chown(path, owner, 0)
    path.chmod(mode)
    result = run_module(transient_job.main, job(environment_files=[str(path)]))
    assert result["failed"] and result["msg"].startswith("environment_files[0]:")
    assert "job-finish helper" in result["msg"] and "LD_PRELOAD" not in result["msg"]
    assert host.calls == []


def test_env_file_in_a_directory_others_can_write_is_refused(run_module, host, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    path = loose / "app.env"
    path.write_text("A=1\n")
    path.chmod(0o600)
    result = run_module(transient_job.main, job(environment_files=[str(path)]))
    assert result["failed"] and result["msg"].startswith("environment_files[0]:")
    assert host.calls == []


def test_env_file_as_a_symlink_is_refused(run_module, host, env_file, tmp_path):
    link = tmp_path / "link.env"
    os.symlink(env_file, link)
    result = run_module(transient_job.main, job(environment_files=[str(link)]))
    assert result["failed"] and "symlink" in result["msg"]
    assert host.calls == []


def test_untrusted_python_is_refused(run_module, host, monkeypatch, tmp_path):
    python = tmp_path / "loose-python3"
    python.write_text("")
    python.chmod(0o777)
    monkeypatch.setattr(job_record, "PYTHON", str(python))
    result = run_module(transient_job.main, job())
    assert result["failed"] and result["msg"].startswith("command:") and "job-finish helper" in result["msg"]
    assert host.calls == []


def test_regular_unit_is_never_touched(run_module, host):
    host.states = [props(Transient="no")]
    for args in ({"unit": "job", "state": "stopped"}, {"unit": "job", "state": "finished"}, job()):
        result = run_module(transient_job.main, args)
        assert result["failed"] and result["msg"].startswith("unit:") and "installed on the host" in result["msg"]
    assert host.ran("systemd-run") == [] and host.verbs() == [] and host.installed == []


# -- pure helpers ---------------------------------------------------------------------------------
def test_unit_name_adds_suffix():
    assert job_unit("db-migrate") == "db-migrate.service"
    assert job_unit("db-migrate.service") == "db-migrate.service"
    assert job_unit("nightly.2026") == "nightly.2026.service"


def test_properties_are_normalised_and_sorted():
    rendered = check_properties({
        "RuntimeMaxSec": "2min 30s", "TimeoutStopSec": 5, "MemoryMax": "512M", "Nice": "10",
        "SendSIGKILL": True, "ProtectSystem": "strict", "PrivateTmp": "yes", "UMask": "0077",
        "KillSignal": "SIGINT", "LimitNOFILE": "1024:4096", "CPUQuota": "50%", "KillMode": "mixed",
        "FinalKillSignal": "KILL",
    })
    assert rendered == [
        ("CPUQuota", "50%"), ("FinalKillSignal", "SIGKILL"), ("KillMode", "mixed"), ("KillSignal", "SIGINT"),
        ("LimitNOFILE", "1024:4096"), ("MemoryMax", "512M"), ("Nice", "10"), ("PrivateTmp", "yes"),
        ("ProtectSystem", "strict"), ("RuntimeMaxSec", "150s"), ("SendSIGKILL", "yes"), ("TimeoutStopSec", "5s"),
        ("UMask", "0077"),
    ]


def test_infinity_runtime_allowed():
    assert check_properties({"RuntimeMaxSec": "infinity"}) == [("RuntimeMaxSec", "infinity")]


def test_unknown_property_lists_allowed_names():
    with pytest.raises(InputError) as err:
        check_properties({"NotADirective": "/bin/x"})
    assert "RuntimeMaxSec" in str(err.value) and str(err.value).startswith("properties.NotADirective:")


def command_line(run_module, host, version, **extra):
    host.version = version
    host.states = [absent()]
    result = run_module(transient_job.main, job(command=["/opt/app/migrate", "--to", "v2"], **extra), check_mode=True)
    return result["command_line"]


@pytest.fixture
def migrate(tmp_path, monkeypatch):
    """A command[0] that exists."""
    real_isfile = os.path.isfile
    monkeypatch.setattr(transient_job.os.path, "isfile",
                        lambda p: True if p == "/opt/app/migrate" else real_isfile(p))


def test_command_line_argv(run_module, host, migrate, env_file):
    argv = command_line(run_module, host, 252, user="root", group="root", working_directory="/",
                        environment_files=[env_file], properties={"RuntimeMaxSec": 60})
    helper = f"ExecStop=+{job_record.PYTHON} -I -S {job_record.HELPER_PATH} job.service"
    assert argv == [
        RUN, "--quiet", "--no-ask-password", "--unit=job.service", "--service-type=exec",
        "-p", "User=root", "-p", "Group=root", "-p", "WorkingDirectory=/",
        "-p", f"EnvironmentFile={env_file}", "-p", "RuntimeMaxSec=60s",
        "-p", f"SuccessExitStatus={job_record.SUCCESS_EXIT_STATUS}", "-p", helper,
        "--", "/opt/app/migrate", "--to", "v2",
    ]
    assert "--remain-after-exit" not in argv and "s3cr3t-value" not in json.dumps(argv)


@pytest.mark.parametrize("version, kind", [(247, "simple"), (251, "simple"), (252, "exec"), (257, "exec")])
def test_service_type_by_systemd_version(run_module, host, migrate, version, kind):
    """systemd 247 aborts PID 1 with Type=exec plus ExecStop= (measured); it gets Type=simple."""
    argv = command_line(run_module, host, version)
    assert f"--service-type={kind}" in argv and sum(a.startswith("--service-type") for a in argv) == 1


def test_command_line_keeps_dollars_literal(run_module, host):
    host.states = [absent()]
    result = run_module(transient_job.main, job(command=["/bin/echo", "$SECRET", "${X}", "a$$b", "-p"]),
                        check_mode=True)
    argv = result["command_line"]
    assert argv[argv.index("--") + 1:] == ["/bin/echo", "$$SECRET", "$${X}", "a$$$$b", "-p"]


JOB_VIEW = [
    ("nothing loaded, no record", absent(), None, "absent"),
    ("nothing loaded, a record", absent(), record(), "finished"),
    ("running", props(), None, "running"),
    ("deactivating: leftovers being killed", props(ActiveState="deactivating", SubState="stop-sigterm"), None,
     "running"),
    ("activating", props(ActiveState="activating", SubState="start"), None, "running"),
    ("failed without a record", failed(result="resources"), None, "finished"),
    ("loaded, inactive, no record", props(ActiveState="inactive", SubState="dead"), None, "absent"),
]


@pytest.mark.parametrize("view, rec, expected", [c[1:] for c in JOB_VIEW], ids=[c[0] for c in JOB_VIEW])
def test_job_view(view, rec, expected):
    assert job_view(view, rec) == expected


RECORD_FACTS = [
    ("exit 0, a leftover", record(found=[SLEEP]),
     {"state": "finished", "result": "success", "exit_code": "exited", "exit_status": 0, "duration_sec": 2.5,
      "leftover_count": 1, "leftovers": [SLEEP], "leftover_stop": "signalled"}),
    ("exit 3", record(status="3"), {"result": "exit-code", "exit_status": 3, "leftover_count": 0,
                                    "leftover_stop": None}),
    ("kill -9 $$", record(code="2", status="9"), {"result": "signal", "exit_code": "killed", "exit_status": 9}),
    ("core dump (recorded when systemd ran the helper anyway)", record(code="3", status="11"),
     {"result": "core-dump", "exit_status": 11}),
    ("RuntimeMaxSec", record(result="timeout", stopped=True, found=[SLEEP]),
     {"state": "finished", "result": "timeout", "exit_code": None, "leftover_count": 1, "duration_sec": 10.0}),
    ("systemctl stop", record(stopped=True, found=[SLEEP]),
     {"state": "stopped", "result": None, "running": False, "leftovers": [SLEEP]}),
    ("an older record with systemd's words", {"unit": "job.service", "exit_code": "killed", "exit_status": "KILL",
                                              "service_result": "success", "invocation_id": A},
     {"result": "signal", "exit_status": 9, "leftover_count": 0, "leftovers": []}),
]


@pytest.mark.parametrize("rec, expected", [c[1:] for c in RECORD_FACTS], ids=[c[0] for c in RECORD_FACTS])
def test_record_facts(rec, expected):
    facts = record_facts(rec)
    for key, value in expected.items():
        assert facts[key] == value, key
    assert facts["invocation_id"] == A


JOB_FACTS = [
    ("a leftover ignored SIGTERM: the unit failed with timeout, the job did not",
     failed(result="timeout"), record(found=[SLEEP]),
     {"state": "finished", "result": "success", "exit_status": 0, "leftover_stop": "killed-after-timeout"}),
    ("RuntimeMaxSec: systemd knows how the main process ended",
     failed(result="timeout", code="2", status="15"), record(result="timeout", stopped=True, found=[SLEEP]),
     {"state": "finished", "result": "timeout", "exit_code": "killed", "exit_status": 15, "leftover_stop": "signalled",
      "duration_sec": 2.5}),
    ("a stop that needed SIGKILL", failed(result="timeout", code="2", status="9"), record(stopped=True, found=[SLEEP]),
     {"state": "stopped", "result": "timeout", "exit_status": 9, "leftover_stop": "killed-after-timeout"}),
    ("skipped the helper: could not start", failed(result="resources", code="0", status="0"), None,
     {"state": "finished", "result": "resources", "exit_code": None, "exit_status": None, "leftovers": None,
      "leftover_count": None}),
    ("skipped the helper: core dump", failed(result="core-dump", code="3", status="11"), None,
     {"result": "core-dump", "exit_code": "dumped", "exit_status": 11, "leftover_count": None}),
]


@pytest.mark.parametrize("view, rec, expected", [c[1:] for c in JOB_FACTS], ids=[c[0] for c in JOB_FACTS])
def test_job_facts(view, rec, expected):
    facts = job_facts(view, rec, job_view(view, rec))
    for key, value in expected.items():
        assert facts[key] == value, key


def test_unit_facts_running_and_absent():
    assert unit_facts(props(), "running") == {"state": "running", "running": True, "invocation_id": A, "result": None}
    assert unit_facts(absent(), "absent")["invocation_id"] == ""


# -- flows against the fake host ------------------------------------------------------------------
def test_start_and_wait_reads_the_record(run_module, host, env_file, warned):
    host.states = [absent()]
    host.after_run = ([props(InvocationID=B), props(InvocationID=B, ActiveState="deactivating"), absent()],
                      record(invocation=B, found=[SLEEP]))
    result = run_module(transient_job.main, job(environment_files=[env_file], properties={"RuntimeMaxSec": 60}))
    assert result["changed"] is True and not result.get("failed"), result
    assert (result["state"], result["result"], result["exit_status"]) == ("finished", "success", 0)
    assert result["invocation_id"] == B and result["already_running"] is False
    assert result["leftover_count"] == 1 and result["leftovers"] == [SLEEP]
    assert result["output_lines"] == ["line 1", "line 2"] and result["duration_sec"] == 2.5
    assert any("1 process(es) of the job (sleep)" in w for w in warned())
    assert host.installed == [(job_record.HELPER_PATH, job_record.__name__)]
    (run,) = host.ran("systemd-run")
    assert f"EnvironmentFile={env_file}" in run and "RuntimeMaxSec=60s" in run
    # The env file is handed to systemd by path; its content appears nowhere.
    assert "s3cr3t-value" not in json.dumps(result) and "s3cr3t-value" not in json.dumps(host.calls)
    journal = [c for c in host.ran("journalctl") if "--sync" not in c]
    assert journal and "_SYSTEMD_UNIT=job.service" in journal[0]


def test_output_lines_start_at_this_run(run_module, host, monkeypatch):
    """The journal is read from the run's own start (systemd's monotonic clock) on."""
    monkeypatch.setattr(transient_job.time, "time", lambda: 1_000_000.0)
    monkeypatch.setattr(transient_job.time, "monotonic", lambda: 100.0)
    host.states = [absent()]
    host.after_run = ([absent()], record(invocation=B))        # started at monotonic 1.0 s
    result = run_module(transient_job.main, job())
    assert not result.get("failed"), result
    journal = [c for c in host.ran("journalctl") if "--sync" not in c]
    assert f"--since=@{1_000_000.0 - 99.0:.6f}" in journal[0]


def test_a_job_that_ended_before_the_module_looked(run_module, host):
    host.states = [absent()]
    host.after_run = ([absent()], record(invocation=B, status="3"))
    result = run_module(transient_job.main, job())
    assert result["failed"] and result["exit_status"] == 3 and result["result"] == "exit-code"
    assert "status 3" in result["msg"] and result["output_lines"] == ["line 1", "line 2"]


def test_killed_by_a_signal(run_module, host):
    host.states = [absent()]
    host.after_run = ([absent()], record(invocation=B, code="2", status="9", found=[SLEEP]))
    result = run_module(transient_job.main, job(command=["/bin/sh", "-c", "sleep 100 & kill -9 $$"]))
    assert result["failed"] and (result["result"], result["exit_code"], result["exit_status"]) == ("signal", "killed", 9)
    assert result["leftover_count"] == 1


def test_fail_on_error_false_reports(run_module, host):
    host.states = [absent()]
    host.after_run = ([absent()], record(invocation=B, status="3"))
    result = run_module(transient_job.main, job(fail_on_error=False))
    assert not result.get("failed") and result["exit_status"] == 3


def test_exec_failure_is_explained(run_module, host):
    host.states = [absent()]
    host.after_run = ([absent()], record(invocation=B, status="203"))
    result = run_module(transient_job.main, job())
    assert result["failed"] and "could not execute the command" in result["msg"]


def test_runtime_max_sec(run_module, host):
    host.states = [absent()]
    host.after_run = ([props(InvocationID=B), failed(result="timeout", code="2", status="15", invocation=B)],
                      record(invocation=B, result="timeout", stopped=True, found=[SLEEP]))
    result = run_module(transient_job.main, job(properties={"RuntimeMaxSec": 2}))
    assert result["failed"] and result["result"] == "timeout" and result["exit_status"] == 15
    assert result["state"] == "finished" and result["leftover_count"] == 1


def test_a_leftover_that_ignored_sigterm_does_not_fail_the_job(run_module, host, warned):
    host.states = [absent()]
    host.after_run = ([props(InvocationID=B, ActiveState="deactivating"), failed(result="timeout", invocation=B)],
                      record(invocation=B, found=[SLEEP]))
    result = run_module(transient_job.main, job())
    assert not result.get("failed"), result
    assert result["result"] == "success" and result["leftover_stop"] == "killed-after-timeout"
    assert any("SIGKILL after TimeoutStopSec" in w for w in warned())


def test_systemd_run_refusal(run_module, host):
    host.states = [absent()]
    host.run_rc = 1
    host.run_err = "\x1b[0;1;31mFailed to find executable /etc/hostname: Permission denied\x1b[0m"
    result = run_module(transient_job.main, job())
    assert result["failed"] and "systemd-run failed" in result["msg"] and "\x1b" not in result["msg"]
    assert "Permission denied" in result["msg"]


def test_the_record_of_another_run_is_not_used(run_module, host):
    job_record.write_record(record(invocation=C, status="3"), "job.service")
    host.states = [failed(result="resources", code="0", invocation=A)]
    result = run_module(transient_job.main, {"unit": "job", "state": "finished", "fail_on_error": False})
    assert result["result"] == "resources" and result["invocation_id"] == A and result["leftover_count"] is None


def test_running_job_is_not_started_twice(run_module, host):
    host.states = [props()]
    result = run_module(transient_job.main, job(wait=False))
    assert result["changed"] is False and result["already_running"] is True
    assert result["state"] == "running" and host.ran("systemd-run") == [] and host.installed == []


def test_running_job_with_wait_is_awaited(run_module, host):
    host.states = [props(), props(), absent()]
    job_record.write_record(record(invocation=A), "job.service")
    result = run_module(transient_job.main, job())
    assert result["changed"] is False and result["already_running"] is True
    assert result["result"] == "success" and host.ran("systemd-run") == []


def test_an_ended_run_is_cleared_before_a_fresh_start(run_module, host):
    job_record.write_record(record(invocation=A, found=[SLEEP]), "job.service")
    host.states = [failed(result="timeout", invocation=A)]
    host.after_run = ([props(InvocationID=C)], None)
    result = run_module(transient_job.main, job(wait=False))
    assert result["changed"] is True and result["invocation_id"] == C and result["state"] == "running"
    assert host.verbs() == ["reset-failed"]
    assert len(host.ran("systemd-run")) == 1
    assert job_record.read_record("job.service") is None, "the old run's record was removed before the start"


def test_a_recorded_run_is_cleared_too(run_module, host):
    job_record.write_record(record(invocation=A), "job.service")
    host.states = [absent()]
    host.after_run = ([props(InvocationID=C)], None)
    result = run_module(transient_job.main, job(wait=False))
    assert result["invocation_id"] == C and host.verbs() == []
    assert job_record.read_record("job.service") is None


def test_detached_job_that_could_not_run_fails(run_module, host):
    host.states = [absent()]
    host.after_run = ([absent()], record(invocation=B, status="203"))
    result = run_module(transient_job.main, job(wait=False))
    assert result["failed"] and "could not execute" in result["msg"]


def test_check_mode_runs_nothing(run_module, host):
    host.states = [absent()]
    result = run_module(transient_job.main, job(), check_mode=True)
    assert result["changed"] is True and result["command_line"][0] == RUN
    assert host.ran("systemd-run") == [] and host.installed == [] and host.verbs() == []


def test_check_mode_with_a_running_job(run_module, host):
    host.states = [props()]
    result = run_module(transient_job.main, job(), check_mode=True)
    assert result["changed"] is False and result["already_running"] is True
    assert host.ran("systemd-run") == [] and host.verbs() == []


def test_timeout_leaves_job_running(run_module, host, monkeypatch):
    ticks = iter(range(0, 1000, 5))
    monkeypatch.setattr(transient_job.time, "monotonic", lambda: float(next(ticks)))
    host.states = [props()]
    result = run_module(transient_job.main, job(state="finished", command=None, timeout="12s"))
    assert result["failed"] and result["timed_out"] is True
    assert "still running" in result["msg"] and result["running"] is True
    assert host.verbs() == []


def test_timeout_zero_reports_a_running_job_without_failing(run_module, host):
    host.states = [props()]
    result = run_module(transient_job.main, job(state="finished", command=None, timeout=0, stop_on_timeout=True))
    assert not result.get("failed"), result
    assert result["running"] is True and result["state"] == "running" and result["changed"] is False
    assert host.verbs() == []


def test_timeout_zero_still_reports_a_failed_job(run_module, host):
    job_record.write_record(record(status="3"), "job.service")
    host.states = [absent()]
    result = run_module(transient_job.main, job(state="finished", command=None, timeout=0))
    assert result["failed"] and result["exit_status"] == 3


def test_timeout_can_stop_the_job(run_module, host, monkeypatch):
    ticks = iter(range(0, 1000, 5))
    monkeypatch.setattr(transient_job.time, "monotonic", lambda: float(next(ticks)))
    host.states = [props()]
    host.after_stop = ([absent()], record(stopped=True, found=[SLEEP]))
    result = run_module(transient_job.main, job(state="finished", command=None, timeout=12, stop_on_timeout=True))
    assert result["failed"] and "stopped it" in result["msg"]
    assert result["state"] == "stopped" and result["changed"] is True and result["leftover_count"] == 1
    assert host.verbs() == ["stop"]


def test_finished_reads_the_record_without_change(run_module, host):
    job_record.write_record(record(invocation=B, found=[SLEEP]), "job.service")
    host.states = [absent()]
    result = run_module(transient_job.main, {"unit": "job", "state": "finished", "invocation_id": B})
    assert result["changed"] is False and result["result"] == "success" and result["leftover_count"] == 1
    assert host.verbs() == [] and host.ran("systemd-run") == []


def test_finished_detects_a_replaced_run(run_module, host):
    job_record.write_record(record(invocation=B), "job.service")
    host.states = [absent()]
    result = run_module(transient_job.main, {"unit": "job", "state": "finished", "invocation_id": C})
    assert result["failed"] and result["msg"].startswith("invocation_id:")


def test_a_run_replaced_while_waiting_is_not_reported_as_ours(run_module, host):
    """Someone else restarts the unit name while this task waits for run A."""
    host.states = [props(InvocationID=A), props(InvocationID=A), props(InvocationID=C)]
    result = run_module(transient_job.main, {"unit": "job", "state": "finished", "invocation_id": A})
    assert result["failed"] and result["msg"].startswith("invocation_id:") and C in result["msg"]


def test_finished_unknown_job_fails(run_module, host):
    host.states = [absent()]
    result = run_module(transient_job.main, {"unit": "job", "state": "finished"})
    assert result["failed"] and "no job named" in result["msg"]


def test_a_job_that_ended_without_a_record(run_module, host):
    host.states = [absent()]
    host.after_run = ([props(InvocationID=B), absent()], None)
    result = run_module(transient_job.main, job())
    assert result["failed"] and "without a record" in result["msg"] and "journalctl -u job.service" in result["msg"]
    assert result["state"] == "absent" and result["invocation_id"] == B


def test_stop_running_job(run_module, host):
    host.states = [props()]
    host.after_stop = ([absent()], record(stopped=True, found=[SLEEP]))
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"})
    assert result["changed"] is True and result["state"] == "stopped" and result["result"] is None
    assert result["invocation_id"] == A and result["leftovers"] == [SLEEP] and result["duration_sec"] == 10.0
    assert ["stop", "--", "job.service"] in [c[1:] for c in host.ran("systemctl")]


def test_stop_without_a_record(run_module, host):
    host.states = [props()]
    host.after_stop = ([absent()], None)
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"})
    assert result["changed"] is True and result["state"] == "stopped" and result["invocation_id"] == A


def test_stop_is_idempotent(run_module, host):
    host.states = [absent()]
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"})
    assert result["changed"] is False and result["state"] == "absent"
    job_record.write_record(record(invocation=B), "job.service")
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"})
    assert result["changed"] is False and result["result"] == "success"
    assert host.verbs() == []


def test_stop_of_another_run_is_refused(run_module, host):
    host.states = [props(InvocationID=C)]
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped", "invocation_id": A})
    assert result["failed"] and result["msg"].startswith("invocation_id:") and host.verbs() == []


def test_stop_in_check_mode(run_module, host):
    host.states = [props()]
    result = run_module(transient_job.main, {"unit": "job", "state": "stopped"}, check_mode=True)
    assert result["changed"] is True
    assert host.verbs() == []
