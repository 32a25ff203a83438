#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: worker_info
short_description: Report the state of a worker's instances (or of named units) from systemd
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Read-only facts, straight from C(systemctl show), for every instance of the template
    C(NAME@.service) that systemd knows of (loaded, running, failed or enabled), or for a list of
    units.
  - Never changes anything; runs the same in check mode.
extends_documentation_fragment:
  - supervised.background.attributes.INFO_MODULE
options:
  name:
    description:
      - Base name of the worker template, for example V(queue-worker) for C(queue-worker@.service).
      - Its instances are discovered from systemd (loaded units and enablement links).
    type: str
  units:
    description: Full unit names to report, for example V(queue-worker@1.service).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Read the state of every queue-worker instance
  supervised.background.worker_info:
    name: queue-worker
  register: workers

- name: Every instance must be running
  ansible.builtin.assert:
    that: workers.units | rejectattr('active_state', 'eq', 'active') | list | length == 0

- name: Report two units by name
  supervised.background.worker_info:
    units: [queue-worker@1.service, db-migrate.service]
"""

RETURN = r"""
units:
  description: One entry per unit, instances in natural order (2 before 10).
  returned: always
  type: list
  elements: dict
  contains:
    unit:
      description: Full unit name.
      type: str
      sample: queue-worker@1.service
    instance:
      description: Instance name (null for a unit that is not an instance of O(name)).
      type: str
      sample: "1"
    load_state:
      description: systemd's LoadState (V(loaded), V(not-found), V(masked)...).
      type: str
    active_state:
      description: ActiveState (V(active), V(activating), V(failed), V(inactive)...).
      type: str
    sub_state:
      description: SubState (V(running), V(auto-restart), V(dead)...).
      type: str
    result:
      description: Result of the last run (V(success), V(exit-code), V(timeout), V(signal)...).
      type: str
    main_pid:
      description: PID of the main process, null when none runs.
      type: int
    n_restarts:
      description: How often systemd restarted the unit automatically since it was started.
      type: int
    exec_main_status:
      description: Exit status (or signal number) of the last main process, null when unknown.
      type: int
    enabled:
      description: Whether the unit is enabled to start at boot.
      type: bool
    unit_file_state:
      description: UnitFileState as systemd reports it (V(enabled), V(disabled), V(static)...).
      type: str
    active_since:
      description: When the unit last became active (ActiveEnterTimestamp), null if never.
      type: str
      sample: Tue 2026-11-24 01:26:51 UTC
    memory_bytes:
      description: Memory use of the unit's cgroup, null when unknown.
      type: int
    tasks:
      description: Number of tasks (processes and threads) in the unit, null when unknown.
      type: int
    invocation_id:
      description: Id of the current (or last) run, null when none.
      type: str
summary:
  description: Counts of the reported units by active state, plus V(total).
  returned: always
  type: dict
  sample: {total: 3, active: 2, failed: 1}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import (
    INSTANCE_PROPERTIES,
    Systemd,
    SystemdError,
    instance_unit,
    instance_view,
    unit_name,
    unit_prefix,
)
from ansible_collections.supervised.background.plugins.module_utils.validate import natural_key


def summarise(entries):
    summary = {"total": len(entries)}
    for entry in entries:
        state = entry["active_state"] or "unknown"
        summary[state] = summary.get(state, 0) + 1
    return summary


class WorkerInfo:
    """Collect the facts of a template's instances or of named units."""

    def __init__(self, module):
        self.module = module
        self.systemd = Systemd(module)

    def check_input(self):
        params = self.module.params
        if params["name"] is not None:
            unit_prefix("name", params["name"])
        for index, unit in enumerate(params["units"] or []):
            unit_name(f"units[{index}]", unit, template=False)

    def run(self):
        try:
            self.check_input()
        except validate.InputError as err:
            self.module.fail_json(msg=str(err))
        name = self.module.params["name"]
        try:
            if name is not None:
                instances = sorted(self.systemd.known_instances(name), key=natural_key)
                units = [instance_unit(name, inst) for inst in instances]
            else:
                units = list(dict.fromkeys(self.module.params["units"]))
            shown = self.systemd.show(units, INSTANCE_PROPERTIES)
        except SystemdError as err:
            self.module.fail_json(msg=str(err))
        entries = [instance_view(unit, shown[unit], name) for unit in units]
        return {"changed": False, "units": entries, "summary": summarise(entries)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            units=dict(type="list", elements="str"),
        ),
        mutually_exclusive=[("name", "units")],
        required_one_of=[("name", "units")],
        supports_check_mode=True,
    )
    module.exit_json(**WorkerInfo(module).run())


if __name__ == "__main__":
    main()
