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
  - Every rule pins the working directory with C(CWD=/) (sudo 1.9.3 and later, sudo-rs), so a relative
    path, also one the caller creates by regrouping arguments, resolves under C(/), and C(sudo -D) is
    refused.
  - C(sudo) compares the caller's arguments joined with single spaces, so the caller may pass any
    regrouping of a rule's words (C(sudo prog "-c /etc/x.conf") matches the rule C(prog -c /etc/x.conf),
    and getopt hands the program the value C(" /etc/x.conf"), a relative path). For a program whose grammar the collection does
    not know, an option value must therefore be joined to its option (C(-c/etc/x.conf),
    C(--config=/etc/x.conf)); an option followed by a separate word, C(-c=/x), and relative file names in
    every form and in every part of a list (C(corp.conf), C(./x), C(~/x), C(--config=corp.conf),
    C(--path=/a:rel/b)) are refused with the form to use. Every file named must pass the collection's
    trust policy (root's up to C(/), writable by no one else, not in a sticky directory such as
    C(/tmp)); files under C(/proc) and C(/dev) are refused.
  - C(systemctl) and C(journalctl) rules are allowlists of verbs and options, built so that every
    regrouping is a usage error; a C(systemctl) rule names one unit, last (systemctl escapes a space into
    another unit name); C(status), C(show), C(cat) and C(journalctl) need C(--no-pager), and C(help),
    C(edit) and every other verb are refused (C(help) runs man as root).
  - C(openfortivpn) and C(openvpn) are refused even with O(allow_shell_escape=true) (no exact rule for a
    VPN client can be safe); the message points at C(systemctl start/stop) of the ci_runner role's tunnel
    units.
  - Refuses everything else that cannot be written safely, naming the entry (C(commands[N])) and the rule
    broken (relative or symlinked paths, missing binaries, wildcards, sudoers syntax characters, C(ALL),
    binaries, files named in arguments or systemd unit files that someone other than root could
    change; commands of a shell-escape family, also under a versioned or variant name such as
    C(vim.nox), C(tclsh8.6), C(python3.11) or C(x86_64-linux-gnu-gdb), what the alternatives system runs
    as C(editor) or C(pager), hard links or copies of them and of the login shells, and arguments that
    name them, unless O(allow_shell_escape=true); file names sudo would silently ignore).
  - The rules, each stated once, are in the collection's C(sudo_policy) module utility; the sudoers guide
    (C(docs/sudoers.md)) explains each with the attack it stops.
  - The new file is checked with C(visudo -cf) on the very temp file that then replaces the live
    one; afterwards the whole configuration is checked with C(visudo -c) and, if that fails, the
    previous file is put back and the task fails.
  - Works with sudo and with sudo-rs (its C(visudo) only reads files, never standard input).
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
attributes:
  check_mode:
    support: full
    details: The new file is validated with visudo on a private copy; nothing is written.
  diff_mode:
    support: full
options:
  name:
    description:
      - File name under C(/etc/sudoers.d).
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
      - Option values joined to the option (C(-c/etc/x.conf), C(--config=/etc/x.conf)), positional arguments
        before the options, files by absolute path; one unit per C(systemctl) rule, last.
    type: list
    elements: raw
    default: []
  allow_shell_escape:
    description:
      - Allow shells, interpreters, editors, pagers and other commands known to hand out a shell or
        write arbitrary files as root (see the module documentation page for the list).
      - Granting such a command is granting full root. Leave this off.
      - It does not lift the refusal of VPN clients (C(openfortivpn), C(openvpn)), for which a safe way exists.
    type: bool
    default: false
notes:
  - The grantee (user or group) must exist (a typo would otherwise grant nothing, silently).
  - visudo (or visudo-rs) is found on root's C(PATH) and must itself pass the trust policy as a binary
    root runs.
  - Write access through a POSIX ACL shows in the group write bit (the ACL mask), which the trust
    policy refuses.
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
    - gitlab-runner ALL=(root) CWD=/ NOPASSWD: /usr/bin/systemctl start openfortivpn@corp.service
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import locking, safe_file, sudo_policy, trust
from ansible_collections.supervised.background.plugins.module_utils.systemd import Systemd, SystemdError
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError, single_line

HEADER = "# Managed by supervised.background.sudoers_exact: exact commands only. Do not edit.\n"
SUDOERS_DIR = "/etc/sudoers.d"
VISUDO_NAMES = ("visudo", "visudo-rs")

_FILE_NAME_RE = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}"
_PRINCIPAL_RE = r"[A-Za-z_][A-Za-z0-9_.-]{0,31}"
# sudoers reads an all-capitals word as an alias (User_Alias, Runas_Alias), which can name anyone.
_ALIAS_RE = r"[A-Z][A-Z0-9_]*"
# Words with a meaning of their own at the start of a sudoers line or in a user list.
_RESERVED = frozenset({"ALL", "Defaults", "User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias"})


class SudoersExact:
    """One sudoers.d file of exact-command rules: check, render, validate with visudo, write."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.path = None

    # ---- input -------------------------------------------------------------------------
    def check_inputs(self):
        p = self.params
        name = single_line("name", p["name"])
        if "." in name or name.endswith("~"):
            raise InputError(
                f"name: '{name}' would be silently ignored by sudo (files in sudoers.d whose name contains '.' "
                "or ends with '~' are skipped)"
            )
        if not re.fullmatch(_FILE_NAME_RE, name):
            raise InputError(f"name: '{name}' may only use letters, digits, '_' and '-' (at most 64, not starting with '-')")
        self.path = os.path.join(SUDOERS_DIR, name)
        if p["state"] == "absent":
            return None
        if p["user"] is None and p["group"] is None:
            raise InputError("user: one of user or group is required with state=present")
        if not p["commands"]:
            raise InputError("commands: at least one command is required with state=present")
        field, who = ("user", p["user"]) if p["user"] is not None else ("group", p["group"])
        self.principal(field, who)
        self.principal("runas", p["runas"])
        self.exists(field, who)
        self.exists("runas", p["runas"], user=True)
        principal = who if field == "user" else f"%{who}"
        rules = []
        for index, entry in enumerate(p["commands"]):
            field_i = f"commands[{index}]"
            argv = sudo_policy.check_words(field_i, self.argv(field_i, entry))
            sudo_policy.check_no_safe_rule(field_i, argv[0])
            sudo_policy.check_binary(field_i, argv[0])
            units = sudo_policy.check_program(field_i, argv[0], argv[1:], p["allow_shell_escape"])
            self.check_units(field_i, units)
            rule = sudo_policy.render_rule(principal, p["runas"], p["nopasswd"], argv)
            if rule not in rules:
                rules.append(rule)
        return rules

    def exists(self, field, who, user=None):
        """The grantee must exist; root (or the root group) needs no rule. In check mode an earlier
        task of the same play may create it."""
        try:
            if field == "group" and not user:
                gid = grp.getgrnam(who).gr_gid
                is_root = gid == 0
            else:
                entry = pwd.getpwnam(who)
                is_root = field != "runas" and (entry.pw_uid == 0 or entry.pw_gid == 0
                                                or any(who in g.gr_mem for g in grp.getgrall() if g.gr_gid == 0))
        except KeyError:
            if not self.module.check_mode:
                raise InputError(f"{field}: '{who}' does not exist on the host") from None
            self.module.warn(f"{field}: '{who}' does not exist yet; assuming an earlier task creates it")
            return
        if is_root:
            raise InputError(f"{field}: '{who}' is root or in the root group; it needs no sudo rule")

    @staticmethod
    def principal(field, value):
        single_line(field, value)
        if value == "ALL":
            raise InputError(f"{field}: 'ALL' is refused; name one user or group")
        if value in _RESERVED:
            raise InputError(f"{field}: '{value}' is a sudoers keyword, not a user or group name")
        if re.fullmatch(_ALIAS_RE, value or ""):
            raise InputError(
                f"{field}: '{value}' is all capitals, which sudoers reads as an alias (that can name any number of "
                "users), not as a user or group name"
            )
        if not re.fullmatch(_PRINCIPAL_RE, value or ""):
            raise InputError(f"{field}: '{value}' is not a plain user/group name (letters, digits, '_', '-'; no '%', "
                             "'#', '+' or sudoers aliases)")

    @staticmethod
    def argv(field, entry):
        if isinstance(entry, str):
            single_line(field, entry)
            try:
                return shlex.split(entry)
            except ValueError as exc:
                raise InputError(f"{field}: '{entry}' cannot be split like a shell would: {exc}") from None
        if isinstance(entry, (list, tuple)):
            argv = []
            for pos, arg in enumerate(entry):
                if isinstance(arg, int) and not isinstance(arg, bool):
                    arg = str(arg)
                if not isinstance(arg, str):
                    raise InputError(f"{field}: argument {pos} ({arg!r}) must be a string")
                argv.append(arg)
            return argv
        raise InputError(f"{field}: must be an argv list or a command string, not {type(entry).__name__}")

    def check_units(self, field, units):
        """systemctl runs what a unit file says: the files that define each unit must be root's (the
        trust policy). Units systemd does not know yet (a later task creates them) cannot be checked."""
        if not units:
            return
        try:
            shown = Systemd(self.module).show(units, ["FragmentPath", "SourcePath", "DropInPaths"])
        except (SystemdError, OSError, ValueError) as err:
            self.module.warn(f"{field}: the unit files could not be inspected ({err})")
            return
        for unit, props in shown.items():
            files = [props.get("FragmentPath", ""), props.get("SourcePath", "")] + (props.get("DropInPaths") or "").split()
            for path in files:
                if not path or path == "/dev/null":
                    continue
                try:
                    trust.check(field, path, trust.ROOT_READ_LINK)
                except trust.TrustError as err:
                    raise InputError(f"{field}: unit '{unit}' is defined by a file someone other than root can change "
                                     f"({str(err).split(': ', 1)[1]})") from None

    # ---- visudo --------------------------------------------------------------------------
    def visudo_binaries(self):
        """The visudo programs found on root's PATH, each by the resolved path that passed the trust
        policy: that path, not the name found on PATH, is what runs (a link swapped after the check
        would otherwise run something else)."""
        found = []
        for name in VISUDO_NAMES:
            path = self.module.get_bin_path(name)
            if not path:
                continue
            real = os.path.realpath(path)
            if real in found:
                continue
            try:
                trust.check("visudo", real, trust.ROOT_BINARY)
            except trust.TrustError as err:
                self.module.fail_json(msg=str(err), path=self.path, rules=[])
            found.append(real)
        if not found:
            self.module.fail_json(msg="visudo: neither visudo nor visudo-rs was found on the host; install sudo or "
                                      "sudo-rs first", path=self.path, rules=[])
        return found

    def run_visudo(self, binary, args):
        rc, out, err = self.module.run_command([binary] + args, environ_update={"LC_ALL": "C"})
        # Keep the report short; the rules hold no secrets but a long dump helps nobody.
        return rc, "\n".join((out + err).strip().splitlines()[-6:])

    # ---- run -----------------------------------------------------------------------------
    def run(self):
        try:
            rules = self.check_inputs()
            wait = locking.lock_wait(self.params)
        except InputError as err:
            self.module.fail_json(msg=str(err))
        result = {"changed": False, "path": self.path, "rules": rules or []}
        # One lock for every sudoers file: the check of the whole configuration covers them all.
        with locking.host_lock(self.module, ("sudoers", SUDOERS_DIR), timeout=wait):
            visudos = self.visudo_binaries()
            try:
                if self.params["state"] == "absent":
                    res = safe_file.remove_file(self.module, self.path)
                else:
                    res = safe_file.write_file(self.module, self.path, HEADER + "".join(r + "\n" for r in rules),
                                               owner="root", group="root", mode=0o440,
                                               validate=self.validator(visudos))
            except safe_file.FileError as err:
                # visudo's verdict names its own field; anything else is about the file NAME names.
                msg = str(err)
                self.module.fail_json(msg=msg if msg.startswith("visudo:") else f"name: {msg}", **result)
            result["changed"] = res.changed
            if res.diff:
                result["diff"] = res.diff
            if res.changed and not self.module.check_mode:
                self.check_whole(visudos[0], res.previous, result,
                                 "removing" if self.params["state"] == "absent" else "writing")
        return result

    def validator(self, visudos):
        def validate(tmp_path):
            for binary in visudos:
                rc, text = self.run_visudo(binary, ["-c", "-f", tmp_path])
                if rc != 0:
                    return f"visudo: {binary} rejected the new rules for {self.path}: {text}"
            return None
        return validate

    def check_whole(self, binary, previous, result, action):
        """After the file landed (or left), the whole configuration must still parse."""
        rc, text = self.run_visudo(binary, ["-c"])
        if rc == 0:
            return
        try:
            safe_file.restore(self.module, self.path, previous)
        except (OSError, safe_file.FileError) as err:
            self.module.fail_json(
                msg=f"visudo: the whole sudo configuration is invalid after {action} {self.path}, and putting the "
                    f"previous file back failed too ({err}); fix it by hand: {text}", **result)
        result["changed"] = False
        result.pop("diff", None)
        self.module.fail_json(
            msg=f"visudo: the whole sudo configuration is invalid after {action} {self.path}; the previous file was "
                f"put back: {text}", **result)


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
            **locking.LOCK_SPEC,
        ),
        mutually_exclusive=[("user", "group")],
        supports_check_mode=True,
    )
    module.exit_json(**SudoersExact(module).run())


if __name__ == "__main__":
    main()
