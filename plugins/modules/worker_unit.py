#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: worker_unit
short_description: Write a hardened systemd template unit (NAME@.service) for a background worker
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Renders C(/etc/systemd/system/NAME@.service) from structured options, verifies it with
    C(systemd-analyze verify) under its real template name (through one instance), and only then writes
    it atomically (C(root:root 0644)). A unit that systemd refuses, or on which it would ignore a line,
    never lands; the failure shows systemd's own message and names the option behind the line.
  - Runs C(systemctl daemon-reload) once when the file changed, still holding the unit's lock.
  - Instances are started, scaled and restarted with M(supervised.background.worker_instances); the
    M(supervised.background.worker) module does user, files, unit and instances in one call.
  - The unit file and C(systemctl show) are readable by every local user. Put secrets in an environment
    file written by M(supervised.background.env_file), or better in O(credentials), never in
    O(environment) or O(exec_start).
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
  - supervised.background.service
  - supervised.background.service.worker
attributes:
  check_mode:
    support: full
    details: The unit is still verified by systemd, on a private copy. A missing executable is reported as a
      warning in check mode only, because an earlier task may install it.
  diff_mode:
    support: full
options:
  name:
    description:
      - Template name without C(@.service), for example C(queue-worker) for C(queue-worker@.service).
      - Letters, digits, C(_), C(.) and C(-), a letter, digit or C(_) first.
    type: str
    required: true
  state:
    description:
      - V(absent) removes the unit file and reloads systemd. Scale the instances to zero with
        M(supervised.background.worker_instances) first (the worker module does both); the module warns when
        instances are still loaded.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Without C(systemd-analyze) on the host the unit is written unverified and a warning says so.
seealso:
  - module: supervised.background.worker
  - module: supervised.background.worker_instances
  - module: supervised.background.env_file
"""

EXAMPLES = r"""
- name: Template unit for the queue worker
  supervised.background.worker_unit:
    name: queue-worker
    description: Queue worker %i
    exec_start: [/usr/local/bin/queue-worker, --queue, "jobs", --id, "%i"]
    user: queue-worker
    group: queue-worker
    environment_files: [/etc/queue-worker/secrets.env]
    environment:
      LOG_LEVEL: info
    state_directory: queue-worker/%i
    memory_max: 256M
    requires: [rabbitmq-server.service]
    after: [rabbitmq-server.service]
    on_failure: ["alert@%n.service"]
    settings:
      LimitNOFILE: 4096

- name: Remove the template (scale instances to 0 first)
  supervised.background.worker_unit:
    name: old-worker
    state: absent
"""

RETURN = r"""
unit:
  description: Template unit name.
  returned: always
  type: str
  sample: queue-worker@.service
path:
  description: Path of the unit file.
  returned: always
  type: str
  sample: /etc/systemd/system/queue-worker@.service
unit_text:
  description: The rendered unit (holds no secrets by design).
  returned: when O(state=present)
  type: str
verify_warnings:
  description: Lines systemd printed about the unit that did not refuse it.
  returned: always
  type: list
  elements: str
verified:
  description:
    - Whether C(systemd-analyze verify) checked the new unit in this run. False when nothing changed, on
      O(state=absent) and when C(systemd-analyze) is missing (a warning says so).
  returned: always
  type: bool
hardening_overrides:
  description:
    - C(Directive=value) lines from O(settings) that weaken the O(hardening) set or grant privileges.
  returned: always
  type: list
  elements: str
  sample: [MemoryDenyWriteExecute=no, AmbientCapabilities=CAP_NET_BIND_SERVICE]
daemon_reloaded:
  description: Whether C(systemctl daemon-reload) ran.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import locking, safe_file, service_spec, systemd
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError


class WorkerUnit:
    """Render, verify and write one template unit."""

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def run(self):
        p = self.params
        try:
            name = systemd.unit_prefix("name", p["name"])
            wait = locking.lock_wait(p)
            plan = service_spec.render(name, p) if p["state"] == "present" else None
        except InputError as err:
            self.module.fail_json(msg=str(err))
        unit = systemd.template_unit(name)
        path = os.path.join(systemd.SYSTEM_UNIT_DIR, unit)
        result = {"unit": unit, "path": path, "changed": False, "daemon_reloaded": False, "verify_warnings": [],
                  "verified": False, "hardening_overrides": plan.overrides if plan else []}
        if plan:
            result["unit_text"] = plan.text
        with locking.host_lock(self.module, ("unit", unit), timeout=wait):
            writer = systemd.UnitWriter(self.module)
            try:
                if plan is None:
                    outcome = writer.remove(path)
                else:
                    outcome = writer.write(path, unit, plan.text, executables=plan.executables,
                                           blame=service_spec.blame(p["settings"]), needed_units=plan.needed_units)
            except (safe_file.FileError, OSError) as err:
                self.module.fail_json(msg=str(err), **result)
            result["changed"] = outcome.changed
            if outcome.diff is not None:
                result["diff"] = outcome.diff
            try:
                result["daemon_reloaded"] = writer.reload()
                if plan is None and result["daemon_reloaded"]:
                    left = sorted(writer.systemd.loaded_instances(name))
                    if left:
                        self.module.warn(f"{unit} was removed while instances are still loaded ({', '.join(left)}); "
                                         "scale them to 0 with worker_instances first")
            except systemd.SystemdError as err:
                self.module.fail_json(msg=f"daemon-reload after writing {path} failed: {err}", **result)
        result["verify_warnings"] = writer.warnings
        result["verified"] = bool(plan and outcome.changed and unit in writer.verified)
        if plan and plan.overrides and outcome.changed:
            self.module.warn(f"{unit}: settings weaken the '{p['hardening']}' hardening or grant privileges: "
                             f"{', '.join(plan.overrides)}")
        return result


def main():
    spec = dict(name=dict(type="str", required=True),
                state=dict(type="str", choices=["present", "absent"], default="present"))
    spec.update(service_spec.EXEC_SPEC)
    spec.update(service_spec.WORKER_SPEC)
    spec.update(locking.LOCK_SPEC)
    module = AnsibleModule(argument_spec=spec, required_if=[("state", "present", ("exec_start",))],
                           supports_check_mode=True)
    module.exit_json(**WorkerUnit(module).run())


if __name__ == "__main__":
    main()
