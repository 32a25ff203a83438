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
  - Values systemd cannot carry exactly are refused before anything is written, naming the key but
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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import env_rules, locking, safe_file, trust, validate

HEADER = "# Managed by supervised.background.env_file; do not edit\n"
REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted, changed>"
REDACTED_ADDED = "<redacted, added>"


def _marker(key, changes):
    if key in changes["added"]:
        return REDACTED_ADDED
    if key in changes["changed"]:
        return REDACTED_CHANGED
    return REDACTED


class EnvFile:
    """One environment file: validate, render, compare, write or remove."""

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
        wait = validate.timespan("lock_timeout", p["lock_timeout"])
        env = None
        if p["state"] == "present":
            env = env_rules.environment("env", p["env"] or {})
            for value in env.values():
                if value:
                    self.module.no_log_values.add(value)
        return path, mode, env, wait

    def directory_ready(self, path, present):
        """Whether the file's directory exists; a missing one is an error (a planned change in
        check mode, where an earlier task may create it)."""
        parent = os.path.dirname(path) or "/"
        if os.path.lexists(parent):
            trust.check("path", parent, trust.SECRET_DIR)
            return True
        if present and not self.module.check_mode:
            raise validate.InputError(f"path: directory {parent} does not exist; create it first")
        if present:
            self.module.warn(f"check mode: directory {parent} does not exist yet; the plan assumes an earlier "
                             "task creates it")
        return False

    def run(self):
        try:
            path, mode, env, wait = self.check_input()
        except (validate.InputError, safe_file.FileError) as err:
            self.module.fail_json(msg=str(err))
        with locking.host_lock(self.module, ("file", path), timeout=wait):
            return self.reconcile(path, mode, env)

    def reconcile(self, path, mode, env):
        try:
            ready = self.directory_ready(path, env is not None)
            previous = safe_file.read_state(path) if ready else None
        except validate.InputError as err:
            self.module.fail_json(msg=str(err))
        except safe_file.FileError as err:
            self.module.fail_json(msg=f"path: {err}")
        except OSError as err:
            self.module.fail_json(msg=f"path: cannot read {path}: {err.strerror}")
        old_env = env_rules.parse_file(previous.content.decode("utf-8", errors="replace")) if previous else {}
        for val in old_env.values():
            if val:
                self.module.no_log_values.add(val)
        new_env = env if env is not None else {}
        shown_old = env_rules.shown_keys(old_env)
        changes = {
            "added": sorted(k for k in new_env if k not in old_env),
            "removed": sorted(k for k in shown_old if k not in new_env),
            "changed": sorted(k for k in new_env if k in old_env and old_env[k] != new_env[k]),
        }
        hidden = len(old_env) - len(shown_old)
        before = "".join(f"{k}={REDACTED}\n" for k in sorted(shown_old)) + (f"{REDACTED} ({hidden} more lines)\n" if hidden else "")
        result = {"path": path, "changed": False, "changed_variables": changes, "variables": sorted(new_env)}
        if env is not None and not ready:
            # Check mode only: the directory an earlier task would create is not there yet.
            result["changed"] = True
            if self.module._diff:
                after = "".join(f"{k}={REDACTED_ADDED}\n" for k in sorted(new_env))
                result["diff"] = safe_file.make_diff(path, None, after)
            return result
        try:
            if env is None:
                outcome = safe_file.remove_file(self.module, path, diff_before=before, purpose=trust.SECRET_DIR)
            else:
                after = "".join(f"{k}={_marker(k, changes)}\n" for k in sorted(new_env))
                outcome = safe_file.write_file(
                    self.module, path, env_rules.render_file(HEADER, env), owner=self.params["owner"],
                    group=self.params["group"], mode=mode, diff_before=before, diff_after=after,
                    purpose=trust.SECRET_DIR,
                )
        except (safe_file.FileError, OSError) as err:
            # FileError messages name the path and the reason, never the content.
            self.module.fail_json(msg=f"path: {err}", changed_variables=changes)
        result["changed"] = outcome.changed
        if outcome.diff is not None:
            result["diff"] = outcome.diff
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
            lock_timeout=dict(type="raw", default="5min"),
        ),
        required_if=[("state", "present", ("env",))],
        supports_check_mode=True,
    )
    module.exit_json(**EnvFile(module).run())


if __name__ == "__main__":
    main()
