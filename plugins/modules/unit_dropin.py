#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: unit_dropin
short_description: Override a unit (a packaged one, say) with a verified drop-in
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Writes C(/etc/systemd/system/UNIT.d/NAME.conf) from structured sections. Directives come from the
    collection's allowlist with typed values (the same validators as M(supervised.background.worker_unit)'s
    settings); anything else is refused, naming the directive.
  - The unit is verified with C(systemd-analyze verify) with the new drop-in in place, together with its other
    drop-ins, before the drop-in lands; a drop-in systemd would refuse or ignore a line of never lands.
  - Reloads systemd only when something changed, after the last write, and reports whether the unit runs with
    the old settings (RV(restart_needed)); it never restarts the unit itself.
  - A drop-in for a unit that is not installed is refused (a warning in check mode, where an earlier task may
    install it).
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
attributes:
  check_mode:
    support: full
    details: The drop-in is verified on a private copy.
  diff_mode:
    support: full
options:
  unit:
    description: The unit to override, a full name such as V(gitlab-runner.service) or V(worker@.service).
    type: str
    required: true
  name:
    description: Name of the drop-in file without C(.conf) (letters, digits, C(_), C(.), C(-)).
    type: str
    default: supervised-background
  sections:
    description:
      - C(Unit) and C(Service), each a mapping of directive to value (or list of values).
      - "C(Service): the collection's allowlist of [Service] settings (for example C(KillSignal), C(TimeoutStopSec),
        C(Restart), C(RestartSec), C(LimitNOFILE), C(MemoryMax), the sandbox's directives); C(Unit): C(Description),
        C(After), C(Before), C(Wants), C(Requires), C(BindsTo), C(PartOf), C(OnFailure), C(Conflicts),
        C(StartLimitIntervalSec), C(StartLimitBurst)."
    type: dict
    default: {}
  state:
    description: Whether the drop-in exists.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Let GitLab Runner finish its jobs on a restart or upgrade
  supervised.background.unit_dropin:
    unit: gitlab-runner.service
    name: graceful-stop
    sections:
      Service:
        KillSignal: SIGQUIT
        TimeoutStopSec: 2h
  register: runner_dropin
"""

RETURN = r"""
path:
  description: The drop-in file.
  returned: always
  type: str
  sample: /etc/systemd/system/gitlab-runner.service.d/graceful-stop.conf
text:
  description: The rendered drop-in.
  returned: when O(state=present)
  type: str
restart_needed:
  description: Whether the unit is running with settings older than the drop-in (restart it to apply them).
  returned: always
  type: bool
daemon_reloaded:
  description: Whether systemd was reloaded.
  returned: always
  type: bool
overrides:
  description: C(Directive=value) lines that grant privileges (reported with a warning).
  returned: always
  type: list
  elements: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import locking, safe_file, systemd, unit_file
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError, single_line

HEADER = "# Managed by supervised.background.unit_dropin; do not edit"
_DROPIN_NAME_RE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"


class DropIn:
    """One drop-in file of one unit."""

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def check_input(self):
        p = self.params
        unit = systemd.unit_name("unit", p["unit"], suffixes=systemd.UNIT_SUFFIXES)
        name = single_line("name", p["name"])
        if not re.fullmatch(_DROPIN_NAME_RE, name):
            raise InputError(f"name: '{name}' may only use letters, digits, '_', '.' and '-' (at most 64)")
        sections = []
        overrides = []
        for section in sorted(p["sections"] or {}, key=str):
            if section not in unit_file.REGISTRIES:
                raise InputError(f"sections: '{section}' is not a section this module writes (Unit, Service)")
            rendered = unit_file.settings(f"sections.{section}", p["sections"][section], section=section)
            if section == "Service":
                # Against the strictest profile: the unit may be hardened, and a drop-in that loosens any
                # of its sandboxing is reported, never silent.
                overrides = unit_file.overrides(rendered, "strict")
            sections.append((section, [(k, v) for k in sorted(rendered) for v in rendered[k]]))
        if p["state"] == "present" and not any(pairs for _s, pairs in sections):
            raise InputError("sections: give at least one directive (or state=absent)")
        return unit, name, sections, overrides

    def run(self):
        p = self.params
        try:
            unit, name, sections, overrides = self.check_input()
            wait = locking.lock_wait(p)
        except InputError as err:
            self.module.fail_json(msg=str(err))
        path = os.path.join(systemd.SYSTEM_UNIT_DIR, f"{unit}.d", f"{name}.conf")
        text = unit_file.render(HEADER, sections) if p["state"] == "present" else None
        result = {"changed": False, "path": path, "restart_needed": False, "daemon_reloaded": False,
                  "overrides": overrides}
        if text is not None:
            result["text"] = text
        sd = systemd.Systemd(self.module)
        with locking.host_lock(self.module, ("unit", unit), timeout=wait):
            try:
                # A template is asked through one instance of it.
                probe = unit.replace("@.", "@probe.")
                props = sd.show([probe], ["LoadState", "ActiveState"])[probe]
                if text is not None and props.get("LoadState") != "loaded":
                    self.not_installed(unit, props)
                writer = systemd.UnitWriter(self.module, sd)
                if text is None:
                    outcome = writer.remove(path)
                else:
                    directory = os.path.dirname(path)
                    made = safe_file.ensure_directory(self.module, directory, "root", "root", 0o755)
                    if made and self.module.check_mode and not os.path.isdir(directory):
                        outcome = safe_file.WriteResult(True, None, safe_file.make_diff(path, None, text)
                                                        if self.module._diff else None)
                    else:
                        try:
                            outcome = writer.write(path, unit, text, dropin_for=unit)
                        except (systemd.SystemdError, safe_file.FileError):
                            if made and not os.listdir(directory):
                                # Leave the host as it was: the directory this run made, still empty.
                                os.rmdir(directory)
                            raise
                result["changed"] = outcome.changed
                if outcome.diff is not None:
                    result["diff"] = outcome.diff
                result["daemon_reloaded"] = writer.reload()
            except (safe_file.FileError, OSError) as err:
                self.module.fail_json(msg=str(err), **result)
            except systemd.SystemdError as err:
                self.module.fail_json(msg=f"{unit}: {err}", **result)
        active = props.get("ActiveState") in ("active", "reloading", "activating")
        if "@." in unit:
            active = bool(sd.loaded_instances(unit.split("@", 1)[0])) if unit.endswith("@.service") else active
        result["restart_needed"] = bool(result["changed"] and active)
        if overrides and result["changed"]:
            self.module.warn(f"{unit}: the drop-in grants privileges: {', '.join(overrides)}")
        return result

    def not_installed(self, unit, props):
        message = f"unit: {unit} is not installed (LoadState {props.get('LoadState') or 'unknown'})"
        if self.module.check_mode:
            self.module.warn(f"check mode: {message}; the plan assumes an earlier task installs it")
            return
        self.module.fail_json(msg=f"{message}; a drop-in for it would never apply")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unit=dict(type="str", required=True),
            name=dict(type="str", default="supervised-background"),
            sections=dict(type="dict", default={}),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            **locking.LOCK_SPEC,
        ),
        supports_check_mode=True,
    )
    module.exit_json(**DropIn(module).run())


if __name__ == "__main__":
    main()
