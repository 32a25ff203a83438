"""ci_tunnel: the ci-tunnel helper and its guard commands.

Pure parts (time spans, /proc parsing, the lease rule) are tested in-process. Everything else runs
the real program in a rig (see Rig): the helper as the "runner" (uid 65534 when the tests run as
root, else the caller), from a real job shell, with stand-in sudo and systemctl
(ci_tunnel_standins/) that record every call and emulate the units, the guard's guard-check
included. No mocks of processes, signals or /proc.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from ansible_collections.supervised.background.plugins.module_utils import ci_tunnel

HERE = os.path.dirname(os.path.abspath(__file__))
STANDINS = os.path.join(HERE, "ci_tunnel_standins")
MODULE_PATH = os.path.abspath(ci_tunnel.__file__)
AS_ROOT = os.geteuid() == 0
RUN_UID = 65534 if AS_ROOT else os.geteuid()
RUN_GID = 65534 if AS_ROOT else os.getegid()
GUARD_UID = 65533 if AS_ROOT else os.geteuid()  # the guard's DynamicUser= stand-in
NAME = "corp"
UNIT = "openfortivpn@corp.service"
GUARD = "ci-tunnel-guard@corp.service"
root_only = pytest.mark.skipif(not AS_ROOT, reason="needs root to play the runner and other users")


def _default_job_signals():
    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def as_user(uid, gid=None):
    """Popen arguments that run a child as ``uid`` (nothing when that is already us)."""
    if uid == os.geteuid():
        return {}
    return {"user": uid, "group": RUN_GID if gid is None else gid, "extra_groups": []}


@pytest.fixture(scope="session")
def runtime():
    """(python, directory): a Python the runner uid can execute (the venv's may live under a 0700
    home; CI_TUNNEL_TEST_PYTHON picks another) and a directory with ci_tunnel.py, the wrapper and
    the stand-ins' Python part, compiled once, so each run of the helper does not compile them."""
    wanted = os.environ.get("CI_TUNNEL_TEST_PYTHON")
    python = None
    for exe in [wanted] if wanted else [sys.executable, "/usr/bin/python3"]:
        try:
            if subprocess.run([exe, "-c", ""], check=False, **as_user(RUN_UID)).returncode == 0:
                python = exe
                break
        except OSError:
            pass
    if python is None:
        pytest.skip("no Python interpreter the runner uid can execute")
    directory = tempfile.mkdtemp(prefix="ci-tunnel-code-")
    os.chmod(directory, 0o755)
    shutil.copy(MODULE_PATH, os.path.join(directory, "ci_tunnel.py"))
    for name in ("ci_tunnel_wrapper.py", "systemctl_start.py"):
        shutil.copy(os.path.join(STANDINS, name), os.path.join(directory, name))
    subprocess.run([python, "-m", "compileall", "-q", directory], check=True)
    yield python, directory
    shutil.rmtree(directory, ignore_errors=True)


# -- The rig ---------------------------------------------------------------------------------------

class Rig:
    """A temporary host: RIG/lease (LEASE_DIR, root:runner 0770), RIG/tools (stand-in sudo and
    systemctl), RIG/bin/ci-tunnel (the helper with its constants patched), RIG/state (the log and
    the units' properties), RIG/config and RIG/defaults (the stand-ins' settings)."""

    def __init__(self, runtime_info):
        self.python, self.code = runtime_info
        self.base = tempfile.mkdtemp(prefix="ci-tunnel-test-")
        self.procs = []
        os.chmod(self.base, 0o755)
        for sub in ("bin", "tools", "state", "lease", "decoy", "work", "config", "defaults"):
            os.mkdir(self.path(sub), 0o755)
        for sub in ("state", "work"):
            os.chmod(self.path(sub), 0o777)
        self.lease_dir = self.path("lease")
        os.chmod(self.lease_dir, 0o770)
        if AS_ROOT:
            os.chown(self.lease_dir, 0, RUN_GID)
        self.lease = os.path.join(self.lease_dir, NAME + ".lease")
        self.lock = os.path.join(self.lease_dir, NAME + ".lock")
        self.log = self.path("state", "log")
        self.touch(self.path("state", "configured"))
        for prop, value in (("ActiveState", "inactive"), ("Result", "success"), ("InactiveExitTimestampMonotonic", "0"),
                            ("TimeoutStartUSec", "20s")):
            self.touch(self.path("defaults", prop), f"{value}\n".encode())
        self.constants = {"LEASE_DIR": self.lease_dir, "SUDO": self.path("tools", "sudo"),
                          "SYSTEMCTL": self.path("tools", "systemctl")}
        self.patch()
        self._write_tools()

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    @staticmethod
    def touch(path, data=b""):
        with open(path, "wb") as handle:
            handle.write(data)

    def _script(self, path, text):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o755)

    def _python_script(self, path, module, call):
        self._script(path, f"#!{self.python} -IS\nimport sys\nsys.path.insert(0, {self.code!r})\n"
                           f"import {module}\nsys.exit({module}.main({call}, sys.argv[1:]))\n")

    def _write_tools(self):
        for tool in ("sudo", "systemctl"):
            with open(os.path.join(STANDINS, tool + ".sh"), encoding="utf-8") as handle:
                self._script(self.path("tools", tool), "#!/bin/sh\n" + handle.read())
        self._python_script(self.path("tools", "systemctl-start"), "systemctl_start", repr(self.base))
        module = os.path.join(self.code, "ci_tunnel.py")
        self._python_script(self.path("bin", "ci-tunnel"), "ci_tunnel_wrapper", f"{module!r}, {self.base!r}")
        for decoy in ("sudo", "systemctl", "flock", "timeout"):  # first on the job's PATH: never used
            self._script(self.path("decoy", decoy), f"#!/bin/sh\necho \"DECOY {decoy} $*\" >>{self.log}\nexit 99\n")

    def patch(self, **constants):
        """Constants of the helper (RIG/patch.json); "_pidfd": "missing"/"enosys" forces the fallback."""
        self.constants.update(constants)
        self.touch(self.path("patch.json"), json.dumps(self.constants).encode())

    def configure(self, timeout_span=None, **settings):
        """Settings of the stand-in systemctl: the tunnel's TimeoutStartUSec, and start_delay,
        start_outcome, guard_fails, guard_skipped, stop_status (see ci_tunnel_standins/)."""
        if timeout_span is not None:
            self.touch(self.path("defaults", "TimeoutStartUSec"), f"{timeout_span}\n".encode())
        for key, value in settings.items():
            self.touch(self.path("config", key), f"{value}\n".encode())

    def set_unit(self, unit=UNIT, **props):
        directory = self.path("state", unit)
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o777)
        for key, value in props.items():
            self.touch(os.path.join(directory, key), f"{value}\n".encode())
            os.chmod(os.path.join(directory, key), 0o666)

    def unit(self, unit=UNIT):
        props = {}
        for directory in (self.path("defaults"), self.path("state", unit)):
            if os.path.isdir(directory):
                for key in os.listdir(directory):
                    if not key.startswith("."):
                        with open(os.path.join(directory, key), encoding="utf-8") as handle:
                            props[key] = handle.read().strip()
        return props

    def calls(self):
        """The recorded tool calls: "systemctl start openfortivpn@corp.service", ..."""
        try:
            with open(self.log, encoding="utf-8") as handle:
                return [line.rstrip("\n") for line in handle]
        except FileNotFoundError:
            return []

    def actions(self):
        """Only what changed a unit, in order: ["start", "stop", ...]."""
        return [line.split()[1] for line in self.calls()
                if line.startswith("systemctl ") and line.split()[1] in ("start", "stop")]

    def env(self, **extra):
        env = {"PATH": f"{self.path('decoy')}:{self.path('bin')}:/usr/bin:/bin", "LC_ALL": "C",
               "R": self.path("work"), "LEASE": self.lease}
        env.update(extra)
        return env

    def popen(self, argv, uid=RUN_UID, env=None, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        # A job shell starts with the default signal dispositions, as a CI runner gives them, even
        # when the tests themselves run under nohup (which ignores SIGHUP for the whole tree).
        kw.setdefault("preexec_fn", _default_job_signals)
        proc = subprocess.Popen(argv, env=self.env(**(env or {})), cwd=self.path("work"), **as_user(uid), **kw)
        self.procs.append(proc)
        return proc

    def job(self, script, input_text=None, env=None, timeout=30):
        """Run ``script`` in a job shell (sh -c) as the runner -> (status, stdout, stderr)."""
        proc = self.popen(["/bin/sh", "-c", script], env=env,
                          stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL)
        out, err = proc.communicate(input_text.encode() if input_text is not None else None, timeout=timeout)
        return proc.returncode, out.decode(), err.decode()

    def helper(self, *args, uid=RUN_UID, env=None, timeout=30):
        """Run ci-tunnel ARGS straight from pytest (its parent is then not a runner process)."""
        proc = self.popen([self.path("bin", "ci-tunnel")] + list(args), uid=uid, env=env)
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(), err.decode()

    def sleeper(self, uid=RUN_UID):
        """A long-lived process of ``uid`` (a job that holds a tunnel)."""
        return self.popen(["sleep", "60"], uid=uid, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def write_lease(self, data, uid=RUN_UID, path=None):
        path = path or self.lease
        if isinstance(data, str):
            data = data.encode()
        self.touch(path, data)
        os.chmod(path, 0o644)
        if AS_ROOT:
            os.chown(path, uid, RUN_GID)
        return path

    def wait_for_file(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
                if text.endswith("\n"):
                    return text
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        raise AssertionError(f"{path} did not appear")

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def rig(runtime):
    the_rig = Rig(runtime)
    yield the_rig
    the_rig.close()


def stat_start(pid):
    """Field 22 of /proc/PID/stat, read independently of ci_tunnel (comm here has no ') ')."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
        return int(handle.read().rsplit(") ", 1)[1].split()[19])


def owner_line(pid, shift=0):
    return f"{pid} {stat_start(pid) + shift}\n"


def gone(pid):
    """True when ``pid`` has ended (no /proc entry, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(") ", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def wait_gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"PID {pid} is still there after {timeout} s")
        time.sleep(0.01)


def dead_pid(rig):
    """(pid, start) of a runner process that has ended and been reaped."""
    proc = rig.sleeper()
    start = stat_start(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, start


# -- The module as the installing Ansible module sees it -------------------------------------------

def test_constants_for_the_installer():
    assert ci_tunnel.HELPER_PATH == "/usr/local/bin/ci-tunnel"
    assert ci_tunnel.LEASE_DIR == "/run/ci-tunnel"
    assert ci_tunnel.SUDO == "/usr/bin/sudo" and ci_tunnel.SYSTEMCTL == "/usr/bin/systemctl"
    assert ci_tunnel.UNIT_TEMPLATE.format("x") == "openfortivpn@x.service"
    assert ci_tunnel.GUARD_TEMPLATE.format("x") == "ci-tunnel-guard@x.service"
    assert (ci_tunnel.EX_USAGE, ci_tunnel.EX_BUSY, ci_tunnel.EX_TUNNEL) == (2, 3, 4)
    assert ci_tunnel.NAME_RE.pattern == ci_tunnel.NAME_PATTERN


def test_source_installs_as_a_script():
    with open(MODULE_PATH, encoding="utf-8") as handle:
        source = handle.read()
    assert not source.startswith("#!"), "the installer prepends the shebang"
    assert source.rstrip().endswith('if __name__ == "__main__":\n    raise SystemExit(main())')
    assert source.isascii()
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


# -- Time spans --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("1min 30s", 90.0), ("500ms", 0.5), ("30s", 30.0), ("2h 5min", 7500.0), ("1d", 86400.0),
    ("1w 2d", 777600.0), ("1y", 31557600.0), ("1month", 2629800.0), ("1.500000s", 1.5),
    ("1min 30.250000s", 90.25), ("100us", 1e-4), ("100\u03bcs", 1e-4), ("0", 0.0), ("45", 45.0),
    (" 20s\n", 20.0), ("1min30s", 90.0), ("infinity", None),
])
def test_parse_timespan(text, seconds):
    result = ci_tunnel.parse_timespan(text)
    if seconds is None:
        assert result is None
    else:
        assert result == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "  ", "abc", "10 20", "5x", "s", "1..5s", "-5s", "[not set]", "infinite"])
def test_parse_timespan_refuses(text):
    with pytest.raises(ValueError):
        ci_tunnel.parse_timespan(text)


@pytest.mark.parametrize("span, limit", [("20s", 35.0), ("1min 30s", 105.0), ("infinity", None), ("", 300.0), ("junk", 300.0)])
def test_start_limit(span, limit):
    assert ci_tunnel.start_limit(span) == limit


# -- /proc -------------------------------------------------------------------------------------------

def _stat_line(comm, state=b"S", ppid=b"42", start=b"987654"):
    rest = [state, ppid] + [b"0"] * 17 + [start] + [b"0"] * 30
    return b"123 (" + comm + b") " + b" ".join(rest) + b"\n"


@pytest.mark.parametrize("comm", [b"bash", b"a b", b"x) y", b"x) (y) z) ", b") ", b"((", b"new\nline", b"\xff\xfe"])
def test_parse_stat_takes_fields_after_the_last_paren(comm):
    assert ci_tunnel.parse_stat(_stat_line(comm)) == ("S", 42, 987654)


@pytest.mark.parametrize("data", [b"", b"123 bash S 1", b"123 (bash) S 1 2 3", _stat_line(b"x", start=b"-1"),
                                  _stat_line(b"x", ppid=b"x")])
def test_parse_stat_refuses(data):
    with pytest.raises(ValueError):
        ci_tunnel.parse_stat(data)


def test_parse_status_uid():
    assert ci_tunnel.parse_status_uid(b"Name:\tx\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t5\t5\t5\t5\n") == 1000
    with pytest.raises(ValueError):
        ci_tunnel.parse_status_uid(b"Name:\tx\n")


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def test_proc_info_of_a_process_whose_comm_has_parens_and_spaces(tmp_path):
    comm = "x) y (z) ) w"  # comm is the executable's file name (15 bytes at most)
    weird = tmp_path / comm
    weird.symlink_to(shutil.which("sleep"))
    proc = subprocess.Popen([str(weird), "30"])
    try:
        deadline = time.monotonic() + 5
        while _read(f"/proc/{proc.pid}/comm") != comm + "\n":
            assert time.monotonic() < deadline, "exec did not happen"
            time.sleep(0.005)
        raw = _read(f"/proc/{proc.pid}/stat")
        prefix = f"{proc.pid} ({comm}) "
        assert raw.startswith(prefix)
        expected_start = int(raw[len(prefix):].split()[19])
        info = ci_tunnel.proc_info(proc.pid)
        assert info.ppid == os.getpid() and info.start == expected_start and info.uid == os.geteuid()
        # A live process: running, sleeping, or in disk sleep (it may still be loading under load).
        assert info.state in ("S", "R", "D")
        assert ci_tunnel.Owner(proc.pid, expected_start).process() is not None
        assert ci_tunnel.Owner(proc.pid, expected_start + 1).process() is None
    finally:
        proc.kill()
        proc.wait()
    assert ci_tunnel.proc_info(proc.pid) is None


# -- The lease rule: one table, the same answer everywhere -------------------------------------------

def _other_uid_process(rig):
    if AS_ROOT:
        return rig.sleeper(uid=0).pid
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) > 1:
            info = ci_tunnel.proc_info(int(entry))
            if info and info.uid != RUN_UID:
                return info.pid
    pytest.skip("no process of another user to name in a lease")
    return None


def _build(rig, case):
    """Create the lease of ``case`` in the rig -> the kind the lease rule must give."""
    one = rig.sleeper()
    if case == "live":
        rig.write_lease(owner_line(one.pid))
        return ci_tunnel.LIVE
    if case == "live-two-owners":
        rig.write_lease(owner_line(one.pid) + owner_line(rig.sleeper().pid))
        return ci_tunnel.LIVE
    if case == "live-no-newline":
        rig.write_lease(owner_line(one.pid).rstrip("\n"))
        return ci_tunnel.LIVE
    if case == "recycled-pid":  # the PID is there, its start time is not the owner's
        rig.write_lease(owner_line(one.pid, shift=-1))
        return ci_tunnel.STALE
    if case == "owner-gone":
        pid, start = dead_pid(rig)
        rig.write_lease(f"{owner_line(one.pid)}{pid} {start}\n")
        return ci_tunnel.STALE
    if case == "owner-zombie":  # ended, not reaped yet: its pidfd is readable, so it is gone
        zombie = rig.popen(["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = stat_start(zombie.pid)
        wait_gone(zombie.pid)
        rig.write_lease(f"{zombie.pid} {start}\n")
        return ci_tunnel.STALE
    contents = {
        "pid-1": f"1 {stat_start(1)}\n",
        "pid-1-with-live-owner": owner_line(one.pid) + f"1 {stat_start(1)}\n",
        "pid-0": "0 12345\n",
        "pid-too-big": f"{ci_tunnel.PID_MAX + 1} 12345\n",
        "other-uid-owner": None,
        "too-long": owner_line(one.pid) + "#" * 300,
        "five-lines": owner_line(one.pid) * 5,
        "empty": "",
        "malformed": f"{one.pid}:{stat_start(one.pid)}\n",
    }
    if case == "other-uid-owner":
        rig.write_lease(owner_line(_other_uid_process(rig)))
    elif case == "root-owned":
        if not AS_ROOT:
            pytest.skip("needs root to write a root-owned lease")
        rig.write_lease(owner_line(rig.sleeper(uid=0).pid), uid=0)
    elif case == "symlink":
        target = rig.write_lease(owner_line(one.pid), path=rig.path("work", "elsewhere.lease"))
        os.symlink(target, rig.lease)
    elif case == "missing":
        pass
    else:
        rig.write_lease(contents[case])
    return ci_tunnel.INVALID


LEASE_CASES = {  # case: (kind, what the reason says)
    "live": (ci_tunnel.LIVE, ""),
    "live-two-owners": (ci_tunnel.LIVE, ""),
    "live-no-newline": (ci_tunnel.LIVE, ""),
    "recycled-pid": (ci_tunnel.STALE, "is gone"),
    "owner-gone": (ci_tunnel.STALE, "is gone"),
    "owner-zombie": (ci_tunnel.STALE, "is gone"),
    "pid-1": (ci_tunnel.INVALID, "names PID 1 (init)"),
    "pid-1-with-live-owner": (ci_tunnel.INVALID, "names PID 1 (init)"),
    "pid-0": (ci_tunnel.INVALID, "PID 0 is not a process ID"),
    "pid-too-big": (ci_tunnel.INVALID, "PID 4194305 is not a process ID"),
    "other-uid-owner": (ci_tunnel.INVALID, "runs as uid"),
    "root-owned": (ci_tunnel.INVALID, "is owned by root"),
    "too-long": (ci_tunnel.INVALID, "larger than 256 bytes"),
    "five-lines": (ci_tunnel.INVALID, "must name 1 to 4 owners"),
    "empty": (ci_tunnel.INVALID, "must name 1 to 4 owners"),
    "malformed": (ci_tunnel.INVALID, "line 1 is not 'PID STARTTIME'"),
    "symlink": (ci_tunnel.INVALID, "is a symbolic link"),
    "missing": (ci_tunnel.INVALID, "no lease"),
}


@pytest.mark.parametrize("case", LEASE_CASES)
def test_lease_rule(rig, case):
    kind, reason = LEASE_CASES[case]
    assert _build(rig, case) == kind
    state = ci_tunnel.examine_lease(rig.lease)
    assert state.kind == kind, state.reason
    assert reason in state.reason and bool(state.reason) == (kind != ci_tunnel.LIVE), state.reason


@pytest.mark.parametrize("line", [
    b"abc", b"1234", b"1234 56 78", b" 1234 56", b"1234 56 ", b"01234 56", b"1234  56", b"1234 56\r",
    b"1234 -56", b"+1234 56", b"1234 5_6", "\u0661\u0662\u0663\u0664 56".encode(), b"1234 " + b"9" * 21,
    b"12345678901 5", b"1234 56\n\n", b"\n1234 56", b"\n",
])
def test_lease_rule_refuses_malformed_lines(line):
    with pytest.raises(ci_tunnel.LeaseInvalid):
        ci_tunnel.Lease.parse("x.lease", line)


def test_lease_parse_accepts_the_written_form():
    owners = (ci_tunnel.Owner(4242, 777), ci_tunnel.Owner(2, 0))
    data = "".join(owner.line() for owner in owners).encode()
    assert ci_tunnel.Lease.parse("x.lease", data) == owners


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_lease_rule_refuses_non_regular_files_without_blocking(rig, kind):
    if kind == "directory":
        os.mkdir(rig.lease)
    else:
        os.mkfifo(rig.lease)  # opened with O_NONBLOCK: no writer needed
    state = ci_tunnel.examine_lease(rig.lease)
    assert state.kind == ci_tunnel.INVALID and "not a regular file" in state.reason


# One case per part of the rule (the in-process table above has them all); run takes the lease
# exactly like up, so a few cases suffice for it.
CLI_CASES = ["live", "live-two-owners", "recycled-pid", "owner-gone", "pid-1", "other-uid-owner", "root-owned",
             "too-long", "malformed", "symlink", "missing"]
RUN_CASES = ["live", "pid-1", "owner-gone"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_same_answer_for_guard_check_up_run_and_down(rig, case):
    """guard-check says 0 exactly when up, run and down find the tunnel held (exit 3)."""
    rig.configure(guard_skipped=1)  # guard-check is asked directly here
    live = _build(rig, case) == ci_tunnel.LIVE
    results = {"guard-check": rig.helper("guard-check", NAME, uid=GUARD_UID)[0]}
    commands = ("up corp", "run corp -- true", "down corp") if case in RUN_CASES else ("up corp", "down corp")
    for command in commands:
        if not live:  # the previous command took the lease over: set the case up again
            if os.path.lexists(rig.lease):
                os.unlink(rig.lease)
            _build(rig, case)
            rig.set_unit(ActiveState="inactive")
        results[command] = rig.job(f"ci-tunnel {command}")[0]
    if live:
        assert results == dict.fromkeys(commands, 3) | {"guard-check": 0}
        assert rig.actions() == [], "a held tunnel was touched"
    else:
        assert results == dict.fromkeys(commands, 0) | {"guard-check": 1}
        runs = ["start", "stop"] if "run corp -- true" in commands else []
        assert rig.actions() == ["start"] + runs + ["stop"]


def test_guard_check_messages(rig):
    rig.write_lease(f"1 {stat_start(1)}\n")
    status, _out, err = rig.helper("guard-check", NAME, uid=GUARD_UID)
    assert status == 1 and "names PID 1" in err and "refusing to start tunnel corp" in err
    owner = rig.sleeper()
    rig.write_lease(owner_line(owner.pid))
    status, _out, err = rig.helper("guard-check", NAME, uid=GUARD_UID)
    assert status == 0 and f"owned by PID {owner.pid}" in err


# -- guard-watch -------------------------------------------------------------------------------------

@pytest.mark.parametrize("pidfd", [None, "missing", "enosys"])
def test_guard_watch_returns_promptly_when_an_owner_ends(rig, pidfd):
    if pidfd is None and not hasattr(os, "pidfd_open"):
        pytest.skip("no os.pidfd_open here")
    if pidfd:
        rig.patch(_pidfd=pidfd)
    first, second = rig.sleeper(), rig.sleeper()
    rig.write_lease(owner_line(first.pid) + owner_line(second.pid))
    watch = rig.popen([rig.path("bin", "ci-tunnel"), "guard-watch", NAME], uid=GUARD_UID)
    line = watch.stderr.readline().decode()
    assert "watching owner PID" in line, line + watch.stderr.read().decode()
    assert ("(pidfd)" in line) == (pidfd is None), line
    time.sleep(0.2)
    assert watch.poll() is None, "guard-watch ended while every owner is alive"
    began = time.monotonic()
    second.kill()  # the second owner: every owner is watched at once
    status = watch.wait(timeout=5)
    elapsed = time.monotonic() - began
    assert status == 0
    assert elapsed < 0.5, f"guard-watch took {elapsed:.2f} s"
    assert f"owner PID {second.pid} of tunnel corp is gone" in watch.stderr.read().decode()


def test_guard_watch_judges_the_lease_again(rig):
    rig.write_lease(f"1 {stat_start(1)}\n")
    status, _out, err = rig.helper("guard-watch", NAME, uid=GUARD_UID)
    assert status == 1 and "names PID 1" in err
    pid, start = dead_pid(rig)
    rig.write_lease(f"{pid} {start}\n")
    began = time.monotonic()
    status, _out, err = rig.helper("guard-watch", NAME, uid=GUARD_UID)
    assert status == 0 and "is gone" in err and time.monotonic() - began < 2


# -- run -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 1, 42])
def test_run_exits_with_the_command_status(rig, code):
    status, _out, err = rig.job(f"ci-tunnel run corp -- sh -c 'exit {code}'; echo \"rc=$?\" >&2")
    assert status == 0 and f"rc={code}" in err, err
    assert rig.actions() == ["start", "stop"]
    assert "tunnel corp is up" in err and "tunnel corp stopped" in err
    assert not os.path.lexists(rig.lease)
    assert rig.unit()["ActiveState"] == "inactive"
    assert not any("DECOY" in line for line in rig.calls()), "ci-tunnel used a tool from the caller's PATH"


def test_run_passes_stdin_env_and_path(rig):
    rig.touch(rig.path("decoy", "greet"), b"#!/bin/sh\nread line\necho \"$line from $GREETER\"\n")
    os.chmod(rig.path("decoy", "greet"), 0o755)
    status, out, err = rig.job("ci-tunnel run corp -- greet", input_text="hello\n", env={"GREETER": "the job"})
    assert status == 0, err
    assert out == "hello from the job\n", "stdout belongs to the command alone"
    assert not any("DECOY" in line for line in rig.calls())


def test_run_lease_names_itself_and_the_job_shell(rig):
    proc = rig.popen(["/bin/sh", "-c", "ci-tunnel run corp -- sh -c 'cat \"$LEASE\"; echo \"$PPID\"'; exit $?"])
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    *lease_lines, helper_pid = out.decode().splitlines()
    assert [line.split()[0] for line in lease_lines] == [helper_pid, str(proc.pid)]


@root_only
def test_run_under_a_root_parent_owns_the_lease_alone(rig):
    status, out, err = rig.helper("run", NAME, "--", "cat", rig.lease)
    assert status == 0, err
    assert len(out.splitlines()) == 1


def test_run_unknown_command_exits_127_without_starting(rig):
    status, _out, err = rig.job("ci-tunnel run corp -- no-such-command-here")
    assert status == 127 and "no-such-command-here: command not found" in err
    assert rig.actions() == []


def _start_job_command(rig, command, env=None, files=False, nohup=False):
    """Start `ci-tunnel run corp -- COMMAND` in a job shell (with SIGHUP ignored for ``nohup``);
    wait until COMMAND wrote "$$ $PPID" to $R/ready -> (job shell Popen, command PID, ci-tunnel PID)."""
    script = f"ci-tunnel run corp -- sh -c 'echo \"$$ $PPID\" >\"$R/ready\"; {command}'; echo \"rc=$?\" >&2; exit 0"
    if nohup:
        script = "trap '' HUP; " + script
    kw = {}
    if files:
        kw = {"stdout": open(rig.path("work", "out"), "wb"), "stderr": open(rig.path("work", "err"), "wb")}
    proc = rig.popen(["/bin/sh", "-c", script], env=env, **kw)
    for stream in kw.values():
        stream.close()
    command_pid, helper_pid = map(int, rig.wait_for_file(rig.path("work", "ready")).split())
    return proc, command_pid, helper_pid


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_run_on_signal_terminates_the_command_and_exits_128_plus_n(rig, signum):
    command = "trap \"echo TERM >\\\"\\$R/got\\\"; kill \\$! 2>/dev/null; exit 7\" TERM; sleep 30 >/dev/null 2>&1 & wait"
    proc, _command_pid, helper_pid = _start_job_command(rig, command)
    os.kill(helper_pid, signum)
    _out, err = proc.communicate(timeout=15)
    err = err.decode()
    assert f"rc={128 + signum}" in err, err
    assert rig.wait_for_file(rig.path("work", "got")) == "TERM\n"
    assert f"interrupted ({signal.Signals(signum).name}); stopping tunnel corp" in err
    assert rig.actions() == ["start", "stop"]
    assert not os.path.lexists(rig.lease)


def test_run_kills_after_the_grace_when_the_command_ignores_sigterm(rig):
    proc, command_pid, helper_pid = _start_job_command(rig, "trap \"\" TERM; exec sleep 30",
                                                       env={"CI_TUNNEL_KILL_GRACE": "1"})
    began = time.monotonic()
    os.kill(helper_pid, signal.SIGTERM)
    _out, err = proc.communicate(timeout=15)
    elapsed = time.monotonic() - began
    assert "rc=143" in err.decode()
    assert 0.9 <= elapsed < 4, elapsed
    assert gone(command_pid)
    assert rig.actions() == ["start", "stop"]


def test_a_second_signal_does_not_cut_cleanup_short(rig):
    proc, _command_pid, helper_pid = _start_job_command(rig, "exec sleep 30")
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(helper_pid, signum)
    _out, err = proc.communicate(timeout=15)
    assert "rc=143" in err.decode()
    assert rig.actions() == ["start", "stop"] and not os.path.lexists(rig.lease)


def test_run_keeps_a_signal_ignored_on_entry_ignored(rig):
    """As in a shell: under nohup, SIGHUP does not end ci-tunnel, and COMMAND still ignores it."""
    proc, command_pid, helper_pid = _start_job_command(
        rig, "while ! test -e \"$R/go\"; do sleep 0.02; done; kill -HUP $$; echo alive >\"$R/alive\"",
        nohup=True)
    os.kill(helper_pid, signal.SIGHUP)
    rig.touch(rig.path("work", "go"))
    _out, err = proc.communicate(timeout=15)
    assert "rc=0" in err.decode(), err
    assert rig.wait_for_file(rig.path("work", "alive")) == "alive\n"
    assert gone(command_pid)


@pytest.mark.parametrize("grace", ["abc", "-1", "10000", "1.5", " 5"])
def test_run_refuses_a_bad_kill_grace(monkeypatch, capsys, grace):
    monkeypatch.setenv("CI_TUNNEL_KILL_GRACE", grace)
    assert ci_tunnel.main(["run", NAME, "--", "true"]) == 2
    assert "CI_TUNNEL_KILL_GRACE must be whole seconds" in capsys.readouterr().err


@pytest.mark.parametrize("pidfd", [None, "missing"])
def test_run_ends_command_and_tunnel_when_the_job_shell_is_killed(rig, pidfd):
    if pidfd:
        rig.patch(_pidfd=pidfd)
    proc, command_pid, helper_pid = _start_job_command(rig, "exec sleep 30", files=True)
    proc.kill()
    proc.wait()
    wait_gone(command_pid, timeout=3)
    wait_gone(helper_pid, timeout=3)
    assert rig.actions() == ["start", "stop"]
    assert not os.path.lexists(rig.lease)
    with open(rig.path("work", "err"), encoding="utf-8") as handle:
        assert f"the job's shell (PID {proc.pid}) is gone" in handle.read()


# -- up / down -------------------------------------------------------------------------------------------

def test_up_then_down_from_the_job_shell(rig):
    script = """
        ci-tunnel up corp; echo "up=$?"
        echo "shell=$$"; cat "$LEASE"
        ci-tunnel guard-check corp; echo "check=$?"
        ci-tunnel up corp; echo "again=$?"
        ci-tunnel run corp -- true; echo "run=$?"
        ci-tunnel down corp; echo "down=$?"
        test -e "$LEASE"; echo "lease=$?"
    """
    status, out, err = rig.job(script)
    assert status == 0
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    lease_lines = [line for line in out.splitlines() if "=" not in line]
    assert values == {"up": "0", "shell": values["shell"], "check": "0", "again": "3", "run": "3", "down": "0", "lease": "1"}, err
    assert lease_lines == [f"{values['shell']} {lease_lines[0].split()[1]}"]
    assert "already up for this job" in err
    assert "stays up until 'ci-tunnel down corp'" in err
    assert rig.actions() == ["start", "stop"]


def test_successful_up_keeps_the_tunnel(rig):
    status, _out, err = rig.job("ci-tunnel up corp")
    assert status == 0, err
    assert rig.actions() == ["start"] and rig.unit()["ActiveState"] == "active"
    assert ci_tunnel.examine_lease(rig.lease).kind == ci_tunnel.STALE  # the job shell has ended since


@root_only
def test_up_refuses_a_parent_of_another_user(rig):
    status, _out, err = rig.helper("up", NAME)
    assert status == 2 and "does not run as" in err
    assert rig.actions() == []


def test_up_refuses_pid_1_as_parent(monkeypatch, capsys):
    monkeypatch.setattr(ci_tunnel.os, "getppid", lambda: 1)
    assert ci_tunnel.main(["up", NAME]) == 2
    assert "must be called from the job's shell" in capsys.readouterr().err


def test_down_refuses_a_tunnel_of_another_live_job(rig):
    other = rig.sleeper()
    rig.write_lease(owner_line(other.pid))
    status, _out, err = rig.job("ci-tunnel down corp")
    assert status == 3
    assert f"tunnel 'corp' in use by PID {other.pid} (another job); not touching it" in err
    assert rig.actions() == [] and os.path.exists(rig.lease)


def test_down_without_a_tunnel_is_fine(rig):
    status, _out, err = rig.job("ci-tunnel down corp")
    assert status == 0 and "tunnel corp stopped" in err
    assert rig.actions() == ["stop"]


def test_busy_lock(rig):
    rig.patch(LOCK_WAIT=0.3)
    fd = os.open(rig.lock, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for command in ("up corp", "down corp", "run corp -- true"):
            began = time.monotonic()
            status, _out, err = rig.job(f"ci-tunnel {command}")
            assert status == 3 and "is busy" in err, err
            assert 0.3 <= time.monotonic() - began < 3
    finally:
        os.close(fd)
    assert rig.actions() == []


def test_lock_symlink_is_refused(rig):
    os.symlink(rig.path("work", "elsewhere"), rig.lock)
    status, _out, err = rig.job("ci-tunnel up corp")
    assert status == 4 and "symbolic link" in err
    assert not os.path.exists(rig.path("work", "elsewhere"))


@root_only
def test_lease_dir_not_writable(rig):
    os.chmod(rig.lease_dir, 0o750)
    status, _out, err = rig.job("ci-tunnel up corp")
    assert status == 4 and "not writable" in err


@pytest.mark.parametrize("command", ["up corp", "down corp", "run corp -- true"])
def test_not_configured(rig, command):
    os.unlink(rig.path("state", "configured"))
    status, _out, err = rig.job(f"ci-tunnel {command}")
    assert status == 4 and "tunnel 'corp' is not configured on this host" in err
    assert rig.actions() == []


@pytest.mark.parametrize("outcome, message", [
    ("timeout", "did not become ready within its readiness timeout (1s); see: journalctl -u openfortivpn@corp.service"),
    ("exit-code", "its program ended before it was ready (Result=exit-code)"),
    ("signal", "its program ended before it was ready (Result=signal)"),
    ("resources", "failed to start (systemctl exit status 1, Result=resources)"),
])
def test_start_failure_is_explained_and_cleaned_up(rig, outcome, message):
    rig.configure(start_outcome=outcome, timeout_span="1s")
    status, _out, err = rig.job("ci-tunnel up corp")
    assert status == 4 and message in err, err
    assert rig.actions() == ["start", "stop"]
    assert not os.path.lexists(rig.lease)


def test_run_cleans_up_after_a_failed_start(rig):
    rig.configure(start_outcome="exit-code")
    status, _out, err = rig.job("ci-tunnel run corp -- sh -c 'echo ran >\"$R/ran\"'")
    assert status == 4 and "its program ended before it was ready" in err, err
    assert rig.actions() == ["start", "stop"] and not os.path.lexists(rig.lease)
    assert not os.path.exists(rig.path("work", "ran"))


def test_guard_refusal_is_not_blamed_on_a_stale_result(rig):
    rig.set_unit(ActiveState="failed", Result="exit-code", InactiveExitTimestampMonotonic="1")
    rig.configure(guard_fails=1)
    status, _out, err = rig.job("ci-tunnel up corp")
    assert status == 4 and f"was refused by {GUARD} (Result=exit-code)" in err, err


def test_start_that_does_not_return_is_ended(rig):
    rig.configure(start_delay=30, timeout_span="100ms")
    rig.patch(START_MARGIN=0.3)
    began = time.monotonic()
    status, _out, err = rig.job("ci-tunnel up corp")
    assert status == 4 and "systemctl start did not return within 0.4 s" in err, err
    assert time.monotonic() - began < 3
    wait_gone(int(rig.wait_for_file(rig.path("state", "start.pid"))), timeout=2)
    assert rig.actions() == ["start", "stop"]


def test_signal_while_starting(rig):
    rig.configure(start_delay=30)
    proc = rig.popen(["/bin/sh", "-c", "ci-tunnel up corp & echo $! >\"$R/pid\"; wait $!; echo \"rc=$?\" >&2"])
    start_pid = int(rig.wait_for_file(rig.path("state", "start.pid")))
    os.kill(int(rig.wait_for_file(rig.path("work", "pid"))), signal.SIGTERM)
    _out, err = proc.communicate(timeout=15)
    err = err.decode()
    assert "rc=143" in err and "interrupted (SIGTERM) while starting tunnel corp" in err, err
    wait_gone(start_pid, timeout=2)
    assert rig.actions() == ["start", "stop"] and not os.path.lexists(rig.lease)


def test_stale_lease_takeover_stops_the_old_tunnel_first(rig):
    pid, start = dead_pid(rig)
    rig.write_lease(f"{pid} {start}\n")
    rig.set_unit(ActiveState="active")
    status, _out, err = rig.job("ci-tunnel up corp")
    assert status == 0, err
    assert "is active for a stale lease; stopping it first" in err
    assert rig.actions() == ["stop", "start"]


@pytest.mark.parametrize("command", ["up corp", "run corp -- true"])
def test_invalid_pid_1_lease_is_taken_over(rig, command):
    rig.write_lease(f"1 {stat_start(1)}\n")
    assert rig.helper("guard-check", NAME, uid=GUARD_UID)[0] == 1
    status, _out, err = rig.job(f"ci-tunnel {command}")
    assert status == 0, err
    assert "start" in rig.actions()


@root_only
def test_root_may_not_take_a_lease(capsys):
    tunnel = ci_tunnel.Tunnel(NAME)
    with pytest.raises(ci_tunnel.Exit) as caught:
        tunnel.acquire([], None)
    assert caught.value.code == 2 and "not as root" in capsys.readouterr().err


# -- Usage and names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    [], ["bogus"], ["run"], ["run", NAME], ["run", NAME, "--"], ["up"], ["up", NAME, "x"], ["down"],
    ["down", NAME, "x"], ["guard-check"], ["guard-watch", NAME, "x"], [""], ["up", ""],
])
def test_usage_errors(capsys, argv):
    assert ci_tunnel.main(argv) == 2
    assert "usage: ci-tunnel run NAME -- COMMAND" in capsys.readouterr().err


def test_help(capsys):
    assert ci_tunnel.main(["--help"]) == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["a/b", ".x", "-x", "a\nb", "x" * 65, "a b", "a:b", "\u00e9t\u00e9", "corp\n"])
@pytest.mark.parametrize("command", [["up"], ["down"], ["guard-check"], ["guard-watch"], ["run"]])
def test_bad_names(capsys, name, command):
    argv = command + [name] + (["--", "true"] if command == ["run"] else [])
    assert ci_tunnel.main(argv) == 2
    assert "invalid tunnel name" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["corp", "a", "_x", "A.b-c_d", "9" * 64])
def test_good_names(name):
    assert ci_tunnel.NAME_RE.fullmatch(name)
