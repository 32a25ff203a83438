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
  - A C(Type=notify) worker is started only when it has sent C(READY=1): C(systemctl start) waits for
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
        never reported as fine. V(0) only checks once that every instance is active.
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

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import locking, validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import (
    ENABLED_STATES,
    Systemd,
    SystemdError,
    instance_name,
    instance_unit,
    instance_view,
    template_unit,
    unit_prefix,
)
from ansible_collections.supervised.background.plugins.module_utils.validate import natural_key

MAX_COUNT = 1000
# One watch window; a rolling restart waits it once per instance, so keep it bounded.
MAX_SETTLE = 3600.0
RUNNING = ("active", "reloading")
STOPPED = ("inactive", "failed")
ENABLED = ENABLED_STATES


def wanted_instances(count, instances):
    """The wanted instance names, validated, in a stable order."""
    if count is not None:
        if isinstance(count, bool):
            raise validate.InputError(f"count: '{count}' is a boolean, not a number of instances")
        if count < 0:
            raise validate.InputError(f"count: {count} must be 0 or more")
        if count > MAX_COUNT:
            raise validate.InputError(
                f"count: {count} is more than {MAX_COUNT} instances of one template; "
                "split the work over several templates or raise the concurrency inside the worker"
            )
        return [str(i) for i in range(1, count + 1)]
    if len(instances) > MAX_COUNT:
        raise validate.InputError(f"instances: {len(instances)} names are more than {MAX_COUNT} instances of one template")
    seen = []
    for i, inst in enumerate(instances):
        instance_name(f"instances[{i}]", inst)
        if inst not in seen:
            seen.append(inst)
    return sorted(seen, key=natural_key)


def make_plan(name, wanted, extra, props, enabled_links, state, enabled, prune, restart):
    """Decide every action from systemd's current state. Pure: no host access.

    ``props`` maps instance name -> ``systemctl show`` properties; ``enabled_links`` is the set of
    instances with an enablement symlink.
    """
    plan = {"start": [], "stop": [], "enable": [], "disable": [], "restart": [], "prune": [],
            "prune_stop": [], "prune_disable": []}

    def is_enabled(inst):
        return props[inst].get("UnitFileState") in ENABLED or inst in enabled_links

    for inst in wanted:
        unit = instance_unit(name, inst)
        active = props[inst].get("ActiveState", "inactive")
        if state == "started":
            if active not in RUNNING:
                plan["start"].append(unit)
            elif restart != "none":
                plan["restart"].append(unit)
        elif active not in STOPPED:
            plan["stop"].append(unit)
        if enabled and not is_enabled(inst):
            plan["enable"].append(unit)
        elif not enabled and is_enabled(inst):
            plan["disable"].append(unit)
    if prune:
        for inst in extra:
            unit = instance_unit(name, inst)
            active = props[inst].get("ActiveState", "inactive")
            if active == "inactive" and not is_enabled(inst):
                continue
            plan["prune"].append(unit)
            if active not in STOPPED:
                plan["prune_stop"].append(unit)
            if is_enabled(inst):
                plan["prune_disable"].append(unit)
    return plan


def state_lines(name, insts, props, enabled_links, plan=None, state=None, enabled=None):
    """``unit: active/enabled`` lines; with a plan, the state it leads to."""
    lines = []
    for inst in insts:
        unit = instance_unit(name, inst)
        active = props[inst].get("ActiveState", "inactive")
        on = props[inst].get("UnitFileState") in ENABLED or inst in enabled_links
        if plan is not None:
            if unit in plan["prune"]:
                active, on = "inactive", False
            else:
                active = "active" if state == "started" else ("inactive" if active not in STOPPED else active)
                on = enabled
        lines.append(f"{unit}: {active}/{'enabled' if on else 'disabled'}")
    return "".join(line + "\n" for line in lines)


def describe(unit, props):
    return instance_view(unit, props)


class WorkerInstances:
    """Reconcile the instances of one template."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.systemd = Systemd(module)
        self.done = {"started": [], "stopped": [], "pruned": [], "restarted": [], "enabled_units": [],
                     "disabled_units": []}

    def fail(self, msg, **extra):
        changed = any(self.done.values())
        self.module.fail_json(msg=msg, changed=changed, **self.done, **extra)

    def report(self, units, reason):
        """Fail with ActiveState, SubState, Result, NRestarts, MainPID and the journal of each unit."""
        current = self.systemd.show(units)
        failing = {}
        for unit in units:
            info = describe(unit, current[unit])
            info["journal"] = self.systemd.journal_tail(unit, lines=10)
            failing[unit] = info
        summary = ", ".join(
            f"{u} ({failing[u]['active_state']}/{failing[u]['sub_state']}, result={failing[u]['result']}, "
            f"NRestarts={failing[u]['n_restarts']}, MainPID={failing[u]['main_pid']})"
            + (" killed by its watchdog (no WATCHDOG=1 within WatchdogSec)" if failing[u]["result"] == "watchdog" else "")
            for u in units
        )
        self.fail(f"{reason}: {summary}", failing=failing)

    def watch(self, units, seconds):
        """Every unit must be active now and stay so for ``seconds`` with the same MainPID/NRestarts."""
        base = self.systemd.show(units)
        bad = [u for u in units if base[u].get("ActiveState") != "active"]
        deadline = time.monotonic() + seconds
        while not bad and time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            now = self.systemd.show(units)
            for u in units:
                if (now[u].get("ActiveState") != "active" or now[u].get("MainPID") != base[u].get("MainPID")
                        or now[u].get("NRestarts") != base[u].get("NRestarts")):
                    bad.append(u)
        return bad

    def run(self):
        p = self.params
        try:
            name = unit_prefix("name", p["name"])
            wanted = wanted_instances(p["count"], p["instances"])
            settle = validate.timespan("settle_sec", p["settle_sec"], maximum=MAX_SETTLE)
            wait = locking.lock_wait(p)
        except validate.InputError as err:
            self.module.fail_json(msg=str(err))
        if p["state"] == "stopped" and p["enabled"] and wanted:
            self.module.warn(f"state=stopped with enabled=true: the {name} instances are stopped now but start "
                             "again at the next boot; set enabled=false to keep them down")
        with locking.host_lock(self.module, ("unit", template_unit(name)), timeout=wait):
            try:
                return self.reconcile(name, wanted, settle)
            except SystemdError as err:
                self.fail(str(err))
        return None

    def reconcile(self, name, wanted, settle):
        p = self.params
        sd = self.systemd
        if wanted:
            probe = instance_unit(name, wanted[0])
            load = sd.show([probe], ["LoadState"])[probe].get("LoadState")
            if load == "not-found" and self.module.check_mode:
                self.module.warn(f"check mode: {name}@.service is not installed yet; the plan assumes an earlier "
                                 "task installs it")
            elif load == "not-found":
                self.fail(f"name: template {name}@.service is not installed (LoadState of {probe} is not-found); "
                          "write it with worker_unit first")
            elif load != "loaded":
                self.fail(f"name: template {name}@.service cannot be used (LoadState of {probe} is {load})")
        links = sd.enabled_instances(name)
        extra = sorted(sd.known_instances(name) - set(wanted), key=natural_key)
        insts = wanted + extra
        shown = sd.show([instance_unit(name, i) for i in insts])
        props = {i: shown[instance_unit(name, i)] for i in insts}
        plan = make_plan(name, wanted, extra, props, links, p["state"], p["enabled"], p["prune"], p["restart"])

        result = {"changed": False}
        if self.module._diff:
            shown_insts = wanted + [i for i in extra if instance_unit(name, i) in plan["prune"]]
            result["diff"] = {
                "before_header": f"{name}@.service instances",
                "after_header": f"{name}@.service instances",
                "before": state_lines(name, shown_insts, props, links),
                "after": state_lines(name, shown_insts, props, links, plan, p["state"], p["enabled"]),
            }

        if self.module.check_mode:
            self.done.update(started=plan["start"], stopped=plan["stop"], pruned=plan["prune"],
                             restarted=plan["restart"], enabled_units=plan["enable"],
                             disabled_units=plan["disable"] + plan["prune_disable"])
            result.update(self.done)
            result["changed"] = any(self.done.values())
            result["instances"] = {i: describe(instance_unit(name, i), props[i]) for i in wanted}
            return result

        # Scale down first: pruned instances free their resources before new ones start.
        if plan["prune"]:
            sd.stop(plan["prune_stop"])
            sd.disable(plan["prune_disable"])
            sd.reset_failed(plan["prune"])
            self.done["pruned"] = plan["prune"]
            self.done["disabled_units"] += plan["prune_disable"]
        if plan["enable"]:
            sd.enable(plan["enable"])
            self.done["enabled_units"] = plan["enable"]
        if plan["disable"]:
            sd.disable(plan["disable"])
            self.done["disabled_units"] += plan["disable"]
        if plan["stop"]:
            sd.stop(plan["stop"])
            self.done["stopped"] = plan["stop"]
        if plan["start"]:
            try:
                sd.start(plan["start"])
            except SystemdError as err:
                self.done["started"] = plan["start"]
                self.report(plan["start"], f"starting failed ({err})")
            self.done["started"] = plan["start"]
        if plan["restart"] and p["restart"] == "all":
            self.done["restarted"] = plan["restart"]
            try:
                sd.restart(plan["restart"])
            except SystemdError as err:
                self.report(plan["restart"], f"restarting failed ({err})")
        elif plan["restart"]:
            for unit in plan["restart"]:
                self.done["restarted"].append(unit)
                try:
                    sd.restart([unit])
                except SystemdError as err:
                    self.report([unit], f"rolling restart stopped at {unit} ({err})")
                bad = self.watch([unit], settle)
                if bad:
                    self.report(bad, f"rolling restart stopped: {unit} did not stay active")

        units = [instance_unit(name, i) for i in wanted]
        if p["state"] == "started" and units:
            bad = self.watch(units, settle)
            if bad:
                self.report(bad, f"instances not healthy after {settle:g}s")
        final = sd.show(units)
        result.update(self.done)
        result["changed"] = any(self.done.values())
        result["instances"] = {i: describe(instance_unit(name, i), final[instance_unit(name, i)]) for i in wanted}
        return result


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
