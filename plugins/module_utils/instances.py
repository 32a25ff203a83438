# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reconcile the instances of a template unit: the plan (pure) and its execution, with the health gate.

Shared by worker_instances and worker (one reconcile, one set of rules). The caller holds the
template's host lock around :meth:`Reconciler.reconcile`.

Health gate: after starting and restarting, every wanted instance must be active and stay active
with the same MainPID and NRestarts for ``settle`` seconds. An instance that has already been
active that long (its ActiveEnterTimestamp is older than the window) passes at once, so a rerun
that changes nothing does not wait; one started or restarted by this run is watched.
"""

from __future__ import annotations

import time

from ansible_collections.supervised.background.plugins.module_utils import validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import (
    ENABLED_STATES,
    INSTANCE_PROPERTIES,
    SystemdError,
    in_unfinished_run,
    instance_name,
    instance_unit,
    instance_view,
    to_int,
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


class Reconciler:
    """Reconcile the instances of one template. ``params``: ``state``, ``enabled``, ``prune``,
    ``restart`` (none/rolling/all) and ``settle`` (seconds)."""

    def __init__(self, module, systemd, params):
        self.module = module
        self.params = params
        self.systemd = systemd
        self.began = time.time()
        self.done = {"started": [], "stopped": [], "pruned": [], "restarted": [], "enabled_units": [],
                     "disabled_units": []}

    def fail(self, msg, **extra):
        changed = any(self.done.values())
        self.module.fail_json(msg=msg, changed=changed, **self.done, **extra)

    def report(self, units, reason):
        """Fail with ActiveState, SubState, Result, NRestarts, MainPID and the journal of each unit.
        A watchdog kill is named: by Result=watchdog while the unit is down, or, once it was
        restarted (Result is reset then), by the UNIT_RESULT=watchdog systemd logged since this run
        began."""
        current = self.systemd.show(units)
        failing = {}
        for unit in units:
            info = describe(unit, current[unit])
            if in_unfinished_run(current[unit]) and info["n_restarts"]:
                # Restarted after a crash: show's Result=success and status 0 are the new attempt's.
                # Report how the attempt before it ended (from PID 1's entries).
                last = self.systemd.finished_run(unit, current[unit].get("InvocationID"))
                if last and last["last_result"] not in (None, "success"):
                    info["result"] = last["last_result"]
                    if last["last_exit_status"] is not None:
                        info["exec_main_status"] = last["last_exit_status"]
                elif not last or last["last_result"] is None:
                    # The journal does not say how the attempt before ended: never show's reset
                    # success/0, but the last failure systemd logged in this run, or nothing.
                    logged = self.systemd.failure_results(unit, self.began)
                    info["result"] = logged[-1] if logged else None
                    info["exec_main_status"] = None
            info["journal"] = self.systemd.journal_tail(unit, lines=10)
            info["watchdog"] = info["result"] == "watchdog" or "watchdog" in self.systemd.failure_results(unit, self.began)
            failing[unit] = info
        summary = ", ".join(
            f"{u} ({failing[u]['active_state']}/{failing[u]['sub_state']}, result={failing[u]['result']}, "
            f"NRestarts={failing[u]['n_restarts']}, MainPID={failing[u]['main_pid']})"
            + (" killed by its watchdog (no WATCHDOG=1 within WatchdogSec)" if failing[u]["watchdog"] else "")
            for u in units
        )
        self.fail(f"{reason}: {summary}", failing=failing)

    def watch(self, units, seconds):
        """Every unit must be active and must have stayed active, with the same MainPID and
        NRestarts, for ``seconds`` since it became active (ActiveEnterTimestampMonotonic): one that
        has already been active that long passes at once, the others are watched until they have.
        Returns the units that failed."""
        base = self.systemd.show(units)
        bad = [u for u in units if base[u].get("ActiveState") != "active"]
        now = time.monotonic()

        def settled_at(unit):
            entered = to_int(base[unit].get("ActiveEnterTimestampMonotonic"), 0) / 1e6
            return (entered or now) + seconds

        deadline = max([settled_at(u) for u in units if u not in bad] or [now])
        while not bad and time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            current = self.systemd.show(units)
            for u in units:
                if (current[u].get("ActiveState") != "active" or current[u].get("MainPID") != base[u].get("MainPID")
                        or current[u].get("NRestarts") != base[u].get("NRestarts")):
                    bad.append(u)
        return bad

    def reconcile(self, name, wanted):
        """Make the instances of ``name@.service`` the wanted ones; returns the result dict (fails
        the module with a per-instance report when the health gate fails)."""
        p = self.params
        sd = self.systemd
        links = sd.enabled_instances(name)
        extra = sorted((sd.loaded_instances(name) | links) - set(wanted), key=natural_key)
        insts = wanted + extra
        shown = sd.show([instance_unit(name, i) for i in insts], INSTANCE_PROPERTIES)
        props = {i: shown[instance_unit(name, i)] for i in insts}
        if wanted:
            self.check_template(name, wanted[0], props[wanted[0]].get("LoadState"))
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
        self.execute(plan)
        units = [instance_unit(name, i) for i in wanted]
        if p["state"] == "started" and units:
            bad = self.watch(units, p["settle"])
            if bad:
                self.report(bad, f"instances not healthy within {p['settle']:g}s")
        final = sd.show(units, INSTANCE_PROPERTIES) if any(self.done.values()) else shown
        result.update(self.done)
        result["changed"] = any(self.done.values())
        result["instances"] = {i: describe(instance_unit(name, i), final[instance_unit(name, i)]) for i in wanted}
        return result

    def check_template(self, name, first, load):
        probe = instance_unit(name, first)
        if load == "not-found" and self.module.check_mode:
            self.module.warn(f"check mode: {name}@.service is not installed yet; the plan assumes an earlier task "
                             "installs it")
        elif load == "not-found":
            self.fail(f"name: template {name}@.service is not installed (LoadState of {probe} is not-found); write it "
                      "with worker_unit first")
        elif load != "loaded":
            self.fail(f"name: template {name}@.service cannot be used (LoadState of {probe} is {load})")

    def execute(self, plan):
        """Carry out a plan: scale down first (pruned instances free their resources before new ones
        start), then enable, disable, stop, start and restart (all at once, or one by one, each
        watched for the settle window before the next)."""
        sd = self.systemd
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
            self.done["started"] = plan["start"]
            try:
                sd.start(plan["start"])
            except SystemdError as err:
                self.report(plan["start"], f"starting failed ({err})")
        if plan["restart"] and self.params["restart"] == "all":
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
                bad = self.watch([unit], self.params["settle"])
                if bad:
                    self.report(bad, f"rolling restart stopped: {unit} did not stay active")
