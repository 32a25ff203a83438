"""periodic_job_info: systemctl show / journalctl output into facts; only reads; input checks.

systemctl and journalctl are faked at ``run_command`` (FakeHost answers ``show`` from a dict in
systemctl's own format - ``KEY=value`` lines, one empty line between units - and ``journalctl`` from a
list), so the module's own parsing runs. What a real systemd reports after a real run is proven in
Molecule.
"""

from __future__ import annotations

import json
import time

import pytest
from ansible.module_utils import basic
from ansible_collections.supervised.background.plugins.module_utils import systemd
from ansible_collections.supervised.background.plugins.modules import periodic_job_info

TIMER = {
    "Id": "nightly-export.timer", "LoadState": "loaded", "ActiveState": "active", "SubState": "waiting",
    "UnitFileState": "enabled", "Result": "success", "LastTriggerUSec": "Sat 2026-12-05 02:30:04 UTC",
    "NextElapseUSecRealtime": "Sun 2026-12-06 02:30:00 UTC", "NextElapseUSecMonotonic": "infinity",
    "Unit": "nightly-export.service",
}
# The last run started an hour ago: its start on systemd's monotonic clock, and the same moment in wall time.
STARTED_MONOTONIC = int((time.monotonic() - 3600) * 1e6)
STARTED_WALL = time.time() - 3600
FAILED_RUN = {
    "Id": "nightly-export.service", "LoadState": "loaded", "ActiveState": "failed", "SubState": "failed",
    "Result": "exit-code", "ExecMainStatus": "3", "ExecMainCode": "1",
    "ExecMainStartTimestamp": "Sat 2026-12-05 02:30:04 UTC", "ExecMainExitTimestamp": "Sat 2026-12-05 02:31:10 UTC",
    "ExecMainStartTimestampMonotonic": str(STARTED_MONOTONIC), "InvocationID": "5c1f0a4e0d5b4b8f9c2e7d6a1b3c4d5e",
    "NRestarts": "0",
}
# What systemctl shows for a unit it has no file for.
NOT_FOUND_TIMER = {
    "Id": "gone.timer", "LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead", "UnitFileState": "",
    "Result": "success", "LastTriggerUSec": "n/a", "NextElapseUSecRealtime": "n/a",
    "NextElapseUSecMonotonic": "infinity", "Unit": "",
}
NOT_FOUND_SERVICE = {
    "Id": "gone.service", "LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead",
    "Result": "success", "ExecMainStatus": "0", "ExecMainCode": "0", "ExecMainStartTimestamp": "",
    "ExecMainExitTimestamp": "", "ExecMainStartTimestampMonotonic": "0", "InvocationID": "", "NRestarts": "0",
}
OUTPUT = ["exporting 1204 rows", "upload failed: 503 Service Unavailable", "giving up after 3 attempts"]


class FakeHost:
    """run_command of systemctl and journalctl; anything else (or a changing verb) fails the test.

    The journal is a list of entries (dicts of fields, oldest first): ``entries`` as given, plus each
    line of ``journal`` ({unit: lines}) as a stdout entry of that unit, stamped a few seconds into the
    run. A query gets what journalctl would print: its FIELD=value matches select entries (different
    fields AND, one field OR), ``--since``/``--until`` bound them, ``-r`` reverses, ``-n`` keeps the
    first N of that order (newest first with ``-r``), one JSON object per line.
    """

    def __init__(self, units, journal=None, entries=None):
        self.units = units
        self.journal = journal if journal is not None else {}
        self.entries = entries if entries is not None else []
        self.calls = []

    def all_entries(self):
        lines = [{"_SYSTEMD_UNIT": unit, "MESSAGE": line, "__REALTIME_TIMESTAMP": str(int((STARTED_WALL + 10 + i) * 1e6))}
                 for unit, text in self.journal.items() for i, line in enumerate(text)]
        return sorted(self.entries + lines, key=lambda e: int(e["__REALTIME_TIMESTAMP"]))

    def query(self, args):
        assert "json" in args, args
        matches, since, until = {}, None, None
        for arg in args[1:]:
            if arg.startswith("--since=@"):
                since = float(arg[len("--since=@"):])
            elif arg.startswith("--until=@"):
                until = float(arg[len("--until=@"):])
            elif arg == "-u":
                raise AssertionError("periodic_job_info asks for one run's lines, never the unit's whole journal")
            elif "=" in arg and not arg.startswith("-"):
                field, value = arg.split("=", 1)
                matches.setdefault(field, set()).add(value)
        picked = [e for e in self.all_entries() if all(e.get(f) in values for f, values in matches.items())
                  and (since is None or int(e["__REALTIME_TIMESTAMP"]) >= since * 1e6)
                  and (until is None or int(e["__REALTIME_TIMESTAMP"]) <= until * 1e6)]
        if "-r" in args:
            picked.reverse()
        picked = picked[:int(args[args.index("-n") + 1])] if "-n" in args else picked
        return 0, "".join(json.dumps(e) + "\n" for e in picked), ""

    def __call__(self, args, **kwargs):
        args = list(args)
        self.calls.append(args)
        if args[0] == "/usr/bin/systemctl" and args[1] == "show":
            wanted = args[args.index("-p") + 1].split(",")
            names = args[args.index("--") + 1:]
            blocks = []
            for name in names:
                props = self.units.get(name, NOT_FOUND_SERVICE if name.endswith(".service") else NOT_FOUND_TIMER)
                blocks.append("".join(f"{k}={props.get(k, '')}\n" for k in wanted))
            return 0, "\n".join(blocks), ""
        if args[0] == "/usr/bin/journalctl":
            if "--sync" in args:
                return 0, "", ""
            return self.query(args)
        raise AssertionError(f"periodic_job_info must only read: {args}")

    def verbs(self):
        return [c[1] if c[0].endswith("systemctl") else "journalctl" for c in self.calls]


@pytest.fixture
def fake(monkeypatch):
    host = FakeHost({"nightly-export.timer": TIMER, "nightly-export.service": FAILED_RUN},
                    {"nightly-export.service": OUTPUT})
    monkeypatch.setattr(basic.AnsibleModule, "run_command", host.__call__)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}")
    return host


def test_last_run_of_a_failed_job(run_module, fake):
    res = run_module(periodic_job_info.main, {"names": ["nightly-export"]})
    assert res["changed"] is False and res.get("failed") is not True, res
    assert res["jobs"] == [{
        "timer": "nightly-export.timer", "service": "nightly-export.service", "active": True, "enabled": True,
        "last_trigger": "Sat 2026-12-05 02:30:04 UTC", "next_elapse": "Sun 2026-12-06 02:30:00 UTC",
        "running": False, "last_result": "exit-code", "last_exit_status": 3, "last_exit_code": "exited",
        "last_started": "Sat 2026-12-05 02:30:04 UTC", "last_finished": "Sat 2026-12-05 02:31:10 UTC",
        "invocation_id": "5c1f0a4e0d5b4b8f9c2e7d6a1b3c4d5e", "output_lines": OUTPUT,
    }]


def test_reads_the_properties_it_reports(run_module, fake):
    run_module(periodic_job_info.main, {"names": ["nightly-export"]})
    shows = [c for c in fake.calls if c[1:2] == ["show"]]
    assert [c[c.index("--") + 1:] for c in shows] == [["nightly-export.timer"], ["nightly-export.service"]]
    timer_props = shows[0][shows[0].index("-p") + 1].split(",")
    service_props = shows[1][shows[1].index("-p") + 1].split(",")
    for prop in ("LastTriggerUSec", "NextElapseUSecRealtime", "UnitFileState", "ActiveState", "Unit"):
        assert prop in timer_props, prop
    for prop in ("Result", "ExecMainStatus", "ExecMainCode", "ExecMainStartTimestamp", "ExecMainExitTimestamp",
                 "ExecMainStartTimestampMonotonic", "InvocationID"):
        assert prop in service_props, prop


def test_output_lines_are_the_runs_own_since_it_started(run_module, fake):
    res = run_module(periodic_job_info.main, {"names": ["nightly-export"], "output_lines": 2})
    assert res["jobs"][0]["output_lines"] == OUTPUT[-2:]
    journal = [c for c in fake.calls if c[0].endswith("journalctl")]
    assert journal[0] == ["/usr/bin/journalctl", "--sync"]
    query = journal[1]
    assert query[query.index("-n") + 1] == "2" and "_SYSTEMD_UNIT=nightly-export.service" in query
    since = float(next(a for a in query if a.startswith("--since=@"))[len("--since=@"):])
    assert abs(since - STARTED_WALL) < 2  # the run's start in wall-clock time, not "an hour before now"


def test_no_output_lines_asked_no_journal(run_module, fake):
    res = run_module(periodic_job_info.main, {"names": ["nightly-export"], "output_lines": 0})
    assert res["jobs"][0]["output_lines"] == [] and "journalctl" not in fake.verbs()


def pid1(message_id, invocation, stamp, **fields):
    """An entry systemd (PID 1) logs about nightly-export.service."""
    return dict(fields, MESSAGE_ID=message_id, INVOCATION_ID=invocation, _PID="1", UNIT="nightly-export.service",
                __REALTIME_TIMESTAMP=str(int(stamp * 1e6)), MESSAGE="wording the module must not read")


def out(stamp, line):
    """A line the job's process wrote (journald stamps it when it reads it)."""
    return {"_SYSTEMD_UNIT": "nightly-export.service", "MESSAGE": line, "__REALTIME_TIMESTAMP": str(int(stamp * 1e6))}


OLDER, PREVIOUS, CURRENT = "0" * 32, "a" * 32, "b" * 32
START = STARTED_WALL - 600.75  # the previous run: started 10 min before the current one, ran 66 s
END = START + 66.25
NOW_START = STARTED_WALL
PREVIOUS_RUN = [
    pid1(systemd.RUN_STARTING_ID, OLDER, START - 300),
    out(START - 299, "the run before: not this run's line"),
    pid1(systemd.RUN_SUCCESS_ID, OLDER, START - 290),
    out(START - 0.01, "exporting 1204 rows"),  # systemd before 254 logs STARTING after the fork
    pid1(systemd.RUN_STARTING_ID, PREVIOUS, START),
    out(START + 30, "upload failed: 503 Service Unavailable"),
    pid1(systemd.PROCESS_EXIT_ID, PREVIOUS, END - 0.01, EXIT_CODE="killed", EXIT_STATUS="9", COMMAND="ExecStart"),
    pid1(systemd.PROCESS_EXIT_ID, PREVIOUS, END - 0.005, EXIT_CODE="exited", EXIT_STATUS="7", COMMAND="ExecStopPost"),
    pid1(systemd.FAILURE_RESULT_ID, PREVIOUS, END, UNIT_RESULT="timeout"),
    out(END + 0.5, "giving up after 3 attempts"),  # stamped after the end: journald read it late
    pid1(systemd.RUN_STARTING_ID, CURRENT, NOW_START),
    out(NOW_START + 1, "the current run: not the finished run's line"),
]
# systemd resets Result= and ExecMain* when a run starts: this is what show says during one.
RUNNING = dict(FAILED_RUN, ActiveState="activating", SubState="start", Result="success", ExecMainStatus="0",
               ExecMainCode="0", ExecMainExitTimestamp="", InvocationID=CURRENT, LogLevelMax="-1")


@pytest.fixture
def running(fake):
    fake.units["nightly-export.service"] = RUNNING
    fake.journal = {}
    fake.entries = list(PREVIOUS_RUN)
    return fake


def test_while_a_run_goes_on_the_last_finished_run_comes_from_pid1s_entries(run_module, running):
    job = run_module(periodic_job_info.main, {"names": ["nightly-export.timer"]})["jobs"][0]
    assert job["running"] is True and job["last_result"] == "timeout", job
    # The main process's exit, not the ExecStopPost= command's that came after it.
    assert (job["last_exit_status"], job["last_exit_code"], job["invocation_id"]) == (9, "killed", PREVIOUS)
    assert job["last_started"] == systemd.journal_time(int(START * 1e6))
    assert job["last_finished"] == systemd.journal_time(int(END * 1e6))
    # Its lines: after the run before it ended, up to the current run's start, the last N of them.
    assert job["output_lines"] == ["exporting 1204 rows", "upload failed: 503 Service Unavailable",
                                   "giving up after 3 attempts"]
    two = run_module(periodic_job_info.main, {"names": ["nightly-export"], "output_lines": 2})["jobs"][0]
    assert two["output_lines"] == ["upload failed: 503 Service Unavailable", "giving up after 3 attempts"]
    assert ["/usr/bin/journalctl", "--sync"] in running.calls


def test_a_successful_previous_run_has_no_exit_entry(run_module, running):
    running.entries = [pid1(systemd.RUN_STARTING_ID, PREVIOUS, START), pid1(systemd.RUN_SUCCESS_ID, PREVIOUS, END),
                       pid1(systemd.RUN_STARTING_ID, CURRENT, NOW_START)]
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["last_result"] == "success" and job["invocation_id"] == PREVIOUS
    assert job["last_exit_status"] is None and job["last_exit_code"] is None


def test_entries_after_the_current_start_are_never_read(run_module, running):
    """Entries shaped like PID 1's with a later stamp: a job's own (sd_journal_send can set any field
    but _PID, a root job with CAP_SYS_ADMIN even that) or a later run's. Only what came before the
    current run began counts."""
    lookalikes = [pid1(systemd.RUN_STARTING_ID, "c" * 32, NOW_START + 1), pid1(systemd.RUN_SUCCESS_ID, "c" * 32, NOW_START + 2),
                  pid1(systemd.RUN_SUCCESS_ID, PREVIOUS, NOW_START + 3)]
    running.entries = PREVIOUS_RUN + lookalikes + [dict(e, _PID="4242", MESSAGE_ID=systemd.RUN_SUCCESS_ID, INVOCATION_ID="d" * 32)
                                                   for e in PREVIOUS_RUN[:1]]
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["last_result"] == "timeout" and job["invocation_id"] == PREVIOUS, job


def test_no_current_start_in_the_journal_means_nothing_is_known(run_module, running):
    """journald behind (the current run's STARTING not written yet) or the journal rotated: an older
    run's entries are not taken for the last one."""
    running.entries = PREVIOUS_RUN[:-2]
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["running"] is True and job["output_lines"] == []
    for key in ("last_result", "last_exit_status", "last_exit_code", "last_started", "last_finished", "invocation_id"):
        assert job[key] is None, (key, job)


def test_running_for_the_first_time(run_module, running):
    running.entries = [pid1(systemd.RUN_STARTING_ID, CURRENT, NOW_START), out(NOW_START + 1, "first")]
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["running"] is True and job["last_result"] is None and job["output_lines"] == [], job


def test_a_finished_run_whose_start_left_the_journal(run_module, running):
    running.entries = PREVIOUS_RUN[6:]
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["last_result"] == "timeout" and job["last_started"] is None, job
    assert job["output_lines"] == ["giving up after 3 attempts"]


def test_a_simple_service_has_no_starting_entry_only_started(run_module, running):
    """systemd logs no STARTING for Type=simple, only STARTED after the fork; entries between two
    start entries of the current run are not read either."""
    running.entries = PREVIOUS_RUN[:-2] + [
        pid1(systemd.RUN_STARTED_ID, CURRENT, NOW_START),
        pid1(systemd.RUN_SUCCESS_ID, "c" * 32, NOW_START + 1),  # after the current start: never read
        pid1(systemd.RUN_STARTED_ID, CURRENT, NOW_START + 2),
    ]
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["last_result"] == "timeout" and job["invocation_id"] == PREVIOUS, job


def test_a_line_journald_read_after_the_next_run_began_still_counts(run_module, running):
    """journald stamps a line when it reads it: a finished run's last line can carry a time after
    the next run's start. Its output stream says whose it is."""
    running.entries = [dict(e, _STREAM_ID="s-previous") if "_SYSTEMD_UNIT" in e and START - 1 < int(
        e["__REALTIME_TIMESTAMP"]) / 1e6 < NOW_START else e for e in PREVIOUS_RUN[:-1]] + [
        dict(out(NOW_START + 0.5, "the late last line"), _STREAM_ID="s-previous"),
        pid1(systemd.RUN_STARTING_ID, CURRENT, NOW_START),
        dict(out(NOW_START + 1, "the current run: not the finished run's line"), _STREAM_ID="s-current"),
    ]
    running.entries.sort(key=lambda e: int(e["__REALTIME_TIMESTAMP"]))
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"], "output_lines": 3})["jobs"][0]
    assert job["output_lines"] == ["upload failed: 503 Service Unavailable", "giving up after 3 attempts",
                                   "the late last line"], job


def test_log_level_max_below_info_hides_pid1s_entries_so_none_are_read(run_module, running):
    running.units["nightly-export.service"] = dict(RUNNING, LogLevelMax="4")
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["running"] is True and job["last_result"] is None
    assert not [c for c in running.calls if "MESSAGE_ID=" + systemd.FAILURE_RESULT_ID in c]


@pytest.mark.parametrize("state,sub,result,running_now", [
    ("activating", "auto-restart", "exit-code", False),  # waiting out RestartSec= after a failed run
    ("activating", "auto-restart-queued", "exit-code", False),
    ("active", "exited", "success", False),  # RemainAfterExit=: the run has ended
    ("deactivating", "stop-sigterm", "timeout", True),  # the start timed out, the stop goes on
])
def test_show_is_right_when_the_current_run_has_its_verdict(run_module, running, state, sub, result, running_now):
    running.units["nightly-export.service"] = dict(FAILED_RUN, ActiveState=state, SubState=sub, Result=result,
                                                   InvocationID=CURRENT)
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["running"] is running_now and job["last_result"] == result and job["invocation_id"] == CURRENT, job
    assert not [c for c in running.calls if "MESSAGE_ID=" + systemd.FAILURE_RESULT_ID in c]


def test_journal_time_is_systemds_form_in_any_locale(monkeypatch):
    import locale
    stamp = int(START * 1e6)
    expected = systemd.journal_time(stamp)
    assert expected[:3] in systemd.WEEKDAYS and len(expected.split()) == 4
    for name in ("de_DE.UTF-8", "fr_FR.UTF-8"):
        try:
            locale.setlocale(locale.LC_TIME, name)
        except locale.Error:
            continue
        try:
            assert systemd.journal_time(stamp) == expected
        finally:
            locale.setlocale(locale.LC_TIME, "C")
    assert time.strftime("%a", time.localtime(START)) == expected[:3]  # C locale: the same English name


def test_dumped_core(run_module, fake):
    fake.units["nightly-export.service"] = dict(FAILED_RUN, Result="core-dump", ExecMainStatus="11", ExecMainCode="3")
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert (job["last_result"], job["last_exit_status"], job["last_exit_code"]) == ("core-dump", 11, "dumped")


def test_never_ran_and_stopped(run_module, fake):
    fake.units["nightly-export.timer"] = dict(TIMER, ActiveState="inactive", SubState="dead", UnitFileState="disabled",
                                              LastTriggerUSec="n/a", NextElapseUSecRealtime="n/a")
    fake.units["nightly-export.service"] = dict(NOT_FOUND_SERVICE, Id="nightly-export.service", LoadState="loaded")
    job = run_module(periodic_job_info.main, {"names": ["nightly-export"]})["jobs"][0]
    assert job["active"] is False and job["enabled"] is False
    assert job["last_trigger"] is None and job["next_elapse"] is None
    assert job["last_result"] is None and job["last_exit_status"] is None and job["last_exit_code"] is None
    assert job["last_started"] is None and job["last_finished"] is None and job["output_lines"] == []
    assert "journalctl" not in fake.verbs()


def test_timer_of_another_service(run_module, fake):
    fake.units["backup.timer"] = dict(TIMER, Id="backup.timer", Unit="db-dump.service")
    fake.units["db-dump.service"] = dict(FAILED_RUN, Id="db-dump.service", Result="success", ExecMainStatus="0")
    fake.journal["db-dump.service"] = ["dumped"]
    job = run_module(periodic_job_info.main, {"names": ["backup"]})["jobs"][0]
    assert job["timer"] == "backup.timer" and job["service"] == "db-dump.service"
    assert job["last_result"] == "success" and job["last_exit_status"] == 0 and job["output_lines"] == ["dumped"]


def test_several_names_in_order_without_duplicates(run_module, fake):
    fake.units["backup.timer"] = dict(TIMER, Id="backup.timer", Unit="backup.service")
    fake.units["backup.service"] = dict(FAILED_RUN, Id="backup.service", Result="success", ExecMainStatus="0")
    res = run_module(periodic_job_info.main, {"names": ["nightly-export", "backup", "nightly-export.timer"]})
    assert [j["timer"] for j in res["jobs"]] == ["nightly-export.timer", "backup.timer"]
    shows = [c for c in fake.calls if c[1:2] == ["show"]]
    assert len(shows) == 2  # one call for the timers, one for their services
    assert shows[0][shows[0].index("--") + 1:] == ["nightly-export.timer", "backup.timer"]


def test_a_timer_that_does_not_exist(run_module, fake):
    res = run_module(periodic_job_info.main, {"names": ["gone"]})
    assert res.get("failed") is not True and res["changed"] is False, res
    (job,) = res["jobs"]
    assert job["timer"] == "gone.timer" and job["service"] == "gone.service"
    assert job["active"] is False and job["enabled"] is False and job["running"] is False
    assert job["last_trigger"] is None and job["next_elapse"] is None and job["last_result"] is None
    assert job["last_exit_status"] is None and job["invocation_id"] is None and job["output_lines"] == []
    assert "journalctl" not in fake.verbs()


def test_check_mode_is_the_same_read(run_module, fake):
    res = run_module(periodic_job_info.main, {"names": ["nightly-export"]}, check_mode=True)
    assert res["jobs"][0]["last_result"] == "exit-code" and res["changed"] is False
    assert set(fake.verbs()) == {"show", "journalctl"}


def test_systemctl_failure_is_reported(run_module, fake, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, args, **kw: (1, "", "Failed to connect to bus: No such file or directory"))
    res = run_module(periodic_job_info.main, {"names": ["nightly-export"]})
    assert res.get("failed") is True and "Failed to connect to bus" in res["msg"], res


def test_short_show_output_is_an_error_not_a_guess(run_module, fake, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, args, **kw: (0, "Id=a.timer\n", ""))
    res = run_module(periodic_job_info.main, {"names": ["a", "b"]})
    assert res.get("failed") is True and "returned 1 blocks for 2 units" in res["msg"], res


BAD = [
    ("trailing newline", {"names": ["nightly-export\n"]}, "names[0]", ["must be a single line of text"]),
    ("trailing newline on a timer", {"names": ["nightly-export.timer\n"]}, "names[0]", ["must be a single line"]),
    ("newline inside", {"names": ["a\nb"]}, "names[0]", ["must be a single line"]),
    ("slash", {"names": ["../nightly-export"]}, "names[0]", ["must not contain '/'"]),
    ("slash in a timer", {"names": ["x/y.timer"]}, "names[0]", ["must not contain '/'"]),
    ("at sign", {"names": ["ok", "job@1"]}, "names[1]", ["must not contain '@'"]),
    ("template timer", {"names": ["job@.timer"]}, "names[0]", ["is a template"]),
    ("dot-dot", {"names": [".."]}, "names[0]", ["may only use letters, digits"]),
    ("space", {"names": ["nightly export"]}, "names[0]", ["may only use letters, digits"]),
    ("empty", {"names": [""]}, "names[0]", ["must not be empty"]),
    ("service suffix", {"names": ["nightly-export.service"]}, "names[0]", ["without the unit suffix"]),
    ("too long", {"names": ["n" * 183]}, "names[0]", ["is too long"]),
    ("timer too long", {"names": ["n" * 250 + ".timer"]}, "names[0]", ["is too long"]),
    ("output_lines negative", {"names": ["ok"], "output_lines": -1}, "output_lines", ["from 0 to 1000"]),
    ("output_lines too many", {"names": ["ok"], "output_lines": 1001}, "output_lines", ["from 0 to 1000"]),
]


@pytest.mark.parametrize("label,params,field,words", BAD, ids=[row[0] for row in BAD])
def test_bad_input_is_refused_before_asking_systemd(run_module, fake, label, params, field, words):
    res = run_module(periodic_job_info.main, params)
    assert res.get("failed") is True, (label, res)
    assert res["msg"].startswith(field + ":"), (label, res["msg"])
    for word in words:
        assert word in res["msg"], (label, word, res["msg"])
    assert fake.calls == [], label
