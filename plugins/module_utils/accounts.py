# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""System accounts for services: a system group and a system user with no login shell and no home.

The same semantics the worker role had with ansible.builtin.group/user (``system: true``, shell
``/usr/sbin/nologin``, home ``/nonexistent``, no home created), done with the shadow tools in the
module's own run, so a worker is reconciled in one module call.
"""

from __future__ import annotations

import grp
import pwd

NOLOGIN = "/usr/sbin/nologin"
NO_HOME = "/nonexistent"


class AccountError(Exception):
    """A group or user could not be created, changed or removed; the message names it."""


def _run(module, argv, what):
    rc, out, err = module.run_command(argv)
    if rc != 0:
        raise AccountError(f"{what}: {argv[0]} failed (rc={rc}): {(err or out).strip()}")


def ensure_system_account(module, user, group):
    """Make ``group`` a system group and ``user`` a system user in it with no login shell and no
    home. Returns a list of what changed (for the result), empty when nothing did."""
    changes = []
    try:
        grp.getgrnam(group)
    except KeyError:
        changes.append(f"group {group} created")
        if not module.check_mode:
            _run(module, [module.get_bin_path("groupadd", required=True), "--system", "--", group], "group")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        changes.append(f"user {user} created")
        if not module.check_mode:
            _run(module, [module.get_bin_path("useradd", required=True), "--system", "--gid", group, "--shell", NOLOGIN,
                          "--home-dir", NO_HOME, "--no-create-home", "--", user], "user")
        return changes
    fixes = []
    try:
        wanted_gid = grp.getgrnam(group).gr_gid
    except KeyError:
        wanted_gid = None
    if wanted_gid is None or entry.pw_gid != wanted_gid:
        fixes += ["--gid", group]
    if entry.pw_shell != NOLOGIN:
        fixes += ["--shell", NOLOGIN]
    if fixes:
        changes.append(f"user {user} changed ({' '.join(fixes[::2]).replace('--', '')})")
        if not module.check_mode:
            _run(module, [module.get_bin_path("usermod", required=True)] + fixes + ["--", user], "user")
    return changes


def remove_account(module, user, group):
    """Remove ``user`` and then ``group`` (when no other user has it as primary group)."""
    changes = []
    try:
        pwd.getpwnam(user)
        changes.append(f"user {user} removed")
        if not module.check_mode:
            _run(module, [module.get_bin_path("userdel", required=True), "--", user], "user")
    except KeyError:
        pass
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return changes
    others = [e.pw_name for e in pwd.getpwall() if e.pw_gid == gid and e.pw_name != user]
    if not others:
        changes.append(f"group {group} removed")
        if not module.check_mode:
            _run(module, [module.get_bin_path("groupdel", required=True), "--", group], "group")
    return changes
