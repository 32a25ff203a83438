#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: env_file
short_description: Write a systemd EnvironmentFile holding secrets, root-only from the first byte
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Writes an C(EnvironmentFile=) for a systemd service from a dictionary, one C(KEY=value) line per key,
    keys sorted.
  - Every value is quoted so that systemd's EnvironmentFile parser reads back exactly the string that was
    given. A value without a single quote is written between single quotes (systemd takes everything up
    to the closing quote literally). A value that contains a single quote is written between double quotes,
    with a backslash before each of C(\\), C("), C($) and the backtick, the only characters systemd
    unescapes inside double quotes.
  - >-
    Values systemd cannot carry exactly are refused before anything is written, naming the key but
    never showing the value or the character: control characters (newline, carriage return, NUL, tab,
    DEL and the C1 controls), Unicode line and paragraph separators, lone surrogates and Unicode
    noncharacters (U+FDD0-U+FDEF, U+xFFFE/U+xFFFF; systemd refuses the whole file on them and prints the
    value to the journal). Every other string reaches the service byte for byte (proven against real
    systemd with generated values).
  - Keys systemd sets for the service itself (C(NOTIFY_SOCKET), C(INVOCATION_ID), C(JOURNAL_STREAM),
    C(LISTEN_FDS), C(LISTEN_PID), C(LISTEN_FDNAMES), C(MAINPID), C(WATCHDOG_USEC), C(*_DIRECTORY),
    C(MONITOR_*)...) are refused, an environment file would override them and break the service.
  - A variable whose C(KEY=value) is longer than 131071 bytes, or variables totalling more than 1 MiB, are
    refused, the kernel would not start the service with them (C(Argument list too long)).
  - The file is created with its final owner and mode (default C(root:root 0600)) before its first byte is
    written, then renamed into place. A group- or world-accessible mode is refused, as is a symlink at
    the target.
  - The directory must pass the collection's trust policy as a secret's directory (owned by root, or by
    the user running the module, up to C(/), as given and as resolved; writable by no one else, sticky
    directories such as C(/tmp) included; no default ACL).
  - Values never appear in the output, the diff or an error message; the diff and RV(changed_variables)
    name keys only.
  - Two runs at once are serialised per file (see O(lock_timeout)).
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Keys are shown with their values replaced by C(<redacted>) or C(<redacted, changed>).
options:
  path:
    description:
      - Absolute path of the environment file, for example C(/etc/queue-worker/secrets.env).
      - Its directory must exist and must not be writable by its group or by everyone.
    type: path
    required: true
  env:
    description:
      - Variables to write. Keys must match C([A-Za-z_][A-Za-z0-9_]*).
      - Values are strings; numbers are converted with C(str()), booleans to C(true) or C(false).
        A null value is refused.
      - The whole option is C(no_log).
      - Required when O(state=present).
    type: dict
  owner:
    description: Owner of the file (name or uid).
    type: str
    default: root
  group:
    description: Group of the file (name or gid).
    type: str
    default: root
  mode:
    description:
      - Permission bits as an octal string such as V('0600') or V('0400').
      - Any group or world bit is refused, the file holds secrets.
    type: raw
    default: '0600'
  state:
    description: Whether the file should exist.
    type: str
    choices: [present, absent]
    default: present
notes:
  - systemd does not expand C($VAR) references or specifiers inside an EnvironmentFile, so C($) and C(%) in
    values reach the service unchanged.
seealso:
  - module: supervised.background.worker_unit
  - name: systemd.exec(5), EnvironmentFile=
    description: How systemd reads environment files.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.exec.html#EnvironmentFile=
"""

EXAMPLES = r"""
- name: Give the queue worker its database password
  supervised.background.env_file:
    path: /etc/queue-worker/secrets.env
    env:
      DB_PASSWORD: "{{ vault_db_password }}"
      API_TOKEN: "{{ vault_api_token }}"

- name: Remove an environment file that is no longer used
  supervised.background.env_file:
    path: /etc/queue-worker/old.env
    state: absent
"""

RETURN = r"""
path:
  description: The file managed.
  returned: always
  type: str
  sample: /etc/queue-worker/secrets.env
variables:
  description: Names of the variables the file holds after the run (never values).
  returned: always
  type: list
  elements: str
  sample: [API_TOKEN, DB_PASSWORD]
changed_variables:
  description: Names of the variables added, removed and changed compared with the file that was there.
  returned: always
  type: dict
  contains:
    added:
      description: Keys that were not in the file.
      type: list
      elements: str
    removed:
      description: Keys that were in the file and are gone.
      type: list
      elements: str
    changed:
      description: Keys whose value changed.
      type: list
      elements: str
  sample: {added: [API_TOKEN], removed: [], changed: [DB_PASSWORD]}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import env_rules, locking, safe_file, secret_files, validate


class EnvFile:
    """One environment file: validate, then write or remove it through secret_files."""

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def check_input(self):
        p = self.params
        path = validate.absolute_path("path", p["path"])
        mode = validate.file_mode("mode", p["mode"], forbid_bits=0o077, default=0o600)
        for field in ("owner", "group"):
            validate.account_name(field, p[field])
        safe_file.resolve_uid(p["owner"])
        safe_file.resolve_gid(p["group"])
        env = env_rules.environment("env", p["env"] or {}) if p["state"] == "present" else None
        return path, mode, env, locking.lock_wait(p)

    def run(self):
        p = self.params
        try:
            path, mode, env, wait = self.check_input()
        except (validate.InputError, safe_file.FileError) as err:
            self.module.fail_json(msg=str(err))
        result = {"path": path, "changed": False, "variables": sorted(env or {})}
        with locking.host_lock(self.module, ("file", path), timeout=wait):
            try:
                changed, diff, changes = secret_files.write_env_file(self.module, path, env, p["owner"], p["group"], mode)
            except validate.InputError as err:
                self.module.fail_json(msg=str(err), **result)
            except (safe_file.FileError, OSError) as err:
                # FileError messages name the path and the reason, never the content.
                self.module.fail_json(msg=f"path: {err}", **result)
        result.update(changed=changed, changed_variables=changes)
        if diff is not None:
            result["diff"] = diff
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            env=dict(type="dict", no_log=True),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
            mode=dict(type="raw", default="0600"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            **locking.LOCK_SPEC,
        ),
        required_if=[("state", "present", ("env",))],
        supports_check_mode=True,
    )
    module.exit_json(**EnvFile(module).run())


if __name__ == "__main__":
    main()
