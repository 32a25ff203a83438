# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The record of a one-off job's end, and the helper that writes it.

A transient job runs with ``ExecStop=+HELPER_PATH`` and ``SuccessExitStatus=`` listing every exit
status and signal, so that systemd runs ``ExecStop=`` whenever the job's main process ends (it
skips ``ExecStop=`` after a failure), and runs it *before* it kills what is left of the job's
cgroup. The helper (this file, installed by the transient_job module) then:

* lists the job's leftover processes (everything in its cgroup but itself), by process name and
  executable only: arguments can hold secrets;
* writes ``RECORD_DIR/UNIT.json`` (root-only): the run's invocation id, systemd's result, how the
  main process ended (``EXIT_CODE``/``EXIT_STATUS``), its start and end time, and the leftovers;
* exits; systemd then kills the leftovers (``KillMode=control-group`` or ``mixed``: SIGTERM, then
  SIGKILL after ``TimeoutStopSec``), so no process of the job is left.

The unit itself is then unloaded by systemd; the module reads the record for ``state=finished``.
Runs with the Python of the host (3.9 and later), standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

RECORD_DIR = "/run/supervised-background/jobs"
HELPER_PATH = "/usr/local/libexec/supervised-background/job-finish"
SYSTEMCTL = "/usr/bin/systemctl"
# Every exit status and the signals a job can die of: all count as "success" for systemd, so that
# ExecStop= runs; the job's real result is taken from EXIT_CODE/EXIT_STATUS.
SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
           "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM")
SUCCESS_EXIT_STATUS = " ".join([str(n) for n in range(1, 256)] + list(SIGNALS))
MAX_LEFTOVERS = 50
CGROUP_ROOTS = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def record_path(unit):
    return os.path.join(RECORD_DIR, f"{unit}.json")


def own_cgroup():
    """The cgroup.procs file of the cgroup this process runs in (v1 name=systemd, hybrid, or v2)."""
    paths = {}
    with open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3:
                paths[parts[1]] = parts[2]
    for controller, root in (("name=systemd", CGROUP_ROOTS[0]), ("", CGROUP_ROOTS[1]), ("", CGROUP_ROOTS[2])):
        if controller in paths:
            procs = os.path.join(root + paths[controller], "cgroup.procs")
            if os.path.exists(procs):
                return procs
    return None


def _read(path, limit=4096):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace").strip()
    except OSError:
        return None


def leftovers(procs_file, exclude):
    """The processes in the cgroup but ``exclude``: name and executable of each (no arguments)."""
    found = []
    text = _read(procs_file, 1 << 20) or ""
    for word in text.split():
        if not word.isdigit() or int(word) in exclude:
            continue
        pid = int(word)
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = None
        comm = _read(f"/proc/{pid}/comm", 64)
        if comm is None:
            continue
        found.append({"pid": pid, "name": comm, "executable": exe})
    return found


def _timestamps(unit):
    try:
        out = subprocess.run([SYSTEMCTL, "show", "--no-pager", "-p",
                              "ExecMainStartTimestamp,ExecMainStartTimestampMonotonic,ExecMainExitTimestampMonotonic",
                              "--", unit], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def write_record(record, path):
    """Atomically, root-only."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(record, sort_keys=True).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def finish(unit, env):
    """Build the record of ``unit`` from systemd's environment for ExecStop=."""
    procs = own_cgroup()
    found = leftovers(procs, {os.getpid()}) if procs else []
    main = env.get("MAINPID", "")
    stopped = main.isdigit()
    if stopped:
        # A stop while the main process still runs (systemctl stop, RuntimeMaxSec): everything goes.
        found = [p for p in found if str(p["pid"]) != main]
    stamps = _timestamps(unit)
    start = stamps.get("ExecMainStartTimestampMonotonic", "")
    end = stamps.get("ExecMainExitTimestampMonotonic", "")
    duration = None
    if start.isdigit() and end.isdigit() and int(end) >= int(start) > 0:
        duration = round((int(end) - int(start)) / 1e6, 3)
    return {
        "unit": unit,
        "start_monotonic_usec": int(start) if start.isdigit() else None,
        "invocation_id": env.get("INVOCATION_ID", ""),
        "service_result": env.get("SERVICE_RESULT", ""),
        "exit_code": env.get("EXIT_CODE", ""),
        "exit_status": env.get("EXIT_STATUS", ""),
        "stopped": stopped,
        "started_at": stamps.get("ExecMainStartTimestamp") or None,
        "duration_sec": duration,
        "finished_at": time.time(),
        "leftover_count": len(found),
        "leftovers": found[:MAX_LEFTOVERS],
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].endswith(".service") or "/" in argv[0]:
        sys.stderr.write("usage: job-finish UNIT.service\n")
        return 2
    unit = argv[0]
    record = finish(unit, os.environ)
    write_record(record, record_path(unit))
    return 0


def read_record(unit):
    """The record of ``unit``'s last run, None when there is none."""
    path = record_path(unit)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not os.path.isfile(path) or os.path.islink(path) or st.st_uid != 0 and st.st_uid != os.geteuid():
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("unit") == unit else None


def remove_record(unit):
    try:
        os.unlink(record_path(unit))
    except FileNotFoundError:
        pass


if __name__ == "__main__":
    sys.exit(main())
