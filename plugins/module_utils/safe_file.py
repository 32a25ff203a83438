# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one path through which the collection writes files on a host.

A write:
  * refuses a symlink (or anything but a regular file) at the target, and a directory the trust
    policy (``trust``) does not trust for the caller's purpose;
  * creates a temp file in the target's own directory with O_EXCL|O_NOFOLLOW, owner, group and
    final mode set before the first byte is written (never looser than 0600 on the way);
  * writes, fsyncs, optionally validates the temp file with a caller's check, renames it over the
    target (atomic on one filesystem) and fsyncs the directory;
  * is a no-op when content, owner, group and mode already match (idempotence);
  * in check mode only compares, and runs the caller's check on a private copy;
  * builds a diff only when the module runs with --diff, from texts the caller may redact.

``module.atomic_move`` is deliberately not used: it copies the old file's mode and owner onto the
new temp file before renaming, which for a secret replacing a once-loose file opens a window.
"""

from __future__ import annotations

import grp
import inspect
import os
import pwd
import shutil
import stat
import tempfile

from ansible_collections.supervised.background.plugins.module_utils import trust


class FileError(Exception):
    """A file could not be inspected or written; the message names the path and the reason."""


def _trusted(path, purpose):
    try:
        trust.check("path", path, purpose)
    except trust.TrustError as err:
        raise FileError(str(err).split(": ", 1)[1]) from None


class FileState:
    """What is at a path now: content bytes, uid, gid and permission bits."""

    def __init__(self, content, uid, gid, mode):
        self.content = content
        self.uid = uid
        self.gid = gid
        self.mode = mode


class WriteResult:
    """Outcome of :func:`write_file` / :func:`remove_file`."""

    def __init__(self, changed, previous, diff=None):
        self.changed = changed
        self.previous = previous
        self.diff = diff


def resolve_uid(owner):
    if isinstance(owner, int) or (isinstance(owner, str) and owner.isdigit()):
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise FileError(f"owner: user '{owner}' does not exist on the host") from None


def resolve_gid(group):
    if isinstance(group, int) or (isinstance(group, str) and group.isdigit()):
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise FileError(f"group: group '{group}' does not exist on the host") from None


def read_state(path):
    """Return the :class:`FileState` at ``path``, ``None`` when nothing is there.

    Raises :class:`FileError` for a symlink, a directory or any other non-regular file, so no
    caller ever reads or writes through a link an attacker planted.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise FileError(f"{path} is a symlink; refusing to write through it")
    if not stat.S_ISREG(st.st_mode):
        raise FileError(f"{path} exists and is not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return FileState(b"".join(chunks), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))


def _text(data):
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else (data or "")


def make_diff(path, before, after):
    """A diff dict in the shape Ansible's callback renders; texts may already be redacted."""
    return {
        "before": _text(before),
        "after": _text(after),
        "before_header": path if before is not None else f"{path} (absent)",
        "after_header": path if after is not None else f"{path} (absent)",
    }


def _fsync_dir(directory):
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _write_temp(directory, basename, content, uid, gid, mode):
    """Create the temp file with its final owner and mode before any content is written."""
    last_error = None
    for _attempt in range(16):
        tmp = os.path.join(directory, f".{basename}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600 & mode if mode & 0o600 else 0)
        except FileExistsError as exc:
            last_error = exc
            continue
        try:
            if os.geteuid() == 0 or uid != os.geteuid() or gid != os.getegid():
                os.fchown(fd, uid, gid)
            _drop_acl(fd)
            os.fchmod(fd, mode)
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        os.close(fd)
        return tmp
    raise FileError(f"could not create a temp file in {directory}: {last_error}")


def _drop_acl(fd):
    """A file created in a directory with a default ACL inherits entries for other users; the
    mode alone then does not say who may read it. Drop them before the first byte is written."""
    try:
        os.removexattr(fd, "system.posix_acl_access")
    except OSError:
        pass


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_file(module, path, content, owner="root", group="root", mode=0o600, validate=None,
               diff_before=None, diff_after=None, purpose=trust.WRITE_DIR):
    """Make ``path`` hold exactly ``content`` (bytes) with owner/group/mode; return a WriteResult.

    ``validate(tmp_path)`` may raise :class:`FileError` (or return an error string) to stop the
    write; in a real run it sees the very temp file that would be renamed into place, in check mode
    a copy in a private directory. ``diff_before``/``diff_after`` replace the texts put into the
    diff (to redact secrets); the content itself is never put in an error message.
    """
    if isinstance(content, str):
        content = content.encode("utf-8")
    uid = resolve_uid(owner)
    gid = resolve_gid(group)
    directory = os.path.dirname(path) or "."
    basename = os.path.basename(path)
    if not os.path.isdir(directory):
        if module.check_mode and not os.path.lexists(directory):
            # An earlier task of the same check-mode run would have created it.
            diff = make_diff(path, None, diff_after if diff_after is not None else content) if module._diff else None
            return WriteResult(True, None, diff)
        raise FileError(f"{path}: directory {directory} does not exist")
    _trusted(directory, purpose)
    try:
        previous = read_state(path)
    except OSError as exc:
        raise FileError(f"{path}: cannot read the current file: {exc.strerror}") from None

    unchanged = (previous is not None and previous.content == content and previous.uid == uid
                 and previous.gid == gid and previous.mode == mode)
    diff = None
    if module._diff and not unchanged:
        before = diff_before if diff_before is not None else (previous.content if previous else None)
        after = diff_after if diff_after is not None else content
        diff = make_diff(path, before if previous is not None else None, after)
        if previous is not None and (previous.uid, previous.gid, previous.mode) != (uid, gid, mode):
            diff["before"] = _text(diff["before"]) + _meta_line(previous.uid, previous.gid, previous.mode)
            diff["after"] = _text(diff["after"]) + _meta_line(uid, gid, mode)
    if unchanged:
        return WriteResult(False, previous)

    if module.check_mode:
        if validate is not None:
            scratch = tempfile.mkdtemp(prefix="supervised-check-")
            try:
                os.chmod(scratch, 0o700)
                tmp = _write_temp(scratch, basename, content, os.geteuid(), os.getegid(), 0o600)
                _run_validate(validate, tmp)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return WriteResult(True, previous, diff)

    try:
        tmp = _write_temp(directory, basename, content, uid, gid, mode)
    except OSError as exc:
        raise FileError(f"{path}: cannot write a temp file in {directory}: {exc.strerror}") from None
    try:
        _run_validate(validate, tmp)
        # Re-check right before the rename: a symlink planted since we looked is refused too.
        read_state(path)
        os.rename(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(directory)
    return WriteResult(True, previous, diff)


def _meta_line(uid, gid, mode):
    return f"\n# owner={uid} group={gid} mode={mode:04o}\n"


def _run_validate(validate, tmp):
    if validate is None:
        return
    error = validate(tmp)
    if error:
        raise FileError(str(error))


def restore(module, path, previous):
    """Put back what :func:`write_file` replaced (``previous`` from its result), or remove the
    file when nothing was there before. Used when a check of the whole configuration fails after
    a new file landed."""
    if previous is None:
        _unlink_quietly(path)
        _fsync_dir(os.path.dirname(path) or ".")
        return
    directory = os.path.dirname(path) or "."
    tmp = _write_temp(directory, os.path.basename(path), previous.content, previous.uid,
                      previous.gid, previous.mode)
    try:
        os.rename(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(directory)


def remove_file(module, path, diff_before=None, purpose=trust.WRITE_DIR):
    """Remove the file at ``path`` (a symlink there is removed as a link, never followed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return WriteResult(False, None)
    _trusted(os.path.dirname(path) or "/", purpose)
    if stat.S_ISDIR(st.st_mode):
        raise FileError(f"{path} is a directory; refusing to remove it")
    previous = None
    if stat.S_ISREG(st.st_mode):
        previous = read_state(path)
    diff = None
    if module._diff:
        before = diff_before if diff_before is not None else (previous.content if previous else "")
        diff = make_diff(path, before, None)
    if not module.check_mode:
        _unlink_quietly(path)
        _fsync_dir(os.path.dirname(path) or ".")
    return WriteResult(True, previous, diff)


def ensure_directory(module, path, owner="root", group="root", mode=0o755, purpose=trust.WRITE_DIR):
    """Create ``path`` (one level) or fix its owner/mode; refuse a symlink or a non-directory, and a
    parent the trust policy does not trust for ``purpose``.

    Returns True when something changed (or would change in check mode)."""
    uid = resolve_uid(owner)
    gid = resolve_gid(group)
    _trusted(os.path.dirname(path.rstrip("/")) or "/", purpose)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise FileError(f"{path} is a symlink; refusing to use it as a directory")
        if not stat.S_ISDIR(st.st_mode):
            raise FileError(f"{path} exists and is not a directory")
        if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, mode):
            return False
        if not module.check_mode:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                # Tighten the mode first so the directory is never looser than asked on the way.
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & mode)
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        return True
    parent = os.path.dirname(path.rstrip("/")) or "/"
    if not os.path.isdir(parent):
        raise FileError(f"{path}: parent directory {parent} does not exist")
    if not module.check_mode:
        os.mkdir(path, 0o700)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    return True


def program_text(util_module):
    """A module_util of the collection as a program for the host's python3 (the helpers the
    collection installs are module_utils, so their rules and constants live in one place). ``-I``:
    the caller's PYTHONPATH, PYTHONHOME and user site never reach a helper."""
    return "#!/usr/bin/python3 -I\n" + inspect.getsource(util_module)


def install_program(module, path, util_module, parents_mode=0o755):
    """Install ``util_module`` as the executable ``path`` (root:root 0755), creating the missing
    directories above it root-owned. Returns True when something changed."""
    changed = False
    missing = []
    parent = os.path.dirname(path)
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        changed = ensure_directory(module, directory, "root", "root", parents_mode) or changed
        if module.check_mode:
            # The levels below a directory check mode did not create cannot be looked at.
            return True
    result = write_file(module, path, program_text(util_module), owner="root", group="root", mode=0o755)
    return result.changed or changed
