# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ci-tunnel: use a supervised VPN tunnel from a CI job and always take it down again.

The ci_runner role installs this file as ``/usr/local/bin/ci-tunnel`` (root:root 0755, with a
``#!/usr/bin/python3`` line in front); the guard unit ``ci-tunnel-guard@.service`` runs its
``guard-check`` and ``guard-watch`` commands. Standard library only; Python 3.9 or later (3.8
compiles it and runs it without pidfd). The contract is docs/ci-runner.md.

  ci-tunnel run NAME -- COMMAND [ARG...]
      Start openfortivpn@NAME.service, wait until systemd reports it ready, run COMMAND (found on
      the caller's PATH, with the caller's environment and stdin), stop the tunnel whatever
      happened. Exits with COMMAND's status; 128+N when ci-tunnel got signal N (SIGINT, SIGTERM,
      SIGHUP: COMMAND gets SIGTERM, then SIGKILL after CI_TUNNEL_KILL_GRACE seconds, default 10).
      When the job's shell (the parent) is gone, COMMAND and the tunnel are ended the same way.
  ci-tunnel up NAME          Start the tunnel and wait until it is ready; the calling shell owns it.
  ci-tunnel down NAME        Stop the tunnel (refused while another live job holds it).
  ci-tunnel guard-check NAME Exit 0 only if the lease is live (see Lease), else 1.
  ci-tunnel guard-watch NAME Exit 0 as soon as an owner of the live lease is gone; 1 if invalid.

Own errors print "ci-tunnel: error: ..." on stderr and exit with 2 (usage, bad name), 3 (tunnel
held by another live job, or its lock busy) or 4 (not configured for this user, failed, or not
ready in time). Progress lines "ci-tunnel: ..." go to stderr as well; stdout is COMMAND's alone.
Only the unit openfortivpn@NAME.service is ever started or stopped, through the two sudo rules the
role grants, by absolute path (SUDO, SYSTEMCTL); nothing is stopped by process name.

Waiting never polls where the kernel can tell: every process waited for (COMMAND, ``systemctl
start``, the job's shell, the lease owners) gets a pidfd (os.pidfd_open, Linux 5.3+, Python 3.9+)
that poll() reports readable once the process has ended, and signals arrive through
signal.set_wakeup_fd() in the same poll() call (see Events). Where there is no pidfd
(os.pidfd_open missing, or failing with ENOSYS, EPERM, ...), that one process is checked in /proc
every POLL_INTERVAL seconds instead, with the same "alive" rule (Owner.process).
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import pwd
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import namedtuple

# -- Constants: the installing module reads them; tests patch them (no environment override) ------
HELPER_PATH = "/usr/local/bin/ci-tunnel"
LEASE_DIR = "/run/ci-tunnel"
SUDO = "/usr/bin/sudo"
SYSTEMCTL = "/usr/bin/systemctl"
UNIT_TEMPLATE = "openfortivpn@{}.service"
GUARD_TEMPLATE = "ci-tunnel-guard@{}.service"
# Tunnel names (use with fullmatch): the collection's instance-name rule without ':'.
NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
NAME_RE = re.compile(NAME_PATTERN)
# The environment of ci-tunnel's own tools (sudo, systemctl); COMMAND gets the caller's.
TOOL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
PROC = "/proc"
EX_OK = 0
EX_GUARD = 1  # guard-check / guard-watch: the lease is not live
EX_USAGE = 2
EX_BUSY = 3
EX_TUNNEL = 4
LEASE_MAX_BYTES = 256
LEASE_MAX_OWNERS = 4
PID_MIN = 2  # PID 1 (init) never owns a tunnel: it would never end
PID_MAX = 4194304  # the kernel's limit (pid_max)
LOCK_WAIT = 10.0  # seconds to wait for NAME.lock
START_MARGIN = 15.0  # seconds `systemctl start` may take beyond the unit's TimeoutStartUSec
START_DEFAULT_LIMIT = 300.0  # when TimeoutStartUSec is unknown
START_KILL_AFTER = 5.0  # SIGTERM to an overdue `systemctl start`, SIGKILL this much later
KILL_GRACE_DEFAULT = 10  # CI_TUNNEL_KILL_GRACE when unset
POLL_INTERVAL = 0.2  # /proc check of a process without pidfd
# -------------------------------------------------------------------------------------------------

LIVE, STALE, INVALID = "live", "stale", "invalid"
_DEAD_STATES = ("Z", "X", "x")  # /proc/PID/stat states of a process that has ended (zombie, dead)
_CAUGHT = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_LEASE_LINE_RE = re.compile(rb"([0-9]{1,10}) ([0-9]{1,20})")
_SPAN_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z\u00b5\u03bc]*)\s*")
_SPAN_UNITS = {unit: seconds for names, seconds in (
    ("y year years", 31557600.0), ("M month months", 2629800.0), ("w week weeks", 604800.0),
    ("d day days", 86400.0), ("h hr hour hours", 3600.0), ("m min minute minutes", 60.0),
    ("s sec second seconds", 1.0), ("ms msec", 1e-3), ("us usec \u00b5s \u03bcs", 1e-6), ("ns nsec", 1e-9),
) for unit in names.split()}

USAGE = """\
usage: ci-tunnel run NAME -- COMMAND [ARG...]
       ci-tunnel up NAME
       ci-tunnel down NAME
       ci-tunnel guard-check NAME
       ci-tunnel guard-watch NAME
"""


class Exit(Exception):
    """Leave ci-tunnel with exit status ``code``; any message has been printed already."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


class LeaseInvalid(Exception):
    """A lease file that breaks the lease rule (see Lease); the message says which part."""


# -- Output ----------------------------------------------------------------------------------------

def say(message):
    """A line "ci-tunnel: MESSAGE" on stderr. Never raises: stderr may be gone with the job, and
    cleanup must go on regardless."""
    try:
        sys.stderr.write(f"ci-tunnel: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def fail(code, message):
    """Print "ci-tunnel: error: MESSAGE" and leave with ``code``."""
    say(f"error: {message}")
    raise Exit(code)


def usage():
    """The usage text on stderr; exit 2."""
    try:
        sys.stderr.write(USAGE)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    raise Exit(EX_USAGE)


def user_name():
    """The name of the calling user (its uid when it has none)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def signal_name(signum):
    """``SIGTERM`` for 15."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


# -- Processes: the one reader of /proc/PID/stat and /proc/PID/status -----------------------------

ProcInfo = namedtuple("ProcInfo", "pid state ppid start uid")


def parse_stat(data):
    """Parse the bytes of /proc/PID/stat -> (state, ppid, starttime).

    Field 2 (comm) is in parentheses and may itself hold spaces, parentheses and newlines, so the
    fields are split after the LAST ") ". starttime is field 22 (clock ticks after boot): with the
    PID it names one process, a recycled PID has another. Raises ValueError for anything else.
    """
    end = data.rfind(b") ")
    if end < 0 or b" (" not in data[:end]:
        raise ValueError("no (comm) field in /proc/PID/stat")
    fields = data[end + 2:].split()
    if len(fields) < 20 or not fields[1].isdigit() or not fields[19].isdigit():
        raise ValueError("malformed /proc/PID/stat")
    return fields[0].decode("ascii", "replace"), int(fields[1]), int(fields[19])


def parse_status_uid(data):
    """The real uid from the bytes of /proc/PID/status (first number of the "Uid:" line)."""
    for line in data.splitlines():
        if line.startswith(b"Uid:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    raise ValueError("no Uid line in /proc/PID/status")


def _read_at(dir_fd, name):
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def proc_info(pid):
    """One look at process ``pid`` -> ProcInfo, or None when there is no such process.

    stat and status are read through one open /proc/PID directory, so both describe the same
    process even when the PID is reused meanwhile (the old directory then fails with ESRCH).
    """
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        dir_fd = os.open(f"{PROC}/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        state, ppid, start = parse_stat(_read_at(dir_fd, "stat"))
        uid = parse_status_uid(_read_at(dir_fd, "status"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(dir_fd)
    return ProcInfo(pid, state, ppid, start, uid)


class Owner(namedtuple("Owner", "pid start")):
    """A lease owner: a PID and its start time (field 22 of /proc/PID/stat)."""

    __slots__ = ()

    def process(self):
        """The owner's ProcInfo while it is alive, else None. Alive means: /proc/PID/stat exists,
        its start time is ``start`` and it has not ended (zombie): exactly when its pidfd is not
        yet readable."""
        info = proc_info(self.pid)
        if info is None or info.start != self.start or info.state in _DEAD_STATES:
            return None
        return info

    def line(self):
        """The owner's line in a lease file."""
        return f"{self.pid} {self.start}\n"


def process_owner(pid):
    """(Owner, ProcInfo) for a running process, or (None, None) when it is gone."""
    info = proc_info(pid)
    if info is None or info.state in _DEAD_STATES:
        return None, None
    return Owner(pid, info.start), info


def this_job():
    """This process and its ancestors (nearest first, without PID 1) as a set of Owners."""
    owners = set()
    pid = os.getpid()
    for _hop in range(4096):
        if pid <= 1:
            break
        info = proc_info(pid)
        if info is None:
            break
        owners.add(Owner(pid, info.start))
        pid = info.ppid
    return owners


# -- The lease: ONE rule, used by run, up, down, guard-check and guard-watch ----------------------

LeaseState = namedtuple("LeaseState", "kind lease reason pid")


class Lease:
    """The lease of one tunnel, ``LEASE_DIR/NAME.lease``, written by ci-tunnel as the runner user.

    The lease rule (``examine_lease`` applies it, and nothing else decides):
      * the file is a regular file, opened with O_NOFOLLOW (so never a symlink), of at most
        LEASE_MAX_BYTES bytes, owned by a uid other than root (the runner user writes it);
      * it has 1 to LEASE_MAX_OWNERS lines "PID STARTTIME": ASCII digits, one space, no leading
        zero in PID, PID_MIN <= PID <= PID_MAX (so never PID 1), STARTTIME as in /proc/PID/stat;
      * every owner that is alive (Owner.process) runs with the real uid that owns the file.
    A lease breaking any of these is INVALID. A valid lease with an owner that is gone is STALE:
    the guard ends its tunnel as soon as one owner is gone. Otherwise it is LIVE. Only a LIVE lease
    holds its tunnel: run and up take over a STALE or INVALID one, down removes it, and the guard
    runs a tunnel only on a LIVE lease.
    """

    def __init__(self, path, uid, owners):
        self.path = path
        self.uid = uid
        self.owners = owners

    @classmethod
    def read(cls, path):
        """Read and parse the lease file at ``path``; raises LeaseInvalid."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise LeaseInvalid(f"no lease {path} (tunnels are started with ci-tunnel, not systemctl)") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LeaseInvalid(f"lease {path} is a symbolic link") from None
            raise LeaseInvalid(f"cannot read lease {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise LeaseInvalid(f"lease {path} is not a regular file")
            if st.st_uid == 0:
                raise LeaseInvalid(f"lease {path} is owned by root (leases are written by the CI runner user)")
            data = _read_up_to(fd, LEASE_MAX_BYTES + 1)
        except OSError as exc:
            raise LeaseInvalid(f"cannot read lease {path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) > LEASE_MAX_BYTES:
            raise LeaseInvalid(f"lease {path} is larger than {LEASE_MAX_BYTES} bytes")
        return cls(path, st.st_uid, cls.parse(path, data))

    @staticmethod
    def parse(path, data):
        """The owners in lease content ``data`` (bytes) -> tuple of Owner; raises LeaseInvalid."""
        text = data[:-1] if data.endswith(b"\n") else data
        lines = text.split(b"\n") if text else []
        if not 1 <= len(lines) <= LEASE_MAX_OWNERS:
            raise LeaseInvalid(f"lease {path} must name 1 to {LEASE_MAX_OWNERS} owners, one 'PID STARTTIME' line each")
        owners = []
        for number, line in enumerate(lines, 1):
            match = _LEASE_LINE_RE.fullmatch(line)
            if not match or (len(match.group(1)) > 1 and match.group(1).startswith(b"0")):
                raise LeaseInvalid(f"lease {path}: line {number} is not 'PID STARTTIME'")
            pid = int(match.group(1))
            if pid == 1:
                raise LeaseInvalid(f"lease {path} names PID 1 (init), which never ends")
            if not PID_MIN <= pid <= PID_MAX:
                raise LeaseInvalid(f"lease {path}: PID {pid} is not a process ID ({PID_MIN} to {PID_MAX})")
            owners.append(Owner(pid, int(match.group(2))))
        return tuple(owners)

    def held_by_this_job(self):
        """True when an owner is this process or one of its ancestors."""
        return bool(this_job().intersection(self.owners))


def _read_up_to(fd, size):
    chunks = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def examine_lease(path):
    """Apply the lease rule (see Lease) to ``path`` -> LeaseState(kind, lease, reason, pid).

    kind is LIVE (pid: the first owner), STALE (pid: the first owner that is gone) or INVALID
    (lease is None unless only an owner's uid broke the rule); reason says why it is not LIVE.
    """
    try:
        lease = Lease.read(path)
    except LeaseInvalid as exc:
        return LeaseState(INVALID, None, str(exc), None)
    gone = None
    for owner in lease.owners:
        info = owner.process()
        if info is None:
            gone = gone or owner
        elif info.uid != lease.uid:
            return LeaseState(INVALID, lease, f"owner PID {owner.pid} in lease {path} runs as uid {info.uid}, "
                                              f"not as the lease's owner (uid {lease.uid})", owner.pid)
    if gone is not None:
        return LeaseState(STALE, lease, f"owner PID {gone.pid} in lease {path} is gone", gone.pid)
    return LeaseState(LIVE, lease, "", lease.owners[0].pid)


# -- Time spans: the one parser of `systemctl show` durations -------------------------------------

def parse_timespan(text):
    """A systemd time span as `systemctl show -P TimeoutStartUSec` prints it -> seconds (float),
    or None for "infinity" (no limit).

    "1min 30s" -> 90, "500ms" -> 0.5, "2h 5min" -> 7500, "1d" -> 86400, "1.500000s" -> 1.5,
    "0" or a bare number -> seconds. Units are systemd's (us, ms, s, min, h, d, w, M, y and their
    long names). Raises ValueError for anything else, empty text included.
    """
    span = text.strip()
    if span == "infinity":
        return None
    if not span:
        raise ValueError("empty time span")
    total = 0.0
    pos = 0
    parts = 0
    while pos < len(span):
        match = _SPAN_PART_RE.match(span, pos)
        if not match or match.end() == pos:
            raise ValueError(f"not a time span: {text!r}")
        unit = match.group(2)
        if unit not in _SPAN_UNITS and not (unit == "" and match.end() == len(span) and parts == 0):
            raise ValueError(f"unknown time unit in {text!r}")
        total += float(match.group(1)) * _SPAN_UNITS.get(unit, 1.0)
        pos = match.end()
        parts += 1
    return total


def start_limit(span):
    """How long `systemctl start` may take: the unit's TimeoutStartUSec ``span`` + START_MARGIN
    seconds; START_DEFAULT_LIMIT when the span is unknown; None (no limit) for infinity."""
    try:
        seconds = parse_timespan(span)
    except ValueError:
        return START_DEFAULT_LIMIT
    return None if seconds is None else seconds + START_MARGIN


# -- Waiting: pidfds, the /proc fallback, signals, deadlines ---------------------------------------

def open_pidfd(pid):
    """A pidfd for ``pid`` (poll() reports it readable once the process has ended), or None where
    there is none: os.pidfd_open missing (Python 3.8), ENOSYS (Linux < 5.3), EPERM/EACCES (a
    seccomp filter), ESRCH (already gone; the /proc check then says so). The caller checks the
    owner's start time AFTER opening, so the pidfd is known to be the owner's, not a recycled PID's."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None


def _readable(fd):
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class Watch:
    """A process Events.wait() waits for. ``fd`` is its pidfd, or None: then it is checked every
    POLL_INTERVAL seconds. ``gone()`` says whether it has ended."""

    def __init__(self, pid, fd):
        self.pid = pid
        self.fd = fd

    def gone(self):
        """True once the process has ended."""
        raise NotImplementedError

    def close(self):
        """Close the pidfd."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class ChildWatch(Watch):
    """A child process of ci-tunnel (a subprocess.Popen): gone once it has exited (it is reaped
    here, so its PID cannot be recycled while watched)."""

    def __init__(self, child):
        super().__init__(child.pid, open_pidfd(child.pid))
        self.child = child

    def gone(self):
        return self.child.poll() is not None


class OwnerWatch(Watch):
    """Any process, named by Owner (PID and start time): gone when Owner.process() says so, or
    once its pidfd is readable."""

    def __init__(self, owner):
        super().__init__(owner.pid, open_pidfd(owner.pid))
        self.owner = owner

    def gone(self):
        return self.owner.process() is None or (self.fd is not None and _readable(self.fd))


def _ignore_signal(_signum, _frame):
    """Python-level handler: the signal is seen through the wakeup fd (Events.drain)."""


class Events:
    """Waits for processes to end, for SIGINT/SIGTERM/SIGHUP and for deadlines, in one poll().

    With ``catch_signals`` (a context manager): a do-nothing handler for INT, TERM, HUP and CHLD
    and signal.set_wakeup_fd() on a non-blocking self-pipe. The C-level handler writes the signal
    number into the pipe, so a signal always wakes poll() and the numbers read back say which
    signal came (no flag set by a handler, so no race between checking and sleeping). The first
    INT/TERM/HUP is kept in ``signal``; later ones change nothing, so cleanup is never cut short.
    A signal ignored on entry (nohup, trap '') stays ignored, as in a shell. CHLD only wakes up
    the wait for a child that has no pidfd. Without ``catch_signals`` (the guard), signals keep
    their default action.
    """

    def __init__(self, catch_signals=True):
        self.catch_signals = catch_signals
        self.signal = None
        self._pipe = None
        self._old_wakeup = -1
        self._old_handlers = {}

    def __enter__(self):
        if self.catch_signals:
            self._pipe = os.pipe()
            for fd in self._pipe:
                os.set_blocking(fd, False)
            self._old_wakeup = signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False)
            for signum in _CAUGHT + (signal.SIGCHLD,):
                if signum != signal.SIGCHLD and signal.getsignal(signum) == signal.SIG_IGN:
                    continue  # ignored on entry (nohup, trap ''): stays ignored, for COMMAND too
                self._old_handlers[signum] = signal.signal(signum, _ignore_signal)
        return self

    def __exit__(self, *exc_info):
        if self._pipe is not None:
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            signal.set_wakeup_fd(self._old_wakeup)
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    def drain(self):
        """Read the signals that came since the last call; returns ``signal``."""
        if self._pipe is None:
            return self.signal
        while True:
            try:
                data = os.read(self._pipe[0], 512)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            for signum in data:
                if self.signal is None and signum in _CAUGHT:
                    self.signal = signum
        return self.signal

    def exit_if_signalled(self, doing):
        """After INT/TERM/HUP: print "interrupted (SIGxxx) DOING" and leave with 128+N."""
        if self.drain() is not None:
            say(f"interrupted ({signal_name(self.signal)}){doing}")
            raise Exit(128 + self.signal)

    def wait(self, watches, deadline=None, stop_on_signal=True):
        """Block until a watched process is gone, a signal has come (unless not ``stop_on_signal``)
        or time.monotonic() reaches ``deadline``. Returns the watches that are gone (maybe none)."""
        while True:
            self.drain()
            gone = [watch for watch in watches if watch.gone()]
            if gone or (stop_on_signal and self.signal is not None):
                return gone
            timeout = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return []
            if any(watch.fd is None for watch in watches):
                timeout = POLL_INTERVAL if timeout is None else min(timeout, POLL_INTERVAL)
            poller = select.poll()
            for fd in [watch.fd for watch in watches if watch.fd is not None] + ([self._pipe[0]] if self._pipe else []):
                poller.register(fd, select.POLLIN)
            poller.poll(None if timeout is None else max(1, math.ceil(timeout * 1000)))


# -- Tools: sudo and systemctl, by absolute path, each in its own session -------------------------

def _tool_output():
    """Where a tool's stdout goes: ci-tunnel's stderr (stdout belongs to COMMAND)."""
    try:
        os.fstat(2)
        return 2
    except OSError:
        return subprocess.DEVNULL


def spawn_tool(argv, quiet=False):
    """Start one of ci-tunnel's tools: fixed environment (TOOL_ENV), stdin /dev/null, its own
    session. The session keeps a terminal's Ctrl-C and the job's process-group signals away from
    it (a second Ctrl-C must not cut a `systemctl stop` short); ci-tunnel signals it itself."""
    out = subprocess.DEVNULL if quiet else _tool_output()
    # ci-tunnel is a program of its own, no module: there is no run_command (ansible-core 2.21+
    # pylint asks for it in every module_utils file), and it needs a session of the tool's own.
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,  # pylint: disable=ansible-bad-function
                            stderr=out if quiet else None, env=dict(TOOL_ENV), start_new_session=True,
                            close_fds=True)


def run_tool(argv, quiet=False):
    """Run a tool to its end -> exit status (127 when it cannot be started)."""
    try:
        return spawn_tool(argv, quiet).wait()
    except OSError:
        return 127


def unit_property(unit, prop):
    """`systemctl show -P PROP UNIT` (no sudo needed) -> the value, "" when it cannot be read."""
    try:
        done = subprocess.run([SYSTEMCTL, "show", "-P", prop, unit], stdin=subprocess.DEVNULL,  # pylint: disable=ansible-bad-function
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(TOOL_ENV),
                              start_new_session=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    if done.returncode != 0:
        return ""
    return done.stdout.decode("utf-8", "replace").strip()


def signal_group(child, signum):
    """Send ``signum`` to the session of a tool child that has not been reaped (its process group
    ID is its PID, which cannot be reused before it is reaped)."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signum)
    except OSError:
        try:
            child.send_signal(signum)
        except OSError:
            pass


def end_tool(child, events):
    """End a tool child: SIGTERM to its session, SIGKILL START_KILL_AFTER seconds later."""
    signal_group(child, signal.SIGTERM)
    watch = ChildWatch(child)
    try:
        events.wait([watch], time.monotonic() + START_KILL_AFTER, stop_on_signal=False)
        if child.poll() is None:
            signal_group(child, signal.SIGKILL)
            child.wait()
    finally:
        watch.close()


# -- One tunnel ------------------------------------------------------------------------------------

class Tunnel:
    """Tunnel NAME: its unit, guard unit, lease and lock, and what this process did to it.

    ``acquired`` is True once this process wrote the lease: from then on every way out of run and
    of a failed up goes through ``release`` (stop the unit, remove the lease); ``keep`` (a
    successful up) lets the tunnel outlive this process.
    """

    def __init__(self, name):
        self.name = name
        self.unit = UNIT_TEMPLATE.format(name)
        self.guard_unit = GUARD_TEMPLATE.format(name)
        self.lease_path = os.path.join(LEASE_DIR, f"{name}.lease")
        self.lock_path = os.path.join(LEASE_DIR, f"{name}.lock")
        self.acquired = False
        self.keep = False

    def in_use(self, pid):
        """The message for a tunnel another live job holds."""
        return f"tunnel '{self.name}' in use by PID {pid} (another job); not touching it"

    def check_configured(self):
        """Exit 4 unless sudo lets this user start the unit (`sudo -n -l SYSTEMCTL start UNIT`)."""
        if run_tool([SUDO, "-n", "-l", SYSTEMCTL, "start", self.unit], quiet=True) != 0:
            fail(EX_TUNNEL, f"tunnel '{self.name}' is not configured on this host for {user_name()} "
                            f"(no sudo rule for: systemctl start {self.unit})")

    def stop_unit(self):
        """`sudo -n SYSTEMCTL stop UNIT` (returns once the tunnel's processes are gone) -> True if it worked."""
        if run_tool([SUDO, "-n", SYSTEMCTL, "stop", self.unit]) != 0:
            say(f"error: could not stop {self.unit}")
            return False
        return True

    # -- the lock -----------------------------------------------------------------------------------

    def _open_lock(self):
        if not os.path.isdir(LEASE_DIR) or not os.access(LEASE_DIR, os.W_OK | os.X_OK):
            fail(EX_TUNNEL, f"{LEASE_DIR} is missing or not writable for {user_name()} (run ci-tunnel as the CI runner user)")
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                fail(EX_TUNNEL, f"{self.lock_path} is a symbolic link; refusing to use it")
            fail(EX_TUNNEL, f"cannot open {self.lock_path}: {exc.strerror}")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            fail(EX_TUNNEL, f"{self.lock_path} is not a regular file; refusing to use it")
        return fd

    def lock(self, events=None):
        """Take LEASE_DIR/NAME.lock (flock, exclusive), waiting at most LOCK_WAIT seconds -> its fd,
        or None when it stayed busy. Exits 4 when the lock file cannot be used, and 128+N on signal
        N while waiting when ``events`` is given. Every change of the lease happens under it."""
        fd = self._open_lock()
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                    os.close(fd)
                    fail(EX_TUNNEL, f"cannot lock {self.lock_path}: {exc.strerror}")
            now = time.monotonic()
            if now >= deadline:
                os.close(fd)
                return None
            if events is not None:
                events.wait([], min(deadline, now + 0.05))
                if events.signal is not None:
                    os.close(fd)
                    raise Exit(128 + events.signal)
            else:
                time.sleep(min(deadline - now, 0.05))

    def lock_or_exit(self, events):
        """``lock``, exiting 3 when the lock stays busy."""
        fd = self.lock(events)
        if fd is None:
            fail(EX_BUSY, f"tunnel '{self.name}' is busy (lock {self.lock_path} held for {LOCK_WAIT:g} s)")
        return fd

    # -- the lease ----------------------------------------------------------------------------------

    def write_lease(self, owners):
        """Write the lease naming ``owners``: a fresh private temp file in LEASE_DIR (O_CREAT|O_EXCL|
        O_NOFOLLOW, random name ".NAME.lease.XXXXXXXX"), chmod 0644 (the guard reads it), then
        rename over the lease. Exits 4 when that fails."""
        data = "".join(owner.line() for owner in owners).encode("ascii")
        tmp = None
        try:
            for _attempt in range(8):
                tmp = os.path.join(LEASE_DIR, f".{self.name}.lease.{os.urandom(4).hex()}")
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                    break
                except FileExistsError:
                    tmp = None
            else:
                raise OSError(errno.EEXIST, "no free temporary name")
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fchmod(fd, 0o644)
            finally:
                os.close(fd)
            os.rename(tmp, self.lease_path)
        except OSError as exc:
            if tmp is not None:
                _unlink(tmp)
            fail(EX_TUNNEL, f"could not write {self.lease_path}: {exc.strerror}")

    def acquire(self, owners, events):
        """Take the lease for ``owners`` (processes of this user) under the lock.

        Refused (exit 3) while a LIVE lease holds the tunnel, also when it is this job's own.
        A STALE or INVALID lease is taken over; when its tunnel still runs, it is stopped first.
        The lease written must itself pass the lease rule, else exit 4.
        """
        if os.geteuid() == 0:
            fail(EX_USAGE, "run ci-tunnel as the CI runner user, not as root (a lease written by root is never valid)")
        fd = self.lock_or_exit(events)
        try:
            state = examine_lease(self.lease_path)
            if state.kind == LIVE:
                if state.lease.held_by_this_job():
                    fail(EX_BUSY, f"tunnel '{self.name}' is already up for this job (PID {state.pid}); "
                                  f"use it, or 'ci-tunnel down {self.name}' first")
                fail(EX_BUSY, self.in_use(state.pid))
            for owner in owners:
                info = owner.process()
                if info is None:
                    fail(EX_TUNNEL, f"owner process {owner.pid} is already gone")
                if info.uid != os.geteuid():
                    fail(EX_USAGE, f"owner process {owner.pid} does not run as {user_name()}; call ci-tunnel from the job's own shell")
            active = unit_property(self.unit, "ActiveState")
            if active not in ("inactive", "failed", ""):
                say(f"tunnel {self.name} is {active} for a {state.kind} lease; stopping it first")
                if not self.stop_unit():
                    fail(EX_TUNNEL, f"could not take over tunnel {self.name}")
            self.write_lease(owners)
            self.acquired = True
            written = examine_lease(self.lease_path)
            if written.kind != LIVE:
                fail(EX_TUNNEL, f"the lease just written is not valid: {written.reason}")
        finally:
            os.close(fd)

    def stop_and_clear(self):
        """Stop the unit and remove the lease (whatever it holds) -> True when the stop worked."""
        stopped = self.stop_unit()
        try:
            os.unlink(self.lease_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            say(f"error: could not remove {self.lease_path}: {exc.strerror}")
        return stopped

    def release(self):
        """Every way out of run, and of an up that failed: stop the tunnel and remove the lease,
        under the lock when it can be had in LOCK_WAIT seconds, unless another job holds a LIVE
        lease by now (the tunnel is then its own). Signals cannot cut this short (Events keeps
        them, and the tools run in their own sessions)."""
        if not self.acquired or self.keep:
            return
        self.acquired = False
        try:
            fd = self.lock()
        except Exit:
            fd = None
        if fd is None:
            say(f"could not take {self.lock_path}; stopping tunnel {self.name} without it")
        try:
            state = examine_lease(self.lease_path)
            if state.kind == LIVE and not state.lease.held_by_this_job():
                say(f"tunnel {self.name} is held by PID {state.pid} (another job) by now; leaving it to that job")
                return
            stopped = self.stop_and_clear()
        finally:
            if fd is not None:
                os.close(fd)
        if stopped:
            say(f"tunnel {self.name} stopped")

    # -- starting -----------------------------------------------------------------------------------

    def started_since(self, unit, since_us):
        """True when ``unit`` left the inactive state at or after CLOCK_MONOTONIC ``since_us``
        (so its Result is about this start), or when that cannot be told."""
        value = unit_property(unit, "InactiveExitTimestampMonotonic")
        return not value.isdigit() or int(value) >= since_us

    def start_failure(self, status, since_us, elapsed, span):
        """Why `systemctl start` failed, from the Result of the tunnel and of its guard."""
        result = ""
        if self.started_since(self.unit, since_us):
            result = unit_property(self.unit, "Result")
            if result == "timeout":
                return (f"tunnel {self.name} did not become ready within its readiness timeout ({span or 'unknown'}); "
                        f"see: journalctl -u {self.unit}")
            if result in ("exit-code", "signal", "core-dump"):
                return (f"tunnel {self.name} failed to start: its program ended before it was ready "
                        f"(Result={result}) after {elapsed:.1f} s; see: journalctl -u {self.unit}")
        if self.started_since(self.guard_unit, since_us):
            guard_result = unit_property(self.guard_unit, "Result")
            if guard_result not in ("", "success"):
                return (f"tunnel {self.name} was refused by {self.guard_unit} (Result={guard_result}): "
                        f"no live lease; see: journalctl -u {self.guard_unit}")
        return (f"tunnel {self.name} failed to start (systemctl exit status {status}, Result={result or 'unknown'}); "
                f"see: journalctl -u {self.unit}")

    def start(self, events, watches):
        """`sudo -n SYSTEMCTL start UNIT`, which returns once openfortivpn reported READY=1 or the
        unit failed, bounded by start_limit(). Exit 4 with the reason when it fails; 128+N on
        signal N, 143 when a process in ``watches`` (the job's shell) is gone. The caller's
        ``release`` then stops the tunnel."""
        span = unit_property(self.unit, "TimeoutStartUSec")
        limit = start_limit(span)
        say(f"starting tunnel {self.name} ({self.unit})")
        since_us = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        began = time.monotonic()
        events.exit_if_signalled(f" while starting tunnel {self.name}")
        try:
            child = spawn_tool([SUDO, "-n", SYSTEMCTL, "start", self.unit])
        except OSError as exc:
            fail(EX_TUNNEL, f"cannot run {SUDO}: {exc.strerror}")
        watch = ChildWatch(child)
        try:
            gone = events.wait([watch] + watches, None if limit is None else began + limit)
            if child.poll() is None:
                end_tool(child, events)
                self._start_interrupted(events, gone, limit)
        finally:
            watch.close()
        elapsed = time.monotonic() - began
        if child.returncode != 0:
            fail(EX_TUNNEL, self.start_failure(child.returncode, since_us, elapsed, span))
        say(f"tunnel {self.name} is up (ready after {elapsed:.1f} s)")

    def _start_interrupted(self, events, gone, limit):
        events.exit_if_signalled(f" while starting tunnel {self.name}")
        if gone:
            say(f"the job's shell (PID {gone[0].pid}) is gone: stopping tunnel {self.name}")
            raise Exit(128 + signal.SIGTERM)
        fail(EX_TUNNEL, f"tunnel {self.name}: systemctl start did not return within {limit:g} s")


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


# -- Commands ---------------------------------------------------------------------------------------

def check_name(args):
    """The tunnel NAME, first of ``args``: missing is a usage error, one not matching NAME_RE
    (fullmatch) exits 2 as well."""
    if not args or not args[0]:
        usage()
    name = args[0]
    if not NAME_RE.fullmatch(name):
        fail(EX_USAGE, f"invalid tunnel name {name!r}: letters, digits, '_', '.' and '-' only "
                       f"(at most 64, the first not '.' or '-')")
    return name


def kill_grace():
    """CI_TUNNEL_KILL_GRACE: whole seconds, 0 to 9999 (unset or empty: KILL_GRACE_DEFAULT); else exit 2."""
    value = os.environ.get("CI_TUNNEL_KILL_GRACE", "")
    if value == "":
        return KILL_GRACE_DEFAULT
    if not re.fullmatch(r"[0-9]{1,4}", value):
        fail(EX_USAGE, "CI_TUNNEL_KILL_GRACE must be whole seconds (0 to 9999)")
    return int(value)


def job_shell():
    """(Owner, ProcInfo) of the parent process (the job's shell), (None, None) when it is PID 1 or gone."""
    ppid = os.getppid()
    if ppid < PID_MIN:
        return None, None
    return process_owner(ppid)


def supervise(tunnel, child, events, shell_watch, grace):
    """Wait for COMMAND. On INT/TERM/HUP, or when the job's shell is gone, send it SIGTERM, then
    SIGKILL after ``grace`` seconds. Returns ci-tunnel's exit status: 128+N after signal N, 143
    after the shell was gone, else COMMAND's (128+N when it was killed by signal N)."""
    watch = ChildWatch(child)
    cause = None
    kill_at = None
    try:
        while child.poll() is None:
            if cause is None:
                gone = events.wait([watch] + ([shell_watch] if shell_watch else []))
                if child.poll() is not None:
                    break
                if events.signal is not None:
                    cause = events.signal
                elif gone:
                    say(f"the job's shell (PID {shell_watch.pid}) is gone: ending the command and tunnel {tunnel.name}")
                    cause = signal.SIGTERM
                else:
                    continue
                child.send_signal(signal.SIGTERM)
                kill_at = time.monotonic() + grace
            else:
                events.wait([watch], kill_at, stop_on_signal=False)
                if kill_at is not None and time.monotonic() >= kill_at and child.poll() is None:
                    child.kill()
                    kill_at = None
    finally:
        watch.close()
    if cause is None:
        cause = events.drain()
    if cause is not None:
        if events.signal is not None:
            say(f"interrupted ({signal_name(events.signal)}); stopping tunnel {tunnel.name}")
        return 128 + cause
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


def cmd_run(args):
    """ci-tunnel run NAME [--] COMMAND [ARG...]"""
    name = check_name(args)
    command = args[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        usage()
    grace = kill_grace()
    if "/" not in command[0] and shutil.which(command[0]) is None:
        fail(127, f"{command[0]}: command not found")
    tunnel = Tunnel(name)
    tunnel.check_configured()
    me, _info = process_owner(os.getpid())
    shell, shell_info = job_shell()
    # The job's shell owns the lease too when it is a process of this user; under `runuser` or
    # `sudo -u` the parent is root's, and ci-tunnel alone owns it (it still watches that parent).
    owners = [me] + ([shell] if shell is not None and shell_info.uid == os.geteuid() else [])
    with Events() as events:
        shell_watch = OwnerWatch(shell) if shell is not None else None
        try:
            tunnel.acquire(owners, events)
            tunnel.start(events, [shell_watch] if shell_watch else [])
            events.exit_if_signalled(f"; stopping tunnel {name}")
            try:
                child = subprocess.Popen(command)  # pylint: disable=ansible-bad-function
            except OSError as exc:
                fail(127 if isinstance(exc, FileNotFoundError) else 126, f"{command[0]}: {exc.strerror}")
            return supervise(tunnel, child, events, shell_watch, grace)
        finally:
            tunnel.release()
            if shell_watch is not None:
                shell_watch.close()


def cmd_up(args):
    """ci-tunnel up NAME"""
    name = check_name(args)
    if len(args) != 1:
        usage()
    if os.getppid() <= 1:
        fail(EX_USAGE, "ci-tunnel up must be called from the job's shell (it owns the tunnel)")
    shell, shell_info = job_shell()
    if shell is None:
        fail(EX_USAGE, "ci-tunnel up must be called from the job's shell (it owns the tunnel); the caller is gone")
    if shell_info.uid != os.geteuid():
        fail(EX_USAGE, f"the calling process (PID {shell.pid}) does not run as {user_name()}; "
                       f"call ci-tunnel up from the job's own shell")
    tunnel = Tunnel(name)
    tunnel.check_configured()
    with Events() as events:
        shell_watch = OwnerWatch(shell)
        try:
            tunnel.acquire([shell], events)
            tunnel.start(events, [shell_watch])
            events.exit_if_signalled(f"; stopping tunnel {name}")
            tunnel.keep = True
            say(f"tunnel {name} stays up until 'ci-tunnel down {name}' or until the job's shell (PID {shell.pid}) ends")
            return EX_OK
        finally:
            tunnel.release()
            shell_watch.close()


def cmd_down(args):
    """ci-tunnel down NAME"""
    name = check_name(args)
    if len(args) != 1:
        usage()
    tunnel = Tunnel(name)
    tunnel.check_configured()
    with Events() as events:
        # Under the lock, so a job taking over a stale lease right now is not undone.
        fd = tunnel.lock_or_exit(events)
        try:
            state = examine_lease(tunnel.lease_path)
            if state.kind == LIVE and not state.lease.held_by_this_job():
                fail(EX_BUSY, tunnel.in_use(state.pid))
            stopped = tunnel.stop_and_clear()
        finally:
            os.close(fd)
    if not stopped:
        return EX_TUNNEL
    say(f"tunnel {name} stopped")
    return EX_OK


def cmd_guard_check(args):
    """ci-tunnel guard-check NAME (ExecStartPre= of the guard unit)"""
    name = check_name(args)
    if len(args) != 1:
        usage()
    state = examine_lease(Tunnel(name).lease_path)
    if state.kind != LIVE:
        say(f"error: {state.reason}; refusing to start tunnel {name}")
        return EX_GUARD
    say(f"tunnel {name} is owned by PID {' '.join(str(owner.pid) for owner in state.lease.owners)}")
    return EX_OK


def cmd_guard_watch(args):
    """ci-tunnel guard-watch NAME (ExecStart= of the guard unit): the lease is read and judged
    again, then every owner is watched at once; exit 0 as soon as one is gone."""
    name = check_name(args)
    if len(args) != 1:
        usage()
    state = examine_lease(Tunnel(name).lease_path)
    if state.kind == INVALID:
        say(f"error: {state.reason}; stopping tunnel {name}")
        return EX_GUARD
    if state.kind == STALE:
        say(f"{state.reason}: stopping tunnel {name}")
        return EX_OK
    watches = [OwnerWatch(owner) for owner in state.lease.owners]
    try:
        how = "pidfd" if all(watch.fd is not None for watch in watches) else f"checking /proc every {POLL_INTERVAL:g} s"
        say(f"watching owner PID {' '.join(str(watch.pid) for watch in watches)} of tunnel {name} ({how})")
        with Events(catch_signals=False) as events:
            gone = events.wait(watches)
        say(f"owner PID {gone[0].pid} of tunnel {name} is gone: stopping the tunnel")
    finally:
        for watch in watches:
            watch.close()
    return EX_OK


COMMANDS = {
    "run": cmd_run,
    "up": cmd_up,
    "down": cmd_down,
    "guard-check": cmd_guard_check,
    "guard-watch": cmd_guard_watch,
}


def main(argv=None):
    """ci-tunnel's entry point -> exit status (``argv`` without the program name)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] in (["-h"], ["--help"], ["help"]):
            sys.stdout.write(USAGE)
            return EX_OK
        if not args or args[0] not in COMMANDS:
            usage()
        return COMMANDS[args[0]](args[1:])
    except Exit as exc:
        return exc.code
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


# Installed as a program. SystemExit is what sys.exit() raises; ansible-test's pylint plugin
# refuses a sys.exit() call in any module_utils file.
if __name__ == "__main__":
    raise SystemExit(main())
