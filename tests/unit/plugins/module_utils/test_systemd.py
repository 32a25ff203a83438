"""systemd: names, `systemctl show` parsing, the instance view, discovery, systemd-run argv, and the
verify-before-land writer. systemctl is faked (recorded calls); systemd-analyze runs for real when
installed (it needs no running systemd). Real start/stop behaviour is proven in Molecule."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from ansible_collections.supervised.background.plugins.module_utils import safe_file, systemd
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

REAL_ANALYZE = shutil.which("systemd-analyze")


# -- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["worker", "queue-consumer", "a_b.c", "w1", "_x", "9lives"])
def test_unit_prefix_ok(value):
    assert systemd.unit_prefix("name", value) == value


@pytest.mark.parametrize("value, rule", [
    ("", "empty"), ("a@b", "'@'"), ("a/b", "'/'"), ("a b", "may only use"), ("-x", "must start"),
    (".hidden", "must start"), ("x.service", "without the unit suffix"), ("x.timer", "drop '.timer'"),
    ("a\nb", "single line"), ("worker\n", "single line"), ("a\x00b", "control"), ("x" * 300, "too long"),
    ("a\tb", "control"), ("a:b", "may only use"), ("a\\x2db", "may only use"), ("w\u2028", "single line"),
    ("\u00e9", "may only use"),
])
def test_unit_prefix_bad(value, rule):
    with pytest.raises(InputError) as err:
        systemd.unit_prefix("name", value)
    assert str(err.value).startswith("name:") and rule in str(err.value)


@pytest.mark.parametrize("value", ["1", "eu-west", "a.b", "x" * 64])
def test_instance_name_ok(value):
    assert systemd.instance_name("i", value) == value


@pytest.mark.parametrize("value", ["", "a@b", "a/b", "a b", "-1", "1\n", "x" * 65, "$(id)", "*", "a:b", ".."])
def test_instance_name_bad(value):
    with pytest.raises(InputError, match="^i:"):
        systemd.instance_name("i", value)


@pytest.mark.parametrize("value,kw", [
    ("w@1.service", {}), ("migrate.service", {}), ("w@.service", {"template": True}),
    ("network-online.target", {"suffixes": systemd.UNIT_SUFFIXES}), ("alert@%n.service", {"specifiers": True}),
])
def test_unit_name_ok(value, kw):
    assert systemd.unit_name("unit", value, **kw) == value


@pytest.mark.parametrize("value,kw,words", [
    ("w@1", {}, "must end with"), ("../x.service", {}, "must not contain '/'"), ("w@a b.service", {}, "may only use"),
    ("w@@.service", {}, "'@'"), ("w@1.service\n", {}, "single line"), ("w@.service", {"template": False}, "is a template"),
    ("w@1.service", {"template": True}, "must be a template"), ("alert@%n.service", {}, "may only use"),
    ("x.target", {}, "must end with one of .service"), ("a:b.service", {}, "may only use"),
])
def test_unit_name_bad(value, kw, words):
    with pytest.raises(InputError) as err:
        systemd.unit_name("unit", value, **kw)
    assert str(err.value).startswith("unit:") and words in str(err.value)


# -- systemctl show ------------------------------------------------------------------------------
def test_parse_show_blocks_in_order():
    text = "Id=a@1.service\nActiveState=active\nMainPID=12\n\nId=a@2.service\nActiveState=failed\nMainPID=0\n"
    blocks = systemd.parse_show(text, 2)
    assert blocks[0]["Id"] == "a@1.service" and blocks[1]["ActiveState"] == "failed"


def test_parse_show_keeps_equals_in_values():
    blocks = systemd.parse_show("Environment=A=1 B=2\nExecStart={ path=/x ; argv[]=/x a=b }\n", 1)
    assert blocks[0]["Environment"] == "A=1 B=2"


def test_parse_show_count_mismatch():
    with pytest.raises(systemd.SystemdError):
        systemd.parse_show("Id=a\n", 2)


@pytest.mark.parametrize("value, expected", [
    ("12", 12), ("[not set]", None), ("18446744073709551615", None), ("", None), ("x", None), (None, None),
])
def test_to_int(value, expected):
    assert systemd.to_int(value) == expected


def test_instance_of():
    assert systemd.instance_of("w@3.service", "w") == "3"
    assert systemd.instance_of("w@.service", "w") is None
    assert systemd.instance_of("w2@3.service", "w") is None
    assert systemd.instance_of("w.x@3.service", "w") is None
    assert systemd.instance_of("w@3.timer", "w") is None


RUNNING = {"LoadState": "loaded", "ActiveState": "active", "SubState": "running", "Result": "success",
           "MainPID": "812", "NRestarts": "2", "ExecMainStatus": "0", "UnitFileState": "enabled",
           "ActiveEnterTimestamp": "Tue 2026-11-24 01:29:11 UTC", "MemoryCurrent": "188416", "TasksCurrent": "3",
           "InvocationID": "f404d03d6d334326af506165e3397f60"}


def test_instance_view_running_and_unknowns():
    assert systemd.instance_view("qw@1.service", RUNNING, "qw") == {
        "unit": "qw@1.service", "instance": "1", "load_state": "loaded", "active_state": "active",
        "sub_state": "running", "result": "success", "main_pid": 812, "n_restarts": 2, "exec_main_status": 0,
        "enabled": True, "unit_file_state": "enabled", "active_since": "Tue 2026-11-24 01:29:11 UTC",
        "memory_bytes": 188416, "tasks": 3, "invocation_id": "f404d03d6d334326af506165e3397f60"}
    dead = systemd.instance_view("qw@2.service", {"MainPID": "0", "MemoryCurrent": "[not set]",
                                                  "TasksCurrent": "18446744073709551615", "UnitFileState": "enabled-runtime"})
    assert dead["main_pid"] is None and dead["memory_bytes"] is None and dead["tasks"] is None
    assert dead["instance"] is None and dead["n_restarts"] == 0 and dead["enabled"] is True
    assert dead["active_state"] is None and dead["invocation_id"] is None


# -- the Systemd class with a recorded systemctl -----------------------------------------------------
class FakeModule:
    def __init__(self, answers=None, check_mode=False):
        self.calls = []
        self.answers = answers or {}
        self.check_mode = check_mode
        self._diff = False
        self.warnings = []
        self.bins = {"systemctl": "/bin/systemctl", "journalctl": "/bin/journalctl",
                     "systemd-analyze": REAL_ANALYZE}

    def get_bin_path(self, name, required=False):
        return self.bins.get(name)

    def warn(self, msg):
        self.warnings.append(msg)

    def run_command(self, args, **kwargs):
        self.calls.append(list(args))
        if os.path.basename(args[0]) == "systemd-analyze":
            import subprocess
            env = dict(os.environ, **kwargs.get("environ_update", {}))
            proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
            return proc.returncode, proc.stdout, proc.stderr
        verb = args[1]
        answer = self.answers.get(verb, (0, "", ""))
        return answer(args) if callable(answer) else answer


def test_show_asks_once_and_maps_units():
    module = FakeModule({"show": (0, "Id=a\nActiveState=active\n\nId=b\nActiveState=failed\n", "")})
    shown = systemd.Systemd(module).show(["a.service", "b.service"], ("Id", "ActiveState"))
    assert shown == {"a.service": {"Id": "a", "ActiveState": "active"},
                     "b.service": {"Id": "b", "ActiveState": "failed"}}
    assert module.calls == [["/bin/systemctl", "show", "--no-pager", "-p", "Id,ActiveState", "--", "a.service",
                             "b.service"]]
    assert systemd.Systemd(module).show([]) == {}


def test_failed_call_carries_systemds_words():
    module = FakeModule({"start": (5, "", "Job for w@1.service failed.\n")})
    with pytest.raises(systemd.SystemdError, match=r"systemctl start -- w@1.service failed \(rc=5\): Job for"):
        systemd.Systemd(module).start(["w@1.service"])


def test_actions_put_units_after_double_dash_and_skip_empty_lists():
    module = FakeModule()
    sd = systemd.Systemd(module)
    for verb in ("stop", "restart", "enable", "disable", "reset_failed"):
        getattr(sd, verb)([])
    assert module.calls == []
    sd.start(["w@1.service"], no_block=True)
    sd.stop(["w@1.service"])
    sd.reset_failed(["w@1.service"])
    sd.daemon_reload()
    assert [c[1:] for c in module.calls] == [["start", "--no-block", "--", "w@1.service"], ["stop", "--", "w@1.service"],
                                             ["reset-failed", "--", "w@1.service"], ["daemon-reload"]]


def test_loaded_instances_parses_marks_and_ignores_others():
    listing = ("w@1.service loaded active running x\n"
               "\u25cf w@10.service loaded failed failed x\n"
               "w2@3.service loaded active running x\n"
               "w@.service loaded x\n\n")
    module = FakeModule({"list-units": (0, listing, "")})
    assert systemd.Systemd(module).loaded_instances("w") == {"1", "10"}
    assert module.calls[0][-2:] == ["--", "w@*.service"]


def test_enabled_instances_from_links(tmp_path, monkeypatch):
    monkeypatch.setattr(systemd, "SYSTEM_UNIT_DIR", str(tmp_path))
    for wants in ("multi-user.target.wants", "default.target.requires"):
        (tmp_path / wants).mkdir()
    os.symlink("/x/w@.service", tmp_path / "multi-user.target.wants" / "w@2.service")
    os.symlink("/x/w@.service", tmp_path / "default.target.requires" / "w@eu.service")
    os.symlink("/x/w2@.service", tmp_path / "multi-user.target.wants" / "w2@9.service")
    sd = systemd.Systemd(FakeModule({"list-units": (0, "w@1.service loaded active running x\n", "")}))
    assert sd.enabled_instances("w") == {"2", "eu"}
    assert sd.known_instances("w") == {"1", "2", "eu"}


def test_journal_tail_arguments():
    # journalctl -r prints newest first; the entries come back oldest first, a multi-line message
    # as its lines, a message journald stores as bytes (not UTF-8) decoded, odd lines skipped.
    newest_first = "\n".join([
        '{"MESSAGE": "three"}', 'not json', '{"MESSAGE": [104, 105, 255]}', '{"MESSAGE": "one\\ntwo"}', '{"X": 1}',
    ])
    module = FakeModule({"--sync": (0, "", ""), "--no-pager": (0, newest_first + "\n", "")})
    sd = systemd.Systemd(module)
    assert sd.journal_tail("w@1.service", lines=5) == ["one", "two", "hi\ufffd", "three"]
    assert sd.journal_tail("w@1.service", lines=2, sync=False) == ["hi\ufffd", "three"]
    assert module.calls[0] == ["/bin/journalctl", "--sync"]
    assert module.calls[1][-2:] == ["-u", "w@1.service"] and "5" in module.calls[1]
    # -r everywhere: systemd before 254 counts -n from --since forward, so without it the first N.
    # --all: without it a field over 4096 bytes is null in JSON.
    assert "-r" in module.calls[1] and "json" in module.calls[1] and "--all" in module.calls[1]
    sd.journal_tail("j.service", invocation="a" * 32, sync=False)
    assert module.calls[-1][-1] == "_SYSTEMD_INVOCATION_ID=" + "a" * 32
    sd.journal_tail("j.service", since=12.5, sync=False)
    assert module.calls[-1][-2:] == ["_SYSTEMD_UNIT=j.service", "--since=@12.500000"]
    sd.journal_tail("j.service", since=12.5, until=20.25, sync=False)
    assert module.calls[-1][-3:] == ["_SYSTEMD_UNIT=j.service", "--since=@12.500000", "--until=@20.250000"]
    sd.journal_tail("j.service", until=20.25, sync=False)
    assert module.calls[-1][-2:] == ["_SYSTEMD_UNIT=j.service", "--until=@20.250000"]
    module.bins["journalctl"] = None
    assert sd.journal_tail("j.service") == []


def test_message_lines_of_every_form_journalctl_gives():
    assert systemd.message_lines("a\nb") == ["a", "b"] and systemd.message_lines("") == [""]
    assert systemd.message_lines([104, 105, 255]) == ["hi\ufffd"]
    assert systemd.message_lines(["one", [116, 119, 111], "three\nfour"]) == ["one", "two", "three", "four"]
    assert systemd.message_lines(None) == [] and systemd.message_lines({"x": 1}) == []


def test_failure_results_read_the_structured_field_only():
    lines = "\n".join([
        '{"UNIT_RESULT": "exit-code", "__CURSOR": "s=1"}',
        'not json',
        '["a list"]',
        '{"__CURSOR": "s=2"}',
        '{"UNIT_RESULT": "watchdog", "MESSAGE": "Watchdog timeout (limit 3s)!"}',
    ])
    module = FakeModule({"--no-pager": (0, lines, "")})
    sd = systemd.Systemd(module)
    assert sd.failure_results("w@1.service", since=7.25) == ["exit-code", "watchdog"]
    args = module.calls[-1]
    assert "_PID=1" in args and "UNIT=w@1.service" in args and args[-1] == "--since=@7.250000"
    assert "MESSAGE_ID=" + systemd.FAILURE_RESULT_ID in args and "json" in args
    module.answers["--no-pager"] = (1, "", "no journal")
    assert sd.failure_results("w@1.service") == []
    module.bins["journalctl"] = None
    assert sd.failure_results("w@1.service") == []


def test_run_argv_takes_every_argument_literally():
    argv = systemd.run_argv("/usr/bin/systemd-run", "job.service", ["/bin/echo", "$HOME", "${X}", "a b", "$$"],
                            properties=[("RuntimeMaxSec", "5s")])
    assert argv == ["/usr/bin/systemd-run", "--quiet", "--no-ask-password", "--unit=job.service",
                    "--service-type=exec", "-p", "RuntimeMaxSec=5s", "--", "/bin/echo", "$$HOME", "$${X}", "a b",
                    "$$$$"]


# -- UnitWriter ------------------------------------------------------------------------------------
UNIT = "# Managed by supervised.background; test\n[Unit]\nDescription=probe %i\n\n[Service]\nExecStart=/bin/sleep infinity\n"


@pytest.fixture
def unit_dir(tmp_path, monkeypatch):
    d = tmp_path / "units"
    d.mkdir()
    monkeypatch.setattr(systemd, "SYSTEM_UNIT_DIR", str(d))
    return d


def test_writer_without_analyze_warns_writes_and_reloads_once(unit_dir):
    module = FakeModule()
    module.bins["systemd-analyze"] = None
    writer = systemd.UnitWriter(module)
    res = writer.write(str(unit_dir / "p@.service"), "p@.service", UNIT)
    writer.write(str(unit_dir / "q.service"), "q.service", UNIT.replace(" %i", ""))
    assert res.changed and writer.unverified and "without verification" in module.warnings[0]
    assert stat.S_IMODE(os.lstat(unit_dir / "p@.service").st_mode) == 0o644
    assert writer.reload() is True
    # Besides the reload, only the claim's look at what systemd loads for each new unit name.
    assert [c[1:] for c in module.calls if c[1] != "show"] == [["daemon-reload"]]
    again = systemd.UnitWriter(module)
    assert again.write(str(unit_dir / "p@.service"), "p@.service", UNIT).changed is False
    assert again.reload() is False


def test_writer_never_reloads_in_check_mode(unit_dir):
    module = FakeModule(check_mode=True)
    module.bins["systemd-analyze"] = None
    writer = systemd.UnitWriter(module)
    assert writer.write(str(unit_dir / "p@.service"), "p@.service", UNIT).changed
    assert writer.reload() is False and list(unit_dir.iterdir()) == []
    assert [c[1] for c in module.calls] == ["show"]


@pytest.mark.skipif(REAL_ANALYZE is None, reason="systemd-analyze not installed")
def test_writer_verifies_with_the_real_tool_and_refusal_leaves_nothing(unit_dir, snapshot_tree):
    module = FakeModule()
    writer = systemd.UnitWriter(module)
    res = writer.write(str(unit_dir / "probe@.service"), "probe@.service", UNIT)
    assert res.changed and writer.verified == ["probe@.service"]
    before = snapshot_tree(unit_dir)
    bad = UNIT + "LimitNOFILE=lots\n"
    with pytest.raises(Exception) as err:
        systemd.UnitWriter(module).write(str(unit_dir / "probe@.service"), "probe@.service", bad,
                                         blame=lambda d: "settings." + d)
    assert "settings.LimitNOFILE" in str(err.value) and "systemd-analyze verify refused" in str(err.value)
    assert snapshot_tree(unit_dir) == before


@pytest.mark.skipif(REAL_ANALYZE is None, reason="systemd-analyze not installed")
def test_writer_missing_executable_is_a_warning_only_in_check_mode(unit_dir, snapshot_tree):
    text = UNIT.replace("/bin/sleep infinity", "/usr/local/bin/not-installed-yet")
    module = FakeModule(check_mode=True)
    res = systemd.UnitWriter(module).write(str(unit_dir / "probe@.service"), "probe@.service", text,
                                           executables={"/usr/local/bin/not-installed-yet"})
    assert res.changed and any("does not exist yet" in w for w in module.warnings)
    before = snapshot_tree(unit_dir)
    with pytest.raises(Exception, match="exec_start"):
        systemd.UnitWriter(FakeModule()).write(str(unit_dir / "probe@.service"), "probe@.service", text,
                                               executables={"/usr/local/bin/not-installed-yet"})
    assert snapshot_tree(unit_dir) == before


def test_writer_remove(unit_dir):
    (unit_dir / "p.service").write_text(UNIT)
    module = FakeModule()
    writer = systemd.UnitWriter(module)
    assert writer.remove(str(unit_dir / "p.service")).changed and writer.reload()
    assert not (unit_dir / "p.service").exists()


def test_blame_names_the_option_of_a_line():
    text = "[Service]\nExecStart=/x\nLimitNOFILE=lots\n"
    lines = ["p.service:3: Failed to parse resource value, ignoring: lots"]
    assert systemd._blame(text, lines, [], lambda d: f"settings.{d}") == "settings.LimitNOFILE"
    assert systemd._blame(text, ["x"], ["/x"], None) == "exec_start"
    assert systemd._blame(text, ["p.service:99: out of range"], [], None) == "unit"


def test_writer_claims_only_what_the_collection_wrote(unit_dir):
    module = FakeModule()
    module.bins["systemd-analyze"] = None
    foreign = unit_dir / "getty@.service"
    foreign.write_text("[Service]\nExecStart=/sbin/agetty\n")
    with pytest.raises(safe_file.FileError, match="was not written by supervised.background"):
        systemd.UnitWriter(module).write(str(foreign), "getty@.service", UNIT)
    assert foreign.read_text() == "[Service]\nExecStart=/sbin/agetty\n"
    # No file here, but systemd loads a packaged unit of that name from elsewhere.
    module.answers["show"] = (0, "LoadState=loaded\nFragmentPath=/lib/systemd/system/ssh.service\n", "")
    with pytest.raises(safe_file.FileError, match="already installed at /lib/systemd/system/ssh.service"):
        systemd.UnitWriter(module).write(str(unit_dir / "ssh.service"), "ssh.service", UNIT)
    assert not (unit_dir / "ssh.service").exists()
    # On purpose (ci_tunnel's openfortivpn@.service replaces Debian 13's).
    assert systemd.UnitWriter(module).write(str(unit_dir / "ssh.service"), "ssh.service", UNIT, replace=True).changed
    # A unit of its own: loaded from the very path.
    module.answers["show"] = (0, f"LoadState=loaded\nFragmentPath={unit_dir}/w@.service\n", "")
    assert systemd.UnitWriter(module).write(str(unit_dir / "w@.service"), "w@.service", UNIT).changed
