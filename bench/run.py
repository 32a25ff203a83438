"""Benchmarks: supervised.background against the naive way, measured in one run.

1. Reconciling N instances of a template: one `worker_instances` call against a loop of
   `ansible.builtin.systemd_service` tasks (the usual way), for scale-up and scale-down.
2. Reading the state of N units: one batched `systemctl show` (what module_utils.systemd does)
   against one call per unit.

Runs against a throwaway systemd container (image supervised-bg:bookworm); prints wall time,
peak controller memory and the ratios. Timings are reported, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

N = int(os.environ.get("BENCH_INSTANCES", "20"))
CONTAINER = "sb-bench"
IMAGE = os.environ.get("BENCH_IMAGE", "supervised-bg:bookworm")
UNIT = """[Unit]
Description=bench %i
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
"""


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def start_container():
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    sh("docker", "run", "-d", "--name", CONTAINER, "--cap-add", "SYS_ADMIN", "--cgroupns=host",
       "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
       "--tmpfs", "/tmp", "-e", "container=docker", IMAGE)
    for _attempt in range(100):
        state = subprocess.run(["docker", "exec", CONTAINER, "systemctl", "is-system-running"],
                               capture_output=True, text=True, check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.1)
    sh("docker", "exec", "-i", CONTAINER, "sh", "-c", "cat > /etc/systemd/system/bench@.service",
       input=UNIT)
    sh("docker", "exec", CONTAINER, "systemctl", "daemon-reload")


def playbook(tasks):
    play = [{"name": "bench", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    json.dump(play, handle)
    handle.close()
    return handle.name


def run_playbook(path):
    """Wall time and peak RSS (MiB) of one ansible-playbook run, in a child of its own."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)\n"
    )
    out = sh(sys.executable, "-c", probe, "ansible-playbook", "-i", f"{CONTAINER},", "-c",
             "community.docker.docker", "-e", "ansible_python_interpreter=/usr/bin/python3", path)
    seconds, rss_kib, rc = out.split()
    if rc != "0":
        raise SystemExit(f"benchmark playbook failed: {path}")
    return float(seconds), int(rss_kib) / 1024


def count_active():
    out = sh("docker", "exec", CONTAINER, "sh", "-c",
             "systemctl list-units --plain --no-legend --state=active 'bench@*.service' | wc -l")
    return int(out)


def bench_reconcile():
    names = [str(i) for i in range(1, N + 1)]
    naive_up = playbook([{"name": "start", "ansible.builtin.systemd_service": {
        "name": "bench@{{ item }}.service", "state": "started", "enabled": True}, "loop": names}])
    naive_down = playbook([{"name": "stop", "ansible.builtin.systemd_service": {
        "name": "bench@{{ item }}.service", "state": "stopped", "enabled": False}, "loop": names}])
    ours_up = playbook([{"name": "up", "supervised.background.worker_instances": {
        "name": "bench", "count": N}}])
    ours_down = playbook([{"name": "down", "supervised.background.worker_instances": {
        "name": "bench", "count": 0}}])
    rows = []
    for label, up, down in (("loop of systemd_service", naive_up, naive_down),
                            ("one worker_instances call", ours_up, ours_down)):
        t_up, m_up = run_playbook(up)
        assert count_active() == N, f"{label}: scale-up did not start {N} instances"
        t_down, m_down = run_playbook(down)
        assert count_active() == 0, f"{label}: scale-down left instances running"
        rows.append((label, t_up, t_down, max(m_up, m_down)))
    for path in (naive_up, naive_down, ours_up, ours_down):
        os.unlink(path)
    return rows


def bench_show():
    script = (
        "units=$(for i in $(seq 1 %d); do printf 'bench@%%s.service ' $i; done)\n"
        "t0=$(date +%%s%%N); for r in 1 2 3 4 5; do systemctl show -p ActiveState,MainPID,NRestarts $units >/dev/null; done\n"
        "t1=$(date +%%s%%N); for r in 1 2 3 4 5; do for u in $units; do systemctl show -p ActiveState,MainPID,NRestarts $u >/dev/null; done; done\n"
        "t2=$(date +%%s%%N); echo $(( (t1 - t0) / 5000 )) $(( (t2 - t1) / 5000 ))\n" % N
    )
    batched_us, per_unit_us = sh("docker", "exec", CONTAINER, "bash", "-c", script).split()
    return int(batched_us), int(per_unit_us)


def main():
    start_container()
    try:
        rows = bench_reconcile()
        batched, per_unit = bench_show()
    finally:
        subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    print(f"\nReconcile {N} instances of a template (scale 0 -> {N} -> 0), real systemd in a container")
    print(f"{'way':<28} {'up (s)':>8} {'down (s)':>9} {'peak RSS (MiB)':>15}")
    for label, t_up, t_down, rss in rows:
        print(f"{label:<28} {t_up:>8.2f} {t_down:>9.2f} {rss:>15.1f}")
    (_naive, n_up, n_down, n_rss), (_ours, o_up, o_down, o_rss) = rows
    print(f"ratio naive/ours: up {n_up / o_up:.1f}x, down {n_down / o_down:.1f}x, memory {n_rss / o_rss:.2f}x")
    print(f"\nRead the state of {N} units: one batched systemctl show {batched / 1000:.1f} ms, "
          f"one call per unit {per_unit / 1000:.1f} ms (ratio {per_unit / batched:.1f}x)")


if __name__ == "__main__":
    main()
