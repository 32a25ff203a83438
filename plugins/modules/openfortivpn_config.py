#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: openfortivpn_config
short_description: Write a root-only openfortivpn configuration file
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Writes an openfortivpn configuration file (default C(/etc/openfortivpn/NAME.conf)) from structured
    options, owned by root:root with mode 0600, through the collection's atomic file writer.
  - The module never writes a looser mode and has no option to ask for one. A missing C(/etc/openfortivpn)
    (or another directory named C(openfortivpn)) is created C(root:root 0700); an existing one owned by root
    with a looser mode (Debian's package ships it 0755) is tightened to 0700 and reported as a change. Any
    other directory is never changed and must already pass the trust policy as a secret's directory.
  - The file name must end in C(.conf).
  - Values are written so openfortivpn reads back exactly what was given; every secret is refused (without
    being shown) if openfortivpn would split, trim or cut it. O(password), O(otp) and O(pem_passphrase) never
    appear in the output, the diff (which is redacted the way openfortivpn splits the file, at C(\n) only)
    or the host's log. Values in O(extra) are not secret and are shown.
  - Keys the installed openfortivpn does not know (C(sni) before 1.23, C(pem-passphrase) before 1.17) are
    refused; openfortivpn stops reading the file at an unknown key.
  - For tunnels used by CI jobs, M(supervised.background.ci_tunnel) writes this file and the tunnel's unit.
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
  - supervised.background.openfortivpn
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Secret values, comments and unknown lines are shown as C(********).
options:
  name:
    description:
      - Connection name; the default O(path) is C(/etc/openfortivpn/NAME.conf), which an
        C(openfortivpn@NAME.service) unit reads.
      - Letters, digits, C(_), C(.), C(-).
    type: str
  path:
    description: Full path of the configuration file. Required when O(name) is not given.
    type: path
  state:
    description: C(present) writes the file, C(absent) removes it (the directory is kept).
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Corporate tunnel
  supervised.background.openfortivpn_config:
    name: corp
    host: vpn.example.com
    username: ci-bot
    password: "{{ vault_corp_vpn_password }}"
    trusted_cert:
      - e46d4aff08ba6914e64daa85bc6112a422fa7ce16631bff0b592a28556f993db
    set_dns: false
    set_routes: true
    persistent: 10
    extra:
      min-tls: "1.2"
"""

RETURN = r"""
path:
  description: The configuration file managed.
  returned: always
  type: str
  sample: /etc/openfortivpn/corp.conf
version:
  description: The openfortivpn version found on the host (null when it is not installed).
  returned: always
  type: str
  sample: "1.19"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import locking, openfortivpn, safe_file, secret_files
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError


class ConfigFile:
    """One openfortivpn configuration file."""

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def run(self):
        p = self.params
        version = openfortivpn.installed_version(self.module)
        try:
            path = openfortivpn.config_path(p["name"], p["path"])
            wait = locking.lock_wait(p)
            content = None
            if p["state"] == "present":
                config_entries, secrets = openfortivpn.entries(p, self.module, version)
                for secret in secrets:
                    secret_files.mask(self.module, secret)
                content = openfortivpn.render(config_entries)
        except InputError as err:
            self.module.fail_json(msg=str(err))
        result = {"changed": False, "path": path, "version": ".".join(map(str, version)) if version else None}
        with locking.host_lock(self.module, ("file", path), timeout=wait):
            try:
                changed, diff = openfortivpn.write_config(self.module, path, content)
            except InputError as err:
                self.module.fail_json(msg=str(err), **result)
            except (safe_file.FileError, OSError) as err:
                self.module.fail_json(msg=f"path: {err}", **result)
        result["changed"] = changed
        if diff:
            result["diff"] = diff
        return result


def main():
    spec = dict(
        name=dict(type="str"),
        path=dict(type="path"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    spec.update(openfortivpn.CONFIG_SPEC)
    spec.update(locking.LOCK_SPEC)
    module = AnsibleModule(argument_spec=spec, required_one_of=[("name", "path")],
                           required_if=[("state", "present", ["host"])], supports_check_mode=True)
    module.exit_json(**ConfigFile(module).run())


if __name__ == "__main__":
    main()
