"""Restart the container (a reboot for systemd): every enabled instance comes back active.

Runs last (file order): the container is restarted with `docker restart`, the way a host reboots.
"""

import subprocess
import time


def enabled_instances(host):
    out = host.check_output("ls -1 /etc/systemd/system/multi-user.target.wants/")
    return sorted(name for name in out.split() if name.startswith("sbj-") and "@" in name)


def states(host, units):
    found = {}
    for unit in units:
        out = host.check_output("systemctl show -p ActiveState,SubState,NRestarts,InvocationID -- %s", unit)
        found[unit] = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return found


def test_reboot_brings_back_every_enabled_instance(host):
    units = enabled_instances(host)
    # steady@1, steady@2 and the stubborn one (stopped by side_effect, but still enabled).
    assert units == ["sbj-steady@1.service", "sbj-steady@2.service", "sbj-stubborn@1.service"]
    before = states(host, units)
    assert before["sbj-stubborn@1.service"]["ActiveState"] != "active"
    name = host.ansible.get_variables()["inventory_hostname"]
    started = time.monotonic()
    subprocess.run(["docker", "restart", name], check=True, capture_output=True, timeout=120)
    restarted = time.monotonic()
    deadline = restarted + 60
    now = {}
    while True:
        try:
            now = states(host, units)
            if all(p["ActiveState"] == "active" and p["SubState"] == "running" for p in now.values()):
                break
        except (AssertionError, RuntimeError, KeyError):
            pass
        assert time.monotonic() < deadline, f"instances not back after a restart: {now}"
        time.sleep(0.5)
    back = time.monotonic()
    print(f"\nFIGURE: docker restart of the container: {restarted - started:.1f} s")
    print(f"FIGURE: all {len(units)} enabled instances active after the restart: {back - restarted:.1f} s")
    # Every instance is a new run (systemd really booted again), and none needed a restart.
    for unit in units:
        assert now[unit]["InvocationID"] != before[unit]["InvocationID"]
        assert now[unit]["NRestarts"] == "0"
    # A one-off job is a transient unit: it does not come back after a reboot, nor does its record
    # (in /run); its output stays in the journal.
    assert host.run("systemctl show -p LoadState --value sbj-outlive.service").stdout.strip() == "not-found"
    assert host.run("ls /run/supervised-background/jobs/sbj-outlive.service.json").rc != 0
