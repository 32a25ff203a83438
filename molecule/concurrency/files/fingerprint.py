#!/usr/bin/env python
"""Print, as JSON, the state of every object the two sides of the race change: which instances are
active and enabled, and a hash, owner and mode of every file (never a file's content: some hold
secrets). Run as root on the host."""
import glob
import hashlib
import json
import os
import subprocess


def units(pattern, state):
    out = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager",
                          f"--state={state}", pattern], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def enabled(prefix):
    links = glob.glob(f"/etc/systemd/system/*.wants/{prefix}*")
    return sorted(os.path.basename(p) for p in links)


def files(*patterns):
    found = {}
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            st = os.lstat(path)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            found[path] = f"{st.st_uid}:{st.st_gid}:{st.st_mode & 0o7777:o}:{digest}"
    return found


def timers(name):
    out = subprocess.run(["systemctl", "show", "-p", "ActiveState,UnitFileState", f"{name}.timer"],
                         capture_output=True, text=True, check=False).stdout
    return sorted(out.split())


print(json.dumps({
    "worker_instances": {"active": units("race-inst@*", "active"), "enabled": enabled("race-inst@")},
    "worker_unit": files("/etc/systemd/system/race-unit@.service"),
    "env_file": files("/etc/sb-race/race.env"),
    "sudoers_exact": files("/etc/sudoers.d/race"),
    "openfortivpn_config": files("/etc/openfortivpn/race.conf"),
    "credential": files("/etc/supervised-background/credentials/race-cred/*"),
    "unit_dropin": files("/etc/systemd/system/race-drop@.service.d/*.conf"),
    "worker": {"active": units("race-w@*", "active"), "enabled": enabled("race-w@"),
               "files": files("/etc/systemd/system/race-w@.service", "/etc/supervised-background/race-w*",
                              "/etc/supervised-background/race-w/*")},
    "periodic_job": {"files": files("/etc/systemd/system/race-p.timer", "/etc/systemd/system/race-p.service"),
                     "timer": timers("race-p")},
}, sort_keys=True))
