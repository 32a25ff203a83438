"""worker_unit: rendering, systemd quoting, verification handling and refusals that write nothing."""

from __future__ import annotations

import os
import pathlib
import shutil
import stat

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible_collections.supervised.background.plugins.module_utils import systemd
from ansible_collections.supervised.background.plugins.module_utils.unit_file import (
    escape_percent,
    quote_environment,
    quote_exec_arg,
)
from ansible_collections.supervised.background.plugins.modules import worker_unit

REAL_ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture
def no_analyze(monkeypatch, tmp_path):
    """A PATH without systemd-analyze (get_bin_path also looks in /sbin dirs, which never hold it)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    return bindir


class UnitDir(type(pathlib.Path())):
    """A path that also records the daemon-reloads of a test."""

    reloads = None


@pytest.fixture
def units(tmp_path, monkeypatch):
    """The unit directory of the tests; daemon-reload is recorded, not run (real systemd: Molecule)."""
    d = UnitDir(tmp_path / "units")
    d.mkdir()
    d.reloads = []
    monkeypatch.setattr(systemd, "SYSTEM_UNIT_DIR", str(d))
    monkeypatch.setattr(systemd.Systemd, "daemon_reload", lambda self: d.reloads.append(1))
    monkeypatch.setattr(systemd.Systemd, "loaded_instances", lambda self, name: set())
    return d


def _args(unit_dir, **kw):
    args = {"name": "queue-worker", "exec_start": ["/usr/local/bin/queue-worker", "--id", "%i"]}
    args.update(kw)
    return args


@pytest.mark.parametrize("arg,written", [
    ("plain", "plain"),
    ("%i", "%i"),
    ("%I", "%I"),
    ("worker-%i.log", "worker-%i.log"),
    ("100%", "100%%"),
    ("%n %%", '"%%n %%%%"'),
    ("$HOME", "$$HOME"),
    ("${X}", "$${X}"),
    ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("it's", '"it\'s"'),
    ("back\\slash", '"back\\\\slash"'),
    ("trailing\\", '"trailing\\\\"'),
    ("", '""'),
    (";", '";"'),
    ("a;b", '"a;b"'),
    ("ünïcødé", "ünïcødé"),
])
def test_exec_arg_quoting(arg, written):
    assert quote_exec_arg(arg) == written


def test_environment_quoting():
    assert quote_environment("A", 'x y$Z%i\\n"q') == '"A=x y$Z%i\\\\n\\"q"'
    assert quote_environment("B", "50%") == '"B=50%%"'
    assert escape_percent("%i%I%%n%") == "%i%I%%%%n%%"


def test_render_strict_default(run_module, units, no_analyze):
    res = run_module(worker_unit.main, _args(units, environment={"LOG_LEVEL": "info", "A": "1"},
                                             environment_files=["/etc/queue-worker/secrets.env", "-/etc/qw/%i.env"],
                                             user="queue-worker", group="queue-worker",
                                             state_directory="queue-worker/%i"))
    assert res["changed"] is True, res
    path = units / "queue-worker@.service"
    text = path.read_text()
    assert text == res["unit_text"]
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o644
    lines = text.splitlines()
    assert lines[0] == "# Managed by supervised.background; do not edit (changes are overwritten)"
    assert lines[1:6] == ["[Unit]", "Description=queue-worker worker %i", "StartLimitIntervalSec=60s",
                          "StartLimitBurst=5", ""]
    for line in ("ExecStart=/usr/local/bin/queue-worker --id %i", "Type=exec", "User=queue-worker",
                 "Group=queue-worker", "EnvironmentFile=/etc/queue-worker/secrets.env",
                 "EnvironmentFile=-/etc/qw/%i.env", 'Environment="A=1"', 'Environment="LOG_LEVEL=info"',
                 "Restart=always", "RestartSec=2s", "KillMode=mixed", "KillSignal=SIGTERM",
                 "TimeoutStopSec=30s", "StateDirectory=queue-worker/%i", "ProtectSystem=strict",
                 "ProtectHome=yes", "CapabilityBoundingSet=", "AmbientCapabilities=", "UMask=0077",
                 "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 "ProtectProc=invisible", "ProcSubset=pid", "[Install]", "WantedBy=multi-user.target"):
        assert line in lines, line
    assert "PrivateUsers" not in text
    assert lines.index('Environment="A=1"') < lines.index('Environment="LOG_LEVEL=info"')
    assert res["verified"] is False
    assert "systemd-analyze was not found" in " ".join(ansible_warnings.get_warning_messages())
    assert res["daemon_reloaded"] is True and units.reloads == [1]


def test_render_is_deterministic_and_idempotent(run_module, units, no_analyze):
    args = _args(units, environment={"Z": "1", "A": "2", "M": "3"},
                 settings={"LimitNOFILE": 4096, "ReadOnlyPaths": ["/srv/a", "/srv/b"]})
    first = run_module(worker_unit.main, args)
    second = run_module(worker_unit.main, args)
    assert first["changed"] is True and second["changed"] is False
    assert first["unit_text"] == second["unit_text"]
    assert "ReadOnlyPaths=/srv/a\nReadOnlyPaths=/srv/b\n" in first["unit_text"]
    assert len(units.reloads) == 1


def test_hardening_levels_and_override(run_module, units, no_analyze):
    none = run_module(worker_unit.main, _args(units, hardening="none"))["unit_text"]
    assert "Protect" not in none and "NoNewPrivileges" not in none
    base = run_module(worker_unit.main, _args(units, hardening="baseline"))["unit_text"]
    assert "ProtectSystem=full" in base and "ProtectHome=read-only" in base and "SystemCallFilter" not in base
    strict = run_module(worker_unit.main, _args(units, settings={"MemoryDenyWriteExecute": False}))["unit_text"]
    assert "MemoryDenyWriteExecute=no" in strict and "MemoryDenyWriteExecute=yes" not in strict


def test_limits_and_times(run_module, units, no_analyze):
    text = run_module(worker_unit.main, _args(
        units, memory_max="512M", cpu_quota="50%", tasks_max="64", nice=5, restart_sec=0.5,
        timeout_stop_sec="1min 30s", start_limit_interval_sec=0, kill_signal="int", kill_mode="control-group",
        read_write_paths=["/var/spool/qw", "-/srv/qw/%i"], working_directory="/srv/qw"))["unit_text"]
    for line in ("MemoryMax=512M", "CPUQuota=50%", "TasksMax=64", "Nice=5", "RestartSec=500ms",
                 "TimeoutStopSec=90s", "StartLimitIntervalSec=0s", "KillSignal=SIGINT", "KillMode=control-group",
                 "ReadWritePaths=/var/spool/qw -/srv/qw/%i", "WorkingDirectory=/srv/qw"):
        assert line in text.splitlines(), line


def test_check_mode_and_diff(run_module, units, no_analyze, snapshot_tree):
    before = snapshot_tree(units)
    res = run_module(worker_unit.main, _args(units), check_mode=True, diff=True)
    assert res["changed"] is True and "ExecStart=" in res["diff"]["after"]
    assert snapshot_tree(units) == before


def test_absent(run_module, units, no_analyze):
    run_module(worker_unit.main, _args(units))
    res = run_module(worker_unit.main, _args(units, state="absent"))
    assert res["changed"] is True and not (units / "queue-worker@.service").exists()
    assert run_module(worker_unit.main, _args(units, state="absent"))["changed"] is False


def _fake_analyze(bindir, output, rc):
    script = bindir / "systemd-analyze"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"{output}\" >&2\nexit {rc}\n")
    script.chmod(0o755)


def test_verification_refusal_leaves_nothing(run_module, units, no_analyze, snapshot_tree):
    # Mimics systemd's own wording; the real tool is exercised below and in the Molecule scenario.
    _fake_analyze(no_analyze, "/x/queue-worker@.service:20: Unknown key 'Frobnicate' in section [Service], ignoring.", 0)
    (units / "queue-worker@.service").write_text("# Managed by supervised.background; do not edit\nold\n")
    before = snapshot_tree(units)
    for check_mode in (False, True):
        res = run_module(worker_unit.main, _args(units, settings={"RestartSteps": "3"}), check_mode=check_mode)
        assert res.get("failed") is True, res
        assert res["msg"].startswith("settings.RestartSteps:") and "not a directive" in res["msg"]
        res = run_module(worker_unit.main, _args(units, settings={"LimitNOFILE": "7"}), check_mode=check_mode)
        assert res.get("failed") is True, res
        assert "Unknown key 'Frobnicate'" in res["msg"]
        assert snapshot_tree(units) == before


def test_missing_executable_is_only_a_warning_in_check_mode(run_module, units, no_analyze, snapshot_tree):
    _fake_analyze(no_analyze, "queue-worker@verify.service: Command /usr/local/bin/queue-worker is not "
                              "executable: No such file or directory", 1)
    res = run_module(worker_unit.main, _args(units), check_mode=True)
    assert res["changed"] is True and res["verified"] is False
    assert any("does not exist yet" in w for w in ansible_warnings.get_warning_messages())
    before = snapshot_tree(units)
    res = run_module(worker_unit.main, _args(units))
    assert res.get("failed") is True and res["msg"].startswith("exec_start:")
    assert snapshot_tree(units) == before


@pytest.mark.skipif(REAL_ANALYZE is None, reason="systemd-analyze not installed")
def test_real_systemd_analyze(run_module, units, monkeypatch, snapshot_tree):
    monkeypatch.setenv("PATH", os.path.dirname(REAL_ANALYZE))
    ok = run_module(worker_unit.main, _args(units, exec_start=["/bin/sh", "-c", "sleep infinity"]))
    assert ok["changed"] is True and ok["verified"] is True, ok
    before = snapshot_tree(units)
    bad = run_module(worker_unit.main, _args(units, exec_start=["/bin/sh"], settings={"LimitNOFILE": "lots"}))
    assert bad.get("failed") is True and bad["msg"].startswith("settings.LimitNOFILE:"), bad
    assert snapshot_tree(units) == before
    # Dependencies of every kind and an OnFailure template with a specifier pass the real parser.
    deps = run_module(worker_unit.main, _args(units, name="deps", exec_start=["/bin/sh"],
                                              requires=["systemd-journald.service"],
                                              after=["systemd-journald.service"],
                                              on_failure=["alert@%n.service"], wait_for_network=True))
    assert deps["verified"] is True, deps
    assert "OnFailure=alert@%n.service\n" in deps["unit_text"]
    # A required unit that is not installed: systemd would fail every start, so it never lands.
    missing = run_module(worker_unit.main, _args(units, name="lonely", exec_start=["/bin/sh"],
                                                 requires=["no-such-broker.service"]))
    assert missing.get("failed") is True and missing["msg"].startswith("requires:"), missing
    assert "no-such-broker.service" in missing["msg"]
    # ... but in check mode an earlier task may install it.
    planned = run_module(worker_unit.main, _args(units, name="lonely", exec_start=["/bin/sh"],
                                                 requires=["no-such-broker.service"]), check_mode=True)
    assert planned["changed"] is True and planned["verified"] is False, planned


NL = "x\nExecStartPre=/bin/evil"
BAD = [
    ("relative exec path", {"exec_start": ["queue-worker"]}, "exec_start"),
    ("exec path with dot-dot", {"exec_start": ["/usr/../bin/sh"]}, "exec_start"),
    ("exec path with space", {"exec_start": ["/usr/local/bin/queue worker"]}, "exec_start"),
    ("exec path with dollar", {"exec_start": ["/usr/bin/$X"]}, "exec_start"),
    ("empty exec_start", {"exec_start": []}, "exec_start"),
    ("newline in exec arg", {"exec_start": ["/bin/sh", NL]}, "exec_start"),
    ("newline in exec_reload", {"exec_reload": ["/bin/kill", NL]}, "exec_reload"),
    ("relative exec_reload", {"exec_reload": ["kill", "-HUP"]}, "exec_reload"),
    ("@ in name", {"name": "queue@worker"}, "name"),
    ("/ in name", {"name": "queue/worker"}, "name"),
    ("space in name", {"name": "queue worker"}, "name"),
    ("newline in name", {"name": "queue\nworker"}, "name"),
    ("suffix in name", {"name": "queue.service"}, "name"),
    ("newline in description", {"description": NL}, "description"),
    ("backslash at end of description", {"description": "ends with \\"}, "description"),
    ("newline in user", {"user": "app\nUser=root"}, "user"),
    ("bad user chars", {"user": "app user"}, "user"),
    ("newline in group", {"group": "app\nGroup=root"}, "group"),
    ("bad group chars", {"group": "-app"}, "group"),
    ("relative working_directory", {"working_directory": "srv/app"}, "working_directory"),
    ("newline in working_directory", {"working_directory": "/srv\n/app"}, "working_directory"),
    ("relative environment file", {"environment_files": ["secrets.env"]}, "environment_files"),
    ("newline in environment file", {"environment_files": ["/etc/a\nUser=root"]}, "environment_files"),
    ("space in environment file", {"environment_files": ["/etc/my app.env"]}, "environment_files"),
    ("bad env key", {"environment": {"1BAD": "x"}}, "environment"),
    ("dash in env key", {"environment": {"BAD-KEY": "x"}}, "environment"),
    ("newline in env value", {"environment": {"A": NL}}, "environment"),
    ("NUL in env value", {"environment": {"A": "x\x00y"}}, "environment"),
    ("newline in settings value", {"settings": {"LimitNOFILE": "1\nUser=root"}}, "settings"),
    ("newline in settings list value", {"settings": {"ReadOnlyPaths": ["/srv", NL]}}, "settings"),
    # Commands written verbatim would escape exec_start's quoting; '+' runs them as root unsandboxed.
    ("settings ExecStartPre as root", {"settings": {"ExecStartPre": "+/bin/sh -c 'chmod u+s /bin/sh'"}},
     "ExecStartPre"),
    ("settings ExecStartPost", {"settings": {"ExecStartPost": "/bin/true"}}, "ExecStartPost"),
    ("settings ExecCondition", {"settings": {"ExecCondition": "/bin/true"}}, "ExecCondition"),
    ("settings ExecStop", {"settings": {"ExecStop": ["/bin/true"]}}, "ExecStop"),
    ("settings ExecStopPost", {"settings": {"ExecStopPost": "!/bin/true"}}, "ExecStopPost"),
    ("settings PermissionsStartOnly", {"settings": {"PermissionsStartOnly": True}}, "PermissionsStartOnly"),
    ("settings PAMName", {"settings": {"PAMName": "login"}}, "PAMName"),
    ("settings DynamicUser", {"settings": {"DynamicUser": "yes"}}, "DynamicUser"),
    ("environment NOTIFY_SOCKET", {"environment": {"NOTIFY_SOCKET": "/run/x"}}, "NOTIFY_SOCKET"),
    ("environment LISTEN_FDS", {"environment": {"LISTEN_FDS": "3"}}, "LISTEN_FDS"),
    ("environment value too long", {"environment": {"BIG": "y" * 131072}}, "BIG"),
    ("environment lone surrogate", {"environment": {"A": "x\udc80"}}, "environment"),
    ("nice as boolean", {"nice": True}, "nice"),
    ("start_limit_burst as boolean", {"start_limit_burst": True}, "start_limit_burst"),
    ("start_limit_burst huge", {"start_limit_burst": 99999999999999}, "start_limit_burst"),
    ("restart_sec beyond usec_t", {"restart_sec": 1e30}, "restart_sec"),
    ("restart_sec beyond usec_t string", {"restart_sec": "99999999999999999999"}, "restart_sec"),
    ("restart_sec below 1us", {"restart_sec": "0.0000001"}, "restart_sec"),
    ("timeout_stop_sec NaN", {"timeout_stop_sec": float("nan")}, "timeout_stop_sec"),
    ("memory_max zero", {"memory_max": "0"}, "memory_max"),
    ("memory_max zero percent", {"memory_max": "0%"}, "memory_max"),
    ("memory_max over 100%", {"memory_max": "101%"}, "memory_max"),
    ("tasks_max zero percent", {"tasks_max": "0%"}, "tasks_max"),
    ("backslash at end of settings value", {"settings": {"LimitNOFILE": "1\\"}}, "settings"),
    ("lowercase directive", {"settings": {"limitnofile": "1"}}, "settings"),
    ("directive with dash", {"settings": {"Limit-NOFILE": "1"}}, "settings"),
    ("settings owns ExecStart", {"settings": {"ExecStart": "/bin/sh"}}, "exec_start"),
    ("settings owns User", {"settings": {"User": "root"}}, "'user'"),
    ("settings owns Restart", {"settings": {"Restart": "no"}}, "'restart'"),
    ("settings owns Environment", {"settings": {"Environment": "A=1"}}, "'environment'"),
    ("settings owns MemoryMax", {"settings": {"MemoryMax": "1G"}}, "'memory_max'"),
    ("settings null value", {"settings": {"LimitNOFILE": None}}, "settings"),
    ("negative restart_sec", {"restart_sec": -1}, "restart_sec"),
    ("negative restart_sec string", {"restart_sec": "-5s"}, "restart_sec"),
    ("non-numeric timeout_stop_sec", {"timeout_stop_sec": "soon"}, "timeout_stop_sec"),
    ("bad start_limit_interval_sec", {"start_limit_interval_sec": "1 fortnight"}, "start_limit_interval_sec"),
    ("negative start_limit_burst", {"start_limit_burst": -1}, "start_limit_burst"),
    ("unknown signal", {"kill_signal": "SIGFOO"}, "kill_signal"),
    ("newline in kill_signal", {"kill_signal": "SIGTERM\nUser=root"}, "kill_signal"),
    ("bad memory_max", {"memory_max": "lots"}, "memory_max"),
    ("zero cpu_quota", {"cpu_quota": "0%"}, "cpu_quota"),
    ("bad tasks_max", {"tasks_max": "0"}, "tasks_max"),
    ("nice out of range", {"nice": 40}, "nice"),
    ("state_directory with dot-dot", {"state_directory": "../etc"}, "state_directory"),
    # Another name would hand the worker's user a directory the system owns (dpkg: root runs its scripts).
    ("state_directory of dpkg", {"state_directory": "dpkg"}, "state_directory"),
    ("state_directory of systemd", {"state_directory": "systemd/x"}, "state_directory"),
    ("state_directory chosen by the instance", {"state_directory": "%i"}, "state_directory"),
    ("logs_directory of another service", {"logs_directory": "apt"}, "logs_directory"),
    ("runtime_directory of sudo", {"runtime_directory": "sudo"}, "runtime_directory"),
    ("CacheDirectory in settings", {"settings": {"CacheDirectory": "debconf"}}, "settings.CacheDirectory"),
    ("ConfigurationDirectory in settings", {"settings": {"ConfigurationDirectory": "sudoers.d"}},
     "settings.ConfigurationDirectory"),
    ("absolute state_directory", {"state_directory": "/var/lib/x"}, "state_directory"),
    ("runtime_directory with space", {"runtime_directory": "a b"}, "runtime_directory"),
    ("logs_directory with newline", {"logs_directory": "a\nb"}, "logs_directory"),
    ("relative read_write_paths", {"read_write_paths": ["var/x"]}, "read_write_paths"),
    ("bad wanted_by", {"wanted_by": "multi-user"}, "wanted_by"),
    # Names and keys with a trailing newline passed re.match(...$) once.
    ("env key with trailing newline", {"environment": {"LEAK\n": "x"}}, "environment"),
    ("directive with trailing newline", {"settings": {"LimitNOFILE\n": "1"}}, "settings"),
    ("name with trailing newline", {"name": "queue-worker\n"}, "name"),
    ("user with trailing newline", {"user": "app\n"}, "user"),
    # Values Python accepts and systemd reads differently (or refuses, printing the value).
    ("noncharacter U+FDD0 in env value", {"environment": {"A": "x\ufdd0"}}, "environment"),
    ("noncharacter U+FFFE in env value", {"environment": {"A": "x\ufffe"}}, "environment"),
    ("noncharacter U+1FFFF in env value", {"environment": {"A": "x\U0001ffff"}}, "environment"),
    ("noncharacter U+10FFFF in env value", {"environment": {"A": "\U0010ffff"}}, "environment"),
    ("NEL in env value", {"environment": {"A": "a\x85b"}}, "environment"),
    ("line separator in env value", {"environment": {"A": "a\u2028b"}}, "environment"),
    ("carriage return in exec arg", {"exec_start": ["/bin/sh", "a\rExecStartPre=/bin/evil"]}, "exec_start"),
    ("noncharacter in exec arg", {"exec_start": ["/bin/sh", "\ufdef"]}, "exec_start"),
    ("noncharacter in description", {"description": "worker \uffff"}, "description"),
    ("paragraph separator in description", {"description": "a\u2029b"}, "description"),
    ("C1 control in working_directory", {"working_directory": "/srv/\x9bx"}, "working_directory"),
    # Settings that hand a sandboxed worker root-opened files or host paths are not on the allowlist.
    ("StandardOutput append to a root file", {"settings": {"StandardOutput": "append:/etc/sudoers.d/x"}}, "StandardOutput"),
    ("StandardError file", {"settings": {"StandardError": "file:/etc/shadow"}}, "StandardError"),
    ("StandardOutput truncate", {"settings": {"StandardOutput": "truncate:/etc/passwd"}}, "StandardOutput"),
    ("StandardOutput socket", {"settings": {"StandardOutput": "socket"}}, "StandardOutput"),
    ("StandardOutput tty", {"settings": {"StandardOutput": "tty"}}, "StandardOutput"),
    ("StandardInput file", {"settings": {"StandardInput": "file:/etc/shadow"}}, "StandardInput"),
    ("ReadWriteDirectories alias", {"settings": {"ReadWriteDirectories": "/etc"}}, "read_write_paths"),
    ("BindPaths", {"settings": {"BindPaths": "/etc/sudoers.d:/var/lib/x"}}, "BindPaths"),
    ("BindReadOnlyPaths", {"settings": {"BindReadOnlyPaths": "/root"}}, "BindReadOnlyPaths"),
    ("LoadCredential", {"settings": {"LoadCredential": "x:/etc/shadow"}}, "credentials"),
    ("SetCredential puts a secret in the unit", {"settings": {"SetCredential": "pw:hunter2"}}, "SetCredential"),
    ("PassEnvironment", {"settings": {"PassEnvironment": "PATH"}}, "PassEnvironment"),
    ("Delegate", {"settings": {"Delegate": "yes"}}, "Delegate"),
    ("DeviceAllow", {"settings": {"DeviceAllow": "/dev/sda rw"}}, "DeviceAllow"),
    ("RootDirectory", {"settings": {"RootDirectory": "/srv/root"}}, "RootDirectory"),
    ("TemporaryFileSystem", {"settings": {"TemporaryFileSystem": "/etc"}}, "TemporaryFileSystem"),
    ("SecureBits", {"settings": {"SecureBits": "keep-caps"}}, "SecureBits"),
    ("NetworkNamespacePath", {"settings": {"NetworkNamespacePath": "/run/netns/x"}}, "NetworkNamespacePath"),
    ("StandardInputText", {"settings": {"StandardInputText": "secret"}}, "StandardInputText"),
    ("ExecPaths", {"settings": {"ExecPaths": "/tmp"}}, "ExecPaths"),
    ("TimeoutSec", {"settings": {"TimeoutSec": "5"}}, "TimeoutSec"),
    ("unknown directive", {"settings": {"Frobnicate": "yes"}}, "Frobnicate"),
    ("realtime IO class", {"settings": {"IOSchedulingClass": "realtime"}}, "IOSchedulingClass"),
    ("realtime CPU policy", {"settings": {"CPUSchedulingPolicy": "fifo"}}, "CPUSchedulingPolicy"),
    ("world-writable runtime dir", {"settings": {"RuntimeDirectoryMode": "0777"}}, "RuntimeDirectoryMode"),
    ("capability name typo", {"settings": {"AmbientCapabilities": "CAP_SYS_ADMIN;x"}}, "AmbientCapabilities"),
    ("syscall filter injection", {"settings": {"SystemCallFilter": "@system-service\nUser=root"}}, "SystemCallFilter"),
    ("bad address", {"settings": {"IPAddressAllow": "10.0.0.0/33"}}, "IPAddressAllow"),
    ("relative ReadOnlyPaths", {"settings": {"ReadOnlyPaths": "etc"}}, "ReadOnlyPaths"),
    ("KillMode process leaves processes", {"kill_mode": "process"}, "kill_mode"),
    ("watchdog without notify", {"watchdog_sec": "10s"}, "watchdog_sec"),
    # Dependencies.
    ("dependency without suffix", {"requires": ["broker"]}, "requires[0]"),
    ("dependency with space", {"after": ["a b.service"]}, "after[0]"),
    ("dependency template", {"wants": ["broker@.service"]}, "wants[0]"),
    ("dependency path", {"binds_to": ["../x.service"]}, "binds_to[0]"),
    ("dependency newline", {"part_of": ["x.service\nUser=root"]}, "part_of[0]"),
    ("dependency trailing newline", {"before": ["x.service\n"]}, "before[0]"),
    ("dependency colon", {"after": ["a:b.service"]}, "after[0]"),
    ("on_failure specifier in prefix", {"on_failure": ["%n.service"]}, "on_failure[0]"),
    ("on_failure other specifier", {"on_failure": ["alert@%h.service"]}, "on_failure[0]"),
    ("credential bad id", {"credentials": {"a/b": "/etc/x"}}, "credentials"),
    ("credential relative path", {"credentials": {"db": "db.cred"}}, "credentials.db"),
    ("credential path with colon", {"credentials": {"db": "/etc/a:b"}}, "credentials.db"),
]


@pytest.mark.parametrize("label,override,field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_refused_and_nothing_written(run_module, units, no_analyze, snapshot_tree, label, override, field):
    existing = units / "queue-worker@.service"
    existing.write_text("# the unit that was there\n")
    before = snapshot_tree(units)
    args = _args(units)
    args.update(override)
    res = run_module(worker_unit.main, args, diff=True)
    assert res.get("failed") is True, (label, res)
    assert field in res["msg"], (label, res["msg"])
    assert snapshot_tree(units) == before


def test_symlink_at_target_refused(run_module, units, no_analyze, snapshot_tree, tmp_path):
    real = tmp_path / "elsewhere.service"
    real.write_text("x\n")
    (units / "queue-worker@.service").symlink_to(real)
    before = snapshot_tree(tmp_path)
    res = run_module(worker_unit.main, _args(units))
    assert res.get("failed") is True and "symlink" in res["msg"]
    assert snapshot_tree(tmp_path) == before


def test_sub_millisecond_times_are_not_rounded_away(run_module, units, no_analyze):
    res = run_module(worker_unit.main, _args(units, restart_sec="0.0015", timeout_stop_sec="1.2345678s"))
    assert "RestartSec=1500us\n" in res["unit_text"]
    assert "TimeoutStopSec=1234568us\n" in res["unit_text"]
    assert "StartLimitIntervalSec=60s\n" in res["unit_text"]


def test_weakening_settings_are_reported_not_silent(run_module, units, no_analyze):
    settings = {"MemoryDenyWriteExecute": "no", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
                "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "NoNewPrivileges": False,
                "LimitNOFILE": "4096", "PrivateTmp": "yes"}
    res = run_module(worker_unit.main, _args(units, settings=settings))
    assert res["hardening_overrides"] == [
        "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "MemoryDenyWriteExecute=no", "NoNewPrivileges=no",
    ]
    assert any("weaken" in w and "AmbientCapabilities" in w for w in ansible_warnings.get_warning_messages())
    # Granting privileges is reported at every level, not only when it overrides the set.
    res = run_module(worker_unit.main, _args(units, name="other", hardening="none",
                                             settings={"SupplementaryGroups": "shadow"}))
    assert res["hardening_overrides"] == ["SupplementaryGroups=shadow"]
    # Settings that only tighten are not reported.
    res = run_module(worker_unit.main, _args(units, name="third", hardening="baseline",
                                             settings={"PrivateDevices": "yes", "NoNewPrivileges": "yes"}))
    assert res["hardening_overrides"] == []
