# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One lock per object on a host, so two runs at once never leave a mixed state.

A module that reads state, decides and then changes it holds the lock of every object it changes
from the first read to the last change (``with host_lock(module, "unit", "worker@.service"):``).
Locks are ``flock`` locks on files under ``/run/supervised-background/lock/`` (root-only, gone at
reboot, like the processes that held them; a crashed holder's lock is released by the kernel).

* The wait is bounded (``timeout`` seconds); when it runs out the module fails with the object,
  the holder's PID, its module and since when it holds the lock.
* Several objects are locked in one sorted order, so two modules never wait for each other.
* Check mode takes the lock shared: it waits for a real run to finish (it would report a state
  that is about to change), but it never blocks another check run, and a real run waits only for
  the read-only moments of a check run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import time
from contextlib import contextmanager

from ansible_collections.supervised.background.plugins.module_utils.validate import timespan

LOCK_DIR = "/run/supervised-background/lock"
DEFAULT_TIMEOUT = 300.0
# The option every changing module takes (documented once: the attributes.lock doc fragment).
LOCK_SPEC = {"lock_timeout": {"type": "raw", "default": "5min"}}


def lock_wait(params):
    """The validated lock_timeout of a module's parameters, in seconds."""
    return timespan("lock_timeout", params["lock_timeout"], maximum=86400.0)


_POLL = 0.05


class LockTimeout(Exception):
    """The wait for a lock ran out; the message names the object and the holder."""


def _file_name(kind, name):
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", name)[:80]
    digest = hashlib.sha256(f"{kind}\0{name}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{kind}-{safe}-{digest}.lock"


def _ensure_dir(directory):
    """Create the lock directory root-only; refuse one someone else could have planted."""
    parent = os.path.dirname(directory)
    for path, mode in ((parent, 0o755), (directory, 0o700)):
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (0, os.geteuid()) or stat.S_IMODE(st.st_mode) & 0o022:
            raise LockTimeout(f"lock directory {path} is not a directory owned by root and writable only by it")


def _holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096).decode("utf-8", "replace")
        info = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info:
        return "another run (holder unknown)"
    since = info.get("since")
    age = f", for {time.time() - since:.0f} s" if isinstance(since, (int, float)) else ""
    return f"PID {info.get('pid', '?')} ({info.get('module', '?')}{age})"


def _acquire(path, shared, deadline, label):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    waited_from = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, flags)
            return fd, time.monotonic() - waited_from
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        if time.monotonic() >= deadline:
            holder = _holder(fd)
            os.close(fd)
            raise LockTimeout(
                f"{label} is being changed by {holder}; waited {time.monotonic() - waited_from:.0f} s "
                "(lock_timeout). Run again when that run has finished"
            )
        time.sleep(_POLL)


@contextmanager
def host_lock(module, objects, timeout=None, directory=None):
    """Hold the locks of ``objects`` (``[(kind, name)]`` or one ``(kind, name)``) for the block.

    Fails the module (``fail_json``) on a timeout. Yields the longest wait in seconds.
    """
    if isinstance(objects, tuple):
        objects = [objects]
    directory = directory or LOCK_DIR
    shared = bool(module.check_mode)
    timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    deadline = time.monotonic() + timeout
    held = []
    waited = 0.0
    try:
        try:
            _ensure_dir(directory)
            for kind, name in sorted(set(objects)):
                label = f"{kind} {name}"
                fd, wait = _acquire(os.path.join(directory, _file_name(kind, name)), shared, deadline, label)
                held.append(fd)
                waited = max(waited, wait)
                if not shared:
                    record = json.dumps({"pid": os.getpid(), "module": getattr(module, "_name", "module"),
                                         "since": time.time(), "object": label})
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, record.encode("utf-8", "replace"), 0)
        except LockTimeout as err:
            module.fail_json(msg=f"lock_timeout: {err}", changed=False, lock_timeout=True)
        except OSError as err:
            module.fail_json(msg=f"lock_timeout: could not take the lock in {directory}: {err.strerror}", changed=False)
        yield waited
    finally:
        for fd in held:
            try:
                if not shared:
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
