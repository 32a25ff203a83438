"""CI runner host: tunnels started by jobs are always stopped, and the runner can do nothing else.

Job scripts run as the runner user in `bash -eo pipefail`, in a process group of their own, via
/usr/local/sbin/run-job (molecule/runner/files/run-job), which also takes every timestamp inside
the host so measured delays do not include the test transport. Tunnels vpn1/vpn2 (ready after
0.3 s) and stalled (never ready, readiness timeout 3 s) run the stand-in program; closed runs the
real openfortivpn against 127.0.0.1:1.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import subprocess

import pytest

RUNNER = "gitlab-runner"
TUNNELS = ("vpn1", "vpn2", "stalled", "closed")
MARKS = "/run/run-job/marks"
# The issue asks for the job to end within 2 s of a failing step; the FIGURE lines show that on a quiet
# machine (0.4-0.6 s). The bound is twice that for a CPU-starved CI container: what it must catch
# is a job held by the tunnel (10 s grace, or the runner's timeout), which no load explains.
FAIL_EXIT_BOUND = 4.0
KILL_CLEANUP_BOUND = 5.0  # issue: tunnel stopped within 5 s of SIGKILL of the job's shell
# The trap the docs recommend for scripts that use `up`/`down` themselves.
TRAP = "trap 'rc=$?; trap - EXIT ERR; ci-tunnel down {0}; exit $rc' EXIT ERR"


def unit(name):
    return f"openfortivpn@{name}.service"


def run_ok(host, cmd):
    result = host.run(cmd)
    assert result.rc == 0, f"{cmd}: rc={result.rc}\n{result.stdout}\n{result.stderr}"
    return result.stdout.strip()


def as_runner(host, script):
    """Run a short script as the runner user the way a job shell runs (errexit, pipefail)."""
    return host.run(
        f"setpriv --reuid={RUNNER} --regid={RUNNER} --init-groups env -i HOME=/home/{RUNNER} "
        f"USER={RUNNER} PATH=/usr/local/bin:/usr/bin:/bin bash -eo pipefail -c {shlex.quote(script)}"
    )


def start_job(host, job_id, script):
    return int(run_ok(host, f"run-job start {job_id} {shlex.quote(script)}"))


Job = collections.namedtuple("Job", "rc end log")


def wait_job(host, job_id, timeout=30):
    """The job's exit status, end time (host clock) and combined output."""
    rc, end = run_ok(host, f"run-job wait {job_id} {timeout}").split()
    return Job(int(rc), float(end), host.run(f"run-job log {job_id}").stdout)


def job_result(host, job_id, timeout=30):
    job = wait_job(host, job_id, timeout)
    return job.rc, job.log


def wait_mark(host, job_id, timeout=15):
    result = host.run(f"run-job wait-file {MARKS}/{job_id}.up {timeout}")
    assert result.rc == 0, host.run(f"run-job log {job_id}").stdout


def props(host, name, *keys):
    out = run_ok(host, f"systemctl show -p {','.join(keys)} {unit(name)}")
    return dict(line.split("=", 1) for line in out.splitlines())


def assert_stopped(host, name):
    """Unit down, its guard down, no process of any tunnel program or its helper child left."""
    p = props(host, name, "ActiveState", "SubState", "MainPID")
    assert p["ActiveState"] in ("inactive", "failed"), p
    assert p["MainPID"] == "0", p
    guard = run_ok(host, f"systemctl show -P ActiveState ci-tunnel-guard@{name}.service")
    assert guard in ("inactive", "failed"), guard
    # Any process still in the unit's cgroup, or one of its programs (matched by the config path
    # in argv, also the stand-in's helper child) that escaped it.
    in_cgroup = host.run(f"grep -l -F '/{unit(name)}' /proc/[0-9]*/cgroup").stdout
    assert in_cgroup == "", in_cgroup
    # Bracketed letter: the pattern must not match the shell that runs pgrep.
    leftovers = host.run(f"pgrep -a -f '[/]etc/openfortivpn/{name}[.]conf'").stdout
    assert leftovers == "", leftovers


@pytest.fixture(autouse=True)
def all_tunnels_down(host):
    """Every test starts with all tunnels down (a failed test must not cascade)."""
    units = " ".join(unit(name) for name in TUNNELS)
    host.run(f"for u in {units}; do run-job until-inactive $u 15; done")


# --- the host as provisioned ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/usr/local/bin/ci-tunnel"])
def test_helpers_root_owned_and_not_writable_by_runner(host, path):
    f = host.file(path)
    assert (f.user, f.group, f.mode) == ("root", "root", 0o755)
    for target in (path, path.rsplit("/", 1)[0]):
        assert as_runner(host, f"test -w {target}").rc != 0


def test_units_verify_and_carry_the_policy(host):
    run_ok(host, "systemd-analyze verify --man=no openfortivpn@closed.service openfortivpn@vpn1.service")
    p = props(host, "closed", "Type", "NotifyAccess", "Restart", "KillMode", "TimeoutStartUSec",
              "ExecStart", "BindsTo", "StandardOutput")
    assert p["Type"] == "notify"
    assert p["NotifyAccess"] == "main"
    assert p["Restart"] == "on-failure"
    assert p["KillMode"] == "mixed"
    assert p["TimeoutStartUSec"] == "10s"
    assert "path=/usr/bin/openfortivpn" in p["ExecStart"]
    assert "ci-tunnel-guard@closed.service" in p["BindsTo"]
    assert p["StandardOutput"] == "journal"
    assert props(host, "stalled", "TimeoutStartUSec")["TimeoutStartUSec"] == "3s"
    assert props(host, "vpn1", "TimeoutStartUSec")["TimeoutStartUSec"] == "30s"


@pytest.mark.parametrize("name", TUNNELS)
def test_configs_are_root_only(host, name):
    f = host.file(f"/etc/openfortivpn/{name}.conf")
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
    assert as_runner(host, f"cat /etc/openfortivpn/{name}.conf").rc != 0


def test_absent_tunnel_left_nothing(host):
    assert not host.file("/etc/openfortivpn/retired.conf").exists
    assert not host.file("/etc/systemd/system/openfortivpn@retired.service.d").exists


def test_lease_directory(host):
    d = host.file("/run/ci-tunnel")
    assert (d.user, d.group, d.mode) == ("root", RUNNER, 0o770)


# --- sudo: exactly start/stop of the configured tunnels ---------------------------------------

def test_sudo_lists_exactly_start_and_stop_of_each_tunnel(host):
    listing = as_runner(host, "sudo -n -l").stdout
    granted = sorted(
        part.strip()
        for line in listing.splitlines() if "NOPASSWD:" in line
        for part in line.split("NOPASSWD:", 1)[1].split(",")
    )
    wanted = sorted(f"/usr/bin/systemctl {verb} {unit(n)}" for n in TUNNELS for verb in ("start", "stop"))
    assert granted == wanted, listing


@pytest.mark.parametrize("command", [
    "/usr/bin/systemctl restart openfortivpn@vpn1.service",
    "/usr/bin/systemctl start openfortivpn@vpn1.service --no-block",
    "/usr/bin/systemctl start openfortivpn@other.service",
    "/usr/bin/systemctl start ci-tunnel-guard@vpn1.service",
    "/usr/bin/systemctl stop ssh.service",
    "/usr/bin/systemctl edit openfortivpn@vpn1.service",
    "/usr/bin/systemctl",
    "/usr/bin/openfortivpn -c /etc/openfortivpn/vpn1.conf",
    "/usr/bin/id",
    "-u nobody /usr/bin/systemctl start openfortivpn@vpn1.service",
    "-s",
    "-i",
])
def test_runner_cannot_do_anything_else_with_sudo(host, command):
    result = as_runner(host, f"sudo -n {command}")
    assert result.rc != 0, result.stdout
    assert "password is required" in result.stderr or "not allowed" in result.stderr, result.stderr


def test_tunnel_started_without_ci_tunnel_is_refused(host):
    """A bare `sudo systemctl start` has no lease: the guard refuses, nothing keeps running."""
    result = as_runner(host, f"sudo -n /usr/bin/systemctl start {unit('vpn1')}")
    assert result.rc != 0
    assert "dependency" in result.stderr
    assert_stopped(host, "vpn1")


# --- job behaviour ------------------------------------------------------------------------------

def test_job_succeeds(host):
    start_job(host, "ok", f"""
echo hello | ci-tunnel run vpn1 -- bash -c 'systemctl is-active {unit("vpn1")}; cat; id -un'
echo after""")
    rc, log = job_result(host, "ok")
    assert rc == 0, log
    assert "active\nhello\ngitlab-runner\n" in log, log  # tunnel up during the step, stdin passed
    assert "ci-tunnel: tunnel vpn1 is up" in log
    assert log.rstrip().endswith("after"), log
    assert_stopped(host, "vpn1")
    assert not host.file("/run/ci-tunnel/vpn1.lease").exists


@pytest.mark.parametrize("style", ["run", "up-down-trap"])
def test_failing_step_exits_fast_with_its_status(host, style):
    fail = f"date +%s.%N > {MARKS}/fail-{style}.t; exit 7"
    if style == "run":
        script = f"echo step1\nci-tunnel run vpn1 -- bash -c '{fail}'\necho never"
    else:
        script = f"ci-tunnel up vpn1\n{TRAP.format('vpn1')}\necho step1\nbash -c '{fail}'\necho never"
    start_job(host, f"fail-{style}", script)
    rc, end, log = wait_job(host, f"fail-{style}")
    delay = end - float(run_ok(host, f"cat {MARKS}/fail-{style}.t"))
    print(f"\nFIGURE: exit delay after a failing step ({style}): {delay:.3f} s")
    assert rc == 7, log
    assert "never" not in log
    assert delay < FAIL_EXIT_BOUND, log
    assert_stopped(host, "vpn1")


def test_sigterm_to_the_job_stops_the_tunnel(host):
    """Cancel: SIGTERM to the job's process group; ci-tunnel ends the step, stops the tunnel, 143."""
    start_job(host, "term", f"ci-tunnel run vpn1 -- bash -c 'touch {MARKS}/term.up; sleep 300'\necho never")
    wait_mark(host, "term")
    t_kill = float(run_ok(host, "run-job kill term TERM group"))
    t_down = float(run_ok(host, f"run-job until-inactive {unit('vpn1')} 10"))
    rc, log = job_result(host, "term", 15)
    print(f"\nFIGURE: tunnel stop after SIGTERM to the job: {t_down - t_kill:.3f} s")
    assert rc == 143, log
    assert "interrupted (SIGTERM)" in log
    assert_stopped(host, "vpn1")


def test_sigterm_to_ci_tunnel_alone(host):
    """ci-tunnel itself signalled: it ends the step (SIGTERM), stops the tunnel, then exits 143."""
    job_pid = start_job(host, "term1", f"ci-tunnel run vpn1 -- bash -c 'touch {MARKS}/term1.up; sleep 300'")
    wait_mark(host, "term1")
    helper = run_ok(host, f"pgrep -P {job_pid} -f 'ci-tunnel run vpn1'")
    run_ok(host, f"kill -TERM {helper}")
    rc, log = job_result(host, "term1", 15)
    assert rc == 143, log
    assert_stopped(host, "vpn1")  # already down when the job ends: ci-tunnel waited for the stop
    assert host.run("pgrep -x -f 'sleep 300'").rc == 1


def test_sigterm_to_the_job_shell_alone(host):
    """Only the shell dies; ci-tunnel notices its parent is gone, ends the step and the tunnel."""
    start_job(host, "term2", f"ci-tunnel run vpn1 -- bash -c 'touch {MARKS}/term2.up; sleep 300'")
    wait_mark(host, "term2")
    t_kill = float(run_ok(host, "run-job kill term2 TERM shell"))
    t_down = float(run_ok(host, f"run-job until-inactive {unit('vpn1')} 10"))
    print(f"\nFIGURE: tunnel stop after SIGTERM to the job shell alone: {t_down - t_kill:.3f} s")
    assert t_down - t_kill < KILL_CLEANUP_BOUND
    rc = wait_job(host, "term2", 5).rc
    assert rc == 143
    assert_stopped(host, "vpn1")
    assert host.run("for i in $(seq 50); do pgrep -x -f 'sleep 300' || exit 0; sleep 0.1; done; exit 1").rc == 0


@pytest.mark.parametrize("style,target", [("up", "shell"), ("run", "shell"), ("run", "group")])
def test_sigkill_of_the_job_stops_the_tunnel_within_5s(host, style, target):
    job = f"kill-{style}-{target}"
    if style == "up":
        script = f"ci-tunnel up vpn2\n{TRAP.format('vpn2')}\ntouch {MARKS}/{job}.up\nsleep 300"
    else:
        script = f"ci-tunnel run vpn2 -- bash -c 'touch {MARKS}/{job}.up; sleep 300'\necho never"
    start_job(host, job, script)
    wait_mark(host, job)
    assert props(host, "vpn2", "ActiveState")["ActiveState"] == "active"
    t_kill = float(run_ok(host, f"run-job kill {job} KILL {target}"))
    t_down = float(run_ok(host, f"run-job until-inactive {unit('vpn2')} 10"))
    delay = t_down - t_kill
    print(f"\nFIGURE: cleanup delay after SIGKILL ({style}, {target}): {delay:.3f} s")
    rc = wait_job(host, job, 5).rc
    assert rc == 137
    assert delay < KILL_CLEANUP_BOUND
    assert_stopped(host, "vpn2")
    journal = run_ok(host, "journalctl --sync; journalctl -q -o cat -u ci-tunnel-guard@vpn2.service")
    assert "is gone: stopping the tunnel" in journal
    host.run("pkill -x -f 'sleep 300'")  # the killed job's own orphan (a runner kills the group)


def test_tunnel_that_never_becomes_ready(host):
    start_job(host, "stall", "date +%s.%N > $MARKS/stall.t\nci-tunnel run stalled -- echo STEP-RAN")
    rc, end, log = wait_job(host, "stall")
    elapsed = end - float(run_ok(host, f"cat {MARKS}/stall.t"))
    print(f"\nFIGURE: job end with a never-ready tunnel (timeout 3 s): {elapsed:.3f} s")
    assert rc == 4, log
    assert "did not become ready within its readiness timeout (3s)" in log, log
    assert "STEP-RAN" not in log
    assert 3.0 <= elapsed < 12.0  # the readiness timeout, plus start-up under load (never a second wait)
    assert_stopped(host, "stalled")


def test_real_openfortivpn_fails_cleanly_against_a_closed_port(host):
    start_job(host, "closed", "date +%s.%N > $MARKS/closed.t\nci-tunnel run closed -- echo STEP-RAN")
    rc, end, log = wait_job(host, "closed")
    elapsed = end - float(run_ok(host, f"cat {MARKS}/closed.t"))
    print(f"\nFIGURE: job end with openfortivpn against a closed port: {elapsed:.3f} s")
    assert rc == 4, log
    assert "tunnel closed failed to start" in log and "Result=exit-code" in log, log
    assert "STEP-RAN" not in log
    assert elapsed < 9.0  # failed at once: well inside its 10 s readiness timeout, even under load
    assert_stopped(host, "closed")
    # Stopped, not waiting for Restart=on-failure to try again.
    assert props(host, "closed", "SubState")["SubState"] in ("dead", "failed")
    assert host.run("pgrep -x openfortivpn").rc == 1
    assert "Connection refused" in run_ok(host, "journalctl --sync; journalctl -q -o cat -u openfortivpn@closed.service")


def test_two_jobs_two_tunnels_do_not_disturb_each_other(host):
    start_job(host, "long", f"ci-tunnel run vpn1 -- bash -c 'touch {MARKS}/long.up; sleep 300'")
    wait_mark(host, "long")
    before = props(host, "vpn1", "ActiveState", "InvocationID", "MainPID")
    assert before["ActiveState"] == "active"

    start_job(host, "short", "ci-tunnel run vpn2 -- bash -c 'exit 5'")
    rc, log = job_result(host, "short")
    assert rc == 5, log
    assert_stopped(host, "vpn2")

    # The same tunnel is refused to a second job while the first holds it.
    start_job(host, "same", "ci-tunnel up vpn1")
    rc, log = job_result(host, "same")
    assert rc == 3, log
    assert "tunnel 'vpn1' in use by PID" in log
    # ... and that job cannot take it down either.
    start_job(host, "steal", "ci-tunnel down vpn1")
    rc, log = job_result(host, "steal")
    assert rc == 3, log

    host.run("sleep 1.5")  # longer than the guard's poll interval
    assert props(host, "vpn1", "ActiveState", "InvocationID", "MainPID") == before
    run_ok(host, "run-job kill long TERM group")
    rc, log = job_result(host, "long", 15)
    assert rc == 143, log
    assert_stopped(host, "vpn1")


def test_usage_errors(host):
    for script, needle in [
        ("ci-tunnel run '../etc' -- true", "invalid tunnel name"),
        ("ci-tunnel run nope -- true", "not configured on this host"),
        ("ci-tunnel run vpn1", "usage:"),
        ("ci-tunnel frobnicate vpn1", "usage:"),
    ]:
        result = as_runner(host, script)
        assert result.rc in (2, 4), (script, result.stderr)
        assert needle in result.stderr, (script, result.stderr)


# --- adversarial: hostile names, leases and environments ----------------------------------------

def lease_files(host):
    return sorted(host.run("ls -A /run/ci-tunnel").stdout.split())


@pytest.mark.parametrize("name", [
    "../etc", "a/b", "*", "a b", "-x", ".x", ":x", "corp:eu-1", "a@b", "'a$b'", "'a\nb'", "'vpn1\n'", "''", "x" * 65,
])
def test_hostile_names_are_refused_before_anything_is_written(host, name):
    before = lease_files(host)
    result = as_runner(host, f"ci-tunnel up {name}")
    assert result.rc == 2, (name, result.stderr)
    assert "invalid tunnel name" in result.stderr or "usage:" in result.stderr, result.stderr
    assert lease_files(host) == before


def hostile_lease(host, content):
    """Write /run/ci-tunnel/vpn1.lease as the runner user (who may write anything there)."""
    run_ok(host, f"runuser -u {RUNNER} -- sh -c {shlex.quote(content)}")


def assert_start_refused(host, needle):
    result = host.run(f"systemctl start {unit('vpn1')}")
    assert result.rc != 0, result.stdout
    guard_log = run_ok(host, "journalctl --sync; journalctl -q -o cat --no-pager -n 20 -u ci-tunnel-guard@vpn1.service")
    assert needle in guard_log, guard_log
    assert_stopped(host, "vpn1")


@pytest.mark.parametrize("content, needle", [
    # init never exits: the tunnel would never be stopped.
    ("printf '1 %s\\n' \"$(cut -d' ' -f22 /proc/1/stat)\" > /run/ci-tunnel/vpn1.lease", "names PID 1"),
    # a live process of another user (journald, root): same, and not the job's.
    ("p=$(pgrep -o systemd-journal); printf '%s %s\\n' $p \"$(cut -d' ' -f22 /proc/$p/stat)\""
     " > /run/ci-tunnel/vpn1.lease", "not as the lease's owner"),
    ("printf 'rm -rf /\\n' > /run/ci-tunnel/vpn1.lease", "is not 'PID STARTTIME'"),
    ("printf '12 34; reboot\\n' > /run/ci-tunnel/vpn1.lease", "is not 'PID STARTTIME'"),
    ("head -c 100000 /dev/zero | tr '\\0' '1' > /run/ci-tunnel/vpn1.lease", "larger than 256 bytes"),
    ("ln -sf /etc/passwd /run/ci-tunnel/vpn1.lease", "is a symbolic link"),
])
def test_guard_refuses_hostile_leases(host, content, needle):
    try:
        hostile_lease(host, content)
        assert_start_refused(host, needle)
    finally:
        host.run("rm -f /run/ci-tunnel/vpn1.lease")


def test_run_under_a_root_parent_owns_the_lease_alone(host):
    """`runuser -u RUNNER ci-tunnel run` (parent is root's): the job still gets its tunnel."""
    result = host.run(f"runuser -u {RUNNER} -- ci-tunnel run vpn1 -- systemctl is-active {unit('vpn1')}")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "active"
    assert_stopped(host, "vpn1")
    # `up` needs the job's own shell as owner; a root parent is refused before anything starts.
    result = host.run(f"runuser -u {RUNNER} -- ci-tunnel up vpn1")
    assert result.rc == 2, result.stderr
    assert "does not run as" in result.stderr
    assert_stopped(host, "vpn1")
    assert not host.file("/run/ci-tunnel/vpn1.lease").exists


def test_hostile_path_does_not_reach_the_helpers(host):
    """ci-tunnel's own tools come from a fixed PATH; the user's PATH is kept for COMMAND only."""
    evil = f"/home/{RUNNER}/evil"
    setup = (
        f"mkdir -p {evil} && rm -f {evil}/HIT && "
        f"for t in sudo flock head timeout systemctl mktemp mv chmod id; do "
        f"printf '#!/bin/sh\\ntouch {evil}/HIT\\n' > {evil}/$t && chmod 0755 {evil}/$t; done && "
        f"printf '#!/bin/sh\\necho mytool-ran\\n' > {evil}/mytool && chmod 0755 {evil}/mytool"
    )
    run_ok(host, f"runuser -u {RUNNER} -- sh -c {shlex.quote(setup)}")
    assert as_runner(host, f"PATH={evil}:$PATH; sudo -n -l >/dev/null; test -e {evil}/HIT").rc == 0
    run_ok(host, f"rm -f {evil}/HIT")  # the fakes work: a helper found on PATH would leave HIT
    result = as_runner(host, f"PATH={evil}:$PATH; ci-tunnel run vpn1 -- mytool")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "mytool-ran"
    assert "tunnel vpn1 is up" in result.stderr
    assert not host.file(f"{evil}/HIT").exists
    assert_stopped(host, "vpn1")


def test_planted_lock_symlink_is_refused(host):
    try:
        run_ok(host, f"runuser -u {RUNNER} -- ln -sf /home/{RUNNER}/.bashrc /run/ci-tunnel/vpn1.lock")
        result = as_runner(host, "ci-tunnel run vpn1 -- true")
        assert result.rc == 4, result.stderr
        assert "symbolic link" in result.stderr
        assert_stopped(host, "vpn1")
    finally:
        host.run("rm -f /run/ci-tunnel/vpn1.lock")


def test_down_waits_for_the_lock_of_a_job_taking_over(host):
    """`down` takes the same lock as `up`: while another call holds it, down does not touch the lease."""
    # The holder notes the time just before it lets go of the lock (its shell exits right after).
    start_job(host, "holder", "exec 9>>/run/ci-tunnel/vpn1.lock; flock 9; "
                              f"touch {MARKS}/holder.up; sleep 3; date +%s.%N > {MARKS}/holder.released")
    wait_mark(host, "holder")
    result = as_runner(host, "ci-tunnel down vpn1; echo \"ended $(date +%s.%N)\" >&2")
    rc, log = job_result(host, "holder")
    assert rc == 0, log
    assert result.rc == 0, result.stderr
    ended = float(next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("ended ")))
    released = float(run_ok(host, f"cat {MARKS}/holder.released"))
    assert ended >= released, (released, result.stderr)


def test_signal_during_up_before_ready_leaves_nothing(host):
    """SIGTERM to `ci-tunnel up` while the tunnel is still starting: tunnel stopped, lease gone."""
    job_pid = start_job(host, "upterm", "ci-tunnel up stalled; echo never")
    helper = run_ok(host, f"for i in $(seq 50); do pgrep -P {job_pid} -f 'ci-tunnel up stalled' && break;"
                          " sleep 0.1; done")
    # Inside `systemctl start`: the unit is activating (the stand-in never becomes ready, and the
    # start gives up after 3 s, so this waits for that state rather than a fixed time).
    run_ok(host, f"for i in $(seq 200); do [ \"$(systemctl show -P ActiveState {unit('stalled')})\" = activating ]"
                 " && exit 0; sleep 0.05; done; exit 1")
    run_ok(host, f"kill -TERM {helper.split()[0]}")
    rc, log = job_result(host, "upterm", 15)
    assert rc == 143, log
    assert "interrupted (SIGTERM) while starting tunnel stalled" in log
    assert "never" not in log
    assert_stopped(host, "stalled")
    assert not host.file("/run/ci-tunnel/stalled.lease").exists


def test_two_concurrent_ups_of_one_tunnel_give_it_to_one_job(host):
    for job_id in ("race-a", "race-b"):
        start_job(host, job_id, f"ci-tunnel up vpn1; touch {MARKS}/{job_id}.up; sleep 4")
    results = {job_id: job_result(host, job_id, 20) for job_id in ("race-a", "race-b")}
    codes = sorted(rc for rc, _log in results.values())
    assert codes == [0, 3], results
    loser = next(log for rc, log in results.values() if rc == 3)
    assert "in use by PID" in loser, loser
    # The winner's shell ended: its guard stops the tunnel within a poll interval.
    run_ok(host, f"run-job until-inactive {unit('vpn1')} 5")
    assert_stopped(host, "vpn1")


def test_guard_watch_applies_the_owner_rule_too(host):
    """The guard reads the lease again in `watch`: a lease swapped after `check` is refused there too."""
    try:
        hostile_lease(host, "p=$(pgrep -o systemd-journal); printf '%s %s\\n' $p \"$(cut -d' ' -f22 /proc/$p/stat)\""
                            " > /run/ci-tunnel/vpn1.lease")
        result = host.run(f"runuser -u {RUNNER} -- timeout 5 /usr/local/bin/ci-tunnel guard-watch vpn1")
        assert result.rc == 1, (result.rc, result.stdout, result.stderr)
        assert "not as the lease's owner" in result.stdout + result.stderr
    finally:
        host.run("rm -f /run/ci-tunnel/vpn1.lease")


# --- one lease rule for the helper's every command and the guard ------------------------------------

def test_a_pid1_lease_blocks_nothing_and_runs_nothing(host):
    """A lease naming PID 1 is invalid everywhere: `run` and `up` take it over (the bash helpers once
    counted PID 1 as a live owner and kept the tunnel 'in use' forever), and the guard refuses to run
    a tunnel on it."""
    pid1 = "printf '1 %s\\n' \"$(cut -d' ' -f22 /proc/1/stat)\" > /run/ci-tunnel/vpn1.lease"
    try:
        hostile_lease(host, pid1)
        assert_start_refused(host, "names PID 1")
        hostile_lease(host, pid1)
        result = as_runner(host, f"ci-tunnel run vpn1 -- systemctl is-active {unit('vpn1')}")
        assert result.rc == 0 and result.stdout.strip() == "active", result.stderr
        assert_stopped(host, "vpn1")
        hostile_lease(host, pid1)
        result = as_runner(host, f"ci-tunnel up vpn1\n{TRAP.format('vpn1')}\nsystemctl is-active {unit('vpn1')}")
        assert result.rc == 0 and result.stdout.strip() == "active", result.stderr
        assert_stopped(host, "vpn1")
    finally:
        host.run("rm -f /run/ci-tunnel/vpn1.lease")


# --- removal --------------------------------------------------------------------------------------

def module(host, name, args):
    """One of the collection's modules, ad hoc against this host; returns its result."""
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    proc = subprocess.run(
        ["ansible", "-i", env["MOLECULE_INVENTORY_FILE"], host.backend.host, "-m", f"supervised.background.{name}",
         "-a", json.dumps(args)], env=env, capture_output=True, text=True, timeout=300, check=False)
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][host.backend.host]


def test_a_removed_tunnel_leaves_nothing(host):
    program = ["/usr/bin/python3", "/usr/local/lib/ci-runner-test/fake_tunnel.py", "--ready-after", "0.3",
               "/etc/openfortivpn/%i.conf"]
    made = module(host, "ci_tunnel", {"name": "temp", "host": "127.0.0.1", "password": "not-a-real-secret-5",
                                      "program": program})
    assert made["changed"] and made["sudo_commands"], made
    # A job holds it when it goes away: a live process of the runner owns its lease.
    owner = run_ok(host, f"runuser -u {RUNNER} -- sh -c 'sleep 300 >/dev/null 2>&1 & echo $!'")
    hostile_lease(host, f"printf '%s %s\\n' {owner} \"$(cut -d' ' -f22 /proc/{owner}/stat)\" > /run/ci-tunnel/temp.lease")
    run_ok(host, f"systemctl start {unit('temp')}")
    assert run_ok(host, f"systemctl is-active {unit('temp')}") == "active"
    gone = module(host, "ci_tunnel", {"name": "temp", "state": "absent"})
    host.run(f"kill {owner}; rm -f /run/ci-tunnel/temp.lease")
    assert gone["changed"] and gone["sudo_commands"] == [], gone
    again = module(host, "ci_tunnel", {"name": "temp", "state": "absent"})
    assert not again["changed"], again
    for path in ("/etc/openfortivpn/temp.conf", "/etc/systemd/system/openfortivpn@temp.service.d"):
        assert not host.file(path).exists, path
    listed = host.run("systemctl list-units --all --plain --no-legend 'openfortivpn@temp*' 'ci-tunnel-guard@temp*'")
    assert listed.stdout.strip() == "", listed.stdout
    assert host.run("pgrep -f '[f]ake_tunnel.py.*temp.conf'").rc != 0
    # The shared pieces stay for the other tunnels.
    assert host.file("/etc/systemd/system/openfortivpn@.service").exists
