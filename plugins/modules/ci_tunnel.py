#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ci_tunnel
short_description: One openfortivpn tunnel for CI jobs, end to end (config, units, helper, sudo commands)
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - >-
    Owns a tunnel a CI job starts with C(ci-tunnel run NAME -- COMMAND) or C(ci-tunnel up NAME) (see the
    collection's CI runner guide): its openfortivpn configuration C(/etc/openfortivpn/NAME.conf) (written by the
    same code as M(supervised.background.openfortivpn_config): root:root 0600, secrets never shown), its drop-in
    C(openfortivpn@NAME.service.d/ci-runner.conf) (readiness timeout and program), and the exact sudo commands
    the runner user needs, returned in RV(sudo_commands) for M(supervised.background.sudoers_exact).
  - Also keeps the pieces every tunnel shares in place, each written only when it differs - the template unit
    C(openfortivpn@.service) (C(Type=notify), so a start returns when openfortivpn is up), the guard unit
    C(ci-tunnel-guard@.service) that stops a tunnel when its job is gone, the C(/usr/local/bin/ci-tunnel) helper
    (the collection's own Python program), and the lease directory C(/run/ci-tunnel) (root:GROUP 0770, also
    declared in tmpfiles.d for every boot).
  - Units and drop-ins are verified with C(systemd-analyze verify) before they land; systemd is reloaded once.
  - O(state=absent) stops the tunnel if it runs and removes its configuration and drop-in; RV(sudo_commands) is
    then empty.
  - >-
    The tunnel is not started: jobs start it. A changed configuration applies from the tunnel's next start.
extends_documentation_fragment:
  - supervised.background.attributes
  - supervised.background.attributes.lock
  - supervised.background.openfortivpn
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Secrets in the configuration are shown as C(********).
options:
  name:
    description:
      - Tunnel name (letters, digits, C(_), C(.), C(-); at most 64, first not C(.) or C(-)); the unit is
        C(openfortivpn@NAME.service).
    type: str
    required: true
  state:
    description: Whether the tunnel exists.
    type: str
    choices: [present, absent]
    default: present
  runner_user:
    description: The user CI jobs run as (it gets the sudo commands and writes leases).
    type: str
    default: gitlab-runner
  runner_group:
    description: The group that owns the lease directory; the guard reads leases through it.
    type: str
    default: gitlab-runner
  program:
    description:
      - The tunnel's command line as a list (the executable first; C(%i) is the tunnel name). The program must
        send C(READY=1) to systemd once the tunnel is up (openfortivpn does) and run until it gets SIGTERM.
    type: list
    elements: str
    default: [/usr/bin/openfortivpn, -c, /etc/openfortivpn/%i.conf]
  readiness_timeout:
    description: How long the tunnel may take to become ready (C(TimeoutStartSec=)); seconds or a time span.
    type: raw
    default: 30s
  restart_sec:
    description: C(RestartSec=) of a tunnel that drops during a job (C(Restart=on-failure)).
    type: raw
    default: 5s
  stop_timeout:
    description: C(TimeoutStopSec=) of the tunnel; after it, what is left of it is killed.
    type: raw
    default: 15s
seealso:
  - module: supervised.background.sudoers_exact
  - module: supervised.background.openfortivpn_config
"""

EXAMPLES = r"""
- name: The corporate tunnel for CI jobs
  supervised.background.ci_tunnel:
    name: corp
    host: vpn.example.com
    username: ci-bot
    password: "{{ vault_corp_vpn_password }}"
    trusted_cert: [e46d4aff08ba6914e64daa85bc6112a422fa7ce16631bff0b592a28556f993db]
    readiness_timeout: 20s
  register: corp

- name: Let the runner start and stop exactly that tunnel
  supervised.background.sudoers_exact:
    name: ci-runner
    user: gitlab-runner
    commands: "{{ corp.sudo_commands }}"
"""

RETURN = r"""
unit:
  description: The tunnel's unit.
  returned: always
  type: str
  sample: openfortivpn@corp.service
config:
  description: The tunnel's openfortivpn configuration file.
  returned: always
  type: str
  sample: /etc/openfortivpn/corp.conf
sudo_commands:
  description: The commands the runner user needs (argv lists), empty with O(state=absent).
  returned: always
  type: list
  elements: list
  sample: [[/usr/bin/systemctl, start, openfortivpn@corp.service], [/usr/bin/systemctl, stop, openfortivpn@corp.service]]
helper:
  description: Path of the ci-tunnel helper.
  returned: always
  type: str
  sample: /usr/local/bin/ci-tunnel
"""

import grp
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import (
    ci_tunnel,
    locking,
    openfortivpn,
    safe_file,
    secret_files,
    systemd,
    unit_file,
    validate,
)
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

HEADER = "# Managed by supervised.background.ci_tunnel; do not edit"
TUNNEL_TEMPLATE = ci_tunnel.UNIT_TEMPLATE.format("")
GUARD = ci_tunnel.GUARD_TEMPLATE.format("")
DROPIN = "ci-runner.conf"
TMPFILES = "/etc/tmpfiles.d/ci-tunnel.conf"
GUARD_SANDBOX = (
    ("DynamicUser", "yes"), ("CapabilityBoundingSet", ""), ("NoNewPrivileges", "yes"), ("PrivateNetwork", "yes"),
    ("PrivateDevices", "yes"), ("PrivateTmp", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
    ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"), ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"), ("ProtectClock", "yes"), ("ProtectHostname", "yes"),
    ("RestrictAddressFamilies", "AF_UNIX"), ("RestrictNamespaces", "yes"), ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"), ("LockPersonality", "yes"), ("MemoryDenyWriteExecute", "yes"),
    ("SystemCallArchitectures", "native"), ("SystemCallFilter", "@system-service"),
    # A call the filter does not know (pidfd_open on an older systemd) fails with EPERM instead of
    # killing the guard, and the guard falls back to watching /proc.
    ("SystemCallErrorNumber", "EPERM"), ("UMask", "0077"),
)


def tunnel_name(field, value):
    """The one tunnel-name rule: the helper's own (it checks names again on the host)."""
    name = validate.single_line(field, value)
    if not name or not re.fullmatch(ci_tunnel.NAME_PATTERN, name):
        raise InputError(f"{field}: '{name}' is not a tunnel name (letters, digits, '_', '.', '-'; at most 64, "
                         "first not '.' or '-')")
    return systemd.instance_name(field, name)


def render_tunnel_template(params):
    """openfortivpn@.service: one tunnel per config file, tied to its guard. Only host-wide values:
    every tunnel's own ones are in its drop-in."""
    unit = [
        ("Description", "openfortivpn tunnel %i for CI jobs"),
        ("Documentation", "man:openfortivpn(1)"),
        ("Wants", "network-online.target"),
        ("After", "network-online.target"),
        # The tunnel lives only as long as the job that leased it: the guard exits when the job's
        # processes are gone, and BindsTo= then stops this unit.
        ("BindsTo", f"{ci_tunnel.GUARD_TEMPLATE.format('%i')}"),
        ("After", f"{ci_tunnel.GUARD_TEMPLATE.format('%i')}"),
    ]
    exec_start, _exe = unit_file.command_line("program", ["/usr/bin/openfortivpn", "-c", "/etc/openfortivpn/%i.conf"])
    service = [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecStart", exec_start),
        # TimeoutStartSec= (the readiness timeout) is each tunnel's own, in its drop-in.
        ("Restart", "on-failure"),
        ("RestartSec", validate.unit_timespan("restart_sec", params["restart_sec"])),
        # SIGTERM to openfortivpn only, so it can end pppd and restore routes and DNS itself; what is
        # left of the unit after that (or after TimeoutStopSec) gets SIGKILL.
        ("KillMode", "mixed"),
        ("TimeoutStopSec", validate.unit_timespan("stop_timeout", params["stop_timeout"], minimum=0.001)),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
    ]
    return unit_file.render(HEADER, [("Unit", unit), ("Service", service)])


def render_guard(group):
    helper = ci_tunnel.HELPER_PATH
    unit = [
        ("Description", "Stop tunnel %i when the CI job that started it is gone"),
        ("PartOf", ci_tunnel.UNIT_TEMPLATE.format("%i")),
        # Every tunnel start starts the guard; a few refused leases in a row must not rate-limit it
        # and so block every later job's tunnel.
        ("StartLimitIntervalSec", "0"),
    ]
    service = [("Type", "exec"), ("ExecStartPre", f"{helper} guard-check %i"), ("ExecStart", f"{helper} guard-watch %i"),
               ("SupplementaryGroups", group)] + list(GUARD_SANDBOX)
    return unit_file.render(HEADER, [("Unit", unit), ("Service", service)])


def render_dropin(params, name):
    argv = [validate.text(f"program[{i}]", a) for i, a in enumerate(params["program"] or [])]
    exec_start, exe = unit_file.command_line("program", argv)
    text = unit_file.render(HEADER, [("Service", [
        ("TimeoutStartSec", validate.unit_timespan("readiness_timeout", params["readiness_timeout"], minimum=0.001)),
        ("ExecStart", ""),
        ("ExecStart", exec_start),
    ])])
    return text, exe


class Tunnel:
    """One CI tunnel and the host pieces it needs."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.sd = systemd.Systemd(module)

    def check_input(self):
        p = self.params
        name = tunnel_name("name", p["name"])
        user = validate.account_name("runner_user", p["runner_user"], numeric=False)
        group = validate.account_name("runner_group", p["runner_group"], numeric=False)
        if user == "root":
            raise InputError("runner_user: CI jobs must not run as root")
        self.unit = ci_tunnel.UNIT_TEMPLATE.format(name)
        self.config = openfortivpn.config_path(name, None)
        self.template = render_tunnel_template(p)
        self.guard = render_guard(group)
        self.dropin, self.exe = render_dropin(p, name) if p["state"] == "present" else (None, None)
        self.content = None
        if p["state"] == "present":
            version = openfortivpn.installed_version(self.module)
            config_entries, secrets = openfortivpn.entries(p, self.module, version)
            for secret in secrets:
                secret_files.mask(self.module, secret)
            self.content = openfortivpn.render(config_entries)
        systemctl = ci_tunnel.SYSTEMCTL
        self.sudo_commands = [[systemctl, "start", self.unit], [systemctl, "stop", self.unit]] \
            if p["state"] == "present" else []
        return name, user, group

    def run(self):
        try:
            name, _user, group = self.check_input()
            wait = locking.lock_wait(self.params)
        except InputError as err:
            self.module.fail_json(msg=str(err))
        result = {"changed": False, "unit": self.unit, "config": self.config, "sudo_commands": self.sudo_commands,
                  "helper": ci_tunnel.HELPER_PATH}
        diffs = []
        objects = [("unit", TUNNEL_TEMPLATE), ("unit", GUARD), ("unit", self.unit), ("file", self.config),
                   ("file", ci_tunnel.HELPER_PATH)]
        with locking.host_lock(self.module, objects, timeout=wait):
            try:
                changed = self.shared(group, diffs)
                if self.params["state"] == "present":
                    changed = self.present(diffs) or changed
                else:
                    changed = self.absent(name, diffs) or changed
            except InputError as err:
                self.module.fail_json(msg=str(err), **result)
            except (safe_file.FileError, OSError) as err:
                self.module.fail_json(msg=str(err), **result)
            except systemd.SystemdError as err:
                self.module.fail_json(msg=f"{self.unit}: {err}", **result)
        result["changed"] = changed
        if diffs and self.module._diff:
            result["diff"] = diffs
        return result

    def shared(self, group, diffs):
        """The helper, the two template units, the lease directory: written only when they differ."""
        self.writer = systemd.UnitWriter(self.module, self.sd)
        changed = safe_file.install_program(self.module, ci_tunnel.HELPER_PATH, ci_tunnel)
        # The guard first: the tunnel template is verified with it in place (BindsTo=).
        for unit, text in ((GUARD, self.guard), (TUNNEL_TEMPLATE, self.template)):
            executables = (ci_tunnel.HELPER_PATH,) if unit == GUARD else ("/usr/bin/openfortivpn",)
            # Debian 13's openfortivpn package ships its own openfortivpn@.service: the supervised one
            # replaces it on purpose (Type=notify, the guard, the job's lease).
            outcome = self.writer.write(os.path.join(systemd.SYSTEM_UNIT_DIR, unit), unit, text,
                                        executables=executables, needed_units={GUARD.replace("@.", "@verify."): "name"},
                                        replace=True)
            if outcome.diff:
                diffs.append(outcome.diff)
        lease_line = f"d {ci_tunnel.LEASE_DIR} 0770 root {group} -\n"
        outcome = safe_file.write_file(self.module, TMPFILES, "# Managed by supervised.background.ci_tunnel: leases of "
                                       "ci-tunnel, read by ci-tunnel-guard@.service.\n" + lease_line, mode=0o644)
        if outcome.diff:
            diffs.append(outcome.diff)
        made = safe_file.ensure_directory(self.module, ci_tunnel.LEASE_DIR, "root",
                                          group if not self.module.check_mode or _group_exists(group) else "root", 0o770)
        return changed or self.writer.changed or outcome.changed or made

    def present(self, diffs):
        changed, diff = openfortivpn.write_config(self.module, self.config, self.content)
        if diff:
            diffs.append(diff)
        dropin_dir = os.path.join(systemd.SYSTEM_UNIT_DIR, self.unit + ".d")
        made = safe_file.ensure_directory(self.module, dropin_dir, "root", "root", 0o755)
        path = os.path.join(dropin_dir, DROPIN)
        if self.module.check_mode and not os.path.isdir(dropin_dir):
            if self.module._diff:
                diffs.append(safe_file.make_diff(path, None, self.dropin))
            return True
        outcome = self.writer.write(path, self.unit, self.dropin, executables=(self.exe,), dropin_for=self.unit,
                                    base=(TUNNEL_TEMPLATE, self.template),
                                    needed_units={ci_tunnel.GUARD_TEMPLATE.format(self.unit.split("@")[1][:-8]): "name"})
        if outcome.diff:
            diffs.append(outcome.diff)
        self.writer.reload()
        return changed or made or outcome.changed

    def absent(self, name, diffs):
        changed = False
        state = self.sd.show([self.unit], ["ActiveState"])[self.unit].get("ActiveState")
        if state not in (None, "", "inactive", "failed"):
            changed = True
            if not self.module.check_mode:
                self.sd.stop([self.unit])
        dropin_dir = os.path.join(systemd.SYSTEM_UNIT_DIR, self.unit + ".d")
        outcome = self.writer.remove(os.path.join(dropin_dir, DROPIN))
        if outcome.diff:
            diffs.append(outcome.diff)
        if os.path.isdir(dropin_dir) and not os.path.islink(dropin_dir) and not os.listdir(dropin_dir):
            changed = True
            if not self.module.check_mode:
                os.rmdir(dropin_dir)
        config_changed, diff = openfortivpn.write_config(self.module, self.config, None)
        if diff:
            diffs.append(diff)
        self.writer.reload()
        if not self.module.check_mode:
            self.sd.reset_failed([self.unit, ci_tunnel.GUARD_TEMPLATE.format(name)])
        return changed or config_changed or outcome.changed


def _group_exists(group):
    try:
        grp.getgrnam(group)
        return True
    except KeyError:
        return False


def main():
    spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        runner_user=dict(type="str", default="gitlab-runner"),
        runner_group=dict(type="str", default="gitlab-runner"),
        program=dict(type="list", elements="str", default=["/usr/bin/openfortivpn", "-c", "/etc/openfortivpn/%i.conf"]),
        readiness_timeout=dict(type="raw", default="30s"),
        restart_sec=dict(type="raw", default="5s"),
        stop_timeout=dict(type="raw", default="15s"),
    )
    spec.update(openfortivpn.CONFIG_SPEC)
    spec.update(locking.LOCK_SPEC)
    module = AnsibleModule(argument_spec=spec, required_if=[("state", "present", ("host",))], supports_check_mode=True)
    module.exit_json(**Tunnel(module).run())


if __name__ == "__main__":
    main()
