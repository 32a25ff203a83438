# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What an exact-command sudo rule may grant, and how it is written so it grants nothing more.

The rules (each stated here once; docs/sudoers.md explains each with the attack it stops):

1. **The working directory is pinned.** Every rule carries ``CWD=/`` (sudo >= 1.9.3 and sudo-rs
   honour it, and both then refuse ``sudo -D``): a relative path, including one the caller creates
   by regrouping arguments (rule 2), resolves under ``/``, where only root creates entries.
2. **Regrouped arguments reach nothing the caller controls.** C sudo compares the caller's
   arguments joined with single spaces, so the caller may hand the program any regrouping of the
   rule's words (``prog "-c /etc/x.conf"`` matches ``prog -c /etc/x.conf``, and getopt then reads
   the value `` /etc/x.conf``, a relative path); sudo-rs compares argument by argument. For a
   program whose grammar the collection does not know:

   a. an option's value is joined to it (``-c/etc/x.conf``, ``--config=/etc/x.conf``); an option
      word followed by a non-option word is refused (write positional arguments first);
   b. a short option is not written ``-c=/x`` (getopt hands the program ``=/x``);
   c. a file is named by an absolute, normalised path in every form and in every part of a list
      (``corp.conf``, ``./x``, ``~/x``, ``~user``, ``..``, ``--config=corp.conf``,
      ``--path=/etc/a:rel/b`` and URLs are refused), never under ``/proc`` or ``/dev`` (their
      meaning depends on the process or terminal that opens them);
   d. every file named must pass the trust policy as ``trust.SUDO_FILE`` (owned by root up to
      ``/``, writable by no one else; sticky directories such as /tmp are refused too) and its
      directory must exist (a missing one can later be made for another user: /home/NAME,
      /run/user/UID), so a word regrouped onto its end names an entry in a directory only root
      can change; after ``--`` every word is read as a positional argument.

3. **Known programs are allowlists**, modelled so that every regrouping is a usage error.
   ``systemctl``: options from :data:`SYSTEMCTL_OPTIONS`, one verb from :data:`SYSTEMCTL_VERBS`,
   then exactly one unit, last (systemctl escapes a space in a unit name, so ``"x@a.service b"``
   would start the instance ``x@a.service\\x20b``). ``journalctl``: options from
   :data:`JOURNALCTL_OPTIONS`, values joined, no positional arguments, at most one unit option and
   it comes last (the only value journalctl reads with a space in it).
4. **No pager.** A tool that pages its output runs ``less``, which offers ``!sh``: ``systemctl
   status/show/cat`` and ``journalctl`` need ``--no-pager``; the other paging tools
   (:data:`PAGED_TOOLS`) need it as their first argument, where no word can swallow it.
5. **Shell escapes are matched by family** (:func:`escape_reason`): the binary's name or one of
   its ``-``/``.`` parts, version digits dropped (``vim.nox``, ``emacs-nox``, ``tclsh8.6``,
   ``ksh93``, ``irb3.1``, ``gdb-multiarch``, ``x86_64-linux-gnu-gdb``, ``python3.11``), is in
   :data:`SHELL_ESCAPE_FAMILIES`; or the binary is what the alternatives system runs as a dangerous
   generic name (``editor``, ``pager``, ``awk``...); or it is the same file as, or a byte-for-byte
   copy of, such a binary or a login shell of ``/etc/shells``. An argument naming such a binary is
   refused the same way (the program may run it).
6. **Where no rule can be safe, the rule is refused** with the safe way, whatever
   ``allow_shell_escape`` says: a VPN client run as root from a job's shell (:data:`NO_SAFE_RULE`)
   is replaced by ``systemctl start/stop`` of the ci_runner role's tunnel units.
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
# Characters an argument may hold; '=', ':' and ',' are written with a backslash in front (C sudo and
# sudo-rs 0.2.5 both read the escaped form; sudo-rs refuses a bare '=' in an argument).
ARG_RE = r"[A-Za-z0-9@%+._/^~=:,-]+"
_ESCAPED = {"=": "\\=", ":": "\\:", ",": "\\,"}
_WILDCARDS = set("*?[]\\")
_FILE_NAME_SHAPE = r"[^/=]*\.[A-Za-z][A-Za-z0-9]*"
# Separators of key=value pairs and of path lists inside one argument.
_LIST_SEPARATORS = r"[=:,]"
# Files whose meaning depends on the process or terminal that opens them (/proc/PID/cwd, /dev/pts/N,
# /dev/stdin...): a check made now says nothing about what root opens later.
_DYNAMIC_TREES = ("/proc", "/dev")

# Families of programs that hand out a shell, run another command, read a program or script from a
# place the caller influences, page their output without less's secure mode, or write arbitrary
# files as root. A binary belongs to a family when its name, or one of its '-'/'.'-separated parts,
# is the family name once trailing version digits are dropped (vim.nox -> vim, tclsh8.6 -> tclsh,
# emacs-nox -> emacs, gdb-multiarch -> gdb, x86_64-linux-gnu-gdb -> gdb, python3.11 -> python).
SHELL_ESCAPE_FAMILIES = frozenset("""
sh bash dash zsh ksh mksh lksh oksh loksh pdksh ash sash csh tcsh fish rbash busybox toybox pwsh yash posh
rc es elvish nu xonsh jimsh osh ysh
python pypy ipython jython micropython pydoc idle perl perldoc cpan ruby erb irb gem bundle bundler rake
php lua luajit texlua node nodejs deno bun npm npx yarn pnpm tclsh wish expect jshell jrunscript java
javac scala groovy kotlin dotnet mono R Rscript r julia guile racket csi scheme ocaml gforth erl escript
elixir iex swift gawk mawk nawk awk gsed dc octave scilab ghci runghc swipl sbcl clisp ecl gst pip pipx
conda uv poetry cargo go rustc gcc cc c++ g++ clang clang++ tcc ld ld.so ld-linux ld64 lld make cmake ninja
meson ansible ansible-playbook puppet tex latex pdftex pdflatex xetex xelatex luatex lualatex
env sudo sudoedit su doas pkexec runuser setpriv capsh run0 sg newgrp runcon chrt prlimit setarch
linux32 linux64 numactl cgexec firejail bwrap systemd-nspawn machinectl portablectl schroot fakeroot
proot faketime catchsegv eatmydata torsocks proxychains trickle sshpass xvfb-run dbus-run-session chpst
cpulimit daemonize start-stop-daemon run-parts rlwrap dtach abduco
vi vim nvim gvim evim gview vimdiff vimtutor nvi nex nview elvis nano rnano emacs xemacs emacsclient
mg zile jove ed red ex view rview rvim pico joe jmacs jpico jstar rjoe jed mcedit mc editor
sensible-editor select-editor micro kak helix hx ne vipe vidir
less zless bzless xzless lzless zstdless more zmore bzmore xzmore most man pg pager bat batcat info
pinfo w3m lynx elinks links browser xdg-open mail mailx s-nail nail mutt neomutt alpine pine ftp lftp
tftp smbclient telnet rsh rlogin rcp tmux screen byobu minicom picocom cu htop iftop iotop nmcli mysql
mariadb psql sqlite3 redis-cli mongo mongosh
find fdfind fd rg xargs parallel ifne chronic pee zrun mispipe lckdo sponge tar bsdtar pax cpio zip unzip
7z 7za git hg svn bzr rsync rclone tee dd cp mv install chmod chown chgrp ln mknod sed sort split csplit
uniq truncate shred curl wget aria2c openssl ssh-keygen gpg
systemd-run systemd-cat systemd-inhibit systemd-notify systemd-socket-activate systemd-tmpfiles nsenter
unshare chroot script ssh scp sftp sshfs mosh crontab at batch watch time timeout nice nohup ionice
taskset stdbuf unbuffer flock setsid strace ltrace gdb gdbserver lldb valgrind perf bpftrace bpftool
tcpdump tshark wireshark dumpcap nmap docker dockerd podman buildah kubectl ctr crictl nerdctl runc crun
containerd lxc incus virsh mount umount fusermount
dpkg dpkg-reconfigure apt apt-get aptitude rpm dnf yum snap flatpak insmod modprobe kmod kexec
debugfs setfacl setcap chattr useradd usermod adduser passwd chpasswd gpasswd vipw vigr
update-alternatives busctl dbus-send gdbus qdbus varlinkctl coredumpctl visudo socat nc ncat netcat
pppd logrotate openfortivpn openvpn tclkit
logsave choom debconf debconf-communicate login newusers chgpasswd scriptlive scriptreplay bashbug sulogin
agetty getty mingetty pam-auth-update pdb ssh-agent dbus-launch entr nq sem ispell groff nroff troff
tini dumb-init catatonit savelog
""".split())
# Bare words an argument may not be: what a wrapper that runs its arguments (logsave, choom, env...)
# would find on sudo's secure_path and start as root. Narrower than the families, so that ordinary
# values ('time', 'info', 'at') stay possible.
INTERPRETER_WORDS = frozenset("""
sh bash dash zsh ksh mksh lksh oksh ash csh tcsh fish rbash busybox toybox pwsh yash posh sash
python pypy ipython perl ruby irb php lua luajit node nodejs deno tclsh wish expect guile gawk mawk nawk awk
vi vim nvim gvim vim.basic vim.tiny vim.nox emacs nano less gdb ed pdb pydoc
""".split())
# Where a language keeps its library: a script there (pdb.py, trace.py, cProfile.py...) runs whatever
# program or expression the caller passes, so none is granted as a command.
LIBRARY_DIRS = ("/usr/lib/python", "/usr/local/lib/python", "/usr/share/python", "/usr/lib/pypy", "/usr/lib/perl",
                "/usr/share/perl",
                "/usr/local/lib/perl", "/usr/local/share/perl", "/usr/lib/ruby", "/usr/share/ruby", "/usr/lib/node",
                "/usr/share/nodejs", "/usr/lib/x86_64-linux-gnu/perl", "/usr/lib/aarch64-linux-gnu/perl",
                "/usr/share/lua", "/usr/lib/tcltk", "/usr/share/tcltk")
# Generic names the Debian alternatives system points at one member of a family.
ALTERNATIVE_NAMES = ("editor", "pager", "awk", "nawk", "vi", "view", "ex", "rview", "vim", "rvim",
                     "www-browser", "x-www-browser", "x-terminal-emulator", "nc", "netcat", "ftp",
                     "telnet", "rsh", "rlogin", "rcp", "python", "java", "javaws", "mail", "pinentry")
# Where dangerous binaries live (for the same-file and same-content checks).
BIN_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/local/sbin",
            "/usr/lib/cargo/bin")
ALTERNATIVES_DIR = "/etc/alternatives"
SHELLS_FILE = "/etc/shells"

# Programs for which no exact rule can be safe, and what to use instead (refused even with
# allow_shell_escape: the safe way exists).
NO_SAFE_RULE = {
    "openfortivpn": "a VPN client run as root from a job's shell reads a config and runs pppd plugins that "
                    "regrouped arguments can name, holds the job's output open and outlives a failing step; "
                    "grant '/usr/bin/systemctl start openfortivpn@NAME.service' and "
                    "'/usr/bin/systemctl stop openfortivpn@NAME.service' instead (the ci_runner role writes "
                    "those rules and the supervised tunnel units)",
    "openvpn": "its options run scripts and load plugins as root; run the tunnel as a unit "
               "(openvpn-client@NAME.service) and grant '/usr/bin/systemctl start/stop' of that unit instead",
}

# systemctl: the verbs a rule may name (everything else - help runs man as root, edit an editor,
# link and set-property change units, isolate/poweroff end the host... - is refused) and the options
# (none takes a value; an abbreviation of any other long option, --ho=x is --host=x, is refused).
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
NO_PAGER_FLAGS = ("--nopager", "-P")  # dmesg's spelling
# Other systemd tools page their output unless told not to (less offers !sh).
PAGED_TOOLS = frozenset({"loginctl", "networkctl", "resolvectl", "timedatectl", "hostnamectl", "localectl",
                         "homectl", "userdbctl", "systemd-analyze", "systemd-cgls", "systemd-delta", "bootctl",
                         "oomctl"})


# -- families -------------------------------------------------------------------------------------
def family_of(base):
    """The shell-escape family a binary name belongs to, or None."""
    names = [base] + re.split(r"[-.]", base)
    for name in names:
        for candidate in (name, re.sub(r"[0-9][0-9.]*$", "", name), re.sub(r"[0-9].*$", "", name)):
            if candidate and (candidate in SHELL_ESCAPE_FAMILIES or candidate.lower() in SHELL_ESCAPE_FAMILIES):
                return candidate
    return None


def names_interpreter(word):
    """Whether a bare word (no '/') names a shell, an interpreter or an editor: the word, or one of its
    '-'/'.'-separated parts, once trailing version digits are dropped (python3.11 -> python,
    bash-static -> bash, python3-dbg -> python, vim.gtk3 -> vim)."""
    for part in [word] + re.split(r"[-.]", word):
        if part in INTERPRETER_WORDS or re.sub(r"[0-9][0-9.]*$", "", part) in INTERPRETER_WORDS:
            return True
    return False


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
    real_family = family_of(os.path.basename(real))
    if real_family:
        return f"'{base}' is really '{real}', of the '{real_family}' family, which can run other commands as root"
    try:
        generics = sorted(os.listdir(ALTERNATIVES_DIR))
    except OSError:
        generics = []
    for generic in generics:
        if generic in ALTERNATIVE_NAMES or family_of(generic):
            if os.path.realpath(os.path.join(ALTERNATIVES_DIR, generic)) == real:
                return f"'{base}' is what the alternatives system runs as '{generic}', which can start a shell"
    try:
        size = os.path.getsize(real)
    except OSError:
        return None
    own = None
    candidates = list(_login_shells())
    for directory in BIN_DIRS:
        try:
            candidates += [os.path.join(directory, n) for n in sorted(os.listdir(directory)) if family_of(n)]
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


# -- argument shapes (rule 2) ---------------------------------------------------------------------
def _is_option(word):
    return word.startswith("-") and word != "-"


def _relative(field, origin, piece):
    raise InputError(
        f"{field}: argument '{origin}' names '{piece}', a relative path; a relative path is looked up in the "
        "working directory (or in the caller's home for '~'), so name files by absolute path"
    )


def _check_path(field, origin, path, allow_shell_escape):
    """One absolute path inside an argument: normalised, not dynamic, trusted, not a shell."""
    if path != "/" and any(part in ("", ".", "..") for part in path.split("/")[1:]):
        raise InputError(f"{field}: the path '{path}' in argument '{origin}' must be normalised (no '..', '.', "
                         "'//' or trailing '/')")
    for tree in _DYNAMIC_TREES:
        if path == tree or path.startswith(tree + "/"):
            raise InputError(
                f"{field}: argument '{origin}' names '{path}' under {tree}, whose meaning depends on the process "
                "or terminal that opens it (/proc/PID/cwd, /dev/pts/N, /dev/stdin), so it cannot be checked now; "
                "name a regular file root owns"
            )
    try:
        trust.check(field, path, trust.SUDO_FILE)
    except trust.TrustError as err:
        raise InputError(f"{err}; whoever can change it decides what the command does as root") from None
    parent = os.path.dirname(path) or "/"
    if not os.path.isdir(parent):
        raise InputError(
            f"{field}: argument '{origin}' names '{path}', whose directory {parent} does not exist; a missing "
            "directory can later be created for another user (useradd makes /home/NAME, logind /run/user/UID), "
            "so create it root-owned first"
        )
    if not allow_shell_escape and os.path.lexists(path):
        reason = escape_reason(path)
        if reason:
            raise InputError(f"{field}: argument '{origin}' hands the program the path of a command that gives a "
                             f"shell ({reason}); the program may run it")


def _check_value(field, value, origin, allow_shell_escape=False):
    """A value of an argument (the whole word, or the part after '=' / after a short option): every
    part of it (split at '=', ':' and ',') that names a file names it by absolute path, and the file
    is trusted."""
    if not value:
        return
    if "://" in value:
        raise InputError(f"{field}: argument '{origin}' holds a URL; what it points at cannot be checked, so it "
                         "cannot be granted")
    for piece in re.split(_LIST_SEPARATORS, value):
        if not piece:
            continue
        if piece.startswith(("~", ".")):
            _relative(field, origin, piece)
        if "/" not in piece and not allow_shell_escape and names_interpreter(piece):
            # A bare program name: a wrapper (logsave FILE sh, choom -- sh, env sh...) finds it on sudo's
            # secure_path and runs it as root.
            raise InputError(
                f"{field}: argument '{origin}' names '{piece}', a shell or interpreter; a program that runs its "
                "arguments would find it on sudo's secure_path and run it as root"
            )
        if "/" in piece:
            if not piece.startswith("/"):
                _relative(field, origin, piece)
            _check_path(field, origin, piece, allow_shell_escape)
        elif re.fullmatch(_FILE_NAME_SHAPE, piece):
            raise InputError(
                f"{field}: argument '{origin}' names '{piece}', which looks like a file name relative to the working "
                "directory; name files by absolute path"
            )


def check_generic_arguments(field, args, allow_shell_escape=False):
    """The argument rules for a program whose grammar the collection does not know (rule 2)."""
    positional_only = False
    for pos, arg in enumerate(args):
        following = args[pos + 1] if pos + 1 < len(args) else None
        separate = following is not None and not _is_option(following)
        if positional_only:
            # After '--' getopt reads every word as it is: '-c/etc/x' names the relative path '-c/etc/x'.
            if "/" in arg and not arg.startswith("/"):
                _relative(field, arg, arg)
            _check_value(field, arg, arg, allow_shell_escape)
            continue
        if arg == "--":
            positional_only = True
            continue
        if arg.startswith("--"):
            _name, eq, value = arg[2:].partition("=")
            if eq:
                _check_value(field, value, arg, allow_shell_escape)
            elif separate:
                raise InputError(
                    f"{field}: '{arg} {following}': write an option's value joined to it ('{arg}={following}'), "
                    "or put positional arguments before the options; C sudo joins the caller's arguments with "
                    "spaces, so separate words can reach the program regrouped"
                )
        elif _is_option(arg):
            if separate:
                joined = f"{arg}{following}" if len(arg) == 2 else f"{arg[:-1]} -{arg[-1]}{following}"
                raise InputError(
                    f"{field}: '{arg} {following}': write a short option's value joined to it ('{joined}'), "
                    "or put positional arguments before the options; C sudo joins the caller's arguments with "
                    f"spaces, so '{arg} {following}' can reach the program as one argument, and getopt then "
                    f"reads the value ' {following}' (a relative path)"
                )
            if arg[2:].startswith("="):
                raise InputError(
                    f"{field}: '{arg}': getopt hands a short option everything after its letter, here "
                    f"'{arg[2:]}' (a relative path); write '{arg[:2]}{arg[3:]}' or the long option with '='"
                )
            if len(arg) > 2 and "/" in arg and not arg[2:].startswith("/"):
                raise InputError(
                    f"{field}: '{arg}': after '{arg[:2]}' comes '{arg[2:]}', a relative path if '{arg[1]}' takes a "
                    "value (and a file joined to a cluster of short options if it does not); write each option on "
                    "its own, the file by absolute path right after its letter ('-c/etc/x.conf')"
                )
            _check_value(field, arg[2:], arg, allow_shell_escape)
        else:
            _check_value(field, arg, arg, allow_shell_escape)


# -- systemctl and journalctl (rule 3) -------------------------------------------------------------
def _systemctl(field, args):
    """systemctl's allowlist. Returns the unit names the rule names (exactly one)."""
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
            if units:
                raise InputError(
                    f"{field}: 'systemctl ... {units[0]} {arg}': the unit must be the last argument; C sudo lets the "
                    f"caller pass '{units[0]} {arg}' as one argument, which systemctl escapes into another unit name "
                    "(a template's other instance); put options before the verb"
                )
            options.append(arg)
        elif verb is None:
            if arg not in SYSTEMCTL_VERBS:
                raise InputError(
                    f"{field}: 'systemctl {arg}' is not an allowed verb (allowed: {' '.join(sorted(SYSTEMCTL_VERBS))}); "
                    "others run programs (help runs man as root, edit an editor), change units or end the host"
                )
            verb = arg
        else:
            if "/" in arg:
                raise InputError(f"{field}: 'systemctl' with a path argument ('{arg}') can load an arbitrary unit file")
            unit_name(field, arg, suffixes=UNIT_SUFFIXES, template=False)
            if units:
                raise InputError(
                    f"{field}: 'systemctl {verb} {units[0]} {arg}': name one unit per rule; C sudo lets the caller "
                    f"pass '{units[0]} {arg}' as one argument, which systemctl escapes into another unit name "
                    f"('{units[0]}\\x20{arg}', for a template another instance it starts)"
                )
            units.append(arg)
    if verb is None:
        raise InputError(f"{field}: 'systemctl' needs a verb (one of {' '.join(sorted(SYSTEMCTL_VERBS))})")
    if not units:
        raise InputError(f"{field}: 'systemctl {verb}' needs the unit it applies to")
    if verb in SYSTEMCTL_PAGED_VERBS and "--no-pager" not in options:
        raise InputError(f"{field}: 'systemctl {verb}' without --no-pager shows its output in a pager (less), "
                         "which can start a shell")
    if "--now" in options and verb not in ("enable", "disable"):
        raise InputError(f"{field}: 'systemctl --now' only goes with enable or disable")
    return units


def _journal_split(arg):
    if arg.startswith("--"):
        name, _eq, value = arg.partition("=")
        return name, value
    return arg[:2], arg[2:]


def _journalctl(field, args):
    if "--no-pager" not in args:
        raise InputError(f"{field}: 'journalctl' without --no-pager shows its output in a pager (less), which can "
                         "start a shell")
    for pos, arg in enumerate(args):
        if not _is_option(arg):
            raise InputError(f"{field}: 'journalctl {arg}': positional matches (and paths) are refused; use --unit=NAME")
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
        if not name.startswith("--") and value.startswith("="):
            raise InputError(f"{field}: 'journalctl {arg}': getopt hands '-{name[1]}' the value '{value}'; "
                             f"write '{name}{value[1:]}' or the long option with '='")
        if kind == "unit":
            unit_name(field, value, suffixes=UNIT_SUFFIXES, template=False)
            if pos != len(args) - 1:
                raise InputError(
                    f"{field}: 'journalctl {arg} {args[pos + 1]}': the unit option must be the last argument (and "
                    f"only one per rule); C sudo lets the caller pass '{arg} {args[pos + 1]}' as one argument, "
                    "which journalctl escapes into another unit name and drops the options after it"
                )
        elif kind == "count" and not re.fullmatch(r"\+?[0-9]{1,9}|all", value):
            raise InputError(f"{field}: 'journalctl {arg}': a number of lines")
        elif kind == "output" and value not in _OUTPUTS:
            raise InputError(f"{field}: 'journalctl {arg}': an output format ({', '.join(_OUTPUTS)})")
        elif kind == "priority" and not re.fullmatch(r"[0-7](\.\.[0-7])?|[a-z]{3,7}", value):
            raise InputError(f"{field}: 'journalctl {arg}': a priority such as err or 0..3")
        elif kind in ("time", "boot") and not re.fullmatch(r"[A-Za-z0-9@+_:^-]{1,40}", value):
            raise InputError(f"{field}: 'journalctl {arg}': a time (today, -1h, 2026-01-01) or boot id")


# -- one command ----------------------------------------------------------------------------------
def check_no_safe_rule(field, path):
    """Rule 6, by name alone (so the advice comes first, also where the program is not installed)."""
    base = os.path.basename(path)
    family = family_of(base)
    if family in NO_SAFE_RULE:
        raise InputError(f"{field}: no exact sudo rule for '{base}' can be safe: {NO_SAFE_RULE[family]}")


def check_program(field, path, args, allow_shell_escape):
    """Rules 2 to 6 for one command; returns the unit names a systemctl rule names."""
    base = os.path.basename(path)
    check_no_safe_rule(field, path)
    if not allow_shell_escape:
        reason = escape_reason(path)
        if reason:
            raise InputError(f"{field}: {reason}; granting it is granting a root shell (set allow_shell_escape: true "
                             "only if that is really intended)")
        real = os.path.realpath(path)
        for tree in LIBRARY_DIRS:
            if any(p.startswith(tree) for p in (path, real)):
                raise InputError(f"{field}: '{path}' is a script in a language's library ({tree}...), such as a "
                                 "debugger or profiler, that runs whatever the caller passes; grant a program "
                                 "written for the task instead")
    if base == "systemctl":
        return _systemctl(field, args)
    if base == "journalctl":
        _journalctl(field, args)
        return []
    if base in PAGED_TOOLS and (not args or args[0] != "--no-pager"):
        raise InputError(f"{field}: '{base}' shows its output in a pager (less), which can start a shell; put "
                         "--no-pager first (a word before it could swallow it when sudo regroups arguments)")
    _special_cases(field, base, args)
    if args and ((base in PAGED_TOOLS and args[0] == "--no-pager") or (base == "dmesg" and args[0] in NO_PAGER_FLAGS)):
        # A flag without a value: regrouped with the next word it is an unknown option.
        args = args[1:]
    check_generic_arguments(field, args, allow_shell_escape)
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
            and args[0] not in NO_PAGER_FLAGS:
        raise InputError(f"{field}: 'dmesg --human' shows its output in a pager (less), which can start a shell; "
                         "put --nopager first")


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
