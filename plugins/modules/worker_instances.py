#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: worker_instances
short_description: Reconcile the running instances of a systemd template unit in one call
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Makes the instances of C(NAME@.service) exactly the wanted set, given as a O(count) (instances
    C(1) to C(N)) or as a list of O(instances). It starts or stops them, enables or disables them, and
    (O(prune)) stops, disables and forgets every other instance systemd knows of.
  - Other instances are found by asking systemd (loaded units and the enablement links it wrote), never
    by guessing names.
  - Optionally restarts the running instances, all at once or one after the other (O(restart=rolling)),
    and watches them for O(settle_sec) seconds. An instance that is not active, restarted or changed its
    main PID in that time fails the task with its state and the last lines of its journal; one that its
    watchdog killed (C(Result=watchdog)) is reported as such.
  - >-
    A C(Type=notify) worker is started only when it has sent C(READY=1): C(systemctl start) waits for
    it (bounded by the unit's C(TimeoutStartSec)), and one that never gets ready fails the task.
  - The whole reconcile holds the template's lock, so two runs at once (say C(count=5) and C(count=2))
    end in exactly one run's wanted state, never a mix of both.
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
attributes:
  check_mode:
    support: full
    details: Reports what would be started, stopped, enabled, disabled, pruned and restarted; changes nothing.
  diff_mode:
    support: full
    details: One line per instance, C(unit) then its active state and enablement, before and after.
options:
  name:
    description: Template name without C(@.service), e.g. C(queue-worker).
    type: str
    required: true
  count:
    description:
      - Number of instances, named C(1) to C(count). V(0) stops (and with O(prune) removes) them all.
      - At most 1000 (also for O(instances)); a boolean is refused.
      - Exactly one of O(count) and O(instances) is required.
    type: int
  instances:
    description: Instance names, e.g. C([eu, us]) for C(queue-worker@eu.service) and C(queue-worker@us.service).
    type: list
    elements: str
  state:
    description: Whether the wanted instances run.
    type: str
    choices: [started, stopped]
    default: started
  enabled:
    description:
      - Whether the wanted instances start at boot.
      - With O(state=stopped) the default V(true) leaves them to start again at the next boot; the module
        warns about that combination.
    type: bool
    default: true
  prune:
    description:
      - Stop, disable and reset every instance of the template outside the wanted set that is running,
        failed or enabled.
    type: bool
    default: true
  restart:
    description:
      - V(none) restarts nothing (instances that are already running keep running).
      - V(all) restarts every wanted instance that was already running, at once.
      - V(rolling) restarts them one at a time; each must be active again (and stay so for O(settle_sec))
        before the next one is touched. A failing instance stops the roll, the rest keep running.
      - Instances started by this run are not restarted again.
    type: str
    choices: [none, rolling, all]
    default: none
  settle_sec:
    description:
      - After starting and restarting, watch every wanted instance for this long (seconds or a systemd time
        span). Each must stay C(ActiveState=active) with the same C(MainPID) and C(NRestarts).
      - At most one hour (V(3600)); a rolling restart waits this long once per instance.
      - Runs on every run with O(state=started), also when nothing changed, so a crash-looping worker is
        never reported as fine. An instance that has already been active for this long (since its last
        start) passes at once, so a run that changes nothing does not wait. V(0) only checks once that
        every instance is active.
    type: raw
    default: 0
notes:
  - Write the template first with M(supervised.background.worker_unit); a missing template is an error
    (except with no wanted instance, so scaling to zero works after the template is gone, and in check
    mode, where an earlier task may be about to install it; a warning says so).
seealso:
  - module: supervised.background.worker_unit
"""

EXAMPLES = r"""
- name: Run three queue workers, remove any others
  supervised.background.worker_instances:
    name: queue-worker
    count: 3
    settle_sec: 5

- name: Roll a new version through the workers one by one
  supervised.background.worker_instances:
    name: queue-worker
    count: 3
    restart: rolling
    settle_sec: 3

- name: Named instances
  supervised.background.worker_instances:
    name: region-worker
    instances: [eu, us]

- name: Scale to zero before removing the template
  supervised.background.worker_instances:
    name: queue-worker
    count: 0
"""

RETURN = r"""
instances:
  description:
    - State of every wanted instance after the run (before it, in check mode), in the same shape as
      M(supervised.background.worker_info) reports a unit (C(main_pid) is null when no process runs).
  returned: always
  type: dict
  sample:
    "1": {unit: queue-worker@1.service, active_state: active, sub_state: running, result: success,
          main_pid: 4242, n_restarts: 0, enabled: true}
started:
  description: Units started.
  returned: always
  type: list
  elements: str
stopped:
  description: Wanted units stopped (O(state=stopped)).
  returned: always
  type: list
  elements: str
pruned:
  description: Units outside the wanted set that were stopped, disabled and reset.
  returned: always
  type: list
  elements: str
restarted:
  description: Units restarted.
  returned: always
  type: list
  elements: str
enabled_units:
  description: Units enabled.
  returned: always
  type: list
  elements: str
disabled_units:
  description: Units disabled (wanted ones with O(enabled=false), and pruned ones).
  returned: always
  type: list
  elements: str
failing:
  description: On failure, per failing unit its ActiveState, SubState, Result, NRestarts, MainPID and journal tail.
  returned: failure
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import instances, locking, validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import (
    Systemd,
    SystemdError,
    template_unit,
    unit_prefix,
)


class WorkerInstances:
    """Reconcile the instances of one template (the rules: module_utils/instances.py)."""

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def run(self):
        p = self.params
        try:
            name = unit_prefix("name", p["name"])
            wanted = instances.wanted_instances(p["count"], p["instances"])
            settle = validate.timespan("settle_sec", p["settle_sec"], maximum=instances.MAX_SETTLE)
            wait = locking.lock_wait(p)
        except validate.InputError as err:
            self.module.fail_json(msg=str(err))
        if p["state"] == "stopped" and p["enabled"] and wanted:
            self.module.warn(f"state=stopped with enabled=true: the {name} instances are stopped now but start "
                             "again at the next boot; set enabled=false to keep them down")
        reconciler = instances.Reconciler(self.module, Systemd(self.module), {
            "state": p["state"], "enabled": p["enabled"], "prune": p["prune"], "restart": p["restart"],
            "settle": settle})
        with locking.host_lock(self.module, ("unit", template_unit(name)), timeout=wait):
            try:
                return reconciler.reconcile(name, wanted)
            except SystemdError as err:
                reconciler.fail(str(err))
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            count=dict(type="int"),
            instances=dict(type="list", elements="str"),
            state=dict(type="str", choices=["started", "stopped"], default="started"),
            enabled=dict(type="bool", default=True),
            prune=dict(type="bool", default=True),
            restart=dict(type="str", choices=["none", "rolling", "all"], default="none"),
            settle_sec=dict(type="raw", default=0),
            **locking.LOCK_SPEC,
        ),
        mutually_exclusive=[("count", "instances")],
        required_one_of=[("count", "instances")],
        supports_check_mode=True,
    )
    module.exit_json(**WorkerInstances(module).run())


if __name__ == "__main__":
    main()
