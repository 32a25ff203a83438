# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one trust policy: may this file or directory be trusted for a purpose?

Every module asks :func:`check` before it writes a file, lets root read one, or lets root run
one; it names its purpose, it never walks a path itself. The rules, the same for every purpose:

1. **Owner.** The leaf (when it exists) and every existing directory above it, up to ``/``, are
   owned by root. Purposes where only the module itself writes (``WRITE_DIR``, ``SECRET_DIR``)
   also accept the user the module runs as: that user can already do whatever the file allows.
2. **Writers.** None of them is writable by its group or by everyone. A sticky directory (``/tmp``,
   ``/var/tmp``, ``/dev/shm``, ``/run/lock``) is no exception: others cannot rename an entry there,
   but they can create a missing one, and ``/tmp`` is emptied at boot and by age, after which the
   name is anyone's. A POSIX ACL that grants write to a named user or group shows in the group
   bits (the ACL mask), so it is refused by the same rule.
3. **Symlinks.** The leaf is never a symlink, except where the purpose says so (unit files are often
   links into /lib/systemd); a symlink among the directories is followed, and both the path as
   given and the path it resolves to must pass rules 1 and 2. Purposes that name a path another
   program matches as a string (``SUDO_BINARY``: sudo matches the command by its path) refuse any
   symlink on the way.
4. **Kind.** A file purpose needs a regular file (executable for the ``*_BINARY`` ones), a
   directory purpose a directory. A missing leaf is refused unless the purpose allows it (a
   directory the module is about to create, a file a sudo rule names that root will create).
5. **Secrets.** A secret's directory must not carry a default ACL: files created in it would
   inherit entries for other users.

Nothing here changes the host; :class:`TrustError` carries the field, the path, the rule and the
way out.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.supervised.background.plugins.module_utils.validate import InputError


class TrustError(InputError):
    """A path that breaks the trust policy; the message names the field, the path and the rule."""


class Purpose:
    """What a path is trusted for. ``kind`` is 'dir', 'file' or 'any'."""

    def __init__(self, name, kind, self_owned=False, missing_ok=False, link_ok=False, exact=False,
                 executable=False, no_default_acl=False):
        self.name = name
        self.kind = kind
        self.self_owned = self_owned
        self.missing_ok = missing_ok
        self.link_ok = link_ok
        self.exact = exact
        self.executable = executable
        self.no_default_acl = no_default_acl

    def __repr__(self):
        return f"Purpose({self.name!r})"


WRITE_DIR = Purpose("a directory the collection writes files into", "dir", self_owned=True, missing_ok=True)
SECRET_DIR = Purpose("a secret's directory", "dir", self_owned=True, missing_ok=True, no_default_acl=True)
ROOT_READ = Purpose("a file root will read", "file")
ROOT_READ_LINK = Purpose("a file root will read (a symlink allowed)", "file", link_ok=True)
ROOT_BINARY = Purpose("a binary root will run", "file", executable=True)
SUDO_BINARY = Purpose("a binary a sudo rule names", "file", executable=True, exact=True)
SUDO_FILE = Purpose("a file a sudo rule names", "any", missing_ok=True)
ROOT_DIR = Purpose("a directory root will work in", "dir")

PURPOSES = (WRITE_DIR, SECRET_DIR, ROOT_READ, ROOT_READ_LINK, ROOT_BINARY, SUDO_BINARY, SUDO_FILE, ROOT_DIR)

_ADVICE = "keep it and every directory above it owned by root and writable by no one else"


def _owners(purpose):
    return {0, os.geteuid()} if purpose.self_owned else {0}


def _has_default_acl(path):
    try:
        return bool(os.getxattr(path, "system.posix_acl_default", follow_symlinks=False))
    except OSError:
        return False


def _walk(start):
    """``start`` and every directory above it, up to ``/``."""
    current = start
    while True:
        yield current
        if current == "/":
            return
        current = os.path.dirname(current) or "/"


def _loose(st):
    return stat.S_IMODE(st.st_mode) & 0o022


def _describe(st):
    return f"owned by uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}"


def _check_chain(field, path, given, purpose, owners):
    """Rules 1 and 2 for the directories above ``given`` (the leaf is checked by the caller)."""
    parent = os.path.dirname(given) or "/"
    if given == "/":
        return
    for current in _walk(parent):
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise TrustError(f"{field}: {current} cannot be inspected ({exc.strerror})") from None
        if stat.S_ISLNK(st.st_mode):
            if purpose.exact:
                raise TrustError(
                    f"{field}: {path} goes through the symlink {current} (really {os.path.realpath(path)}); "
                    f"{purpose.name} must be named by its real path"
                )
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise TrustError(f"{field}: {current} above {path} is not a directory")
        if st.st_uid not in owners or _loose(st):
            sticky = " (sticky or not: a missing name there is anyone's)" if st.st_mode & stat.S_ISVTX else ""
            raise TrustError(
                f"{field}: {path} is not trusted as {purpose.name}: directory {current} is {_describe(st)}"
                f"{sticky}, so another user could replace what lies below it; {_ADVICE}"
            )


def check(field, path, purpose):
    """Raise :class:`TrustError` unless ``path`` may be trusted for ``purpose``.

    Returns the leaf's ``os.stat_result`` (None when it is missing and the purpose allows that).
    """
    owners = _owners(purpose)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise TrustError(f"{field}: {path} cannot be inspected ({exc.strerror})") from None
    if st is None and not purpose.missing_ok:
        raise TrustError(f"{field}: {path} does not exist")
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            if not purpose.link_ok:
                raise TrustError(
                    f"{field}: {path} is a symlink (to {os.path.realpath(path)}); {purpose.name} must be "
                    "named by its real path"
                )
            try:
                st = os.stat(path)
            except OSError:
                raise TrustError(f"{field}: {path} is a dangling symlink") from None
        if purpose.kind == "dir" and not stat.S_ISDIR(st.st_mode):
            raise TrustError(f"{field}: {path} is not a directory")
        if purpose.kind == "file" and not stat.S_ISREG(st.st_mode):
            raise TrustError(f"{field}: {path} is not a regular file")
        if purpose.executable and not st.st_mode & 0o111:
            raise TrustError(f"{field}: {path} is not executable")
        if st.st_uid not in owners or _loose(st):
            raise TrustError(
                f"{field}: {path} is not trusted as {purpose.name}: it is {_describe(st)}, so someone other "
                f"than root could change it; {_ADVICE}"
            )
        if purpose.no_default_acl and stat.S_ISDIR(st.st_mode) and _has_default_acl(path):
            raise TrustError(
                f"{field}: {path} carries a default ACL, so files created in it would be shared with other "
                "users; remove it (setfacl -k) or use another directory"
            )
    resolved = os.path.realpath(path)
    if purpose.exact and resolved != path:
        raise TrustError(f"{field}: {path} goes through a symlink (really {resolved}); name the real path")
    for given in dict.fromkeys((path, resolved)):
        _check_chain(field, path, given, purpose, owners)
        if given != path:
            # The resolved leaf itself (a link's target) must pass rules 1 and 2 as well.
            try:
                target = os.lstat(given)
            except FileNotFoundError:
                continue
            if target.st_uid not in owners or _loose(target):
                raise TrustError(
                    f"{field}: {path} resolves to {given}, which is {_describe(target)}; {_ADVICE}"
                )
    return st


def check_directory_of(field, path, purpose=WRITE_DIR):
    """The directory a file at ``path`` lives in, checked for ``purpose``."""
    return check(field, os.path.dirname(path) or "/", purpose)
