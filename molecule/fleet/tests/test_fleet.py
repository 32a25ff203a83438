"""A mixed fleet (Debian 11/12/12/13 worker hosts, a Debian 13 CI runner host) after two roll-outs.

side_effect.yml ran fleet.yml twice under files/rollout_sampler.py, which polled every worker
host's instances from before each playbook started until after it ended, and recorded the hosts
in between; everything is read from MOLECULE_EPHEMERAL_DIRECTORY/fleet:

* rollout-2.jsonl: queue version 2, one host per batch, each instance through the health gate;
* before-crash-HOST.json: each worker host's instances and queue unit file after that roll-out;
* rollout-3.jsonl, rollout-3.json: queue version broken-3 (crashes at start), its samples and the
  playbook's JSON results.

Tests without the `host` fixture run once, on the controller; the others run on every host and
skip the hosts they are not about. Only systemd properties are compared, never log wording (it
differs between systemd 247, 252 and 257).
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex

import pytest

RECORD = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "fleet"
HEALTHY = "active/running"
RUNNER = "gitlab-runner"


def load_json(name):
    return json.loads((RECORD / name).read_text(encoding="utf-8"))


INVENTORY = load_json("inventory.json") if (RECORD / "inventory.json").exists() else {}
WORKERS = INVENTORY.get("workers", [])
FIRST = WORKERS[0] if WORKERS else None
BATCH = INVENTORY.get("batch", 1)


class Run:
    """The sampler's record of one roll-out: samples, the command's start, end and exit status."""

    def __init__(self, name):
        lines = [json.loads(line) for line in (RECORD / name).read_text(encoding="utf-8").splitlines()]
        self.events = {item["event"]: item for item in lines if "event" in item}
        assert "error" not in self.events, self.events["error"]
        assert "end" in self.events, f"{name}: the sampler did not finish"
        self.samples = [item for item in lines if "sample" in item]
        self.watch = self.events["begin"]["watch"]
        self.start = self.events["command-start"]["t"]
        self.end = self.events["command-end"]["t"]
        self.rc = self.events["command-end"]["rc"]

    @staticmethod
    def down(sample):
        """Host -> its instances that are not active/running in this sample (hosts with none left out)."""
        return {host: {unit: s["state"] for unit, s in units.items() if s["state"] != HEALTHY}
                for host, units in sample["hosts"].items()
                if any(s["state"] != HEALTHY for s in units.values())}

    def during(self):
        """The samples taken while the command ran (their round overlaps it)."""
        return [s for s in self.samples if s["t1"] >= self.start and s["t0"] <= self.end]

    def outages(self, host):
        """(first, last) sample index pairs of each run of samples in which HOST was not fully active."""
        runs, begin = [], None
        for i, sample in enumerate(self.samples):
            bad = host in self.down(sample)
            if bad and begin is None:
                begin = i
            if not bad and begin is not None:
                runs.append((begin, i - 1))
                begin = None
        if begin is not None:
            runs.append((begin, len(self.samples) - 1))
        return runs

    def outage_bound(self, first, last):
        """Upper bound of an outage: from the round before its first bad sample to the round after its last."""
        before = self.samples[max(first - 1, 0)]["t0"]
        after = self.samples[min(last + 1, len(self.samples) - 1)]["t1"]
        return after - before

    def check_coverage(self):
        """The record covers the whole command, with no blind spot longer than MAX_GAP."""
        assert self.samples[0]["t1"] < self.start, "no sample before the roll-out started"
        assert self.samples[-1]["t0"] > self.end, "no sample after the roll-out ended"
        assert sum(1 for s in self.samples if s["t1"] < self.start) >= 3
        assert sum(1 for s in self.samples if s["t0"] > self.end) >= 3
        gaps = [b["t1"] - a["t0"] for a, b in zip(self.samples, self.samples[1:])]
        return max(gaps)


# The shortest outage of a restarted instance is its drain plus its start-up (0.3 s + 3.0 s, in
# files/fleet_worker.py); a round takes up to ~1.5 s on a loaded 2-core machine. With no gap as long
# as the shortest outage, no restart can fall between two samples.
MAX_GAP = 3.0


@pytest.fixture(scope="module")
def rollout():
    return Run("rollout-2.jsonl")


@pytest.fixture(scope="module")
def crash():
    return Run("rollout-3.jsonl")


def props(host, unit, *keys):
    out = host.check_output(f"systemctl show -p {','.join(keys)} {shlex.quote(unit)}")
    return dict(line.split("=", 1) for line in out.splitlines())


def shown(text):
    """`systemctl show` output of several units -> Id -> properties."""
    units = {}
    for block in text.split("\n\n"):
        p = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if p.get("Id"):
            units[p["Id"]] = p
    return units


def argv(exec_start):
    """The argv of an ExecStart property ('{ path=... ; argv[]=A B C ; ... }')."""
    return exec_start.split("argv[]=", 1)[1].split(" ;", 1)[0].split()


def before_crash(name):
    return load_json(f"before-crash-{name}.json")


# --- roll-out of version 2: availability ----------------------------------------------------------

def test_rollout_kept_all_but_one_batch_of_hosts_fully_active(rollout):
    assert rollout.rc == 0
    gap = rollout.check_coverage()
    during = rollout.during()
    down = [rollout.down(s) for s in rollout.samples]
    worst_i = max(range(len(down)), key=lambda i: (len(down[i]), sum(map(len, down[i].values()))))
    units = sum(len(u) for u in rollout.watch.values())
    print(f"\nFIGURE: roll-out of queue 2 over {len(WORKERS)} worker hosts (batch {BATCH}): "
          f"{rollout.end - rollout.start:.1f} s, {len(rollout.samples)} samples ({len(during)} during it), "
          f"longest gap between rounds {gap:.2f} s")
    print(f"FIGURE: worst sample #{rollout.samples[worst_i]['sample']} at "
          f"+{rollout.samples[worst_i]['t0'] - rollout.start:.2f} s: {len(down[worst_i])} of {len(WORKERS)} hosts "
          f"not fully active, {sum(map(len, down[worst_i].values()))} of {units} instances: {down[worst_i]}")
    for host in WORKERS:
        outages = [rollout.outage_bound(a, b) for a, b in rollout.outages(host)]
        print(f"FIGURE: {host}: {len(outages)} outage(s) of an instance, longest <= {max(outages, default=0):.2f} s, "
              f"total <= {sum(outages):.2f} s")
    assert gap < MAX_GAP
    for sample, hosts_down in zip(rollout.samples, down):
        assert len(hosts_down) <= BATCH, (sample["sample"], hosts_down)
        # Within a host the role restarts one instance at a time, too.
        assert all(len(units) == 1 for units in hosts_down.values()), (sample["sample"], hosts_down)


def test_sampler_saw_every_worker_host_mid_restart_in_inventory_order(rollout):
    """Not vacuous: each host was seen restarting, within the roll-out, one host after the other."""
    assert BATCH == 1
    seen = []
    for sample in rollout.samples:
        for host, units in rollout.down(sample).items():
            assert rollout.start <= sample["t1"] and sample["t0"] <= rollout.end, (sample["sample"], host)
            assert all(unit.startswith("queue@") for unit in units), units
            if host not in seen:
                seen.append(host)
    assert seen == WORKERS
    # Each host's outages all end before the next host's first one begins.
    for host, nxt in zip(WORKERS, WORKERS[1:]):
        assert rollout.outages(host)[-1][1] < rollout.outages(nxt)[0][0], (host, nxt)


def test_mailer_was_never_disturbed(rollout, crash):
    """The other worker kind on the same hosts: active with the same main PID in every sample."""
    for run in (rollout, crash):
        checked = 0
        for host, units in run.watch.items():
            for unit in (u for u in units if u.startswith("mailer@")):
                seen = {s["hosts"][host][unit]["state"] for s in run.samples}
                pids = {s["hosts"][host][unit]["pid"] for s in run.samples}
                assert seen == {HEALTHY} and len(pids) == 1, (host, unit, seen, pids)
                checked += 1
        assert checked >= len(run.watch) >= 4, f"a mailer watched on every worker host, got {checked}"


def test_systemd_timestamps_show_one_host_at_a_time(rollout):
    """Independent of the sampler: each queue instance became active again during the roll-out
    (ActiveEnterTimestampMonotonic: the same kernel clock as the sampler's), host after host."""
    windows = []
    for host in WORKERS:
        units = shown(before_crash(host)["show"])
        entered = [int(p["ActiveEnterTimestampMonotonic"]) / 1e6 for u, p in units.items() if u.startswith("queue@")]
        assert len(entered) == 2, units
        assert all(rollout.start < t < rollout.end for t in entered), (host, entered, rollout.start, rollout.end)
        assert all(argv(p["ExecStart"])[3] == "2" and p["NRestarts"] == "0"
                   for u, p in units.items() if u.startswith("queue@")), units
        windows.append((min(entered), max(entered)))
    print("\nFIGURE: queue instances active again at (s after the roll-out began): "
          + ", ".join(f"{h} {a - rollout.start:.1f}-{b - rollout.start:.1f}" for h, (a, b) in zip(WORKERS, windows)))
    for (_a, end), (start, _b) in zip(windows, windows[1:]):
        assert end < start


# --- roll-out of broken-3: stops at the first host ------------------------------------------------

def test_crashing_rollout_failed_on_the_first_host_and_never_reached_the_others(crash):
    assert crash.rc == 2  # ansible-playbook: a host failed
    result = load_json("rollout-3.json")
    assert sorted(result["stats"]) == [FIRST], result["stats"]
    assert result["stats"][FIRST]["failures"] == 1
    touched = {h for play in result["plays"] for task in play["tasks"] for h in task["hosts"]}
    assert touched == {FIRST}, touched
    failed = [(task["task"]["name"], r) for play in result["plays"] for task in play["tasks"]
              for h, r in task["hosts"].items() if r.get("failed")]
    assert len(failed) == 1, failed
    name, res = failed[0]
    assert res["action"] == "supervised.background.worker" and name.endswith("Reconcile worker queue"), name
    assert list(res["failing"]) == ["queue@1.service"], res["failing"]
    report = res["failing"]["queue@1.service"]
    print(f"\nFIGURE: crashing roll-out: {crash.end - crash.start:.1f} s, failed on {FIRST} only; the gate saw "
          f"queue@1 {report['active_state']}/{report['sub_state']} result={report['result']} "
          f"status={report['exec_main_status']}; restarted before it stopped: {res['restarted']}")
    assert report["result"] == "exit-code" and report["exec_main_status"] == 3
    assert res["restarted"] == ["queue@1.service"]


def test_crashing_rollout_left_the_other_hosts_fully_active(crash):
    crash.check_coverage()
    seen_first_down = False
    for sample in crash.samples:
        down = crash.down(sample)
        assert set(down) <= {FIRST}, (sample["sample"], down)
        seen_first_down = seen_first_down or FIRST in down
    assert seen_first_down, "the sampler never saw the first host restarting: the proof would be vacuous"


# --- every host as it is now ----------------------------------------------------------------------

def worker_units(host):
    return shown(host.check_output(
        "systemctl show -p Id,InvocationID,MainPID,ActiveState,SubState,NRestarts,Result,ExecStart "
        + " ".join(INVENTORY["units"])))


def test_hosts_not_reached_still_run_version_2_untouched(host):
    name = host.backend.get_hostname()
    if name not in WORKERS[1:]:
        pytest.skip("not a worker host after the first")
    before = before_crash(name)
    unit = host.file("/etc/systemd/system/queue@.service")
    assert unit.sha256sum == before["checksum"]
    mtime = host.check_output("python3 -c 'import os; print(os.stat(\"/etc/systemd/system/queue@.service\").st_mtime)'")
    assert float(mtime) == before["mtime"]
    was, now = shown(before["show"]), worker_units(host)
    for unit_name, p in now.items():
        assert (p["ActiveState"], p["SubState"]) == ("active", "running"), (unit_name, p)
        assert p["InvocationID"] == was[unit_name]["InvocationID"], unit_name
        assert p["MainPID"] == was[unit_name]["MainPID"], unit_name
        if unit_name.startswith("queue@"):
            assert argv(p["ExecStart"])[3] == "2", p["ExecStart"]


def test_failed_host_is_left_as_the_role_left_it(host):
    """The first host: its unit says broken-3, queue@1 crash-loops (or gave up), queue@2 still runs
    the version-2 process the rolling restart never reached, the mailer is untouched."""
    name = host.backend.get_hostname()
    if name != FIRST:
        pytest.skip("not the first worker host")
    was, now = shown(before_crash(name)["show"]), worker_units(host)
    q1, q2, mailer = now["queue@1.service"], now["queue@2.service"], now["mailer@1.service"]
    version = host.check_output("systemctl --version").splitlines()[0]
    print(f"\nFIGURE: {name} ({version}) after the failed roll-out: queue@1 {q1['ActiveState']}/{q1['SubState']} "
          f"result={q1['Result']} NRestarts={q1['NRestarts']}; queue@2 {q2['ActiveState']}/{q2['SubState']} "
          f"PID {q2['MainPID']} (unchanged: {q2['MainPID'] == was['queue@2.service']['MainPID']})")
    assert "broken-3" in host.file("/etc/systemd/system/queue@.service").content_string
    assert argv(q1["ExecStart"])[3] == "broken-3"
    assert (q1["ActiveState"], q1["SubState"]) != ("active", "running")
    assert (q2["ActiveState"], q2["SubState"]) == ("active", "running")
    assert q2["InvocationID"] == was["queue@2.service"]["InvocationID"]
    cmdline = host.check_output(f"tr '\\0' ' ' < /proc/{q2['MainPID']}/cmdline").split()
    assert cmdline[3] == "2", cmdline
    assert mailer["InvocationID"] == was["mailer@1.service"]["InvocationID"]


def test_ci_runner_job_gets_its_tunnel_next_to_the_workers(host):
    name = host.backend.get_hostname()
    if name not in INVENTORY["ci_runners"]:
        pytest.skip("not a CI runner host")
    tunnel = "openfortivpn@vpn1.service"
    job = f"ci-tunnel run vpn1 -- systemctl show -P ActiveState {tunnel}"
    result = host.run(f"runuser -u {RUNNER} -- bash -eo pipefail -c {shlex.quote(job)}")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "active"
    after = props(host, tunnel, "ActiveState", "MainPID")
    assert after["ActiveState"] in ("inactive", "failed") and after["MainPID"] == "0", after
    assert host.run("systemctl list-units --all --plain --no-legend 'queue@*' 'mailer@*'").stdout.strip() == ""
