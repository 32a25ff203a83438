"""Job harness of the demo's act 2 (root, on the demo host): runs one CI job script as GitLab Runner's
shell executor does, and reports when the runner would see the job end.

The script runs as the runner user in `bash -eo pipefail`, in a session and process group of its
own, with stdout and stderr on one pipe. Like a runner, the harness waits for that pipe to close
(EOF): only then is the job over. A background process that keeps the pipe open keeps the job
"running" after its shell has exited; the harness gives up at --cutoff (a runner waits until the
job's timeout) and leaves such processes running, listed in the result.

  job_harness.py --name NAME --result FILE [--cutoff SECONDS]
                 [--sigkill-after TEXT --unit UNIT] SCRIPT

SCRIPT is the job's text. The job gets DEMO_MARK, a file its failing step writes its end time to.
With --sigkill-after, the job's shell (only the shell) gets SIGKILL 0.3 s after a line of its output
holds TEXT (so inside the step that follows); the harness then measures until UNIT is inactive, and
ends the rest of the job's process group as a runner does. Prints a timeline; writes a JSON summary to FILE (times in seconds from
the job's start).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time

RUNNER = "gitlab-runner"
JOBS = "/run/supervised-demo/jobs"
PATH = "/usr/local/lib/supervised-demo/bin:/usr/local/bin:/usr/bin:/bin"


def group_members(pgid):
    """[(pid, ppid, args)] of the live processes in process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if fields[0] in (b"Z", b"X") or int(fields[2]) != pgid:
            continue
        found.append((int(entry), int(fields[1]), args))
    return sorted(found)


def unit_state(unit):
    out = subprocess.run(["systemctl", "show", "-P", "ActiveState", unit],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip()


class Watch:
    """What the harness knows about one job, and the checks it makes while the job's output flows."""

    def __init__(self, job, start, args):
        self.job = job
        self.start = start
        self.args = args
        self.kill_at = None
        self.summary = {"name": args.name, "shell_pid": job.pid, "rc": None, "shell_exit": None, "eof": None,
                        "step_end": None, "cutoff": None, "left_running": [], "sigkill": None, "unit_down": None}

    def stamp(self):
        return round(time.time() - self.start, 3)

    def event(self, text):
        print(f"    {self.stamp():6.2f} s  * {text}", flush=True)

    def line(self, text):
        """One line of the job's output; --sigkill-after TEXT schedules the SIGKILL 0.3 s later (inside the step)."""
        print(f"    {self.stamp():6.2f} s  | {text}", flush=True)
        if self.args.sigkill_after and self.args.sigkill_after in text and self.kill_at is None:
            self.kill_at = time.time() + 0.3

    def reap(self, wait=False):
        if self.summary["rc"] is not None or (self.job.poll() is None and not wait):
            return
        code = self.job.wait()
        self.summary["shell_exit"] = self.stamp()
        self.summary["rc"] = code if code >= 0 else 128 - code
        self.event(f"job shell exited with status {self.summary['rc']}")

    def check(self):
        """The job's shell, the scheduled SIGKILL, the tunnel unit after it, and the cut-off."""
        summary = self.summary
        self.reap()
        if self.kill_at is not None and summary["rc"] is not None and summary["sigkill"] is None:
            self.kill_at = None  # the shell ended on its own first: nothing to kill
        if self.kill_at is not None and summary["sigkill"] is None and time.time() >= self.kill_at:
            os.kill(self.job.pid, signal.SIGKILL)
            summary["sigkill"] = self.stamp()
            self.event(f"SIGKILL to the job's shell (PID {self.job.pid})")
        if summary["sigkill"] is not None and summary["unit_down"] is None and self.args.unit:
            state = unit_state(self.args.unit)
            if state in ("inactive", "failed"):
                summary["unit_down"] = self.stamp()
                self.event(f"{self.args.unit} is {state}, {summary['unit_down'] - summary['sigkill']:.2f} s after the SIGKILL")
                # A runner ends what is left of the job (here the step's `sleep`) with its group.
                try:
                    os.killpg(self.job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if summary["cutoff"] is None and time.time() - self.start >= self.args.cutoff:
            summary["cutoff"] = self.stamp()
            summary["left_running"] = [{"pid": p, "ppid": pp, "args": a} for p, pp, a in group_members(self.job.pid)]
            if summary["eof"] is None:
                self.event(f"cut off after {self.args.cutoff:g} s: the job's output is still open, a runner would "
                           "wait until the job's timeout")
            else:
                self.event(f"cut off after {self.args.cutoff:g} s")

    def done(self):
        """Output closed and, with --sigkill-after, the SIGKILL sent and the unit seen down; or the cut-off."""
        summary = self.summary
        if summary["cutoff"] is not None:
            return True
        if summary["eof"] is None:
            return False
        if self.kill_at is not None and self.args.unit:
            return summary["unit_down"] is not None
        return True


def main():
    parser = argparse.ArgumentParser(prog="job-harness")
    parser.add_argument("--name", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--cutoff", type=float, default=60.0)
    parser.add_argument("--sigkill-after")
    parser.add_argument("--unit")
    parser.add_argument("script")
    args = parser.parse_args()

    os.makedirs(JOBS, exist_ok=True)
    os.chown(JOBS, 0, 0)
    os.chmod(JOBS, 0o1777)
    script = os.path.join(JOBS, f"{args.name}.sh")
    mark = os.path.join(JOBS, f"{args.name}.step")
    for path in (script, mark):
        if os.path.exists(path):
            os.unlink(path)
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(args.script.rstrip("\n") + "\n")
    os.chmod(script, 0o644)

    argv = ["setpriv", f"--reuid={RUNNER}", f"--regid={RUNNER}", "--init-groups",
            "env", "-i", f"HOME=/home/{RUNNER}", f"USER={RUNNER}", f"LOGNAME={RUNNER}", f"PATH={PATH}",
            f"DEMO_MARK={mark}", "bash", "-eo", "pipefail", script]
    read_end, write_end = os.pipe()
    start = time.time()
    job = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end,  # pylint: disable=consider-using-with
                           cwd=f"/home/{RUNNER}", start_new_session=True)
    os.close(write_end)
    watch = Watch(job, start, args)
    watch.event(f"job started: shell PID {job.pid}, bash -eo pipefail as {RUNNER}")
    pending = b""
    while not watch.done():
        watch.check()
        if watch.summary["eof"] is not None:
            time.sleep(0.02)
            continue
        ready, _w, _x = select.select([read_end], [], [], 0.02)
        if not ready:
            continue
        chunk = os.read(read_end, 65536)
        if not chunk:
            watch.reap(wait=True)
            watch.summary["eof"] = watch.stamp()
            watch.event("job output closed (EOF): the runner reports the job now")
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            watch.line(line.decode(errors="replace"))
    summary = watch.summary
    os.close(read_end)
    if os.path.exists(mark):
        with open(mark, encoding="utf-8") as handle:
            summary["step_end"] = round(float(handle.read().strip()) - start, 3)
    with open(args.result, "w", encoding="utf-8") as handle:
        json.dump(summary, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
