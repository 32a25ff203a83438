#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sudoers_exact
short_description: Grant a user or group exact root commands in one sudoers.d file
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Writes one file C(/etc/sudoers.d/NAME) that lets one O(user) or O(group) run a fixed list of
    commands, each with exactly the arguments given and nothing else.
  - A command given without arguments is written as C(/path/to/cmd "") so that sudo allows it with
    B(no) arguments (a bare path in sudoers would allow any arguments).
  - Refuses everything that cannot be written safely, naming the entry and the rule broken
    (relative or symlinked paths, missing binaries, wildcards, sudoers syntax characters, C(ALL),
    binaries or directories above them writable by anyone but root, commands that hand out a
    shell unless O(allow_shell_escape=true), file names sudo would silently ignore, files named in
    arguments and systemd unit files the grantee could change).
  - The new file is checked with C(visudo -cf) on the very temp file that then replaces the live
    one; afterwards the whole configuration is checked with C(visudo -c) and, if that fails, the
    previous file is put back and the task fails.
  - Works with sudo and with sudo-rs (its C(visudo) only reads files, never standard input).
extends_documentation_fragment:
  - supervised.background.attributes
attributes:
  check_mode:
    support: full
    details: The new file is validated with visudo on a private copy; nothing is written.
  diff_mode:
    support: full
options:
  name:
    description:
      - File name under O(sudoers_dir).
      - Letters, digits, C(_) and C(-) only. sudo silently ignores files in C(sudoers.d) whose name
        contains a C(.) or ends with C(~), so such names are refused.
    type: str
    required: true
  state:
    description: C(present) writes the file, C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  user:
    description: The user granted the commands. Exactly one of O(user) and O(group) is required with O(state=present).
    type: str
  group:
    description: The group (written as C(%group)) granted the commands.
    type: str
  runas:
    description: The user the commands run as.
    type: str
    default: root
  nopasswd:
    description: Whether the commands run without asking for the grantee's password (C(NOPASSWD:)).
    type: bool
    default: true
  commands:
    description:
      - The commands granted. Each entry is an argv list (the absolute path of the binary, then its
        arguments) or a string split the way a POSIX shell would split it (C(shlex)).
      - Each command is allowed with exactly those arguments. An entry with no arguments allows the
        binary with no arguments at all.
      - "Arguments may use letters, digits and C(@ % + . / _ - ^ ~ = : ,). Spaces inside one
        argument, quotes, wildcards and backslashes cannot be written safely and are refused."
    type: list
    elements: raw
    default: []
  allow_shell_escape:
    description:
      - Allow shells, interpreters, editors, pagers and other commands known to hand out a shell or
        write arbitrary files as root (see the module documentation page for the list).
      - Granting such a command is granting full root. Leave this off.
    type: bool
    default: false
  sudoers_dir:
    description: Directory holding the file (meant for tests).
    type: path
    default: /etc/sudoers.d
  visudo:
    description:
      - Path to the visudo binary. By default C(visudo) is looked up on PATH (and in C(/usr/sbin),
        C(/sbin)), then C(visudo-rs) (Debian 13 with sudo-rs only).
      - When both sudo's C(visudo) and sudo-rs' C(visudo-rs) are installed, the new file is checked
        with both, so the rules stay portable.
      - A path given here is run as root, so it must be a regular file owned by root, writable by no
        one else, in directories only root can change.
    type: path
notes:
  - The grantee (user or group) must exist, so that the module can prove it cannot write the binary.
  - Write access through a POSIX ACL shows in the group write bit (the ACL mask), which is refused
    on the binary and its directories, and on files named in arguments that carry an ACL.
seealso:
  - name: Sudoers pitfalls and this module
    description: docs/sudoers.md in the collection.
    link: https://www.sudo.ws/docs/man/sudoers.man/
"""

EXAMPLES = r"""
- name: Let the CI runner start and stop the corporate tunnel, nothing else
  supervised.background.sudoers_exact:
    name: ci-runner-vpn
    user: gitlab-runner
    commands:
      - [/usr/bin/systemctl, start, openfortivpn@corp.service]
      - /usr/bin/systemctl stop openfortivpn@corp.service

- name: A command that may only run without arguments
  supervised.background.sudoers_exact:
    name: ops-uptime
    group: ops
    commands:
      - [/usr/bin/uptime]

- name: Remove the grant
  supervised.background.sudoers_exact:
    name: ci-runner-vpn
    state: absent
"""

RETURN = r"""
path:
  description: The sudoers file managed.
  returned: always
  type: str
  sample: /etc/sudoers.d/ci-runner-vpn
rules:
  description: The rule lines rendered (empty with O(state=absent)).
  returned: always
  type: list
  elements: str
  sample:
    - gitlab-runner ALL=(root) NOPASSWD: /usr/bin/systemctl start openfortivpn@corp.service
diff:
  description: Before/after texts of the file (with --diff).
  returned: when changed and diff mode is on
  type: dict
"""

import grp
import os
import pwd
import re
import shlex
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import safe_file
from ansible_collections.supervised.background.plugins.module_utils.systemd import Systemd, SystemdError
from ansible_collections.supervised.background.plugins.module_utils.validate import (
    InputError,
    single_line,
)

HEADER = "# Managed by supervised.background.sudoers_exact: exact commands only. Do not edit.\n"

_FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
_PRINCIPAL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
# sudoers reads an all-capitals word as an alias (User_Alias, Runas_Alias), which can name anyone.
_ALIAS_RE = re.compile(r"[A-Z][A-Z0-9_]*")
# Words with a meaning of their own at the start of a sudoers line or in a user list.
_RESERVED = frozenset({"ALL", "Defaults", "User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias",
                       "Cmd_Alias"})
_PATH_RE = re.compile(r"/[A-Za-z0-9@%+._/-]+")
# Characters an argument may hold. '=', ':' and ',' are written with a backslash in front.
_ARG_RE = re.compile(r"[A-Za-z0-9@%+._/^~=:,-]+")
_ESCAPED = {"=": "\\=", ":": "\\:", ",": "\\,"}
_WILDCARDS = set("*?[]\\")

# Commands that hand out a shell, run another command, read a program or script from a place the
# caller influences, or write arbitrary files as root.
SHELL_ESCAPE_NAMES = frozenset("""
sh bash dash zsh ksh mksh pdksh ash csh tcsh fish rbash busybox toybox pwsh
node nodejs deno bun tclsh wish awk gawk mawk nawk expect irb jshell jrunscript java R Rscript julia
env sudo sudoedit su doas pkexec runuser setpriv capsh run0 sg newgrp runcon chrt prlimit setarch
linux32 linux64 numactl cgexec firejail systemd-nspawn machinectl
vi vim nvim vim.basic vim.tiny vimdiff nano rnano emacs ed red ex view rview rvim pico joe jed mcedit
mc editor sensible-editor select-editor
less more most man pg pager info pinfo w3m lynx elinks mail mailx mutt ftp lftp tftp smbclient
telnet tmux screen htop iftop mysql mariadb psql sqlite3
find xargs parallel tar cpio zip unzip 7z git rsync tee dd cp mv install chmod chown chgrp ln sed
sort split truncate shred curl wget openssl ssh-keygen
systemd-run systemd-tmpfiles nsenter unshare chroot script ssh scp sftp crontab at batch watch time
timeout nice nohup ionice taskset stdbuf unbuffer flock setsid strace ltrace gdb valgrind perf
bpftrace tcpdump docker podman kubectl ctr crictl nerdctl lxc virsh mount umount fusermount
dpkg apt apt-get aptitude rpm dnf yum snap npm gem cargo make cc gcc g++ clang ld insmod modprobe
kmod kexec debugfs setfacl setcap chattr useradd usermod adduser passwd chpasswd gpasswd vipw vigr
update-alternatives busctl coredumpctl visudo socat nc ncat netcat pppd logrotate
""".split())
SHELL_ESCAPE_PREFIXES = ("python", "perl", "ruby", "php", "lua", "pip", "ld-linux", "ld.so", "ld64",
                         "ansible")

# systemctl: only these options are allowed; every other one (getopt_long also accepts any
# unambiguous abbreviation: --ho=x is --host=x) could reach another machine, root or image.
SYSTEMCTL_OPTIONS = frozenset({
    "--no-pager", "--no-block", "--quiet", "-q", "--now", "--no-ask-password", "--wait",
    "--no-reload", "--no-legend", "--full", "-l", "--all", "-a", "--failed", "--system", "--plain",
})
# systemctl verbs that change who can do what, load arbitrary units or files, or replace systemd.
SYSTEMCTL_REFUSED = frozenset({
    "edit", "set-environment", "import-environment", "unset-environment", "link", "set-property",
    "revert", "daemon-reexec", "switch-root", "bind", "mount-image",
})
# systemctl verbs that never show their output in a pager.
SYSTEMCTL_UNPAGED = frozenset({
    "start", "stop", "restart", "reload", "try-restart", "reload-or-restart",
    "try-reload-or-restart", "condrestart", "force-reload", "enable", "disable", "reenable",
    "mask", "unmask", "reset-failed", "kill", "is-active", "is-failed", "is-enabled",
    "is-system-running", "daemon-reload", "isolate", "freeze", "thaw", "clean", "preset",
    "get-default", "set-default", "poweroff", "reboot", "halt", "suspend", "hibernate",
})
# Tools that always page their output unless --no-pager is given.
PAGED_TOOLS = frozenset({"journalctl", "loginctl", "networkctl", "resolvectl", "timedatectl",
                         "hostnamectl", "localectl", "homectl", "userdbctl", "portablectl"})
# Options (long ones matched with every abbreviation getopt_long accepts; short ones anywhere in a
# cluster) that make an otherwise harmless tool run code, load a library or write any file as root.
REFUSED_OPTIONS = {
    "journalctl": ({"--root", "--directory", "--file", "--image", "--machine", "--vacuum-size",
                    "--vacuum-files", "--vacuum-time", "--setup-keys", "--update-catalog",
                    "--output-fields"}, set("DMi")),
    "openfortivpn": ({"--pppd-plugin", "--pppd-log", "--pppd-call", "--pppd-ipparam", "--pinentry",
                      "--ppp-system", "--password"}, set("p")),
    "openvpn": ({"--up", "--down", "--plugin", "--script-security", "--route-up", "--route-pre-down",
                 "--ipchange", "--client-connect", "--client-disconnect", "--learn-address",
                 "--auth-user-pass-verify", "--tls-verify", "--tls-crypt-v2-verify", "--iproute",
                 "--log", "--log-append", "--writepid", "--status", "--cd", "--management",
                 "--tmp-dir", "--askpass", "--auth-user-pass"}, set()),
}


def _people(names):
    """(uids, gids) of the named users and of every group any of them is in: what they can write."""
    uids, gids = set(), set()
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        uids.add(entry.pw_uid)
        gids.add(entry.pw_gid)
    gids |= {g.gr_gid for g in grp.getgrall() if names & set(g.gr_mem)}
    return uids, gids


def _has_acl(path):
    try:
        return bool(os.getxattr(path, "system.posix_acl_access", follow_symlinks=False))
    except OSError:
        return False


def _long_option_hit(arg, names):
    """Whether ``arg`` is (an abbreviation of) one of the long options ``names``."""
    if not arg.startswith("--") or arg == "--":
        return False
    opt = arg.split("=", 1)[0]
    return len(opt) > 2 and any(name.startswith(opt) for name in names)


def _short_option_hit(arg, letters):
    return arg.startswith("-") and not arg.startswith("--") and bool(set(arg[1:]) & letters)


def _pager_free(args):
    """--no-pager must be given, and no '--' (after which it would be an operand)."""
    return "--no-pager" in args and "--" not in args


def shell_escape_reason(path, args):
    """Why ``path args`` would hand out a shell (or None). Pure function, unit-tested."""
    base = os.path.basename(path)
    if base in SHELL_ESCAPE_NAMES or base.startswith(SHELL_ESCAPE_PREFIXES):
        return f"'{base}' can run other commands or write any file as root"
    if base == "systemctl":
        return _systemctl_reason(args)
    if base in PAGED_TOOLS and not _pager_free(args):
        return f"'{base}' without --no-pager shows output in a pager (less), which can start a shell"
    if base in REFUSED_OPTIONS:
        longs, shorts = REFUSED_OPTIONS[base]
        for arg in args:
            if _long_option_hit(arg, longs) or _short_option_hit(arg, shorts):
                return f"'{base} {arg}' can run code, load a library or write any file as root"
    if base == "ip":
        for arg in args:
            if (arg and "exec".startswith(arg)) or (len(arg) > 1 and "-batch".startswith(arg)) \
                    or (len(arg) > 2 and "--batch".startswith(arg)):
                return f"'ip {arg}' runs other commands (netns/vrf exec, batch files)"
    if base == "service" and ("status" in args or "--status-all" in args):
        return "'service ... status' shows output in a pager (less), which can start a shell"
    if base == "dmesg" and any(a in ("-H", "-L") or _long_option_hit(a, {"--human"}) for a in args) \
            and not ("--nopager" in args or "-P" in args):
        return "'dmesg --human' shows output in a pager (less), which can start a shell"
    return None


def _systemctl_reason(args):
    for arg in args:
        if arg.startswith("-"):
            if arg not in SYSTEMCTL_OPTIONS:
                return (f"'systemctl {arg}' is not an option this module can prove harmless "
                        f"(allowed: {' '.join(sorted(SYSTEMCTL_OPTIONS))}); some reach other "
                        "machines, roots or images, and any abbreviation of them works too")
            continue
        if arg in SYSTEMCTL_REFUSED:
            return f"'systemctl {arg}' can change or run arbitrary units as root"
        if "/" in arg:
            return f"'systemctl' with a path argument ('{arg}') can load an arbitrary unit file"
    verb = next((a for a in args if not a.startswith("-")), None)
    if verb not in SYSTEMCTL_UNPAGED and not _pager_free(args):
        return "'systemctl' without --no-pager shows output in a pager (less), which can start a shell"
    return None


def escape_arg(arg):
    return "".join(_ESCAPED.get(ch, ch) for ch in arg)


def render_rule(principal, runas, nopasswd, argv):
    tag = "NOPASSWD: " if nopasswd else ""
    args = " ".join(escape_arg(a) for a in argv[1:]) if len(argv) > 1 else '""'
    return f"{principal} ALL=({runas}) {tag}{argv[0]} {args}"


class SudoersExact:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.path = None

    # ---- input -------------------------------------------------------------------------
    def _check_inputs(self):
        p = self.params
        name = p["name"]
        single_line("name", name)
        if "." in name or name.endswith("~"):
            raise InputError(
                f"name: '{name}' would be silently ignored by sudo (files in sudoers.d whose name "
                "contains '.' or ends with '~' are skipped)"
            )
        if not _FILE_NAME_RE.fullmatch(name):
            raise InputError(
                f"name: '{name}' may only use letters, digits, '_' and '-' (at most 64, not starting with '-')"
            )
        self.path = os.path.join(p["sudoers_dir"], name)
        if p["state"] == "absent":
            return None
        if p["user"] is None and p["group"] is None:
            raise InputError("user: one of user or group is required with state=present")
        if not p["commands"]:
            raise InputError("commands: at least one command is required with state=present")
        if p["user"] is not None:
            field, who = "user", p["user"]
        else:
            field, who = "group", p["group"]
        self._principal(field, who)
        self._principal("runas", p["runas"])
        if field == "user":
            try:
                is_root = pwd.getpwnam(who).pw_uid == 0
                grantee = _people({who})
                is_root = is_root or 0 in grantee[1]
            except KeyError:
                grantee, is_root = self._missing("user", who), False
            principal = who
        else:
            try:
                gid = grp.getgrnam(who).gr_gid
                members = set(grp.getgrgid(gid).gr_mem) | {e.pw_name for e in pwd.getpwall() if e.pw_gid == gid}
                uids, gids = _people(members)
                # Any member may run the commands: what any of them can write is out.
                grantee, is_root = (uids - {0}, gids | {gid}), gid == 0
            except KeyError:
                grantee, is_root = self._missing("group", who), False
            principal = f"%{who}"
        if is_root:
            raise InputError(f"{field}: '{who}' is root or in the root group; it needs no sudo rule")
        try:
            pwd.getpwnam(p["runas"])
        except KeyError:
            self._missing("runas", p["runas"])
        rules = []
        seen = set()
        for index, entry in enumerate(p["commands"]):
            argv = self._argv(index, entry)
            self._check_binary(index, argv[0], grantee)
            for arg in argv[1:]:
                self._check_path_argument(index, arg, grantee)
            self._check_units(index, argv, grantee)
            if not p["allow_shell_escape"]:
                reason = shell_escape_reason(argv[0], argv[1:])
                if reason:
                    raise InputError(
                        f"commands[{index}]: {reason}; granting it is granting a root shell "
                        "(set allow_shell_escape: true only if that is really intended)"
                    )
            rule = render_rule(principal, p["runas"], p["nopasswd"], argv)
            if rule not in seen:
                seen.add(rule)
                rules.append(rule)
        return rules

    def _missing(self, field, who):
        """A grantee that does not exist yet: an error, except in check mode, where an earlier
        task of the same play would have created it."""
        if not self.module.check_mode:
            raise InputError(f"{field}: '{who}' does not exist on the host")
        self.module.warn(f"{field}: '{who}' does not exist yet; assuming an earlier task creates it")
        return (set(), set())

    @staticmethod
    def _principal(field, value):
        single_line(field, value)
        if value == "ALL":
            raise InputError(f"{field}: 'ALL' is refused; name one user or group")
        if value in _RESERVED:
            raise InputError(f"{field}: '{value}' is a sudoers keyword, not a user or group name")
        if _ALIAS_RE.fullmatch(value or ""):
            raise InputError(
                f"{field}: '{value}' is all capitals, which sudoers reads as an alias (that can name "
                "any number of users), not as a user or group name"
            )
        if not _PRINCIPAL_RE.fullmatch(value or ""):
            raise InputError(
                f"{field}: '{value}' is not a plain user/group name (letters, digits, '_', '-'; "
                "no '%', '#', '+' or sudoers aliases)"
            )

    @staticmethod
    def _argv(index, entry):
        field = f"commands[{index}]"
        if isinstance(entry, str):
            single_line(field, entry)
            try:
                argv = shlex.split(entry)
            except ValueError as exc:
                raise InputError(f"{field}: '{entry}' cannot be split like a shell would: {exc}") from None
        elif isinstance(entry, (list, tuple)):
            argv = list(entry)
            for pos, arg in enumerate(argv):
                if isinstance(arg, int) and not isinstance(arg, bool):
                    argv[pos] = arg = str(arg)
                if not isinstance(arg, str):
                    raise InputError(f"{field}: argument {pos} ({arg!r}) must be a string")
        else:
            raise InputError(f"{field}: must be an argv list or a command string, not {type(entry).__name__}")
        if not argv:
            raise InputError(f"{field}: is empty")
        for pos, arg in enumerate(argv):
            single_line(field, arg)
            if arg == "ALL" or (pos == 0 and os.path.basename(arg) == "ALL"):
                raise InputError(f"{field}: 'ALL' is refused; name the exact command")
            bad = sorted(set(arg) & _WILDCARDS)
            if bad:
                raise InputError(
                    f"{field}: '{arg}' contains the wildcard or escape character(s) {' '.join(bad)}, "
                    "which sudoers would treat as a pattern"
                )
        path = argv[0]
        if not path.startswith("/"):
            raise InputError(f"{field}: '{path}' is not an absolute path (relative commands are refused)")
        if any(part in ("", ".", "..") for part in path.split("/")[1:]):
            raise InputError(f"{field}: '{path}' must be a normalised path (no '..', '.' or '//' parts)")
        if not _PATH_RE.fullmatch(path):
            raise InputError(
                f"{field}: '{path}' contains sudoers syntax characters that cannot be written safely "
                "(allowed in a path: letters, digits, @ % + . / _ -)"
            )
        for arg in argv[1:]:
            if arg == "":
                raise InputError(f"{field}: an empty argument cannot be written in sudoers")
            if not _ARG_RE.fullmatch(arg):
                raise InputError(
                    f"{field}: argument '{arg}' contains sudoers syntax characters that cannot be "
                    "written safely (spaces, quotes, '#', '!', '$', brackets...; allowed: letters, "
                    "digits and @ % + . / _ - ^ ~ = : ,)"
                )
        return argv

    @staticmethod
    def _check_binary(index, path, grantee):
        field = f"commands[{index}]"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise InputError(f"{field}: '{path}' does not exist on the host") from None
        except OSError as exc:
            raise InputError(f"{field}: '{path}' cannot be inspected: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise InputError(
                f"{field}: '{path}' is a symlink (to '{os.path.realpath(path)}'); name the real binary"
            )
        real = os.path.realpath(path)
        if real != path:
            raise InputError(
                f"{field}: '{path}' goes through a symlinked directory (really '{real}'); name the real path"
            )
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
            raise InputError(f"{field}: '{path}' is not an executable file")
        current = path
        while True:
            st = os.lstat(current)
            what = "binary" if current == path else "directory"
            gids = grantee[1]
            if st.st_uid != 0:
                raise InputError(
                    f"{field}: {what} '{current}' above or at '{path}' is owned by uid {st.st_uid}, "
                    "not root; whoever owns it could replace the command"
                )
            if st.st_mode & 0o022:
                whom = "the grantee's group" if st.st_mode & 0o020 and st.st_gid in gids else "anyone but root"
                raise InputError(
                    f"{field}: {what} '{current}' is writable by {whom} "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); the command could be replaced"
                )
            if current == "/":
                break
            current = os.path.dirname(current)

    @staticmethod
    def _check_path_argument(index, arg, grantee, unit_link_ok=False):
        """A file named in an argument (a config, a script, a log) must be out of the grantee's
        reach: whoever can write it decides what the granted command does."""
        field = f"commands[{index}]"
        if "/" not in arg:
            return
        cut = arg.index("/")
        prefix, path = arg[:cut], arg[cut:]
        if not (prefix == "" or prefix.endswith("=") or re.fullmatch(r"-[A-Za-z]", prefix)):
            raise InputError(
                f"{field}: argument '{arg}' looks like a relative path or URL; a relative path is "
                "looked up in the caller's working directory, so name files by absolute path"
            )
        if any(part in (".", "..") for part in path.split("/")[1:]) or "//" in path:
            raise InputError(f"{field}: path in argument '{arg}' must be normalised (no '..', '.' or '//')")
        uids, gids = grantee
        current = path.rstrip("/") or "/"
        exists = True
        while True:
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                exists = False
                current = os.path.dirname(current)
                continue
            except OSError as exc:
                raise InputError(f"{field}: '{current}' cannot be inspected: {exc.strerror}") from None
            mode = stat.S_IMODE(st.st_mode)
            sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
            # In a sticky directory others cannot replace an existing entry, but can create a
            # missing one (or plant a link there) first.
            # With a POSIX ACL the group bits are the ACL mask: group write then may mean any
            # named user or group.
            writable = (st.st_uid in uids and st.st_uid != 0) or \
                (mode & 0o002 and not (sticky_dir and exists)) or \
                (mode & 0o020 and (st.st_gid in gids or _has_acl(current))
                 and not (sticky_dir and exists))
            if stat.S_ISLNK(st.st_mode):
                if not unit_link_ok:
                    raise InputError(
                        f"{field}: '{current}' (from argument '{arg}') is a symlink; name the real path"
                    )
                # A link's own mode means nothing; its target is checked on its own.
                writable = st.st_uid in uids and st.st_uid != 0
            if writable:
                raise InputError(
                    f"{field}: '{current}' (from argument '{arg}') can be written or replaced by the "
                    "grantee, who would then decide what the command does as root"
                )
            if current == "/":
                break
            exists = True
            current = os.path.dirname(current)

    def _check_units(self, index, argv, grantee):
        """systemctl runs what a unit file says: the unit's files must be out of the grantee's reach
        too. Units systemd does not know yet (created by a later task) cannot be checked."""
        if os.path.basename(argv[0]) != "systemctl":
            return
        words = [a for a in argv[1:] if not a.startswith("-")]
        units = words[1:]
        if not units:
            return
        try:
            shown = Systemd(self.module).show(units, ["FragmentPath", "SourcePath", "DropInPaths"])
        except (SystemdError, OSError, ValueError) as err:
            self.module.warn(f"commands[{index}]: the unit files could not be inspected ({err})")
            return
        for unit, props in shown.items():
            files = [props.get("FragmentPath", ""), props.get("SourcePath", "")]
            files += (props.get("DropInPaths") or "").split()
            for path in files:
                if not path or path == "/dev/null":
                    continue
                for candidate in dict.fromkeys((path, os.path.realpath(path))):
                    try:
                        self._check_path_argument(index, candidate, grantee, unit_link_ok=True)
                    except InputError as err:
                        raise InputError(
                            f"commands[{index}]: unit '{unit}' is defined by a file the grantee can "
                            f"change ({str(err).split(': ', 1)[1]})"
                        ) from None

    # ---- visudo --------------------------------------------------------------------------
    def _visudo_binaries(self):
        if self.params["visudo"]:
            self._check_visudo(self.params["visudo"])
            return [self.params["visudo"]]
        found = []
        for name in ("visudo", "visudo-rs"):
            path = self.module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"])
            if path and os.path.realpath(path) not in [os.path.realpath(f) for f in found]:
                found.append(path)
        if not found:
            self.module.fail_json(msg="visudo: neither visudo nor visudo-rs was found on the host; "
                                      "install sudo or sudo-rs first", path=self.path, rules=[])
        return found

    def _check_visudo(self, path):
        """The visudo option names a program run as root: it must be one only root can change."""
        try:
            st = os.lstat(path)
            safe_file.check_trusted_directory(os.path.dirname(path) or "/")
        except FileNotFoundError:
            self.module.fail_json(msg=f"visudo: '{path}' does not exist", path=self.path, rules=[])
        except safe_file.FileError as err:
            self.module.fail_json(msg=f"visudo: '{path}' is not trusted: {err}", path=self.path, rules=[])
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            self.module.fail_json(
                msg=f"visudo: '{path}' must be a regular file owned by root and writable by no one else",
                path=self.path, rules=[])

    def _run_visudo(self, binary, args):
        rc, out, err = self.module.run_command([binary] + args, environ_update={"LC_ALL": "C"})
        text = (out + err).strip()
        # Keep the report short; the rules hold no secrets but a long dump helps nobody.
        return rc, "\n".join(text.splitlines()[-6:])

    # ---- run -----------------------------------------------------------------------------
    def run(self):
        try:
            rules = self._check_inputs()
        except InputError as err:
            self.module.fail_json(msg=str(err))
        if not os.path.isdir(self.params["sudoers_dir"]):
            self.module.fail_json(msg=f"sudoers_dir: '{self.params['sudoers_dir']}' is not a directory")
        result = {"changed": False, "path": self.path, "rules": rules or []}
        visudos = self._visudo_binaries()
        if self.params["state"] == "absent":
            try:
                res = safe_file.remove_file(self.module, self.path)
            except safe_file.FileError as err:
                self.module.fail_json(msg=str(err), **result)
            result["changed"] = res.changed
            if res.diff:
                result["diff"] = res.diff
            if res.changed and not self.module.check_mode:
                self._check_whole(visudos[0], res.previous, result, "removing")
            return result

        content = HEADER + "".join(rule + "\n" for rule in rules)

        def validate(tmp_path):
            for binary in visudos:
                rc, text = self._run_visudo(binary, ["-c", "-f", tmp_path])
                if rc != 0:
                    return f"visudo: {binary} rejected the new rules for {self.path}: {text}"
            return None

        try:
            res = safe_file.write_file(self.module, self.path, content, owner="root", group="root",
                                       mode=0o440, validate=validate)
        except safe_file.FileError as err:
            self.module.fail_json(msg=str(err), **result)
        result["changed"] = res.changed
        if res.diff:
            result["diff"] = res.diff
        if res.changed and not self.module.check_mode:
            self._check_whole(visudos[0], res.previous, result, "writing")
        return result

    def _check_whole(self, binary, previous, result, action):
        """After the file landed (or left), the whole configuration must still parse."""
        rc, text = self._run_visudo(binary, ["-c"])
        if rc == 0:
            return
        try:
            safe_file.restore(self.module, self.path, previous)
        except (OSError, safe_file.FileError) as err:
            self.module.fail_json(
                msg=f"visudo: the whole sudo configuration is invalid after {action} {self.path}, and "
                    f"putting the previous file back failed too ({err}); fix it by hand: {text}",
                **result)
        result["changed"] = False
        result.pop("diff", None)
        self.module.fail_json(
            msg=f"visudo: the whole sudo configuration is invalid after {action} {self.path}; the "
                f"previous file was put back: {text}",
            **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            user=dict(type="str"),
            group=dict(type="str"),
            runas=dict(type="str", default="root"),
            nopasswd=dict(type="bool", default=True),
            commands=dict(type="list", elements="raw", default=[]),
            allow_shell_escape=dict(type="bool", default=False),
            sudoers_dir=dict(type="path", default="/etc/sudoers.d"),
            visudo=dict(type="path"),
        ),
        mutually_exclusive=[("user", "group")],
        supports_check_mode=True,
    )
    result = SudoersExact(module).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
