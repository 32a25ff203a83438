"""Benchmarks of supervised.background against the naive way and against the limit, in one run.

`make bench` runs this file. It converges N instances of a template unit on fresh systemd containers
(image supervised-bg:bookworm) in six ways, interleaved within every round:

  role       the worker role (one call of the worker module), with a secret env var
  naive      what anchor roles do: copy the unit, copy the env file (0600), loop systemd_service
  instances  worker_instances alone (the template unit pre-installed)
  limit      one playbook, one shell task: write the unit, daemon-reload, enable --now all N
  floor      the same shell through `docker exec`, no Ansible
  hardened   the limit with the role's own hardened unit (its user, directories and env file): what
             systemd's sandbox set-up costs, apart from Ansible's

then, at N=50: idempotent reruns (with and without pipelining) against a one-task no-op playbook,
a scale-down and a rolling restart; supervision (kill -9 and draining stops); a CI job whose step
fails, the seed's way (`openfortivpn &`) against `ci-tunnel run`, under a harness that waits for the
job's output to close as GitLab Runner does (bench/ci_job.py); a fleet of hosts with forks=10, with
and without pipelining, and the CPU seconds each converge used; and a profile of one call at the
largest N (systemctl calls, module time).

Every figure is the median of the rounds. Prints the tables and writes docs/performance.md and
docs/performance.png. Timings are reported, never asserted; only correctness is checked (the
instances run, a rerun reports changed=0). Every container is named sb-bench-* and removed at the
end, also on Ctrl-C or an error.

Environment: BENCH_SIZES (1,10,50,200), BENCH_ROUNDS (5; issue 11 asks for at least 5),
BENCH_LARGE_ROUNDS (rounds at the largest size; default BENCH_ROUNDS), BENCH_NAIVE_MAX (200: the
naive loop is skipped above it), BENCH_FOCUS (50: the size of the rerun, scale and rolling figures),
BENCH_SAMPLES (20 kills and stops), BENCH_FLEET (1,5,10), BENCH_CI_CUTOFF (30: seconds after which
the harness gives up on a job whose output is still open), BENCH_IMAGE (supervised-bg:bookworm),
BENCH_SKIP (comma list of sections to skip: converge, supervision, ci, fleet, profile).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "performance.png"


def _ints(name, default):
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


SIZES = sorted(set(_ints("BENCH_SIZES", "1,10,50,200")))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
LARGE_ROUNDS = int(os.environ.get("BENCH_LARGE_ROUNDS", str(ROUNDS)))
NAIVE_MAX = int(os.environ.get("BENCH_NAIVE_MAX", "200"))
FOCUS = int(os.environ.get("BENCH_FOCUS", "50"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "20"))
FLEET = _ints("BENCH_FLEET", "1,5,10")
CI_CUTOFF = float(os.environ.get("BENCH_CI_CUTOFF", "30"))
FLEET_INSTANCES = 10
IMAGE = os.environ.get("BENCH_IMAGE", "supervised-bg:bookworm")
SKIP = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))
ROLL_SETTLE = 1  # settle_sec of the rolling restart
RESTART_SEC = 1  # RestartSec= of the supervision worker
DRAIN_SEC = 1  # how long the draining worker's TERM trap takes
SECRET = {"BENCH_TOKEN": "not-a-real-secret"}

WAYS = ("role", "naive", "instances", "limit", "floor", "hardened")
LABELS = {
    "role": "(a) worker role",
    "naive": "(b) naive role (copy + loop)",
    "instances": "(c) worker_instances alone",
    "limit": "(d) limit: one shell task",
    "floor": "(e) floor: shell, no Ansible",
    "hardened": "(f) limit with the role's hardened unit",
}
HARDENED = {}  # the unit text the role writes, read from a host the role converged (capture_role_unit)
UNIT = """[Unit]
Description=bench %i
[Service]
EnvironmentFile=-/etc/bench.env
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
"""
DRAIN_WORKER = f"""#!/bin/bash
# A worker that drains for {DRAIN_SEC} s on SIGTERM, then exits 0.
child=
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; sleep {DRAIN_SEC}; exit 0' TERM
while :; do sleep 60 & child=$!; wait "$child"; done
"""
SHIM = """#!/bin/sh
# sb-bench: time and log every call, then hand over to the real binary.
t0=$(date +%s%N)
REAL "$@"
rc=$?
echo "$t0 $(date +%s%N) $rc NAME $*" >> /run/sb-bench-calls.log
exit $rc
"""
PYTHON_SHIM = "/usr/local/bin/sb-bench-python"

READING = """\
- The role writes the collection's hardened unit (ProtectSystem=strict, PrivateTmp, PrivateDevices, a
  system-call filter...), ways (b) to (e) a plain one. systemd sets up that sandbox for every instance it
  starts, in PID 1: way (f) is the limit with the role's unit, so (f) - (d) is the sandbox's cost alone,
  and the role against (f) is what the collection adds to it. The naive role would pay the same sandbox
  cost with the same unit: the "naive role + sandbox" column adds it, so the comparison does not
  flatter the role; in the profile, the one `systemctl start` of all instances is most of the role's
  converge at large N ("time in them").
- The controller, the containers and their systemd share the same cores: a fleet's converge is bound by
  them (forks=10 on 2 cores), not by the collection; section 6 gives the CPU seconds.
- A rerun that changes nothing makes 3 read-only systemctl calls whatever N; the rest of its cost over a
  no-op is Ansible's (the role's argument-spec check and its include) and the module's start-up.
"""

CI_INTRO = """\
One runner host provisioned by the ci_runner role, tunnel `corp` running the runner scenario's stand-in for
openfortivpn (molecule/runner/files/fake_tunnel.py: ready after 0.3 s, runs until SIGTERM, with a helper
child). Each job runs as the runner user in `bash -eo pipefail` under bench/ci_job.py, which, like GitLab
Runner's shell executor, reports the job only when its output closes; it gives up at BENCH_CI_CUTOFF. The
seed's job: `openfortivpn -c corp.conf &`, `sleep 5`, the failing step, `kill "$!"` (never reached); the other:
`ci-tunnel run corp -- deploy-step`. The step sleeps 0.2 s and exits 7. The two jobs alternate, the tunnel's
state is read right after each job, then the bench ends whatever the job left running."""
FLEET_READING = """\
CPU seconds are medians of the same rounds: the controller's (ansible-playbook, its forks and the `docker` clients
they ran), the containers' cgroups (systemd, the module's python, the workers) and the engine's own processes.
The shims' children are runc and every process `docker exec` started (runc's share cannot be told apart from the
module's python, which the containers' figure already holds), so the sum is given as a range: without them and
with them. "Machine busy" is every process on the machine, also other jobs running at the time. When the sum
divided by the cores comes close to the wall time, the converge is CPU-bound: more hosts cost proportionally more
wall time whatever forks is."""
LOAD = []  # (1-minute load average, machine busy fraction since the previous sample), every 10 s of the run
LIVE = set()  # containers to remove, whatever happens
WORKDIR = Path(tempfile.mkdtemp(prefix="sb-bench-"))
NAMES = (f"sb-bench-{os.getpid()}-{i}" for i in itertools.count())


class BenchError(RuntimeError):
    """A benchmark step did not do what it must (never raised for a time)."""


# ---------------------------------------------------------------- containers


def sh(*args, stdin=None, check=True):
    """Run a command, return its stdout."""
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise BenchError(f"{' '.join(args[:4])}... failed (rc={proc.returncode}): {proc.stderr.strip()[-800:]}")
    return proc.stdout


def dexec(host, script, stdin=None):
    """Run a bash script inside a container."""
    flags = ["-i"] if stdin is not None else []
    return sh("docker", "exec", *flags, host, "bash", "-c", script, stdin=stdin)


def start_hosts(count):
    """Start `count` systemd containers at once and wait until they have booted."""
    names = [next(NAMES) for _index in range(count)]
    for name in names:
        LIVE.add(name)
        sh("docker", "run", "-d", "--name", name, "--label", "sb-bench=1", "--cap-add", "SYS_ADMIN",
           "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
           "--tmpfs", "/tmp", "-e", "container=docker", "--stop-signal", "SIGRTMIN+3", IMAGE, "/lib/systemd/systemd")
    for name in names:
        wait_booted(name)
    return names


def wait_booted(name):
    """Wait until systemd in the container has finished booting."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = sh("docker", "exec", name, "systemctl", "is-system-running", check=False).strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.1)
    raise BenchError(f"{name}: systemd did not finish booting in 60 s")


def remove_hosts(names):
    """Remove containers (never raises)."""
    names = [n for n in names if n in LIVE]
    if names:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)
    LIVE.difference_update(names)


@contextlib.contextmanager
def fresh_hosts(count=1):
    """Fresh containers for the duration of a block; removed after it, whatever happens."""
    names = []
    try:
        names = start_hosts(count)
        yield names
    finally:
        remove_hosts(names)


def on_signal(signum, _frame):
    """Turn SIGTERM/SIGHUP into an exception so that every finally: block runs."""
    raise KeyboardInterrupt(f"signal {signum}")


def active_count(host, name="bench"):
    """Number of active instances of a template."""
    out = dexec(host, f"systemctl list-units --plain --no-legend --state=active '{name}@*.service' | wc -l")
    return int(out)


def expect_active(host, count, what):
    """Check that exactly `count` instances run (a benchmark of a broken converge is worthless)."""
    have = active_count(host)
    if have != count:
        raise BenchError(f"{what}: {have} instances active, expected {count}")


def install_unit(host):
    """Pre-install the plain template unit (for worker_instances alone)."""
    dexec(host, "cat > /etc/systemd/system/bench@.service && systemctl daemon-reload", stdin=UNIT)


# ---------------------------------------------------------------- playbooks


def playbook(tasks, name):
    """Write a one-play playbook (JSON is YAML) and return its path."""
    path = WORKDIR / f"{name}.yml"
    play = [{"name": name, "hosts": "all", "gather_facts": False, "tasks": tasks}]
    path.write_text(json.dumps(play, indent=1), encoding="utf-8")
    return path


def role_tasks(count, name="bench", **overrides):
    """The worker role, with a secret env var and no settle wait."""
    variables = {"worker_name": name, "worker_exec_start": ["/bin/sleep", "infinity"], "worker_count": count,
                 "worker_secret_env": SECRET, "worker_settle_sec": 0}
    variables.update(overrides)
    return [{"name": f"worker {name}", "ansible.builtin.include_role": {"name": "supervised.background.worker"},
             "vars": variables}]


def naive_tasks(count):
    """What anchor roles do: copy the unit and the env file, reload, loop systemd_service."""
    env = "".join(f"{k}={v}\n" for k, v in SECRET.items())
    return [
        {"name": "unit", "ansible.builtin.copy": {"dest": "/etc/systemd/system/bench@.service", "content": UNIT,
                                                  "mode": "0644"}, "register": "unit"},
        {"name": "env file", "ansible.builtin.copy": {"dest": "/etc/bench.env", "content": env, "mode": "0600"},
         "no_log": True},
        {"name": "reload", "ansible.builtin.systemd_service": {"daemon_reload": True}, "when": "unit is changed"},
        {"name": "instances", "ansible.builtin.systemd_service": {"name": "bench@{{ item }}.service",
                                                                  "enabled": True, "state": "started"},
         "loop": f"{{{{ range(1, {count} + 1) | list }}}}"},
    ]


def instances_tasks(count, **extra):
    """One worker_instances call."""
    args = {"name": "bench", "count": count, "settle_sec": 0}
    args.update(extra)
    return [{"name": "instances", "supervised.background.worker_instances": args}]


def shell_script(count):
    """The limit: write the unit, reload, enable and start all instances in one go."""
    return (f"set -e\ncat > /etc/systemd/system/bench@.service <<'EOF'\n{UNIT}EOF\n"
            f"systemctl daemon-reload\nsystemctl enable --now $(seq -f 'bench@%g.service' 1 {count})\n")


def limit_tasks(count):
    """One shell task doing what shell_script does."""
    return [{"name": "limit", "ansible.builtin.shell": shell_script(count), "changed_when": True}]


def capture_role_unit():
    """Converge the role once (N=1) on a fresh host and keep the unit file it writes."""
    with fresh_hosts() as (host,):
        run_playbook([host], playbook(role_tasks(1), "capture-unit"))
        text = dexec(host, "cat \"$(systemctl show -P FragmentPath bench@1.service)\"")
    env = re.search(r"^EnvironmentFile=-?(\S+)$", text, re.M)
    workdir = re.search(r"^WorkingDirectory=(\S+)$", text, re.M)
    user = re.search(r"^User=(\S+)$", text, re.M)
    if not (env and workdir and user and "ProtectSystem=strict" in text):
        raise BenchError("the role's unit is not the hardened unit this bench expects:\n" + text)
    HARDENED.update(text=text, env=env.group(1), workdir=workdir.group(1), user=user.group(1))


def hardened_script(count):
    """The limit with the role's hardened unit: its user, working directory and env file first."""
    unit, user, env = HARDENED["text"], HARDENED["user"], HARDENED["env"]
    secret = "".join(f"{k}={v}\n" for k, v in SECRET.items())
    return (f"set -e\nid -u {user} >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent "
            f"--shell /usr/sbin/nologin {user}\ninstall -d -m 0750 -o root -g {user} {HARDENED['workdir']}\n"
            f"install -d -m 0700 {Path(env).parent}\n(umask 077; printf '%s' '{secret}' > {env})\n"
            f"cat > /etc/systemd/system/bench@.service <<'EOF'\n{unit}EOF\n"
            f"systemctl daemon-reload\nsystemctl enable --now $(seq -f 'bench@%g.service' 1 {count})\n")


def hardened_tasks(count):
    """One shell task doing what hardened_script does."""
    return [{"name": "limit, hardened", "ansible.builtin.shell": hardened_script(count), "changed_when": True}]


def noop_tasks():
    """A one-task playbook that changes nothing."""
    return [{"name": "noop", "ansible.builtin.ping": {}}]


RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def ansible_env(pipelining):
    """The environment of ansible-playbook: plain output, pipelining on or off."""
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_WHITELIST")}
    env.update({"ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_STDOUT_CALLBACK": "default",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_PIPELINING": "1" if pipelining else "0", "ANSIBLE_DIFF_ALWAYS": "0"})
    return env


def run_playbook(hosts, path, pipelining=False, python="/usr/bin/python3", forks=10):
    """Run a playbook against containers; return (seconds, changed). Fails on any failed host."""
    argv = ["ansible-playbook", "-i", ",".join(hosts) + ",", "-c", "community.docker.docker", "-f", str(forks),
            "-e", f"ansible_python_interpreter={python}", str(path)]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(pipelining), check=False)
    seconds = time.monotonic() - start
    recap = RECAP.findall(proc.stdout)
    bad = [h for h, _ok, _ch, unreachable, failed in recap if int(unreachable) or int(failed)]
    if proc.returncode != 0 or len(recap) != len(hosts) or bad:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise BenchError(f"{path.name} failed on {bad or hosts} (rc={proc.returncode}):\n{tail}")
    return seconds, sum(int(changed) for _h, _ok, changed, _u, _f in recap)


def run_unchanged(host, path, pipelining=False):
    """Run a playbook that must change nothing; return its time."""
    seconds, changed = run_playbook([host], path, pipelining)
    if changed:
        raise BenchError(f"{path.name}: a rerun reported changed={changed}, expected 0")
    return seconds


# ---------------------------------------------------------------- 1-3: converge, rerun, scale, roll


class Results:
    """Samples by key; every figure reported is a median."""

    def __init__(self):
        self.samples = {}
        self.notes = []

    def add(self, key, value):
        """Record one sample."""
        self.samples.setdefault(key, []).append(value)

    def median(self, key):
        """Median of a key's samples, or None."""
        values = self.samples.get(key)
        return statistics.median(values) if values else None

    def count(self, key):
        """Number of samples of a key."""
        return len(self.samples.get(key, ()))


def converge(way, host, count):
    """Converge `count` instances one way on a fresh host; return the time it took."""
    if way == "floor":
        start = time.monotonic()
        dexec(host, shell_script(count))
        return time.monotonic() - start
    if way == "instances":
        install_unit(host)
    tasks = {"role": role_tasks, "naive": naive_tasks, "instances": instances_tasks, "limit": limit_tasks,
             "hardened": hardened_tasks}[way]
    seconds, _changed = run_playbook([host], playbook(tasks(count), f"{way}-{count}"))
    return seconds


def reruns_role(host, count, res, turn):
    """Issue 16 on the role's host: rerun the role and a no-op, with and without pipelining."""
    runs = [("role", role_tasks(count)), ("noop", noop_tasks())]
    order = [(what, tasks, piped) for what, tasks in runs for piped in (False, True)]
    for what, tasks, piped in rotate(order, turn):
        key = f"rerun {what}{' piped' if piped else ''}"
        res.add(key, run_unchanged(host, playbook(tasks, f"rerun-{what}-{count}"), piped))


def reruns_naive(host, count, res, turn):
    """Issue 16 on the naive role's host: its rerun, with and without pipelining."""
    path = playbook(naive_tasks(count), f"rerun-naive-{count}")
    for piped in rotate([False, True], turn):
        res.add(f"rerun naive{' piped' if piped else ''}", run_unchanged(host, path, piped))


def roll_and_scale(host, count, res):
    """On the role's host: a rolling restart of all instances, then a scale-down to a tenth."""
    roll = playbook(instances_tasks(count, restart="rolling", settle_sec=ROLL_SETTLE), f"roll-{count}")
    pids = dexec(host, "systemctl show -p MainPID --value 'bench@*.service' | sort")
    seconds, changed = run_playbook([host], roll)
    if not changed or dexec(host, "systemctl show -p MainPID --value 'bench@*.service' | sort") == pids:
        raise BenchError("the rolling restart restarted nothing")
    res.add("rolling restart", seconds)
    target = max(1, count // 10)
    seconds, _changed = run_playbook([host], playbook(role_tasks(target), f"scale-{target}"))
    expect_active(host, target, f"scale down {count} -> {target}")
    res.add("scale down", seconds)


def rotate(items, turn):
    """The items, starting at a different one each turn (interleaving without a fixed order)."""
    items = list(items)
    shift = turn % len(items)
    return items[shift:] + items[:shift]


def bench_way(way, count, res, turn):
    """One sample of one way at one size, plus the extra figures at the focus size."""
    with fresh_hosts() as (host,):
        res.add((way, count), converge(way, host, count))
        expect_active(host, count, f"{way} at N={count}")
        if count == focus_size() and way == "role":
            reruns_role(host, count, res, turn)
            roll_and_scale(host, count, res)
        elif count == focus_size() and way == "naive":
            reruns_naive(host, count, res, turn)


def focus_size():
    """The size of the rerun/scale/roll figures: 50, or the largest size benchmarked."""
    return FOCUS if FOCUS in SIZES else SIZES[-1]


def bench_converge(res):
    """Rounds of every size, the six ways interleaved (rotated) within each round."""
    capture_role_unit()
    for rnd in range(max(ROUNDS, LARGE_ROUNDS)):
        for turn, count in enumerate(SIZES):
            rounds = LARGE_ROUNDS if count == SIZES[-1] and len(SIZES) > 1 else ROUNDS
            if rnd >= rounds:
                continue
            for way in rotate(WAYS, rnd + turn):
                if way == "naive" and count > NAIVE_MAX:
                    continue
                start = time.monotonic()
                bench_way(way, count, res, rnd)
                log(f"round {rnd + 1}/{rounds} N={count:<4} {way:<10} {res.samples[(way, count)][-1]:7.2f} s "
                    f"(with its extras {time.monotonic() - start:6.1f} s)")
    if LARGE_ROUNDS != ROUNDS and len(SIZES) > 1:
        res.notes.append(f"N={SIZES[-1]} ran {LARGE_ROUNDS} rounds, not {ROUNDS} (BENCH_LARGE_ROUNDS).")
    skipped = [n for n in SIZES if n > NAIVE_MAX]
    if skipped:
        res.notes.append(f"The naive loop was skipped at N={', '.join(map(str, skipped))} (BENCH_NAIVE_MAX={NAIVE_MAX}).")


# ---------------------------------------------------------------- 4: supervision

KILL_SCRIPT = """
u=crashy@1.service
for i in $(seq {samples}); do
  while [ "$(systemctl show -p SubState --value $u)" != running ]; do sleep 0.05; done
  sleep 0.3
  old=$(systemctl show -p MainPID --value $u)
  kill -9 "$old"; t0=$(date +%s%N)
  while :; do
    new=$(systemctl show -p MainPID --value $u)
    [ "$new" != 0 ] && [ "$new" != "$old" ] && break
  done
  echo $(( ($(date +%s%N) - t0) / 1000 ))
done
"""
STOP_SCRIPT = """
u=drain@1.service
for i in $(seq {samples}); do
  systemctl start $u || exit 1; sleep 0.5
  t0=$(date +%s%N); systemctl stop $u; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 )) $(systemctl show -p Result --value $u) \
    $(systemctl show -p ExecMainCode --value $u) $(systemctl show -p ExecMainStatus --value $u)
done
"""


def bench_supervision(res):
    """kill -9 -> new MainPID delay against RestartSec; draining stops against the drain time."""
    with fresh_hosts() as (host,):
        dexec(host, "cat > /usr/local/bin/bench-drain && chmod 0755 /usr/local/bin/bench-drain", stdin=DRAIN_WORKER)
        tasks = (role_tasks(1, "crashy", worker_restart_sec=RESTART_SEC, worker_start_limit_burst=1000)
                 + role_tasks(1, "drain", worker_exec_start=["/bin/bash", "/usr/local/bin/bench-drain"],
                              worker_timeout_stop_sec=10, worker_kill_mode="mixed", worker_start_limit_burst=1000))
        run_playbook([host], playbook(tasks, "supervision"))
        for line in dexec(host, KILL_SCRIPT.format(samples=SAMPLES)).split():
            res.add("kill delay", int(line) / 1e6)
        for line in dexec(host, STOP_SCRIPT.format(samples=SAMPLES)).splitlines():
            micros, result, code, status = line.split()
            res.add("stop time", int(micros) / 1e6)
            killed = result == "timeout" or (code == "2" and status == "9")
            res.add("stop killed", int(killed))


# ---------------------------------------------------------------- 5: a CI step that fails

CI_LIB = "/usr/local/lib/sb-bench"
CI_STANDIN = ROOT / "molecule" / "runner" / "files" / "fake_tunnel.py"  # the runner scenario's stand-in
CI_TUNNEL = "corp"
CI_UNIT = f"openfortivpn@{CI_TUNNEL}.service"
CI_WAYS = ("seed", "ci-tunnel")
CI_JOBS = {
    # The seed's job: the tunnel in the background, a fixed sleep, no trap; its cleanup line is never reached.
    "seed": f'openfortivpn -c {CI_TUNNEL}.conf &\nsleep 5\ndeploy-step\nkill "$!"\n',
    "ci-tunnel": f'ci-tunnel run {CI_TUNNEL} -- deploy-step\necho "never reached"\n',
}
CI_LABELS = {"seed": "seed: `openfortivpn & sleep 5`, no trap", "ci-tunnel": f"`ci-tunnel run {CI_TUNNEL} -- step`"}
CI_BARE = f"""#!/bin/sh
# sb-bench: a bare `openfortivpn -c CONFIG` for the seed's job: the stand-in tunnel, never ready (nobody waits).
exec /usr/bin/python3 {CI_LIB}/fake_tunnel.py --never-ready "$2"
"""
CI_STEP = """#!/bin/bash
# sb-bench: a deploy step that needs the tunnel and fails (exit 7); writes its end time to $BENCH_MARK.
sleep 0.2
echo "deploy: migration failed" >&2
printf '%s\n' "$EPOCHREALTIME" > "$BENCH_MARK"
exit 7
"""


def ci_runner_tasks():
    """The ci_runner role with one tunnel, corp, running the stand-in (ready after 0.3 s)."""
    tunnel = {"name": CI_TUNNEL, "host": "vpn.example.com", "username": "ci-bot", "password": "not-a-real-secret",
              "trusted_cert": ["0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"],
              "set_dns": False, "readiness_timeout": 10,
              "program": ["/usr/bin/python3", f"{CI_LIB}/fake_tunnel.py", "--ready-after", "0.3",
                          "/etc/openfortivpn/%i.conf"]}
    return [{"name": "ci_runner", "ansible.builtin.include_role": {"name": "supervised.background.ci_runner"},
             "vars": {"ci_runner_tunnels": [tunnel]}}]


def ci_provision(host):
    """The stand-in tunnel, a bare openfortivpn, the failing step and the harness; then the ci_runner role."""
    dexec(host, f"install -d -m 0755 {CI_LIB} {CI_LIB}/bin")
    for path, text, mode in ((f"{CI_LIB}/fake_tunnel.py", CI_STANDIN.read_text(encoding="utf-8"), "0644"),
                             (f"{CI_LIB}/ci_job.py", (ROOT / "bench" / "ci_job.py").read_text(encoding="utf-8"), "0644"),
                             (f"{CI_LIB}/bin/openfortivpn", CI_BARE, "0755"),
                             (f"{CI_LIB}/bin/deploy-step", CI_STEP, "0755")):
        dexec(host, f"cat > {path} && chmod {mode} {path}", stdin=text)
    run_playbook([host], playbook(ci_runner_tasks(), "ci-runner"))
    dexec(host, f"printf 'host = vpn.example.com\\n' > /home/gitlab-runner/{CI_TUNNEL}.conf && "
                f"chown gitlab-runner: /home/gitlab-runner/{CI_TUNNEL}.conf && chmod 0600 /home/gitlab-runner/{CI_TUNNEL}.conf")


TUNNEL_PROCS = f"pgrep -f '[f]ake_tunnel.py .*{CI_TUNNEL}[.]conf' | wc -l"


def ci_job(host, way):
    """One job under the harness; the tunnel's state right after it; then whatever it left is ended."""
    out = dexec(host, f"python3 {CI_LIB}/ci_job.py --cutoff {CI_CUTOFF:g} --mark /tmp/sb-bench-step "
                      f"\"$(cat)\"", stdin=CI_JOBS[way])
    job = json.loads(out)
    job["procs"] = int(dexec(host, TUNNEL_PROCS))
    job["unit"] = dexec(host, f"systemctl show -P ActiveState {CI_UNIT}").strip()
    # Clean up for the next round (what nobody does on a real runner): the job's process group.
    dexec(host, f"kill -TERM -- -{job['pgid']} 2>/dev/null || true; "
                f"for i in $(seq 100); do [ \"$({TUNNEL_PROCS})\" = 0 ] && exit 0; sleep 0.05; done; exit 1")
    if job["rc"] != 7 or job["step_end"] is None:
        raise BenchError(f"CI job {way}: exit status {job['rc']} (expected the step's 7), step end "
                         f"{job['step_end']}:\n{job['output']}")
    return job


def bench_ci(res):
    """A CI step that fails: the seed's job against `ci-tunnel run`, the two interleaved, on one runner host."""
    with fresh_hosts() as (host,):
        ci_provision(host)
        for rnd in range(ROUNDS):
            for way in rotate(CI_WAYS, rnd):
                job = ci_job(host, way)
                ended = job["eof"] if job["eof"] is not None else job["cutoff"]
                res.add(("ci end", way), ended)
                res.add(("ci closed", way), int(job["eof"] is not None))
                res.add(("ci after step", way), ended - job["step_end"])
                res.add(("ci step", way), job["step_end"])
                res.add(("ci rc", way), job["rc"])
                res.add(("ci procs", way), int(job["procs"] > 0))
                res.add(("ci unit", way), int(job["unit"] not in ("inactive", "failed")))
                log(f"ci round {rnd + 1}/{ROUNDS} {way:<10} ended {ended:6.2f} s "
                    f"({'output closed' if job['eof'] is not None else 'cut off, output still open'}), "
                    f"tunnel processes {job['procs']}, {CI_UNIT} {job['unit']}")


# ---------------------------------------------------------------- 6: fleet


TICK = os.sysconf("SC_CLK_TCK")
ENGINE = ("dockerd", "containerd")


def proc_cpu(pid):
    """A process's own user+system CPU seconds and those of its children it has waited for (0 if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return 0.0, 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def cpu_snapshot(ids):
    """CPU seconds so far: the controller (ansible and every child it waited for), the containers' cgroups,
    the engine (dockerd, containerd and these containers' shims, own time), the shims' waited-for children
    (runc, and every process `docker exec` started, also counted in the containers), and the machine's busy time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    containers = 0.0
    for cid in ids:
        with contextlib.suppress(OSError):
            containers += int(Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage").read_text(encoding="utf-8")) / 1e9
    engine = shim_children = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text(encoding="utf-8").strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if comm in ENGINE:
            engine += proc_cpu(entry.name)[0]
        elif comm.startswith("containerd-shim") and any(f"-id {cid}" in cmdline for cid in ids):
            own, children = proc_cpu(entry.name)
            engine += own
            shim_children += children
    fields = [int(x) for x in Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0].split()[1:]]
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / TICK  # all but idle and iowait
    return {"controller": usage.ru_utime + usage.ru_stime, "containers": containers, "engine": engine,
            "shim children": shim_children, "machine": busy}


def bench_fleet(res):
    """Converge the role (10 instances) on 1, 5 and 10 fresh hosts at once, forks=10, with pipelining off and
    on; the CPU seconds each converge used, and how busy the machine was."""
    path = playbook(role_tasks(FLEET_INSTANCES), "fleet")
    for rnd in range(ROUNDS):
        for size, piped in rotate([(s, p) for s in FLEET for p in (False, True)], rnd):
            with fresh_hosts(size) as hosts:
                ids = [sh("docker", "inspect", "-f", "{{.Id}}", h).strip() for h in hosts]
                before = cpu_snapshot(ids)
                seconds, _changed = run_playbook(hosts, path, pipelining=piped, forks=10)
                after = cpu_snapshot(ids)
                for host in hosts:
                    expect_active(host, FLEET_INSTANCES, f"fleet of {size}")
            key = ("fleet", size, piped)
            res.add(key, seconds)
            used = {part: value - before[part] for part, value in after.items()}
            for part, value in used.items():
                res.add(key + (part,), value)
            log(f"fleet round {rnd + 1}/{ROUNDS} hosts={size:<3} pipelining={'on ' if piped else 'off'} "
                f"{seconds:7.2f} s, CPU s: " + ", ".join(f"{k} {v:.2f}" for k, v in used.items()))


# ---------------------------------------------------------------- 7: profile


def install_shims(host):
    """Log and time every systemctl / systemd-analyze call and every remote python run."""
    for binary in ("/usr/bin/systemctl", "/usr/bin/systemd-analyze"):
        real = f"{binary}.sb-bench-real"
        shim = SHIM.replace("REAL", real).replace("NAME", Path(binary).name)
        dexec(host, f"mv {binary} {real} && cat > {binary} && chmod 0755 {binary}", stdin=shim)
    python = SHIM.replace("REAL", "/usr/bin/python3").replace("NAME", "python")
    dexec(host, f"cat > {PYTHON_SHIM} && chmod 0755 {PYTHON_SHIM}", stdin=python)


def read_calls(host):
    """The shims' log: (program, verb, seconds) per call."""
    calls = []
    for line in dexec(host, "cat /run/sb-bench-calls.log 2>/dev/null || true").splitlines():
        parts = line.split()
        verb = next((p for p in parts[4:] if not p.startswith("-")), "") if parts[3] != "python" else ""
        calls.append((parts[3], verb, (int(parts[1]) - int(parts[0])) / 1e9))
    return calls


def summarize(run, piped, wall, calls):
    """One profile line: wall time, remote python time, systemctl calls by verb."""
    python = [c for c in calls if c[0] == "python"]
    systemctl = [c for c in calls if c[0] != "python"]
    verbs = {}
    for prog, verb, _sec in systemctl:
        key = f"{prog} {verb}".replace("systemctl ", "")
        verbs[key] = verbs.get(key, 0) + 1
    return {"run": run, "piped": piped, "wall": wall, "module": sum(c[2] for c in python), "pythons": len(python),
            "calls": len(systemctl), "call_time": sum(c[2] for c in systemctl), "verbs": verbs}


def profile_run(host, run, tasks, piped):
    """Run one playbook with the shims' log emptied first; return its profile line."""
    dexec(host, ": > /run/sb-bench-calls.log")
    wall, _changed = run_playbook([host], playbook(tasks, f"profile-{run.split()[0]}"), piped, python=PYTHON_SHIM)
    return summarize(run, piped, wall, read_calls(host))


def profile_host(way, count, piped):
    """On a fresh host: the converge, the rerun that changes nothing, and a one-task no-op."""
    with fresh_hosts() as (host,):
        if way == "instances":
            install_unit(host)
        install_shims(host)
        tasks = role_tasks(count) if way == "role" else instances_tasks(count)
        lines = [profile_run(host, f"{way} converge", tasks, piped)]
        expect_active(host, count, f"profile {way}")
        lines.append(profile_run(host, f"{way} rerun", tasks, piped))
        lines.append(profile_run(host, "no-op", noop_tasks(), piped))
    return lines


def bench_profile(res):
    """Where the time of one call at the largest N goes, with and without pipelining."""
    count = SIZES[-1]
    for way in ("instances", "role"):
        for piped in (False, True):
            for line in profile_host(way, count, piped):
                res.add("profile", line)
    res.notes.append(f"The profile is one run per line at N={count}; its shims add a few ms to every call they time.")


# ---------------------------------------------------------------- report


def log(msg):
    """Progress on stderr."""
    print(msg, file=sys.stderr, flush=True)


def fmt(value, unit=" s"):
    """A figure, or a dash."""
    return "—" if value is None else f"{value:.2f}{unit}"


def ratio(num, den):
    """num/den as 'N.Nx', or a dash."""
    return "—" if num is None or den is None or not den else f"{num / den:.1f}x"


def table(head, rows):
    """A markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def converge_tables(res):
    """Converge medians per N, and the ratios."""
    times = [[f"N={n}", res.count(("role", n))] + [fmt(res.median((w, n))) for w in WAYS] for n in SIZES]
    head = ["size", "rounds"] + [LABELS[w] for w in WAYS]
    ratios, sandbox = [], []
    for n in SIZES:
        med = {w: res.median((w, n)) for w in WAYS}
        ratios.append([f"N={n}", ratio(med["naive"], med["role"]), ratio(med["naive"], med["instances"]),
                       ratio(med["instances"], med["limit"]), ratio(med["role"], med["limit"]),
                       ratio(med["role"], med["hardened"]), ratio(med["limit"], med["floor"])])
        cost = None if med["hardened"] is None or med["limit"] is None else med["hardened"] - med["limit"]
        naive_h = None if cost is None or med["naive"] is None else med["naive"] + cost
        sandbox.append([f"N={n}", fmt(cost), fmt(None if cost is None else cost / n * 1000, " ms"),
                        fmt(naive_h), ratio(naive_h, med["role"])])
    rhead = ["size", "naive / role", "naive / worker_instances", "worker_instances / limit", "role / limit",
             "role / hardened limit", "limit / floor"]
    shead = ["size", "sandbox set-up: (f) - (d)", "per instance", "naive role + sandbox (estimate)",
             "that / role"]
    return (table(head, times) + "\n\n" + table(rhead, ratios) + "\n\nWhat the role's hardened unit costs systemd "
            "(the same shell task, the role's unit against the plain one), and the naive role as it would be with "
            "that unit (its measured time plus that cost; not measured directly):\n\n" + table(shead, sandbox))


def rerun_table(res):
    """Issue 16's three rows."""
    n = focus_size()
    rows = [
        ["fresh converge", fmt(res.median(("role", n))), fmt(res.median(("naive", n))), "—"],
        ["idempotent rerun, changed=0", fmt(res.median("rerun role")), fmt(res.median("rerun naive")),
         fmt(res.median("rerun noop"))],
        ["rerun with ANSIBLE_PIPELINING=1", fmt(res.median("rerun role piped")),
         fmt(res.median("rerun naive piped")), fmt(res.median("rerun noop piped"))],
    ]
    return table([f"run (N={n})", "role", "naive role (copy + loop)", "one-task no-op playbook"], rows)


def ops_table(res):
    """Scale-down and rolling restart."""
    n = focus_size()
    roll, noop = res.median("rolling restart"), res.median("rerun noop")
    per = None if roll is None else (roll - (noop or 0)) / n
    rows = [[f"scale down {n} -> {max(1, n // 10)} (role)", fmt(res.median("scale down")), "—"],
            [f"rolling restart of {n} (worker_instances, settle_sec={ROLL_SETTLE})", fmt(roll),
             f"{fmt(per)} per instance (settle {ROLL_SETTLE} s + {fmt(per and per - ROLL_SETTLE)} restart)"]]
    return table(["operation", "median", "note"], rows)


def supervision_table(res):
    """kill -9 and draining stops."""
    kills, stops = res.samples.get("kill delay", []), res.samples.get("stop time", [])
    if not kills:
        return "Not run."
    rows = [[f"kill -9 of the main PID -> new MainPID ({len(kills)} kills)", fmt(res.median("kill delay")),
             fmt(max(kills)), f"RestartSec={RESTART_SEC} s"],
            [f"systemctl stop of a draining worker ({len(stops)} stops)", fmt(res.median("stop time")),
             fmt(max(stops)), f"drain {DRAIN_SEC} s; ended in SIGKILL: {sum(res.samples['stop killed'])}"]]
    return table(["event", "median", "max", "against"], rows)


def fleet_table(res):
    """Fleet converge times and the CPU seconds they used."""
    if not res.count(("fleet", FLEET[0], False)):
        return "Not run."
    cores = os.cpu_count() or 1
    rows = []
    for piped in (False, True):
        one = res.median(("fleet", FLEET[0], piped))
        for h in FLEET:
            key = ("fleet", h, piped)
            wall = res.median(key)
            cpu = {part: res.median(key + (part,))
                   for part in ("controller", "containers", "engine", "shim children", "machine")}
            low = cpu["controller"] + cpu["containers"] + cpu["engine"]
            high = low + cpu["shim children"]
            rows.append([h, "on" if piped else "off", fmt(wall), ratio(wall, one), fmt(cpu["controller"]),
                         fmt(cpu["containers"]), fmt(cpu["engine"]), fmt(cpu["shim children"]),
                         f"{low:.2f}-{high:.2f} s", f"{low / h:.2f}-{high / h:.2f} s",
                         f"{low / cores:.2f}-{high / cores:.2f} s",
                         fmt(cpu["machine"]), f"{cpu['machine'] / (cores * wall) * 100:.0f} %"])
    head = ["hosts", "pipelining", f"wall (role, {FLEET_INSTANCES} instances each, forks=10)", f"against {FLEET[0]} host",
            "CPU: controller", "CPU: containers", "CPU: dockerd + containerd + shims", "CPU: shims' children",
            "CPU: sum", "CPU per host", f"least wall on {cores} cores (sum / {cores})", "machine busy (all processes)",
            "machine busy / (cores x wall)"]
    return table(head, rows)


def ci_table(res):
    """A CI step that fails: the seed's job against ci-tunnel run."""
    if not res.count(("ci end", "seed")):
        return "Not run."
    rows = []
    for way in CI_WAYS:
        rounds = res.count(("ci end", way))
        closed = sum(res.samples[("ci closed", way)])
        ended = res.median(("ci end", way))
        end_text = fmt(ended) if closed == rounds else f"not by the {CI_CUTOFF:g} s cut-off"
        rows.append([CI_LABELS[way], rounds, fmt(res.median(("ci step", way))), end_text,
                     f"{closed}/{rounds}", fmt(res.median(("ci after step", way))) if closed == rounds else "—",
                     " ".join(sorted(set(map(str, res.samples[("ci rc", way)])))),
                     f"{sum(res.samples[('ci procs', way)])}/{rounds}", f"{sum(res.samples[('ci unit', way)])}/{rounds}"])
    head = ["job (its step fails with 7)", "rounds", "step failed at", "job ended (output closed)",
            "output closed", "ended after the step", "shell's exit status", "tunnel process still running after",
            f"{CI_UNIT} active after"]
    return table(head, rows)


def profile_table(res):
    """Where the time of one call goes."""
    rows = []
    for p in res.samples.get("profile", []):
        verbs = ", ".join(f"{k} {v}" for k, v in sorted(p["verbs"].items()))
        rows.append([p["run"], "on" if p["piped"] else "off", fmt(p["wall"]), fmt(p["module"]),
                     fmt(p["wall"] - p["module"]), p["calls"], fmt(p["call_time"]), verbs])
    if not rows:
        return "Not run."
    head = ["run", "pipelining", "wall", "remote python (module)", "Ansible's own", "systemctl calls",
            "time in them", "by verb"]
    return table(head, rows)


def targets(res):
    """The issues' targets, met or not."""
    n, big = focus_size(), SIZES[-1]
    med = res.median
    checks = [
        ("16", f"N={n}: rerun (changed=0) <= 1.5x a one-task no-op", med("rerun role"), med("rerun noop"), 1.5, "le"),
        ("16", f"N={n}: rerun <= 1.5x no-op, with pipelining", med("rerun role piped"), med("rerun noop piped"),
         1.5, "le"),
        ("16, 11", f"N={n}: role fresh converge >= 10x faster than naive role", med(("naive", n)),
         med(("role", n)), 10, "ge"),
        ("11", f"N={n}: worker_instances within 1.3x of the limit", med(("instances", n)), med(("limit", n)),
         1.3, "le"),
        ("11", f"N={big}: worker_instances >= 40x faster than the naive loop", med(("naive", big)),
         med(("instances", big)), 40, "ge"),
        ("11", f"N={big}: role >= 40x faster than the naive role", med(("naive", big)), med(("role", big)), 40, "ge"),
        ("11", "fleet: 10 hosts <= 1.5x one host (pipelining off)", med(("fleet", 10, False)),
         med(("fleet", 1, False)), 1.5, "le"),
        ("11", "fleet: 10 hosts <= 1.5x one host (pipelining on)", med(("fleet", 10, True)),
         med(("fleet", 1, True)), 1.5, "le"),
    ]
    rows = []
    for issue, what, num, den, bound, how in checks:
        if num is None or den is None:
            rows.append([issue, what, "not measured", "—"])
            continue
        value = num / den
        met = value <= bound if how == "le" else value >= bound
        rows.append([issue, what, f"{value:.2f}x", "met" if met else "**not met**"])
    kills = res.samples.get("stop killed")
    if kills is not None:
        rows.append(["11", "draining stops ending in SIGKILL: 0", str(sum(kills)), "met" if not sum(kills) else "**not met**"])
    if res.count(("ci end", "ci-tunnel")):
        rounds, after = res.count(("ci end", "ci-tunnel")), res.samples[("ci after step", "ci-tunnel")]
        ok = (sum(res.samples[("ci closed", "ci-tunnel")]) == rounds and max(after) <= 2
              and not sum(res.samples[("ci procs", "ci-tunnel")]) and not sum(res.samples[("ci unit", "ci-tunnel")]))
        rows.append(["11", "failing CI step: the ci-tunnel job ends <= 2 s after the step, tunnel stopped, every round",
                     f"max {max(after):.2f} s after the step; tunnel left running "
                     f"{sum(res.samples[('ci procs', 'ci-tunnel')])}/{rounds}", "met" if ok else "**not met**"])
    return table(["issue", "target", "measured", ""], rows)


def sample_load(stop):
    """Every 10 s: the 1-minute load average and how busy all cores were since the last sample."""
    def busy_idle():
        fields = [int(x) for x in Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0].split()[1:]]
        return sum(fields[:8]) - fields[3] - fields[4], fields[3] + fields[4]
    last = busy_idle()
    while not stop.wait(10):
        now = busy_idle()
        busy, idle = now[0] - last[0], now[1] - last[1]
        last = now
        LOAD.append((float(Path("/proc/loadavg").read_text(encoding="utf-8").split()[0]), busy / max(1, busy + idle)))


def load_summary():
    """The machine's load during the run, for the report."""
    if not LOAD:
        return "not sampled"
    loads, busy = [x[0] for x in LOAD], [x[1] for x in LOAD]
    return (f"1-min load average median {statistics.median(loads):.1f} (min {min(loads):.1f}, max {max(loads):.1f}); "
            f"all cores busy {statistics.mean(busy) * 100:.0f} % of the time on average ({len(LOAD)} samples, 10 s "
            "apart; bench and other jobs together)")


def machine():
    """What the figures were measured on."""
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
                if line.startswith("MemTotal")), "0")
    docker = sh("docker", "version", "--format", "{{.Server.Version}}", check=False).strip()
    ansible = (sh("ansible", "--version", check=False).splitlines() or ["?"])[0]
    return table(["", ""], [
        ["date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")],
        ["CPUs (nproc)", os.cpu_count()], ["memory", f"{int(mem) / 1024 / 1024:.1f} GiB"],
        ["kernel", platform.release()], ["docker engine", docker], ["ansible", ansible],
        ["python (controller)", platform.python_version()], ["image", IMAGE],
        ["load during the run", load_summary()],
        ["rounds", f"{ROUNDS} ({LARGE_ROUNDS} at N={SIZES[-1]})" if LARGE_ROUNDS != ROUNDS else str(ROUNDS)],
    ])


def report(res):
    """The whole report, as markdown."""
    sections = [
        "# Performance\n\nWritten by `make bench` (bench/run.py); every figure is the median of the rounds, the ways "
        "interleaved within each round, each converge on a fresh container. Timings are reported, never asserted "
        "in tests. Other jobs may have shared the machine: the ratios, taken within a round, are the robust figures.",
        "Reproduce: `make bench` (sizes: `BENCH_SIZES=1,10,50,200`, rounds: `BENCH_ROUNDS=5`, "
        "`BENCH_LARGE_ROUNDS`, `BENCH_NAIVE_MAX=200`; see the docstring of bench/run.py).",
        "## Targets\n\n" + targets(res),
        "## 1. Converge N instances on a fresh host (seconds)\n\n" + converge_tables(res) + "\n\n![time against N]"
        "(performance.png)",
        "## 2. Idempotent rerun (issue 16)\n\n" + rerun_table(res),
        "## 3. Scale down and rolling restart\n\n" + ops_table(res),
        "## 4. Supervision\n\n" + supervision_table(res),
        "## 5. A CI step that fails\n\n" + CI_INTRO + "\n\n" + ci_table(res),
        "## 6. Fleet\n\n" + fleet_table(res) + "\n\n" + FLEET_READING,
        "## 7. Profile of one call\n\n" + profile_table(res),
        "## Reading the figures\n\n" + READING.rstrip(),
        "## Machine\n\n" + machine(),
        "## Notes\n\n" + "\n".join(f"- {n}" for n in res.notes),
    ]
    return "\n\n".join(sections) + "\n"


def plot(res):
    """Time against N, log-log, the five ways."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    fig, axes = plt.subplots(figsize=(8, 5.5))
    for way, marker in zip(WAYS, "osD^vx"):
        points = [(n, res.median((way, n))) for n in SIZES if res.median((way, n)) is not None]
        if points:
            axes.plot(*zip(*points), marker=marker, label=LABELS[way])
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("instances N")
    axes.set_ylabel("converge time on a fresh host (s, median)")
    axes.set_title("supervised.background: converge time against N")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)


def main():
    """Run every section, print the report, write the markdown and the plot."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    res = Results()
    started = time.monotonic()
    failed = []
    stop = threading.Event()
    threading.Thread(target=sample_load, args=(stop,), daemon=True).start()
    try:
        for section, func in (("converge", bench_converge), ("supervision", bench_supervision), ("ci", bench_ci),
                              ("fleet", bench_fleet), ("profile", bench_profile)):
            if section not in SKIP:
                log(f"--- {section}")
                if not run_section(section, func, res):
                    failed.append(section)
    finally:
        stop.set()
        remove_hosts(list(LIVE))
        for path in WORKDIR.iterdir():
            path.unlink()
        WORKDIR.rmdir()
    res.notes.append(f"The whole run took {(time.monotonic() - started) / 60:.0f} minutes.")
    text = report(res)
    print(text)
    DOC.write_text(text, encoding="utf-8")
    plot(res)
    log(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    if failed:
        raise BenchError(f"these sections failed (see docs/performance.md): {', '.join(failed)}")


def run_section(section, func, res):
    """Run one section; a failure is reported with the figures of the others, not lost with them."""
    try:
        func(res)
        return True
    except BenchError as error:
        log(f"bench: {section} failed: {error}")
        first = str(error).splitlines()[0]
        res.notes.append(f"**The {section} section failed**: {first} (the figures above are those measured before).")
        return False


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        sys.exit(f"bench: {error}")
    except KeyboardInterrupt:
        sys.exit("bench: interrupted; its containers were removed")
