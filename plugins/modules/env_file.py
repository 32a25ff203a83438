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
  - Values systemd cannot carry on one line are refused, naming the key but never showing the value;
    newline, carriage return, NUL, tab and every other control character.
  - Keys systemd sets for the service itself (C(NOTIFY_SOCKET), C(INVOCATION_ID), C(JOURNAL_STREAM),
    C(LISTEN_FDS), C(LISTEN_PID), C(LISTEN_FDNAMES), C(MAINPID), C(WATCHDOG_USEC), C(*_DIRECTORY),
    C(MONITOR_*)...) are refused, an environment file would override them and break the service.
  - A variable whose C(KEY=value) is longer than 131071 bytes, or variables totalling more than 1 MiB, are
    refused, the kernel would not start the service with them (C(Argument list too long)).
  - The file is created with its final owner and mode (default C(root:root 0600)) before its first byte is
    written, then renamed into place. A group- or world-accessible mode is refused, as is a symlink at
    the target and a parent directory that is missing or writable by its group or by everyone.
  - Every directory above the file must be owned by root (or by the user running the module) and must not
    be writable by its group or by everyone unless it is sticky, on the path as given and on the path it
    resolves to; otherwise another user could swap the file or a directory above it.
  - Values never appear in the output, the diff or an error message; the diff and RV(changed_keys) name keys
    only.
extends_documentation_fragment:
  - supervised.background.attributes
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
keys:
  description: Names of the keys the file holds after the run (never values).
  returned: always
  type: list
  elements: str
  sample: [API_TOKEN, DB_PASSWORD]
changed_keys:
  description: Names of the keys added, removed and changed compared with the file that was there.
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
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import env_rules, safe_file, validate

HEADER = "# Managed by supervised.background.env_file; do not edit\n"
REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted, changed>"
REDACTED_ADDED = "<redacted, added>"
# Characters systemd unescapes after a backslash inside double quotes (SHELL_NEED_ESCAPE).
_DQ_ESCAPE = '\\"$`'


def quote_value(value):
    """Quote ``value`` so systemd's EnvironmentFile parser returns exactly ``value``."""
    if "'" not in value:
        return "'" + value + "'"
    return '"' + "".join("\\" + ch if ch in _DQ_ESCAPE else ch for ch in value) + '"'


def render(env):
    """The file text for an already validated ``{key: str}`` mapping, keys sorted."""
    return HEADER + "".join(f"{key}={quote_value(env[key])}\n" for key in sorted(env))


def parse(text):
    """Read an environment file the way systemd does (used for the diff of an existing file).

    Mirrors the state machine of systemd's env-file parser: comments only where a key would start,
    whitespace around keys and unquoted values trimmed, single quotes literal, backslash escapes in
    double quotes for the shell's special characters, backslash-newline continues a line.
    """
    result = {}
    key, value, state = [], None, "pre_key"
    key_ws = value_ws = None

    def push():
        name = "".join(key[:key_ws] if key_ws is not None else key)
        val = "" if value is None else "".join(value[:value_ws] if (state == "value" and value_ws is not None) else value)
        result[name] = val

    for ch in text:
        if state == "pre_key":
            if ch in "#;":
                state = "comment"
            elif ch not in " \t\n\r":
                state, key, key_ws, value, value_ws = "key", [ch], None, None, None
        elif state == "key":
            if ch in "\n\r":
                state = "pre_key"
            elif ch == "=":
                state, value_ws = "pre_value", None
            else:
                if ch not in " \t":
                    key_ws = None
                elif key_ws is None:
                    key_ws = len(key)
                key.append(ch)
        elif state == "pre_value":
            if ch in "\n\r":
                push()
                state = "pre_key"
            elif ch == "'":
                state = "single"
            elif ch == '"':
                state = "double"
            elif ch == "\\":
                state = "value_escape"
            elif ch not in " \t":
                state = "value"
                value = (value or []) + [ch]
        elif state == "value":
            if ch in "\n\r":
                push()
                state = "pre_key"
            elif ch == "\\":
                state, value_ws = "value_escape", None
            else:
                if ch not in " \t":
                    value_ws = None
                elif value_ws is None:
                    value_ws = len(value or [])
                value = (value or []) + [ch]
        elif state == "value_escape":
            state = "value"
            if ch not in "\n\r":
                value = (value or []) + [ch]
        elif state == "single":
            if ch == "'":
                state = "pre_value"
            else:
                value = (value or []) + [ch]
        elif state == "double":
            if ch == '"':
                state = "pre_value"
            elif ch == "\\":
                state = "double_escape"
            else:
                value = (value or []) + [ch]
        elif state == "double_escape":
            state = "double"
            if ch in _DQ_ESCAPE:
                value = (value or []) + [ch]
            elif ch != "\n":
                value = (value or []) + ["\\", ch]
        elif state == "comment":
            if ch == "\\":
                state = "comment_escape"
            elif ch in "\n\r":
                state = "pre_key"
        elif state == "comment_escape":
            state = "pre_key" if ch in "\n\r" else "comment"
    if state in ("pre_value", "value", "value_escape", "single", "double", "double_escape"):
        push()
    return result


def env_value(key, value):
    """Convert one value to the string written, refusing what systemd cannot carry. Never echoes it."""
    if value is None:
        raise validate.InputError(f"env: value of key '{key}' is null; give a string (use '' for empty)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise validate.InputError(
            f"env: value of key '{key}' must be a string, number or boolean, not a {type(value).__name__}"
        )
    for ch in value:
        if ch == "\x00":
            raise validate.InputError(f"env: value of key '{key}' contains a NUL byte, which systemd cannot carry")
        if ch in "\n\r":
            raise validate.InputError(
                f"env: value of key '{key}' contains a newline or carriage return; values must be one line"
            )
        if ord(ch) < 32 or ord(ch) == 127:
            raise validate.InputError(
                f"env: value of key '{key}' contains a control character ({ord(ch):#04x}); refused"
            )
    return env_rules.utf8_value("env", key, value)


def _marker(key, changed_keys):
    if key in changed_keys["added"]:
        return REDACTED_ADDED
    if key in changed_keys["changed"]:
        return REDACTED_CHANGED
    return REDACTED


class EnvFile:
    """One environment file: validate, render, compare, write or remove."""

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def validate(self):
        p = self.params
        path = validate.absolute_path("path", p["path"])
        if path.endswith("/"):
            raise validate.InputError(f"path: '{path}' must name a file, not a directory")
        mode = validate.file_mode("mode", p["mode"], forbid_bits=0o077, default=0o600)
        validate.single_line("owner", p["owner"])
        validate.single_line("group", p["group"])
        safe_file.resolve_uid(p["owner"])
        safe_file.resolve_gid(p["group"])
        env = None
        if p["state"] == "present":
            env = {}
            for key in sorted(p["env"] or {}, key=str):
                validate.env_key("env", key)
                env_rules.reserved_key("env", key)
                env[key] = env_value(key, p["env"][key])
                if env[key]:
                    self.module.no_log_values.add(env[key])
            env_rules.check_sizes("env", env)
        return path, mode, env

    @staticmethod
    def trusted_ancestors(parent):
        """Every directory above the file must be safe from other users (the shared rule)."""
        try:
            safe_file.check_trusted_directory(parent)
        except safe_file.FileError as err:
            raise validate.InputError(f"path: {err}") from None

    def check_parent(self, path, present):
        parent = os.path.dirname(path) or "/"
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            if not present:
                return False
            if self.module.check_mode:
                self.module.warn(f"check mode: directory {parent} does not exist yet; "
                                 "the plan assumes an earlier task creates it")
                return False
            raise validate.InputError(f"path: directory {parent} does not exist; create it first") from None
        if not stat.S_ISDIR(st.st_mode):
            raise validate.InputError(f"path: {parent} is not a directory")
        if stat.S_IMODE(st.st_mode) & 0o022:
            raise validate.InputError(
                f"path: directory {parent} is writable by its group or by everyone "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); another user could swap the file"
            )
        self.trusted_ancestors(parent)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return True
        if stat.S_ISLNK(st.st_mode):
            raise validate.InputError(f"path: {path} is a symlink; refusing to write through it")
        if not stat.S_ISREG(st.st_mode):
            raise validate.InputError(f"path: {path} exists and is not a regular file")
        return True

    def run(self):
        try:
            path, mode, env = self.validate()
            parent_exists = self.check_parent(path, env is not None)
            previous = safe_file.read_state(path) if parent_exists else None
        except (validate.InputError, safe_file.FileError) as err:
            self.module.fail_json(msg=str(err))
        except OSError as err:
            self.module.fail_json(msg=f"path: cannot read {self.params['path']}: {err.strerror}")
        old_env = parse(previous.content.decode("utf-8", errors="replace")) if previous else {}
        for val in old_env.values():
            if val:
                self.module.no_log_values.add(val)
        new_env = env if env is not None else {}
        changed_keys = {
            "added": sorted(k for k in new_env if k not in old_env),
            "removed": sorted(k for k in old_env if k not in new_env),
            "changed": sorted(k for k in new_env if k in old_env and old_env[k] != new_env[k]),
        }
        before = "".join(f"{k}={REDACTED}\n" for k in sorted(old_env))
        result = {"path": path, "changed": False, "changed_keys": changed_keys, "keys": sorted(new_env)}
        if env is not None and not parent_exists:
            # Check mode only: the directory an earlier task would create is not there yet.
            result["changed"] = True
            if self.module._diff:
                after = "".join(f"{k}={REDACTED_ADDED}\n" for k in sorted(new_env))
                result["diff"] = safe_file.make_diff(path, None, after)
            return result
        try:
            if env is None:
                outcome = safe_file.remove_file(self.module, path, diff_before=before)
            else:
                after = "".join(f"{k}={_marker(k, changed_keys)}\n" for k in sorted(new_env))
                outcome = safe_file.write_file(
                    self.module, path, render(env), owner=self.params["owner"], group=self.params["group"],
                    mode=mode, diff_before=before, diff_after=after,
                )
        except (safe_file.FileError, OSError) as err:
            # FileError messages name the path and the reason, never the content.
            self.module.fail_json(msg=f"path: {err}", changed_keys=changed_keys)
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
        ),
        required_if=[("state", "present", ("env",))],
        supports_check_mode=True,
    )
    result = EnvFile(module).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
