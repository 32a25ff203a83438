#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: worker
short_description: Reconcile a whole background worker in one call (account, files, secrets, unit, instances)
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - >-
    Does, in one module execution, what M(supervised.background.worker_unit),
    M(supervised.background.env_file), M(supervised.background.credential) and
    M(supervised.background.worker_instances) do one by one, with the same rules (the same module_utils):
    a system group and user with no login shell and no home, a working directory the worker can read but
    not write, the root-only EnvironmentFile of its secrets, its credentials, the verified template unit
    C(NAME@.service), and its instances with the health gate.
  - The running instances are restarted (one by one with O(restart=rolling)) only when the unit, the secrets
    or the credentials changed; every run ends with the health gate.
  - A rerun that changes nothing costs one module execution, with no wait (see O(settle_sec)).
  - O(state=absent) stops and disables every instance and removes the unit, its drop-ins, the EnvironmentFile
    and the credentials; the user (with the files it owns in the service's state, logs and cache
    directories) and the working directory only with O(remove_user) and O(remove_working_directory). A rerun
    then reports no change.
  - Holds the locks of the template, the EnvironmentFile and the credentials from its first read to its last
    change, so two runs at once never leave a mix of both.
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
  - supervised.background.service
  - supervised.background.service.worker
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: One diff per file and one for the instances; secret values are never shown.
options:
  name:
    description: Template name without C(@.service), for example C(queue-worker).
    type: str
    required: true
  state:
    description:
      - V(started) or V(stopped) for the instances; V(absent) removes the worker.
    type: str
    choices: [started, stopped, absent]
    default: started
  count:
    description: Number of instances, named C(1) to C(count). Ignored when O(instances) is given.
    type: int
    default: 1
  instances:
    description: Instance names instead of O(count).
    type: list
    elements: str
    default: []
  enabled:
    description: Whether the instances start at boot.
    type: bool
    default: true
  prune:
    description: Stop, disable and forget instances outside the wanted set (scale down).
    type: bool
    default: true
  restart_strategy:
    description: How running instances are restarted when the unit, the secrets or the credentials changed.
    type: str
    choices: [rolling, all]
    default: rolling
  settle_sec:
    description:
      - Health gate window (seconds or a time span). Every instance must stay active with the same main PID
        and no restart for this long; one that has already been active that long passes at once. V(0)
        checks once that every instance is active.
    type: raw
    default: 5
  user:
    description: System user the worker runs as; defaults to O(name).
    type: str
  group:
    description: Primary group of the worker; defaults to O(user).
    type: str
  create_user:
    description: Create the system group and user (no login shell, home C(/nonexistent)).
    type: bool
    default: true
  working_directory:
    description:
      - Working directory, created C(root:GROUP 0750) (the worker can read it, not write it); defaults to
        C(/opt/NAME).
    type: str
  state_directory:
    description: C(StateDirectory=) under C(/var/lib), owned by the worker; defaults to O(name). Empty for none.
    type: str
  secret_env:
    description:
      - Secret environment variables, written to O(secret_env_file) (C(root:root 0600), atomic, exact quoting,
        redacted diffs) and loaded with C(EnvironmentFile=). The rules of M(supervised.background.env_file).
    type: dict
    default: {}
  secret_env_file:
    description: Path of the EnvironmentFile; defaults to C(/etc/supervised-background/NAME.env). Its directory is created root-only.
    type: path
  secret_credentials:
    description:
      - Secrets delivered as systemd credentials instead of environment variables, C(ID) to value. Written
        to C(/etc/supervised-background/credentials/NAME/ID) (C(root:root 0600)) and loaded with
        C(LoadCredential=); the worker reads C($CREDENTIALS_DIRECTORY/ID).
    type: dict
    default: {}
  encrypt_credentials:
    description: Encrypt O(secret_credentials) with the host key (C(systemd-creds), systemd 250 and later).
    type: bool
    default: false
  remove_user:
    description:
      - With O(state=absent), also remove the user and group, and the files the worker owns in its state,
        logs and cache directories.
    type: bool
    default: false
  remove_working_directory:
    description: With O(state=absent), also remove the working directory and its content.
    type: bool
    default: false
seealso:
  - module: supervised.background.worker_unit
  - module: supervised.background.worker_instances
  - module: supervised.background.env_file
  - module: supervised.background.credential
"""

EXAMPLES = r"""
- name: Four queue consumers with their secret
  supervised.background.worker:
    name: queue-consumer
    exec_start: [/opt/queue/bin/consume, --queue, jobs, --instance, "%i"]
    count: 4
    secret_env:
      AMQP_URL: "{{ vault_amqp_url }}"
    timeout_stop_sec: 60
    requires: [rabbitmq-server.service]
    after: [rabbitmq-server.service]

- name: Retire it, with its user
  supervised.background.worker:
    name: queue-consumer
    state: absent
    remove_user: true
"""

RETURN = r"""
unit:
  description: Template unit name.
  returned: always
  type: str
  sample: queue-consumer@.service
unit_text:
  description: The rendered unit (no secrets by design).
  returned: when O(state) is not V(absent)
  type: str
verified:
  description: Whether C(systemd-analyze verify) checked a changed unit in this run.
  returned: always
  type: bool
hardening_overrides:
  description: C(Directive=value) lines of O(settings) that weaken the hardening or grant privileges.
  returned: always
  type: list
  elements: str
secret_env_file:
  description: The EnvironmentFile.
  returned: always
  type: str
changed_variables:
  description: Names of the secret variables added, removed and changed (never values).
  returned: always
  type: dict
credentials:
  description: Ids of the credentials the worker loads.
  returned: always
  type: list
  elements: str
accounts:
  description: What changed about the worker's group and user.
  returned: always
  type: list
  elements: str
instances:
  description: State of every wanted instance after the run, as M(supervised.background.worker_instances) reports it.
  returned: always
  type: dict
started:
  description: Units started.
  returned: always
  type: list
  elements: str
stopped:
  description: Units stopped.
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
  description: Units disabled.
  returned: always
  type: list
  elements: str
removed:
  description: Paths removed with O(state=absent).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import (
    accounts,
    instances,
    locking,
    provision,
    safe_file,
    service_spec,
    systemd,
    validate,
)
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError


class Worker:
    """One worker, reconciled in one run: provision (account, files, secrets), unit, instances."""

    def __init__(self, module):
        self.module = module
        self.params = dict(module.params)
        self.sd = systemd.Systemd(module)
        self.provision = None
        self.plan = None
        # Whether this run has already changed the host: a failure after a change must not report
        # changed=false. The Reconciler fails the module itself, hence the wrapper.
        self.touched = False
        fail_json = module.fail_json

        def fail(msg, **kwargs):
            kwargs["changed"] = bool(kwargs.get("changed")) or self.touched
            fail_json(msg=msg, **kwargs)

        module.fail_json = fail

    def touch(self, *changes):
        if any(changes) and not self.module.check_mode:
            self.touched = True

    def check_input(self):
        p = self.params
        name = systemd.unit_prefix("name", p["name"])
        self.provision = provision.Provision(self.module, name, p)
        unit_params = self.provision.check(present=p["state"] != "absent")
        if p["description"] is None:
            unit_params["description"] = f"{name} instance %i"
        self.settle = validate.timespan("settle_sec", p["settle_sec"], maximum=instances.MAX_SETTLE)
        self.wait = locking.lock_wait(p)
        self.wanted = instances.wanted_instances(None if p["instances"] else p["count"], p["instances"])
        if p["state"] != "absent":
            self.plan = service_spec.render(name, unit_params)
        return name

    def run(self):
        try:
            name = self.check_input()
        except InputError as err:
            self.module.fail_json(msg=str(err))
        unit = systemd.template_unit(name)
        objects = [("unit", unit), ("file", self.params["secret_env_file"]), ("credentials", name)]
        with locking.host_lock(self.module, objects, timeout=self.wait):
            try:
                result = self.remove(name, unit) if self.params["state"] == "absent" else self.present(name, unit)
            except (InputError, safe_file.FileError, accounts.AccountError) as err:
                self.module.fail_json(msg=str(err), changed=self.touched)
            except systemd.SystemdError as err:
                self.module.fail_json(msg=f"{unit}: {err}", changed=self.touched)
        if self.provision.diffs and self.module._diff:
            result["diff"] = self.provision.diffs
        return result

    def present(self, name, unit):
        p = self.params
        result = {"unit": unit, "secret_env_file": p["secret_env_file"], "removed": [],
                  "hardening_overrides": self.plan.overrides, "unit_text": self.plan.text}
        unit_path = os.path.join(systemd.SYSTEM_UNIT_DIR, unit)
        if not self.module.check_mode:
            # A changed unit is refused before the first change (the file that lands is verified again).
            systemd.UnitWriter(self.module, self.sd).preflight(
                unit_path, unit, self.plan.text, self.plan.executables, service_spec.blame(p["settings"]),
                self.plan.needed_units)
        changed, secrets_changed = self.provision.apply(result)
        self.touch(changed, secrets_changed)
        writer = systemd.UnitWriter(self.module, self.sd)
        outcome = writer.write(unit_path, unit, self.plan.text,
                               executables=self.plan.executables, blame=service_spec.blame(p["settings"]),
                               needed_units=self.plan.needed_units)
        self.touch(outcome.changed)
        self.provision.note(outcome.diff)
        result["daemon_reloaded"] = writer.reload()
        result["verified"] = bool(outcome.changed and unit in writer.verified)
        if self.plan.overrides and outcome.changed:
            self.module.warn(f"{unit}: settings weaken the '{p['hardening']}' hardening or grant privileges: "
                             f"{', '.join(self.plan.overrides)}")
        restart = p["restart_strategy"] if (outcome.changed or secrets_changed) else "none"
        reconciler = instances.Reconciler(self.module, self.sd, {
            "state": p["state"], "enabled": p["enabled"], "prune": p["prune"], "restart": restart,
            "settle": self.settle if p["state"] == "started" else 0})
        reconciled = reconciler.reconcile(name, self.wanted)
        self.provision.note(reconciled.pop("diff", None))
        result.update(reconciled)
        result["changed"] = bool(changed or secrets_changed or outcome.changed or reconciled["changed"])
        return result

    def remove(self, name, unit):
        result = {"unit": unit, "secret_env_file": self.params["secret_env_file"], "credentials": [], "removed": [],
                  "hardening_overrides": [], "verified": False, "changed_variables": {}}
        reconciler = instances.Reconciler(self.module, self.sd, {
            "state": "stopped", "enabled": False, "prune": True, "restart": "none", "settle": 0})
        reconciled = reconciler.reconcile(name, [])
        self.touch(reconciled["changed"])
        self.provision.note(reconciled.pop("diff", None))
        result.update(reconciled)
        writer = systemd.UnitWriter(self.module, self.sd)
        unit_path = os.path.join(systemd.SYSTEM_UNIT_DIR, unit)
        outcome = writer.remove(unit_path)
        self.provision.note(outcome.diff)
        if outcome.changed:
            result["removed"].append(unit_path)
        if self.provision.remove_tree(unit_path + ".d"):
            result["removed"].append(unit_path + ".d")
            writer.changed = True
        self.provision.remove(result)
        result["daemon_reloaded"] = writer.reload()
        result["changed"] = bool(reconciled["changed"] or result["removed"] or result["accounts"])
        return result


def main():
    spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["started", "stopped", "absent"], default="started"),
        count=dict(type="int", default=1),
        instances=dict(type="list", elements="str", default=[]),
        enabled=dict(type="bool", default=True),
        prune=dict(type="bool", default=True),
        restart_strategy=dict(type="str", choices=["rolling", "all"], default="rolling"),
        settle_sec=dict(type="raw", default=5),
    )
    spec.update(provision.SPEC)
    spec.update(service_spec.EXEC_SPEC)
    spec.update(service_spec.WORKER_SPEC)
    spec.update(locking.LOCK_SPEC)
    module = AnsibleModule(argument_spec=spec, required_if=[("state", "started", ("exec_start",)),
                                                            ("state", "stopped", ("exec_start",))],
                           supports_check_mode=True)
    module.exit_json(**Worker(module).run())


if __name__ == "__main__":
    main()
