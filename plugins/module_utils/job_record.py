# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The record of a one-off job's end, and the helper that writes it.

A transient job runs with ``ExecStop=`` set to :func:`exec_stop` (this file run by the host's
python3 in isolated mode, as root) and ``SuccessExitStatus=`` listing every exit status and
signal, so that systemd runs ``ExecStop=`` whenever the job's main process ends (it skips
``ExecStop=`` after a failure), and runs it *before* it kills what is left of the job's cgroup.
The helper (installed by the transient_job module from this very source) then:

* lists the job's leftover processes (everything in its cgroup but itself), by process name and
  executable only: arguments can hold secrets;
* asks systemd (``systemctl show``, not the environment, which an EnvironmentFile= can override)
  for the run's invocation id, result, how the main process ended and when it started;
* writes ``RECORD_DIR/UNIT.json`` (root-only directory, file 0600): all of that;
* exits; systemd then kills the leftovers (``KillMode=control-group``: SIGTERM, then SIGKILL after
  ``TimeoutStopSec``; ``mixed``: SIGKILL at once), so no process of the job is left.

The unit itself is then unloaded by systemd; the module reads the record for ``state=finished``.
Runs with the Python of the host (3.9 and later), standard library only: nothing of the job's
environment (``PYTHONPATH``...) is honoured, see :func:`exec_stop`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time

RUN_DIR = "/run/supervised-background"
RECORD_NAME = "jobs"
RECORD_DIR = RUN_DIR + "/" + RECORD_NAME
HELPER_PATH = "/usr/local/libexec/supervised-background/job-finish"
PYTHON = "/usr/bin/python3"
SYSTEMCTLS = ("/usr/bin/systemctl", "/bin/systemctl")
# Every exit status and every signal that ends a process by default: all count as "success" for
# systemd, so that ExecStop= runs; the job's real result is taken from ExecMainCode/ExecMainStatus.
# (A core dump never counts as success for systemd: such a run skips ExecStop=, see the docs.)
SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
           "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGXCPU",
           "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGSYS") + \
    tuple(f"SIGRTMIN+{n}" for n in range(31))   # the real-time signals, 34..64 on Linux
SUCCESS_EXIT_STATUS = " ".join([str(n) for n in range(1, 256)] + list(SIGNALS))
MAX_LEFTOVERS = 50
CGROUP_ROOTS = {"name=systemd": "/sys/fs/cgroup/systemd", "": ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")}
EXIT_CODES = {"1": "exited", "2": "killed", "3": "dumped"}
SHOW_PROPERTIES = ("InvocationID", "Result", "MainPID", "ExecMainCode", "ExecMainStatus", "ExecMainStartTimestamp",
                   "ExecMainStartTimestampMonotonic", "ExecMainExitTimestampMonotonic")
UNIT_RE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,246}\.service"
INVOCATION_RE = r"[0-9a-f]{32}"
# systemd's SIGNAL names without SIG, as EXIT_STATUS= carries them (fallback path only).
_SIGNAL_NUMBERS = {"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
                   "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
                   "STKFLT": 16, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "IO": 29, "PWR": 30,
                   "SYS": 31}


class RecordError(Exception):
    """The record directory or file cannot be trusted or written."""


def exec_stop(unit):
    """The ``ExecStop=`` value of a job: ``+`` (root, outside the job's sandbox), the host's
    python3 in isolated mode (``-I``: no PYTHON* variables, no user site, no script directory on
    the path; ``-S``: no site packages), the helper and the unit."""
    return f"+{PYTHON} -I -S {HELPER_PATH} {unit}"


def record_path(unit):
    return os.path.join(RECORD_DIR, f"{unit}.json")


# -- the record directory: root-only, never through a symlink --------------------------------------
def _owners():
    return {0, os.geteuid()}


def _check_dir(fd, path, private):
    st = os.fstat(fd)
    bad = 0o077 if private else 0o022
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in _owners() or stat.S_IMODE(st.st_mode) & bad:
        raise RecordError(f"{path} is not a directory owned by root and "
                          f"{'accessible' if private else 'writable'} only by it")


def _open_dir(path, private, create, dir_fd=None, name=None):
    """Open (and with ``create`` make) one directory level, refusing a symlink or loose modes."""
    target = name if dir_fd is not None else path
    if create:
        try:
            os.mkdir(target, 0o700 if private else 0o755, dir_fd=dir_fd)
        except FileExistsError:
            pass
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        _check_dir(fd, path, private)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_record_dir(create=False):
    """A file descriptor of RECORD_DIR after checking it and RUN_DIR (None when missing)."""
    parent = os.path.dirname(RUN_DIR)
    try:
        top = _open_dir(parent, private=False, create=False)
    except FileNotFoundError:
        return None
    try:
        run = _open_dir(RUN_DIR, False, create, top, os.path.basename(RUN_DIR))
    except FileNotFoundError:
        return None
    finally:
        os.close(top)
    try:
        return _open_dir(RECORD_DIR, True, create, run, RECORD_NAME)
    except FileNotFoundError:
        return None
    finally:
        os.close(run)


def write_record(record, unit):
    """Atomically, root-only: a temp file created 0600 in the checked directory, then renamed."""
    dfd = open_record_dir(create=True)
    name = f"{unit}.json"
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            os.write(fd, json.dumps(record, sort_keys=True).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        os.fsync(dfd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        raise
    finally:
        os.close(dfd)


def read_record(unit):
    """The record of ``unit``'s last run, None when there is none (or it cannot be trusted)."""
    try:
        dfd = open_record_dir(create=False)
    except (OSError, RecordError):
        return None
    if dfd is None:
        return None
    try:
        fd = os.open(f"{unit}.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in _owners() or stat.S_IMODE(st.st_mode) & 0o077 \
                or st.st_size > 1 << 20:
            return None
        data = os.read(fd, 1 << 20)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        record = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("unit") == unit else None


def remove_record(unit):
    try:
        dfd = open_record_dir(create=False)
    except (OSError, RecordError):
        return
    if dfd is None:
        return
    try:
        os.unlink(f"{unit}.json", dir_fd=dfd)
    except FileNotFoundError:
        pass
    finally:
        os.close(dfd)


# -- what the helper sees --------------------------------------------------------------------------
def own_cgroup(proc_self="/proc/self/cgroup"):
    """The cgroup directory this process runs in (v1 name=systemd, hybrid, or unified v2)."""
    paths = {}
    with open(proc_self, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3:
                paths[parts[1]] = parts[2]
    for controller in ("name=systemd", ""):
        if controller not in paths or not paths[controller].startswith("/"):
            continue
        roots = CGROUP_ROOTS[controller]
        for root in (roots,) if isinstance(roots, str) else roots:
            directory = root + paths[controller].rstrip("/")
            if os.path.isfile(os.path.join(directory, "cgroup.procs")):
                return directory
    return None


def _read(path, limit=4096):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def printable(value, limit=256):
    """A name shown in a result: control and other invisible characters escaped, length capped."""
    out = []
    for ch in value:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029" or 0xFDD0 <= code <= 0xFDEF \
                or (code & 0xFFFE) == 0xFFFE or 0xD800 <= code <= 0xDFFF or ch == "\ufffd":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit] + "..."


def cgroup_pids(directory):
    """Every PID in ``directory``'s cgroup and the cgroups below it (a job cannot make any
    without Delegate=, which the collection refuses; walked anyway)."""
    pids = []
    for path, dirs, _files in os.walk(directory):
        dirs.sort()
        text = _read(os.path.join(path, "cgroup.procs"), 1 << 20) or ""
        pids += [int(word) for word in text.split() if word.isdigit()]
    return list(dict.fromkeys(pids))


def describe(pid, proc="/proc"):
    """``{pid, name, executable}`` of a process, never its arguments; None when it is gone."""
    comm = _read(f"{proc}/{pid}/comm", 64)
    if comm is None:
        return None
    try:
        exe = printable(os.readlink(f"{proc}/{pid}/exe"), 4096)
    except OSError:
        # Gone, a kernel thread, or not readable (root without CAP_SYS_PTRACE, as in a container,
        # cannot read another user's /proc/PID/exe).
        exe = None
    return {"pid": pid, "name": printable(comm.rstrip("\n"), 64), "executable": exe}


def leftovers(directory, exclude, proc="/proc"):
    """The processes in the cgroup but ``exclude``: name and executable of each (no arguments)."""
    found = []
    for pid in cgroup_pids(directory):
        if pid in exclude:
            continue
        info = describe(pid, proc)
        if info is not None:
            found.append(info)
    return found


def systemctl():
    return next((path for path in SYSTEMCTLS if os.path.isfile(path)), SYSTEMCTLS[0])


def show(unit):
    """What systemd says of the run now (empty when systemctl cannot answer)."""
    try:
        # The job-finish helper is a program of its own (no module, so no run_command).
        out = subprocess.run([systemctl(), "show", "--no-pager", "-p", ",".join(SHOW_PROPERTIES), "--", unit],  # pylint: disable=ansible-bad-function
                             capture_output=True, text=True, timeout=20, check=False,
                             env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _number(value):
    return int(value) if isinstance(value, str) and value.isdigit() else None


def finish(unit, env, props, found, now_usec):
    """Build the record of ``unit`` from systemd's view ``props`` (``systemctl show``), with the
    environment systemd gives ExecStop= as a fallback, and the leftovers ``found``."""
    main = _number(props.get("MainPID")) or _number(env.get("MAINPID")) or 0
    stopped = main > 0
    if stopped:
        # A stop while the main process still runs (systemctl stop, RuntimeMaxSec): it is not a leftover.
        found = [p for p in found if p["pid"] != main]
    code = EXIT_CODES.get(props.get("ExecMainCode", ""))
    status = _number(props.get("ExecMainStatus"))
    if stopped:
        code = status = None
    elif code is None:
        code = env.get("EXIT_CODE") or None
        raw = env.get("EXIT_STATUS", "")
        status = _number(raw) if code == "exited" else _SIGNAL_NUMBERS.get(raw)
    invocation = props.get("InvocationID", "")
    if not re.fullmatch(INVOCATION_RE, invocation):
        invocation = env.get("INVOCATION_ID", "")
    start = _number(props.get("ExecMainStartTimestampMonotonic")) or None
    end = _number(props.get("ExecMainExitTimestampMonotonic")) or (now_usec if stopped else None)
    duration = round((end - start) / 1e6, 3) if start and end and end >= start else None
    return {
        "unit": unit,
        "invocation_id": invocation,
        "service_result": props.get("Result") or env.get("SERVICE_RESULT", ""),
        "exit_code": code,
        "exit_status": status,
        "stopped": stopped,
        "started_at": props.get("ExecMainStartTimestamp") or None,
        "start_monotonic_usec": start,
        "duration_sec": duration,
        "finished_at": time.time(),
        "leftover_count": len(found),
        "leftovers": found[:MAX_LEFTOVERS],
    }


def main(argv=None, environ=None):
    os.umask(0o077)
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if environ is None else environ
    if len(argv) != 1 or not re.fullmatch(UNIT_RE, argv[0]):
        sys.stderr.write("job-finish: usage: job-finish UNIT.service\n")
        return 2
    unit = argv[0]
    now_usec = time.monotonic_ns() // 1000
    # First the leftovers (before this helper starts anything of its own in the cgroup).
    try:
        directory = own_cgroup()
        found = leftovers(directory, {os.getpid()}) if directory else []
    except OSError as err:
        sys.stderr.write(f"job-finish: cannot list the job's processes: {err}\n")
        found = []
    record = finish(unit, env, show(unit), found, now_usec)
    try:
        write_record(record, unit)
    except (OSError, RecordError) as err:
        sys.stderr.write(f"job-finish: cannot write the record of {unit}: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
