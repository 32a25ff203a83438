# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What an exact-command sudo rule may grant, and how it is written so it grants nothing more.

The rules (docs/sudoers.md explains each with the attack it stops):

1. **The working directory is pinned.** Every rule carries ``CWD=/`` (sudo >= 1.9.3 and sudo-rs
   honour it): a relative path, including one an attacker creates by regrouping arguments (below),
   resolves under ``/``, where only root creates entries.
2. **Arguments cannot be regrouped into something the rule never said.** C sudo compares the
   caller's arguments joined with spaces, so ``sudo prog "-c /etc/x.conf"`` matches the rule
   ``prog -c /etc/x.conf`` and hands ``prog`` the value `` /etc/x.conf`` (a relative path). sudo-rs
   compares argument by argument. For every program whose grammar the collection does not know:
   an option value must be joined to its option (``-c/etc/x.conf``, ``--config=/etc/x.conf``),
   never a separate word; a file argument must be an absolute, normalised path in every form
   (``corp.conf``, ``./x``, ``~/x`` and ``--config=corp.conf`` are refused); and every file named
   must pass the trust policy as ``SUDO_FILE`` (owned by root up to ``/``, writable by no one else,
   sticky directories such as /tmp included).
3. **Known programs are allowlists.** ``systemctl``: a verb from :data:`SYSTEMCTL_VERBS`, options
   from :data:`SYSTEMCTL_OPTIONS`, then unit names (and the files that define those units must be
   root's). ``journalctl``: options from :data:`JOURNALCTL_OPTIONS`, values joined, no positional
   arguments. Every regrouping of such a rule gives an unknown verb or option.
4. **Shell escapes are matched by family.** ``vim.nox``, ``emacs-nox``, ``tclsh8.6``, ``ksh93``,
   ``irb3.1``, ``gdb-multiarch``, ``x86_64-linux-gnu-gdb`` all belong to a family of
   :data:`SHELL_ESCAPE_FAMILIES`; so does a binary that the alternatives system runs under a
   dangerous generic name (``editor``, ``pager``, ``awk``...), and one that is the same file as,
   or a byte-for-byte copy of, a dangerous binary or a login shell of ``/etc/shells``.
5. **Where no rule can be safe, the rule is refused** with the safe way: a VPN client as root in a
   job's shell (``openfortivpn``, ``openvpn``) is replaced by the ci_runner role's tunnel units.
"""

from __future__ import annotations

import hashlib
import os
import re

from ansible_collections.supervised.background.plugins.module_utils import trust, validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import UNIT_SUFFIXES, unit_name
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

PINNED_CWD = "/"
PATH_RE = r"/[A-Za-z0-9@%+._/-]+"
# Characters an argument may hold; '=', ':' and ',' are written with a backslash in front.
ARG_RE = r"[A-Za-z0-9@%+._/^~=:,-]+"
_ESCAPED = {"=": "\\=", ":": "\\:", ",": "\\,"}
_WILDCARDS = set("*?[]\\")
_FILE_NAME_SHAPE = r"[^/=]*\.[A-Za-z][A-Za-z0-9]*"

# Families of programs that hand out a shell, run another command, read a program or script from a
# place the caller influences, or write arbitrary files as root. A binary belongs to a family when
# its name, or one of its '-'/'.'-separated parts, is the family name once trailing version digits
# are dropped (vim.nox -> vim, tclsh8.6 -> tclsh, emacs-nox -> emacs, gdb-multiarch -> gdb).
SHELL_ESCAPE_FAMILIES = frozenset("""
sh bash dash zsh ksh mksh pdksh ash csh tcsh fish rbash busybox toybox pwsh yash posh rc es elvish nu xonsh
python perl ruby php lua luajit node nodejs deno bun tclsh wish expect irb jshell jrunscript java R Rscript r
julia guile gawk mawk nawk awk gsed octave scilab ghci runghc swipl sbcl clisp ecl gst pip npm npx gem
cargo go rustc gcc cc g++ clang ld ld.so ld-linux ld64 make cmake ninja ansible ansible-playbook
env sudo sudoedit su doas pkexec runuser setpriv capsh run0 sg newgrp runcon chrt prlimit setarch
linux32 linux64 numactl cgexec firejail bwrap systemd-nspawn machinectl
vi vim nvim vimdiff nano rnano emacs emacsclient ed red ex view rview rvim pico joe jed mcedit mc
editor sensible-editor select-editor micro kak helix hx ne
less more most man pg pager info pinfo w3m lynx elinks links mail mailx mutt neomutt ftp lftp tftp
smbclient telnet tmux screen byobu htop iftop iotop mysql mariadb psql sqlite3 redis-cli mongo mongosh
find xargs parallel tar cpio zip unzip 7z 7za git hg svn rsync tee dd cp mv install chmod chown chgrp
ln sed sort split truncate shred curl wget aria2c openssl ssh-keygen gpg
systemd-run systemd-tmpfiles nsenter unshare chroot script ssh scp sftp crontab at batch watch time
timeout nice nohup ionice taskset stdbuf unbuffer flock setsid strace ltrace gdb lldb valgrind perf
bpftrace tcpdump docker podman kubectl ctr crictl nerdctl lxc virsh mount umount fusermount
dpkg dpkg-reconfigure apt apt-get aptitude rpm dnf yum snap flatpak insmod modprobe kmod kexec
debugfs setfacl setcap chattr useradd usermod adduser passwd chpasswd gpasswd vipw vigr
update-alternatives busctl coredumpctl visudo socat nc ncat netcat pppd logrotate openfortivpn openvpn
tclkit
""".split())
# Generic names the Debian alternatives system points at one member of a family.
ALTERNATIVE_NAMES = ("editor", "pager", "awk", "nawk", "vi", "view", "ex", "rview", "vim", "rvim",
                     "www-browser", "x-www-browser", "x-terminal-emulator", "nc", "netcat", "ftp",
                     "telnet", "rsh", "rlogin", "rcp", "python", "java", "javaws", "mail", "pinentry")
# Where dangerous binaries live (for the same-file and same-content checks).
BIN_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/local/sbin",
            "/usr/lib/cargo/bin")
ALTERNATIVES_DIR = "/etc/alternatives"
SHELLS_FILE = "/etc/shells"

# Programs for which no exact rule can be safe, and what to use instead.
NO_SAFE_RULE = {
    "openfortivpn": "a VPN client run as root from a job's shell reads configs and runs pppd plugins the caller's "
                    "arguments can name, holds the job's output open and outlives a failing step; grant "
                    "'systemctl start/stop openfortivpn@NAME.service' instead (the ci_runner role writes those "
                    "rules and the supervised tunnel units)",
    "openvpn": "its options run scripts and load plugins as root; run the tunnel as a unit "
               "(openvpn-client@NAME.service) and grant 'systemctl start/stop' of that unit instead",
}

# systemctl: the verbs a rule may name (everything else - help runs man, edit an editor, link and
# set-property change units, isolate/poweroff end the host... - is refused) and the options (an
# abbreviation of any other long option, --ho=x is --host=x, is refused with it).
SYSTEMCTL_VERBS = frozenset({
    "start", "stop", "restart", "try-restart", "reload", "reload-or-restart", "try-reload-or-restart",
    "is-active", "is-failed", "is-enabled", "reset-failed", "enable", "disable", "status", "show", "cat",
})
SYSTEMCTL_PAGED_VERBS = frozenset({"status", "show", "cat"})
SYSTEMCTL_OPTIONS = frozenset({
    "--no-pager", "--no-block", "--quiet", "-q", "--no-ask-password", "--now", "--no-reload",
    "--no-legend", "--full", "-l", "--all", "-a", "--system", "--plain", "--wait",
})
# journalctl: flags, and options whose value must be joined (name -> kind of value).
JOURNALCTL_FLAGS = frozenset({"--no-pager", "-q", "--quiet", "--no-hostname", "-x", "--catalog", "-f",
                              "--follow", "-k", "--dmesg", "--system", "-r", "--reverse", "-a", "--all",
                              "-l", "--full", "--utc", "-b", "--boot"})
JOURNALCTL_VALUES = {"--unit": "unit", "-u": "unit", "--lines": "count", "-n": "count", "--since": "time",
                     "-S": "time", "--until": "time", "-U": "time", "--output": "output", "-o": "output",
                     "--priority": "priority", "-p": "priority", "--boot": "boot", "-b": "boot"}
JOURNALCTL_OPTIONS = frozenset(JOURNALCTL_FLAGS | set(JOURNALCTL_VALUES))
_OUTPUTS = ("short", "short-iso", "short-iso-precise", "short-precise", "short-monotonic", "short-unix",
            "verbose", "export", "json", "json-pretty", "json-sse", "cat", "with-unit")
# Other systemd tools page their output unless told not to (less offers !sh).
PAGED_TOOLS = frozenset({"loginctl", "networkctl", "resolvectl", "timedatectl", "hostnamectl", "localectl",
                         "homectl", "userdbctl", "portablectl"})


# -- families -------------------------------------------------------------------------------------
def family_of(base):
    """The shell-escape family a binary name belongs to, or None."""
    names = [base] + re.split(r"[-.]", base)
    for name in names:
        for candidate in (name, re.sub(r"[0-9][0-9.]*$", "", name)):
            if candidate and (candidate in SHELL_ESCAPE_FAMILIES or candidate.lower() in SHELL_ESCAPE_FAMILIES):
                return candidate
    return None


def _digest(path, size):
    try:
        if os.path.getsize(path) != size:
            return None
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
        return sha.hexdigest()
    except OSError:
        return None


def _login_shells():
    try:
        with open(SHELLS_FILE, encoding="utf-8", errors="replace") as handle:
            return [ln.strip() for ln in handle if ln.strip().startswith("/")]
    except OSError:
        return []


def escape_reason(path):
    """Why granting ``path`` hands out a shell or any file as root (None when nothing is known)."""
    base = os.path.basename(path)
    family = family_of(base)
    if family:
        return f"'{base}' belongs to the '{family}' family, which can run other commands or write any file as root"
    real = os.path.realpath(path)
    try:
        for generic in os.listdir(ALTERNATIVES_DIR):
            if generic in ALTERNATIVE_NAMES or family_of(generic):
                if os.path.realpath(os.path.join(ALTERNATIVES_DIR, generic)) == real:
                    return f"'{base}' is what the alternatives system runs as '{generic}', which can start a shell"
    except OSError:
        pass
    try:
        size = os.path.getsize(real)
    except OSError:
        return None
    own = None
    candidates = list(_login_shells())
    for directory in BIN_DIRS:
        try:
            candidates += [os.path.join(directory, n) for n in os.listdir(directory) if family_of(n)]
        except OSError:
            continue
    for candidate in dict.fromkeys(candidates):
        try:
            if os.path.samefile(candidate, real):
                return f"'{base}' is the same file as '{candidate}', which can run other commands as root"
        except OSError:
            continue
        theirs = _digest(candidate, size)
        if theirs is not None:
            own = own or _digest(real, size)
            if own == theirs:
                return f"'{base}' is a copy of '{candidate}', which can run other commands as root"
    return None


# -- argument shapes ------------------------------------------------------------------------------
def _is_option(word):
    return word.startswith("-") and word != "-"


def _check_value(field, value, origin):
    """A value of an argument (the whole word, or the part after '=' / after a short option): if it
    names a file, the name is absolute and the file trusted."""
    if not value:
        return
    if "/" in value:
        prefix = value[: value.index("/")]
        if prefix and not prefix.endswith("="):
            raise InputError(
                f"{field}: argument '{origin}' looks like a relative path or a URL; a relative path is looked "
                "up in the working directory, so name files by absolute path"
            )
        path = value[len(prefix):]
        if path != "/" and any(part in ("", ".", "..") for part in path.split("/")[1:]):
            raise InputError(f"{field}: the path in argument '{origin}' must be normalised (no '..', '.', '//' or "
                             "trailing '/')")
        try:
            trust.check(field, path, trust.SUDO_FILE)
        except trust.TrustError as err:
            raise InputError(f"{err}; whoever can change it decides what the command does as root") from None
        return
    if value.startswith((".", "~")):
        raise InputError(
            f"{field}: argument '{origin}' is a relative path ('{value}'); name files by absolute path"
        )
    if re.fullmatch(_FILE_NAME_SHAPE, value):
        raise InputError(
            f"{field}: argument '{origin}' looks like a file name relative to the working directory "
            f"('{value}'); name files by absolute path"
        )


def check_generic_arguments(field, args):
    """The argument rules for a program whose grammar the collection does not know (rule 2)."""
    for pos, arg in enumerate(args):
        following = args[pos + 1] if pos + 1 < len(args) else None
        separate = following is not None and not _is_option(following)
        if arg == "--":
            continue
        if arg.startswith("--"):
            _name, eq, value = arg[2:].partition("=")
            if eq:
                _check_value(field, value, arg)
            elif separate:
                raise InputError(
                    f"{field}: '{arg} {following}': write an option's value joined to it ('{arg}={following}'), "
                    "or put positional arguments before the options; C sudo joins the caller's arguments with "
                    "spaces, so separate words can be passed to the program regrouped"
                )
        elif _is_option(arg):
            if len(arg) == 2 and separate:
                raise InputError(
                    f"{field}: '{arg} {following}': write a short option's value joined to it ('{arg}{following}'), "
                    "or put positional arguments before the options; C sudo joins the caller's arguments with "
                    f"spaces, so '{arg} {following}' can be passed as one argument and the program then reads "
                    f"the value ' {following}' (a relative path)"
                )
            _check_value(field, arg[2:], arg)
        else:
            _check_value(field, arg, arg)


def _systemctl(field, args):
    """systemctl's allowlist (rule 3). Returns the unit names the rule names."""
    verb = None
    units = []
    options = []
    for arg in args:
        if arg == "--":
            raise InputError(f"{field}: 'systemctl --' is refused (after it an option such as --no-pager is a unit name)")
        if _is_option(arg):
            if arg not in SYSTEMCTL_OPTIONS:
                raise InputError(
                    f"{field}: 'systemctl {arg}' is not an option this module can prove harmless (allowed: "
                    f"{' '.join(sorted(SYSTEMCTL_OPTIONS))}); others reach other machines, roots or images, and "
                    "any abbreviation of them works too"
                )
            options.append(arg)
        elif verb is None:
            if arg not in SYSTEMCTL_VERBS:
                raise InputError(
                    f"{field}: 'systemctl {arg}' is not an allowed verb (allowed: {' '.join(sorted(SYSTEMCTL_VERBS))}); "
                    "others run programs (help runs man, edit an editor), change units or end the host"
                )
            verb = arg
        else:
            if "/" in arg:
                raise InputError(f"{field}: 'systemctl' with a path argument ('{arg}') can load an arbitrary unit file")
            unit_name(field, arg, suffixes=UNIT_SUFFIXES, template=False)
            units.append(arg)
    if verb is None:
        raise InputError(f"{field}: 'systemctl' needs a verb (one of {' '.join(sorted(SYSTEMCTL_VERBS))})")
    if not units:
        raise InputError(f"{field}: 'systemctl {verb}' needs the unit names it applies to")
    if verb in SYSTEMCTL_PAGED_VERBS and "--no-pager" not in options:
        raise InputError(f"{field}: 'systemctl {verb}' without --no-pager shows its output in a pager (less), "
                         "which can start a shell")
    if "--now" in options and verb not in ("enable", "disable"):
        raise InputError(f"{field}: 'systemctl --now' only goes with enable or disable")
    return units


def _journalctl(field, args):
    if "--no-pager" not in args:
        raise InputError(f"{field}: 'journalctl' without --no-pager shows its output in a pager (less), which can "
                         "start a shell")
    for arg in args:
        if not _is_option(arg):
            raise InputError(f"{field}: 'journalctl {arg}': positional matches (and paths) are refused; use -u/--unit=")
        if arg in JOURNALCTL_FLAGS:
            continue
        name, value = _journal_split(arg)
        kind = JOURNALCTL_VALUES.get(name)
        if kind is None:
            raise InputError(
                f"{field}: 'journalctl {arg}' is not an allowed option (allowed: {' '.join(sorted(JOURNALCTL_OPTIONS))}, "
                "values joined: --unit=NAME, -n50); others read other roots, files or machines"
            )
        if not value:
            raise InputError(f"{field}: 'journalctl {arg}': write the value joined to the option ({name}=VALUE)")
        if kind == "unit":
            unit_name(field, value, suffixes=UNIT_SUFFIXES, template=False)
        elif kind == "count" and not re.fullmatch(r"\+?[0-9]{1,9}|all", value):
            raise InputError(f"{field}: 'journalctl {arg}': a number of lines")
        elif kind == "output" and value not in _OUTPUTS:
            raise InputError(f"{field}: 'journalctl {arg}': an output format ({', '.join(_OUTPUTS)})")
        elif kind == "priority" and not re.fullmatch(r"[0-7](\.\.[0-7])?|[a-z]{3,7}", value):
            raise InputError(f"{field}: 'journalctl {arg}': a priority such as err or 0..3")
        elif kind in ("time", "boot") and not re.fullmatch(r"[A-Za-z0-9@+_:^-]{1,40}", value):
            raise InputError(f"{field}: 'journalctl {arg}': a time (today, -1h, 2026-01-01) or boot id")


def _journal_split(arg):
    if arg.startswith("--"):
        name, _eq, value = arg.partition("=")
        return name, value
    return arg[:2], arg[2:].lstrip("=")


def check_program(field, path, args, allow_shell_escape):
    """Rules 2 to 5 for one command; returns the unit names a systemctl rule names."""
    base = os.path.basename(path)
    if base in NO_SAFE_RULE and not allow_shell_escape:
        raise InputError(f"{field}: no exact sudo rule for '{base}' can be safe: {NO_SAFE_RULE[base]}")
    if not allow_shell_escape:
        reason = escape_reason(path)
        if reason:
            raise InputError(f"{field}: {reason}; granting it is granting a root shell (set allow_shell_escape: true "
                             "only if that is really intended)")
    if base == "systemctl":
        return _systemctl(field, args)
    if base == "journalctl":
        _journalctl(field, args)
        return []
    if base in PAGED_TOOLS and "--no-pager" not in args:
        raise InputError(f"{field}: '{base}' without --no-pager shows its output in a pager (less), which can start a shell")
    _special_cases(field, base, args)
    check_generic_arguments(field, args)
    return []


def _special_cases(field, base, args):
    """Harmless tools with one known escape each."""
    if base == "ip":
        for arg in args:
            if (arg and "exec".startswith(arg)) or (len(arg) > 1 and "-batch".startswith(arg)) \
                    or (len(arg) > 2 and "--batch".startswith(arg)):
                raise InputError(f"{field}: 'ip {arg}' runs other commands (netns/vrf exec, batch files)")
    if base == "service" and ("status" in args or "--status-all" in args):
        raise InputError(f"{field}: 'service ... status' shows its output in a pager (less), which can start a shell")
    if base == "dmesg" and any(a in ("-H", "-L") or (a.startswith("--h") and "--human".startswith(a)) for a in args) \
            and not ("--nopager" in args or "-P" in args):
        raise InputError(f"{field}: 'dmesg --human' shows its output in a pager (less), which can start a shell")


# -- argv and rendering ---------------------------------------------------------------------------
def check_words(field, argv):
    """Characters and path shape of an argv (rules that hold for every program)."""
    if not argv:
        raise InputError(f"{field}: is empty")
    for pos, arg in enumerate(argv):
        validate.single_line(field, arg)
        if arg == "ALL" or (pos == 0 and os.path.basename(arg) == "ALL"):
            raise InputError(f"{field}: 'ALL' is refused; name the exact command")
        bad = sorted(set(arg) & _WILDCARDS)
        if bad:
            raise InputError(f"{field}: '{arg}' contains the wildcard or escape character(s) {' '.join(bad)}, which "
                             "sudoers would treat as a pattern (and sudo-rs reads differently from sudo)")
    path = argv[0]
    if not path.startswith("/"):
        raise InputError(f"{field}: '{path}' is not an absolute path (relative commands are refused)")
    if any(part in ("", ".", "..") for part in path.split("/")[1:]):
        raise InputError(f"{field}: '{path}' must be a normalised path (no '..', '.' or '//' parts)")
    if not re.fullmatch(PATH_RE, path):
        raise InputError(f"{field}: '{path}' contains sudoers syntax characters that cannot be written safely "
                         "(allowed in a path: letters, digits, @ % + . / _ -)")
    for arg in argv[1:]:
        if arg == "":
            raise InputError(f"{field}: an empty argument cannot be written in sudoers")
        if not re.fullmatch(ARG_RE, arg):
            raise InputError(
                f"{field}: argument '{arg}' contains sudoers syntax characters that cannot be written safely "
                "(spaces, quotes, '#', '!', '$', brackets...; allowed: letters, digits and @ % + . / _ - ^ ~ = : ,)"
            )
    return argv


def check_binary(field, path):
    try:
        trust.check(field, path, trust.SUDO_BINARY)
    except trust.TrustError as err:
        raise InputError(f"{err}; whoever can change it could replace the command") from None


def escape_arg(arg):
    return "".join(_ESCAPED.get(ch, ch) for ch in arg)


def render_rule(principal, runas, nopasswd, argv):
    """One rule line: the working directory pinned, no arguments written as ``""``."""
    tag = "NOPASSWD: " if nopasswd else ""
    args = " ".join(escape_arg(a) for a in argv[1:]) if len(argv) > 1 else '""'
    return f"{principal} ALL=({runas}) CWD={PINNED_CWD} {tag}{argv[0]} {args}"
