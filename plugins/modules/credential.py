#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credential
short_description: Write a systemd credential file, root-only from the first byte, optionally encrypted
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Writes one credential for a service, C(/etc/supervised-background/credentials/SERVICE/ID) by default,
    C(root:root 0600) from its first byte, through the collection's atomic file writer. The directory is
    created C(root:root 0700).
  - A service loads it with C(LoadCredential=ID:PATH) (the C(credentials) option of
    M(supervised.background.worker_unit) and M(supervised.background.worker)), and reads it from
    C($CREDENTIALS_DIRECTORY/ID). Unlike an environment variable, it is not in C(/proc/PID/environ), not
    inherited by the service's children, and not readable by other processes of the same user.
  - >-
    With O(encrypt=true), the file holds the output of C(systemd-creds encrypt --with-key=host) (systemd 250
    and later): it can only be read on this host. The module compares by decrypting the current file, so a
    rerun with the same value changes nothing. On an older systemd the module fails with a clear message.
  - The value never appears in the output, the diff or an error message.
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
attributes:
  check_mode:
    support: full
    details: Nothing is encrypted in check mode (encrypting can create the host key).
  diff_mode:
    support: full
    details: The diff says whether the credential is added, changed or removed, never its value.
options:
  name:
    description: Credential id, as the service names it (letters, digits, C(_), C(.), C(-); at most 64).
    type: str
    required: true
  service:
    description:
      - The service the credential belongs to (for example the worker's name); the default O(path) is
        C(/etc/supervised-background/credentials/SERVICE/NAME). Required without O(path).
    type: str
  path:
    description: Absolute path of the file instead. Its directory must pass the trust policy as a secret's directory.
    type: path
  value:
    description:
      - The secret (any text, also several lines; at most 1 MiB). Required with O(state=present).
    type: str
  encrypt:
    description: Encrypt the file with the host key (C(systemd-creds), systemd 250 and later); the service then uses C(LoadCredentialEncrypted=).
    type: bool
    default: false
  state:
    description: Whether the credential exists.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: supervised.background.worker
  - name: systemd credentials
    description: How services receive credentials.
    link: https://systemd.io/CREDENTIALS/
"""

EXAMPLES = r"""
- name: The queue worker's database password, as a credential
  supervised.background.credential:
    service: queue-worker
    name: db_password
    value: "{{ vault_db_password }}"
  register: db_cred

- name: Load it in the worker
  supervised.background.worker_unit:
    name: queue-worker
    exec_start: [/usr/local/bin/queue-worker]
    credentials:
      db_password: "{{ db_cred.path }}"
"""

RETURN = r"""
path:
  description: The credential file.
  returned: always
  type: str
  sample: /etc/supervised-background/credentials/queue-worker/db_password
encrypted:
  description: Whether the file is encrypted with systemd-creds.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import locking, safe_file, secret_files, validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import unit_prefix


class Credential:
    """One credential file."""

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def check_input(self):
        p = self.params
        cred_id = secret_files.credential_id("name", p["name"])
        if p["path"]:
            path = validate.absolute_path("path", p["path"])
        elif p["service"]:
            path = os.path.join(secret_files.CREDENTIAL_DIR, unit_prefix("service", p["service"]), cred_id)
        else:
            raise validate.InputError("service: one of service or path is required")
        data = None
        if p["state"] == "present":
            if p["value"] is None:
                raise validate.InputError("value: required with state=present")
            data = secret_files.credential_value("value", p["value"])
            secret_files.mask(self.module, p["value"])
        return cred_id, path, data, locking.lock_wait(p)

    def run(self):
        p = self.params
        try:
            cred_id, path, data, wait = self.check_input()
        except validate.InputError as err:
            self.module.fail_json(msg=str(err))
        result = {"changed": False, "path": path, "encrypted": bool(p["encrypt"])}
        with locking.host_lock(self.module, ("file", path), timeout=wait):
            try:
                dir_changed = False
                if data is not None and not p["path"]:
                    dir_changed = secret_files.ensure_secret_directory(self.module, os.path.dirname(path))
                changed, diff = secret_files.write_credential(self.module, path, cred_id, data, encrypted=p["encrypt"])
            except validate.InputError as err:
                self.module.fail_json(msg=str(err), **result)
            except (safe_file.FileError, OSError) as err:
                self.module.fail_json(msg=f"path: {err}", **result)
        result["changed"] = changed or dir_changed
        if diff:
            result["diff"] = diff
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            service=dict(type="str"),
            path=dict(type="path"),
            value=dict(type="str", no_log=True),
            encrypt=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            **locking.LOCK_SPEC,
        ),
        mutually_exclusive=[("service", "path")],
        required_one_of=[("service", "path")],
        supports_check_mode=True,
    )
    module.exit_json(**Credential(module).run())


if __name__ == "__main__":
    main()
