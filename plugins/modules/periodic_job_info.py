#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: periodic_job_info
short_description: Report periodic jobs (timers) - last trigger, next elapse, last result, exit status and output
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Read-only facts, straight from C(systemctl show) and the journal, for each named timer and the service it
    triggers - when it last triggered and will next elapse, and the last run's result, exit status, times and
    last output lines.
extends_documentation_fragment:
  - supervised.background.attributes.INFO_MODULE
options:
  names:
    description: Job names (C(NAME) for C(NAME.timer)) or full timer names.
    type: list
    elements: str
    required: true
  output_lines:
    description: How many of the last run's output lines to return (V(0) for none).
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Did last night's export work?
  supervised.background.periodic_job_info:
    names: [nightly-export]
  register: jobs

- name: Fail when it did not
  ansible.builtin.assert:
    that: jobs.jobs[0].last_result == 'success'
"""

RETURN = r"""
jobs:
  description: One entry per timer.
  returned: always
  type: list
  elements: dict
  contains:
    timer:
      description: The timer unit.
      type: str
      sample: nightly-export.timer
    service:
      description: The unit it triggers.
      type: str
    active:
      description: Whether the timer is running (waiting for its next elapse).
      type: bool
    enabled:
      description: Whether the timer starts at boot.
      type: bool
    last_trigger:
      description: When the timer last triggered, null if never.
      type: str
    next_elapse:
      description: When it triggers next (wall clock; null for monotonic-only timers or a stopped timer).
      type: str
    running:
      description: Whether a run is going on now.
      type: bool
    last_result:
      description:
        - Result of the last finished run (V(success), V(exit-code), V(timeout)...), null if none finished.
        - While a run is going on (RV(jobs[].running)), the run before it, read from the entries systemd
          itself logs to the journal for each run; null if the journal no longer holds them. It is never
          the state of the unfinished run, which systemd shows as V(success) until it ends.
      type: str
    last_exit_status:
      description:
        - Exit status (or signal number) of the last finished run.
        - While a run is going on, null unless systemd logged the previous run's exit (it does so for
          a status it counts as a failure).
      type: int
    last_exit_code:
      description: How the last finished run ended (V(exited), V(killed), V(dumped)); null as for RV(jobs[].last_exit_status).
      type: str
    last_started:
      description: When the last finished run started.
      type: str
    last_finished:
      description: When the last finished run ended.
      type: str
    invocation_id:
      description: systemd's id of the last finished run.
      type: str
    output_lines:
      description: The last finished run's last output lines, oldest first.
      type: list
      elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import (
    JOB_SERVICE_PROPERTIES,
    TIMER_PROPERTIES,
    Systemd,
    SystemdError,
    in_unfinished_run,
    to_int,
    unit_name,
    unit_prefix,
)


class PeriodicJobInfo:
    def __init__(self, module):
        self.module = module
        self.systemd = Systemd(module)

    def timers(self):
        names = []
        for index, value in enumerate(self.module.params["names"]):
            field = f"names[{index}]"
            if isinstance(value, str) and value.endswith(".timer"):
                names.append(unit_name(field, value, suffixes=(".timer",), template=False))
            else:
                names.append(unit_prefix(field, value) + ".timer")
        return list(dict.fromkeys(names))

    def run(self):
        try:
            timers = self.timers()
            lines = validate.integer("output_lines", self.module.params["output_lines"], 0, 1000)
        except validate.InputError as err:
            self.module.fail_json(msg=str(err))
        try:
            shown = self.systemd.show(timers, TIMER_PROPERTIES)
            services = {t: shown[t].get("Unit") or t[: -len(".timer")] + ".service" for t in timers}
            runs = self.systemd.show(list(dict.fromkeys(services.values())), JOB_SERVICE_PROPERTIES)
        except SystemdError as err:
            self.module.fail_json(msg=str(err))
        jobs = []
        for timer in timers:
            props = runs[services[timer]]
            entry, window = self.systemd.job_view(timer, shown[timer], props)
            entry["service"] = services[timer]
            entry["output_lines"] = []
            start = to_int(props.get("ExecMainStartTimestampMonotonic"), 0)
            if window:
                # A run is going on: the lines of the run before it, from its window in the journal.
                if lines:
                    entry["output_lines"] = self.systemd.journal_tail(services[timer], lines, since=window[0],
                                                                      until=window[1])
            elif in_unfinished_run(props):
                pass  # a run is going on and the journal holds no finished run before it
            elif lines and start:
                # The run's lines: its unit's entries since it started (journald tags a short run's
                # last lines with its invocation id only while its cgroup exists).
                since = time.time() - (time.monotonic() - start / 1e6)
                entry["output_lines"] = self.systemd.journal_tail(services[timer], lines, since=since)
            jobs.append(entry)
        return {"changed": False, "jobs": jobs}


def main():
    module = AnsibleModule(
        argument_spec=dict(names=dict(type="list", elements="str", required=True),
                           output_lines=dict(type="int", default=10)),
        supports_check_mode=True,
    )
    module.exit_json(**PeriodicJobInfo(module).run())


if __name__ == "__main__":
    main()
