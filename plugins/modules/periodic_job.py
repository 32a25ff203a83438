#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: periodic_job
short_description: Run a periodic job (the cron line) as a supervised oneshot service and a timer
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Installs C(NAME.service) (C(Type=oneshot), the same account, working directory, EnvironmentFile secrets,
    credentials, hardening, resource limits and KillMode rules as a worker) and C(NAME.timer), verifies both with
    C(systemd-analyze verify) before they land, and enables and starts the timer.
  - Every O(on_calendar) expression is checked by systemd itself (C(systemd-analyze calendar)) before anything
    is written.
  - >-
    B(No overlapping runs.) A run that is still going at the next trigger is not started a second time: the
    oneshot service is still activating, so systemd merges the trigger into the running start; the next run
    starts at the first trigger after it ends (with O(on_unit_active_sec), that much after the running one
    started). O(runtime_max_sec) bounds a run (C(TimeoutStartSec=) of the oneshot service); when it ends, what is
    left of the run is killed (O(kill_mode)).
  - Each run's output is in the journal, its result and exit status in the service's properties; read them
    with M(supervised.background.periodic_job_info). A failing run is C(Result=exit-code), never silent.
  - With O(unit), the timer triggers a service that exists already instead (nothing else is written).
  - O(state=absent) stops and disables the timer, stops a running run and removes both units, the secrets,
    and (when asked) the user and working directory.
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
  - supervised.background.service
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  name:
    description: Name of the job; the units are C(NAME.service) and C(NAME.timer).
    type: str
    required: true
  state:
    description: Whether the job exists.
    type: str
    choices: [present, absent]
    default: present
  enabled:
    description: Whether the timer is enabled and running (the job triggers); V(false) keeps it installed but stopped.
    type: bool
    default: true
  unit:
    description: An existing service for the timer to trigger instead of writing C(NAME.service) (no O(exec_start) then).
    type: str
  on_calendar:
    description:
      - C(OnCalendar=) expressions, for example V(daily), V(*-*-* 02:30:00) or V(Mon..Fri *:0/15); each is checked with
        C(systemd-analyze calendar). Give these, or O(on_boot_sec)/O(on_unit_active_sec).
    type: list
    elements: str
    default: []
  on_boot_sec:
    description: C(OnBootSec=), a time span after boot.
    type: raw
  on_unit_active_sec:
    description:
      - C(OnUnitActiveSec=), a time span after the last start of the job (a job every N minutes).
      - Needs O(on_boot_sec) or O(on_calendar) too, for the first run (systemd never fires it for a job that has not run yet).
    type: raw
  randomized_delay_sec:
    description: C(RandomizedDelaySec=), a random delay added to each trigger (spreads a fleet's load).
    type: raw
  accuracy_sec:
    description: C(AccuracySec=); how late systemd may be to save wakeups (its default is 1min). V(1s) for precise timers.
    type: raw
  persistent:
    description: C(Persistent=); with O(on_calendar), a run missed while the host was off runs at the next boot.
    type: bool
    default: false
  user:
    description: System user the job runs as; defaults to O(name).
    type: str
  group:
    description: Primary group; defaults to O(user).
    type: str
  create_user:
    description: Create the system group and user (no login shell, home C(/nonexistent)).
    type: bool
    default: true
  working_directory:
    description: Working directory, created C(root:GROUP 0750); defaults to C(/opt/NAME).
    type: str
  state_directory:
    description: C(StateDirectory=) under C(/var/lib); defaults to O(name). Empty for none.
    type: str
  secret_env:
    description: Secret environment variables, written to O(secret_env_file) (C(root:root 0600)) and loaded with C(EnvironmentFile=).
    type: dict
    default: {}
  secret_env_file:
    description: Path of the EnvironmentFile; defaults to C(/etc/supervised-background/NAME.env).
    type: path
  secret_credentials:
    description: Secrets delivered as systemd credentials, C(ID) to value (see M(supervised.background.worker)).
    type: dict
    default: {}
  encrypt_credentials:
    description: Encrypt O(secret_credentials) with the host key (systemd 250 and later).
    type: bool
    default: false
  remove_user:
    description: With O(state=absent), also remove the user, its group and the files it owns.
    type: bool
    default: false
  remove_working_directory:
    description: With O(state=absent), also remove the working directory.
    type: bool
    default: false
seealso:
  - module: supervised.background.periodic_job_info
  - module: supervised.background.worker
"""

EXAMPLES = r"""
- name: Nightly export (was "30 2 * * * /opt/app/bin/export" in a crontab)
  supervised.background.periodic_job:
    name: nightly-export
    exec_start: [/opt/app/bin/export, --since, yesterday]
    on_calendar: ["*-*-* 02:30:00"]
    randomized_delay_sec: 10min
    persistent: true
    runtime_max_sec: 2h
    secret_env:
      EXPORT_TOKEN: "{{ vault_export_token }}"

- name: Queue cleanup every 5 minutes, never overlapping
  supervised.background.periodic_job:
    name: queue-cleanup
    exec_start: [/opt/app/bin/cleanup]
    on_unit_active_sec: 5min
    on_boot_sec: 1min
"""

RETURN = r"""
timer:
  description: The timer unit.
  returned: always
  type: str
  sample: nightly-export.timer
service:
  description: The service the timer triggers.
  returned: always
  type: str
  sample: nightly-export.service
unit_text:
  description: The rendered service (no secrets by design); absent with O(unit).
  returned: when a service is written
  type: str
timer_text:
  description: The rendered timer.
  returned: when O(state=present)
  type: str
calendar:
  description: The O(on_calendar) expressions as systemd normalized them.
  returned: always
  type: list
  elements: str
hardening_overrides:
  description: C(Directive=value) lines of O(settings) that weaken the hardening or grant privileges.
  returned: always
  type: list
  elements: str
status:
  description: The timer and the last run, as M(supervised.background.periodic_job_info) reports them.
  returned: when O(state=present) and not in check mode
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import (
    accounts,
    locking,
    provision,
    safe_file,
    service_spec,
    systemd,
    unit_file,
    validate,
)
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

HEADER = "# Managed by supervised.background.periodic_job; do not edit"


class PeriodicJob:
    """A oneshot service and its timer."""

    def __init__(self, module):
        self.module = module
        self.params = dict(module.params)
        self.sd = systemd.Systemd(module)
        self.provision = None
        self.plan = None

    def check_input(self):
        p = self.params
        name = systemd.unit_prefix("name", p["name"])
        self.timer = f"{name}.timer"
        self.service = f"{name}.service"
        if p["unit"] is not None:
            if p["exec_start"]:
                raise InputError("unit: give either unit (an existing service) or exec_start, not both")
            self.service = systemd.unit_name("unit", p["unit"], template=False)
        elif p["state"] == "present" and not p["exec_start"]:
            raise InputError("exec_start: required with state=present (or name an existing service in unit)")
        self.provision = provision.Provision(self.module, name, p)
        present = p["state"] == "present"
        unit_params = self.provision.check(present=present and p["unit"] is None)
        self.wait = locking.lock_wait(p)
        if present and p["unit"] is None:
            self.plan = service_spec.render(name, unit_params, kind="oneshot")
        self.calendar = [self.sd.calendar(f"on_calendar[{i}]", validate.text(f"on_calendar[{i}]", e, empty=False, edges=False))
                         for i, e in enumerate(p["on_calendar"] or [])]
        self.timer_text = self.render_timer(name) if present else None
        return name

    def render_timer(self, name):
        p = self.params
        triggers = [("OnCalendar", c) for c in self.calendar]
        for option, directive in (("on_boot_sec", "OnBootSec"), ("on_unit_active_sec", "OnUnitActiveSec")):
            if p[option] is not None:
                triggers.append((directive, validate.unit_timespan(option, p[option], minimum=0.001)))
        if not triggers:
            raise InputError("on_calendar: give on_calendar, or on_boot_sec/on_unit_active_sec (a timer needs a trigger)")
        if [d for d, _v in triggers] == ["OnUnitActiveSec"]:
            raise InputError("on_unit_active_sec: needs on_boot_sec or on_calendar too: systemd counts it from the job's "
                             "last start, so a job that has never run would never be started")
        if p["persistent"] and not self.calendar:
            raise InputError("persistent: only applies to on_calendar triggers")
        timer = list(triggers)
        for option, directive in (("randomized_delay_sec", "RandomizedDelaySec"), ("accuracy_sec", "AccuracySec")):
            if p[option] is not None:
                timer.append((directive, validate.unit_timespan(option, p[option])))
        if p["persistent"]:
            timer.append(("Persistent", "yes"))
        timer.append(("Unit", self.service))
        description = unit_file.description("description", p["description"] or f"{name} periodic job")
        return unit_file.render(HEADER, [("Unit", [("Description", f"Timer of {description}")]),
                                         ("Timer", timer), ("Install", [("WantedBy", "timers.target")])])

    def run(self):
        try:
            name = self.check_input()
        except InputError as err:
            self.module.fail_json(msg=str(err))
        objects = [("unit", self.timer), ("unit", self.service), ("file", self.params["secret_env_file"]),
                   ("credentials", name)]
        with locking.host_lock(self.module, objects, timeout=self.wait):
            try:
                result = self.present(name) if self.params["state"] == "present" else self.remove(name)
            except (InputError, safe_file.FileError, accounts.AccountError) as err:
                self.module.fail_json(msg=str(err), changed=False)
            except systemd.SystemdError as err:
                self.module.fail_json(msg=f"{self.timer}: {err}", changed=False)
        if self.provision.diffs and self.module._diff:
            result["diff"] = self.provision.diffs
        return result

    def present(self, name):
        p = self.params
        result = {"timer": self.timer, "service": self.service, "calendar": self.calendar, "removed": [],
                  "timer_text": self.timer_text, "hardening_overrides": self.plan.overrides if self.plan else []}
        writer = systemd.UnitWriter(self.module, self.sd)
        changed = False
        if self.plan is not None:
            service_path = os.path.join(systemd.SYSTEM_UNIT_DIR, self.service)
            if not self.module.check_mode:
                writer.preflight(service_path, self.service, self.plan.text, self.plan.executables,
                                 service_spec.blame(p["settings"]), self.plan.needed_units)
            changed = any(self.provision.apply(result))
            result["unit_text"] = self.plan.text
            outcome = writer.write(os.path.join(systemd.SYSTEM_UNIT_DIR, self.service), self.service, self.plan.text,
                                   executables=self.plan.executables, blame=service_spec.blame(p["settings"]),
                                   needed_units=self.plan.needed_units)
            self.provision.note(outcome.diff)
            if self.plan.overrides and outcome.changed:
                self.module.warn(f"{self.service}: settings weaken the '{p['hardening']}' hardening or grant "
                                 f"privileges: {', '.join(self.plan.overrides)}")
        else:
            self.check_target()
        outcome = writer.write(os.path.join(systemd.SYSTEM_UNIT_DIR, self.timer), self.timer, self.timer_text,
                               blame=service_spec.blame(p["settings"]), needed_units={self.service: "unit" if p["unit"] else "name"})
        self.provision.note(outcome.diff)
        result["daemon_reloaded"] = writer.reload()
        changed = changed or writer.changed or result["daemon_reloaded"]
        changed = self.activate(p["enabled"]) or changed
        result["changed"] = changed
        if not self.module.check_mode:
            shown = self.sd.show([self.timer, self.service], systemd.TIMER_PROPERTIES + systemd.JOB_SERVICE_PROPERTIES)
            result["status"] = self.sd.job_view(self.timer, shown[self.timer], shown[self.service])[0]
        return result

    def check_target(self):
        """The service the timer triggers must exist (systemd would log a failure at every trigger)."""
        load = self.sd.show([self.service], ["LoadState"])[self.service].get("LoadState")
        if load != "loaded":
            message = f"unit: {self.service} is not installed (LoadState {load or 'unknown'})"
            if not self.module.check_mode:
                raise InputError(f"{message}; a timer for it would fail at every trigger")
            self.module.warn(f"check mode: {message}; the plan assumes an earlier task installs it")

    def activate(self, enabled):
        """Enable and start the timer (or stop and disable it). Returns True when it changed."""
        props = self.sd.show([self.timer], ["ActiveState", "UnitFileState", "LoadState"])[self.timer]
        is_on = props.get("UnitFileState") in systemd.ENABLED_STATES
        is_active = props.get("ActiveState") == "active"
        if enabled and not (is_on and is_active):
            if not self.module.check_mode:
                if not is_on:
                    self.sd.enable([self.timer])
                self.sd.start([self.timer])
            return True
        if not enabled and (is_on or is_active):
            if not self.module.check_mode:
                self.sd.stop([self.timer])
                if is_on:
                    self.sd.disable([self.timer])
            return True
        return False

    def remove(self, name):
        result = {"timer": self.timer, "service": self.service, "calendar": [], "removed": [],
                  "hardening_overrides": []}
        changed = self.activate(False)
        writer = systemd.UnitWriter(self.module, self.sd)
        paths = [os.path.join(systemd.SYSTEM_UNIT_DIR, self.timer)]
        if self.params["unit"] is None:
            running = self.sd.show([self.service], ["ActiveState"])[self.service].get("ActiveState")
            if running not in (None, "", "inactive", "failed"):
                changed = True
                if not self.module.check_mode:
                    self.sd.stop([self.service])
            paths.append(os.path.join(systemd.SYSTEM_UNIT_DIR, self.service))
        for path in paths:
            outcome = writer.remove(path)
            self.provision.note(outcome.diff)
            if outcome.changed:
                result["removed"].append(path)
        if self.params["unit"] is None:
            self.provision.remove(result)
        result["daemon_reloaded"] = writer.reload()
        if result["daemon_reloaded"] and not self.module.check_mode:
            self.sd.reset_failed([self.timer] + ([self.service] if self.params["unit"] is None else []))
        result["changed"] = bool(changed or result["removed"] or result.get("accounts"))
        return result


def main():
    spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        enabled=dict(type="bool", default=True),
        unit=dict(type="str"),
        on_calendar=dict(type="list", elements="str", default=[]),
        on_boot_sec=dict(type="raw"),
        on_unit_active_sec=dict(type="raw"),
        randomized_delay_sec=dict(type="raw"),
        accuracy_sec=dict(type="raw"),
        persistent=dict(type="bool", default=False),
    )
    spec.update(service_spec.EXEC_SPEC)
    spec.update(provision.SPEC)
    spec.update(locking.LOCK_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    module.exit_json(**PeriodicJob(module).run())


if __name__ == "__main__":
    main()
