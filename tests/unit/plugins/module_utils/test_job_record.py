"""job_record: the job-finish helper and the record it writes.

The helper's inputs are faked with real files: a /proc/self/cgroup file, cgroup trees with
cgroup.procs files, /proc-like PID directories (comm, an exe symlink), and the record directory
in tmp_path. The real helper runs in the Molecule scenario ``jobs``.
"""

from __future__ import annotations

import json
import os
import signal
import stat

import pytest
from ansible_collections.supervised.background.plugins.module_utils import job_record
from ansible_collections.supervised.background.plugins.module_utils.job_record import (
    RecordError,
    finish,
    printable,
)


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """RUN_DIR/RECORD_DIR inside tmp_path (the parent is the test's own private directory)."""
    base = tmp_path / "run"
    base.mkdir(mode=0o755)
    run = base / "supervised-background"
    monkeypatch.setattr(job_record, "RUN_DIR", str(run))
    monkeypatch.setattr(job_record, "RECORD_DIR", str(run / "jobs"))
    return run


def fake_proc(root, pid, comm, exe=None):
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "comm").write_bytes(comm)
    if exe is not None:
        os.symlink(exe, d / "exe")
    return d


# -- the command systemd runs -------------------------------------------------------------------
def test_exec_stop_runs_isolated_python_as_root():
    line = job_record.exec_stop("db-migrate.service")
    assert line == "+/usr/bin/python3 -I -S /usr/local/libexec/supervised-background/job-finish db-migrate.service"


def test_success_exit_status_covers_every_status_and_terminating_signal():
    words = job_record.SUCCESS_EXIT_STATUS.split()
    assert words[:255] == [str(n) for n in range(1, 256)]
    names = set(words[255:])
    # Every signal whose default action ends a process (signal(7)); SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP,
    # SIGTTIN, SIGTTOU, SIGURG and SIGWINCH do not end one.
    ending = {s.name for s in signal.Signals if s.name not in (
        "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGWINCH",
        "SIGRTMIN", "SIGRTMAX", "SIGIOT", "SIGPOLL", "SIGCLD")}
    assert ending <= names
    assert {f"SIGRTMIN+{n}" for n in range(31)} <= names
    assert int(signal.SIGRTMIN) + 30 == int(signal.SIGRTMAX)


# -- the job's cgroup and processes -------------------------------------------------------------
@pytest.mark.parametrize("lines, root_key, rel", [
    # cgroup v1 hybrid, as on these hosts: name=systemd first.
    (["12:memory:/system.slice/job.service", "1:name=systemd:/system.slice/job.service",
      "0::/system.slice/job.service"], "name=systemd", "/system.slice/job.service"),
    # unified v2 only.
    (["0::/system.slice/job.service"], "v2", "/system.slice/job.service"),
], ids=["hybrid", "unified"])
def test_own_cgroup(tmp_path, monkeypatch, lines, root_key, rel):
    v1, unified, v2 = tmp_path / "systemd", tmp_path / "unified", tmp_path / "cg2"
    monkeypatch.setattr(job_record, "CGROUP_ROOTS", {"name=systemd": str(v1), "": (str(unified), str(v2))})
    target = {"name=systemd": v1, "v2": v2}[root_key] / rel.lstrip("/")
    target.mkdir(parents=True)
    (target / "cgroup.procs").write_text("1\n")
    proc_self = tmp_path / "self-cgroup"
    proc_self.write_text("\n".join(lines) + "\n")
    assert job_record.own_cgroup(str(proc_self)) == str(target)


def test_own_cgroup_missing_hierarchy(tmp_path, monkeypatch):
    monkeypatch.setattr(job_record, "CGROUP_ROOTS", {"name=systemd": str(tmp_path / "a"),
                                                     "": (str(tmp_path / "b"),)})
    proc_self = tmp_path / "self-cgroup"
    proc_self.write_text("1:name=systemd:/system.slice/job.service\n")
    assert job_record.own_cgroup(str(proc_self)) is None


def test_cgroup_pids_walks_sub_cgroups_once(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "cgroup.procs").write_text("10\n11\n")
    (tmp_path / "sub" / "cgroup.procs").write_text("12\n10\n")
    (tmp_path / "sub" / "deeper" / "cgroup.procs").write_text("13\nnot-a-pid\n")
    assert job_record.cgroup_pids(str(tmp_path)) == [10, 11, 12, 13]


def test_leftovers_by_name_and_executable_never_arguments(tmp_path):
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "cgroup.procs").write_text("100\n101\n102\n103\n")
    proc = tmp_path / "proc"
    fake_proc(proc, 100, b"job-finish\n", "/usr/bin/python3.11")
    d = fake_proc(proc, 101, b"sleep\n", "/usr/bin/sleep")
    (d / "cmdline").write_bytes(b"sleep\x00--token=s3cr3t\x00")
    fake_proc(proc, 102, b"evil\x1b[31m\nname\n")           # exe unreadable (another user, no CAP_SYS_PTRACE)
    # 103 is gone already: no /proc entry.
    found = job_record.leftovers(str(cg), {100}, proc=str(proc))
    assert found == [
        {"pid": 101, "name": "sleep", "executable": "/usr/bin/sleep"},
        {"pid": 102, "name": "evil\\x1b[31m\\x0aname", "executable": None},
    ]
    assert "s3cr3t" not in json.dumps(found)


@pytest.mark.parametrize("given, shown", [
    ("sleep", "sleep"),
    ("a\nb", "a\\x0ab"),
    ("tab\there", "tab\\x09here"),
    ("nel\u0085", "nel\\x85"),
    ("ls\u2028", "ls\\u2028"),
    ("nc\ufdd0\ufffe", "nc\\ufdd0\\ufffe"),
    ("bad\ufffd", "bad\\ufffd"),
    ("x" * 300, "x" * 256 + "..."),
])
def test_printable(given, shown):
    assert printable(given) == shown


# -- the record of a run -------------------------------------------------------------------------
INV = "0123456789abcdef0123456789abcdef"
FOUND = [{"pid": 7, "name": "sleep", "executable": "/usr/bin/sleep"},
         {"pid": 8, "name": "sh", "executable": "/usr/bin/dash"}]


def props(**extra):
    base = {"InvocationID": INV, "Result": "success", "MainPID": "0", "ExecMainCode": "1",
            "ExecMainStatus": "0", "ExecMainStartTimestamp": "Fri 2026-12-04 03:50:38 UTC",
            "ExecMainStartTimestampMonotonic": "1000000", "ExecMainExitTimestampMonotonic": "3500000"}
    base.update(extra)
    return base


FINISH_CASES = [
    # name, systemd's view, environment, expected fields
    ("exit 0 with a leftover", props(), {},
     {"exit_code": "exited", "exit_status": 0, "stopped": False, "service_result": "success",
      "duration_sec": 2.5, "leftover_count": 2}),
    ("exit 3", props(ExecMainStatus="3"), {}, {"exit_code": "exited", "exit_status": 3}),
    ("kill -9 $$", props(ExecMainCode="2", ExecMainStatus="9"), {}, {"exit_code": "killed", "exit_status": 9}),
    ("RuntimeMaxSec: main still runs", props(MainPID="7", Result="timeout", ExecMainCode="0",
                                             ExecMainExitTimestampMonotonic="0"), {},
     {"stopped": True, "service_result": "timeout", "exit_code": None, "exit_status": None,
      "duration_sec": 4.0, "leftover_count": 1}),
    ("systemctl stop", props(MainPID="8", ExecMainCode="0", ExecMainExitTimestampMonotonic="0"), {},
     {"stopped": True, "service_result": "success", "leftover_count": 1,
      "leftovers": [{"pid": 7, "name": "sleep", "executable": "/usr/bin/sleep"}]}),
    ("systemctl could not answer: the environment", {},
     {"EXIT_CODE": "killed", "EXIT_STATUS": "KILL", "SERVICE_RESULT": "success", "INVOCATION_ID": INV},
     {"exit_code": "killed", "exit_status": 9, "invocation_id": INV, "duration_sec": None}),
    ("env fallback, exited", {}, {"EXIT_CODE": "exited", "EXIT_STATUS": "4"}, {"exit_status": 4}),
    ("an EnvironmentFile cannot forge systemd's view", props(),
     {"INVOCATION_ID": "f" * 32, "SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "0",
      "MAINPID": ""},
     {"invocation_id": INV, "service_result": "success", "stopped": False}),
]


@pytest.mark.parametrize("view, env, expected", [c[1:] for c in FINISH_CASES], ids=[c[0] for c in FINISH_CASES])
def test_finish(view, env, expected):
    record = finish("job.service", env, view, list(FOUND), now_usec=5_000_000)
    assert record["unit"] == "job.service"
    for key, value in expected.items():
        assert record[key] == value, key
    assert json.loads(json.dumps(record)) == record


def test_finish_caps_the_list_not_the_count():
    many = [{"pid": n, "name": "sleep", "executable": None} for n in range(100, 180)]
    record = finish("job.service", {}, props(), many, now_usec=0)
    assert record["leftover_count"] == 80 and len(record["leftovers"]) == job_record.MAX_LEFTOVERS


# -- the record directory and file ---------------------------------------------------------------
def test_write_then_read(run_dir):
    job_record.write_record({"unit": "job.service", "invocation_id": INV}, "job.service")
    assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o755 or stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(run_dir / "jobs").st_mode) == 0o700
    path = run_dir / "jobs" / "job.service.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert job_record.read_record("job.service") == {"unit": "job.service", "invocation_id": INV}
    assert sorted(os.listdir(run_dir / "jobs")) == ["job.service.json"], "temp file left behind"
    job_record.remove_record("job.service")
    assert job_record.read_record("job.service") is None
    job_record.remove_record("job.service")     # nothing there: no error


def test_read_without_directory(run_dir):
    assert job_record.read_record("job.service") is None
    job_record.remove_record("job.service")
    assert not run_dir.exists()


def _planted(run_dir):
    (run_dir / "jobs").mkdir(parents=True, mode=0o700)
    return run_dir / "jobs" / "job.service.json"


def test_a_planted_symlink_is_not_read_and_not_written_through(run_dir, tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"unit": "job.service", "result": "forged"}))
    link = _planted(run_dir)
    os.symlink(target, link)
    assert job_record.read_record("job.service") is None
    job_record.write_record({"unit": "job.service"}, "job.service")     # replaces the link itself
    assert not os.path.islink(link) and json.loads(target.read_text())["result"] == "forged"


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660])
def test_a_record_others_can_read_or_write_is_ignored(run_dir, mode):
    path = _planted(run_dir)
    path.write_text(json.dumps({"unit": "job.service"}))
    os.chmod(path, mode)
    assert job_record.read_record("job.service") is None


@pytest.mark.parametrize("content", ["not json", "[1, 2]", json.dumps({"unit": "other.service"})])
def test_a_broken_or_foreign_record_is_ignored(run_dir, content):
    path = _planted(run_dir)
    path.write_text(content)
    os.chmod(path, 0o600)
    assert job_record.read_record("job.service") is None


def test_a_record_that_is_a_fifo_does_not_block(run_dir):
    path = _planted(run_dir)
    os.mkfifo(path, 0o600)
    assert job_record.read_record("job.service") is None


@pytest.mark.parametrize("which, mode", [("run", 0o777), ("jobs", 0o755), ("jobs", 0o730)])
def test_loose_directories_are_refused(run_dir, which, mode):
    (run_dir / "jobs").mkdir(parents=True, mode=0o700)
    os.chmod(run_dir if which == "run" else run_dir / "jobs", mode)
    with pytest.raises(RecordError):
        job_record.write_record({"unit": "job.service"}, "job.service")
    assert job_record.read_record("job.service") is None


def test_a_symlinked_record_directory_is_refused(run_dir, tmp_path):
    run_dir.mkdir(mode=0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    os.symlink(elsewhere, run_dir / "jobs")
    with pytest.raises(OSError):
        job_record.write_record({"unit": "job.service"}, "job.service")
    assert list(elsewhere.iterdir()) == []


def test_write_creates_root_only_dirs_whatever_the_umask(run_dir):
    old = os.umask(0)
    try:
        job_record.write_record({"unit": "job.service"}, "job.service")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(run_dir / "jobs").st_mode) == 0o700
    assert not stat.S_IMODE(os.stat(run_dir).st_mode) & 0o022
    assert stat.S_IMODE(os.stat(run_dir / "jobs" / "job.service.json").st_mode) == 0o600


# -- the helper's entry point --------------------------------------------------------------------
@pytest.mark.parametrize("argv", [[], ["a.service", "b.service"], ["job"], ["../x.service"], ["job.service\n"],
                                  ["-x.service"], ["a/b.service"]])
def test_main_refuses_bad_arguments(run_dir, argv, capsys):
    assert job_record.main(argv, {}) == 2
    assert "usage" in capsys.readouterr().err
    assert not run_dir.exists()


def test_main_writes_the_record(run_dir, tmp_path, monkeypatch):
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "cgroup.procs").write_text(f"{os.getpid()}\n")
    monkeypatch.setattr(job_record, "own_cgroup", lambda: str(cg))
    monkeypatch.setattr(job_record, "show", lambda unit: props(ExecMainStatus="3"))
    old = os.umask(0o022)
    try:
        assert job_record.main(["job.service"], {}) == 0
        assert os.umask(0o022) == 0o077     # the helper tightened it
    finally:
        os.umask(old)
    record = job_record.read_record("job.service")
    assert record["exit_status"] == 3 and record["leftover_count"] == 0 and record["invocation_id"] == INV


def test_main_reports_a_record_it_cannot_write(run_dir, monkeypatch, capsys):
    monkeypatch.setattr(job_record, "own_cgroup", lambda: None)
    monkeypatch.setattr(job_record, "show", lambda unit: props())
    run_dir.mkdir(mode=0o777)
    os.chmod(run_dir, 0o777)
    assert job_record.main(["job.service"], {}) == 1
    assert "cannot write the record" in capsys.readouterr().err


def test_show_parses_systemctl(monkeypatch):
    class Done:
        stdout = "InvocationID=" + INV + "\nResult=success\nMainPID=0\n"

    seen = {}

    def fake_run(argv, **kw):
        seen.update(argv=argv, env=kw["env"])
        return Done()

    monkeypatch.setattr(job_record.subprocess, "run", fake_run)
    assert job_record.show("job.service") == {"InvocationID": INV, "Result": "success", "MainPID": "0"}
    assert seen["argv"][-2:] == ["--", "job.service"]
    # systemctl gets a clean environment, not the job's.
    assert set(seen["env"]) == {"PATH", "LC_ALL"}


def test_show_without_systemctl(monkeypatch):
    def fail(*_a, **_k):
        raise OSError("no such file")

    monkeypatch.setattr(job_record.subprocess, "run", fail)
    assert job_record.show("job.service") == {}


def test_helper_source_is_standalone():
    """The helper runs as a program with the host's python3 -I -S: standard library only."""
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(job_record))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "json", "os", "re", "stat", "subprocess", "sys", "time"}
