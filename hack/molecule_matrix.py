"""Run Molecule scenarios on several Debian releases at once and print the time of each.

`make molecule` calls this with the runs to make, each SCENARIO:RELEASE[:VARIANT] (for example
`default:bullseye`, `access:trixie:sudo-rs`). A scenario that lists its own platforms (fleet mixes
releases in one run) is given as SCENARIO:mixed. Up to --jobs runs go at once, each in its own
Molecule process with its own ephemeral directory and container names, so the releases of one
scenario run side by side; the longest runs start first.

Each run's output goes to .build/molecule-logs/SCENARIO-RELEASE[-VARIANT].log. When a run ends,
its verdict and the tail of its log (the whole log when it failed) are printed in one piece, and at
the end a table gives the seconds per scenario and release. A run that has not ended after --timeout
seconds is stopped (a hung run must not hold CI until its hard limit). Exit status 1 when any run
failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".build" / "molecule-logs"
EPHEMERAL = ROOT / ".build" / "molecule-runs"
TIMES = ROOT / ".build" / "molecule-times.txt"
# Rough order of cost (seconds on the 2-core CI machine): the longest start first.
COST = {"concurrency": 400, "access": 260, "fleet": 250, "default": 200, "jobs": 170,
        "lifecycle": 170, "runner": 130}
RELEASES = {"bullseye": "Debian 11", "bookworm": "Debian 12", "trixie": "Debian 13", "mixed": "mixed"}


class Run:
    def __init__(self, spec: str):
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", p) for p in parts) \
                or parts[1] not in RELEASES:
            raise SystemExit(f"molecule_matrix: bad run '{spec}' (SCENARIO:RELEASE[:VARIANT], lower-case words, "
                             f"RELEASE one of {', '.join(RELEASES)})")
        own = re.search(r"(?m)^platforms:", (ROOT / "molecule" / parts[0] / "molecule.yml").read_text()
                        if (ROOT / "molecule" / parts[0] / "molecule.yml").is_file() else "")
        if (parts[1] == "mixed") != bool(own):
            raise SystemExit(f"molecule_matrix: bad run '{spec}': 'mixed' is the release of a scenario that lists "
                             "its own platforms, and only of such a scenario")
        self.scenario, self.release = parts[0], parts[1]
        self.variant = parts[2] if len(parts) == 3 else ""
        self.label = "-".join(p for p in (self.scenario, self.release, self.variant) if p)
        self.log = LOGS / f"{self.label}.log"
        self.seconds = 0
        self.status = None
        self.proc = None

    def env(self) -> dict:
        env = dict(os.environ)
        env["MOLECULE_EPHEMERAL_DIRECTORY"] = str(EPHEMERAL / self.label)
        if self.release != "mixed":
            env["MOLECULE_DISTRO"] = self.release
        env["MOLECULE_VARIANT"] = f"-{self.variant}" if self.variant else ""
        return env

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        EPHEMERAL.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                ["molecule", "test", "-s", self.scenario], cwd=ROOT, env=self.env(),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def finish(self) -> None:
        self.status = self.proc.wait()
        self.seconds = round(time.monotonic() - self.started)

    def containers(self) -> str:
        """A `docker ps` name filter for this run's platforms (Molecule's destroy never ran)."""
        if self.release == "mixed":
            return f"^sb-{self.scenario}-"
        return f"^sb-{self.scenario}-{self.release}{'-' + self.variant if self.variant else ''}$"

    def stop(self, grace: float = 30) -> None:
        """SIGTERM to the run's process group, SIGKILL after `grace` s, then remove its containers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        names = subprocess.run(["docker", "ps", "-aq", "--filter", f"name={self.containers()}"],
                               capture_output=True, text=True, check=False).stdout.split()
        if names:
            subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)


def report(run: Run, tail: int) -> None:
    text = run.log.read_text(errors="replace").splitlines()
    verdict = "passed" if run.status == 0 else f"FAILED (exit {run.status})"
    shown = text if run.status else text[-tail:]
    print(f"=== {run.label}: {verdict} in {run.seconds} s (log: {run.log.relative_to(ROOT)})")
    if run.status == 0 and len(text) > tail:
        print(f"    ... the last {tail} of {len(text)} lines:")
    for line in shown:
        print(f"    | {line}")
    print(f"=== end of {run.label}", flush=True)


# Lines of a Molecule log that say why a run failed: Ansible task failures and pytest (testinfra)
# failures. They are printed again after the table, because CI logs are often read from the end.
WHY = re.compile(r"^(fatal:|failed:|E   |FAILED |ERROR|CRITICAL|.*\bTimeout\b)")
# Colour codes and the box-drawing margin Molecule puts before Ansible's lines on a terminal.
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
MARGIN = re.compile(r"^\s*\u2502 ?")


def why(run: Run, limit: int = 60) -> list[str]:
    """The last task header before each failure line and the failure lines, at most `limit` of them."""
    picked, task = [], ""
    for raw in run.log.read_text(errors="replace").splitlines():
        line = MARGIN.sub("", COLOUR.sub("", raw))
        if line.startswith("TASK ["):
            task = line
        elif WHY.match(line) and not line.startswith("FAILED - RETRYING"):
            if task:
                picked.append(task)
                task = ""
            picked.append(line[:400])
    return picked[-limit:]


def table(runs: list[Run], wall: int) -> str:
    lines = [f"{'scenario':<13} {'release':<10} {'variant':<9} {'seconds':>7}  result"]
    order = list(RELEASES)
    for run in sorted(runs, key=lambda r: (r.scenario, order.index(r.release), r.variant)):
        result = "not run" if run.status is None else ("passed" if run.status == 0 else "FAILED")
        lines.append(f"{run.scenario:<13} {RELEASES[run.release]:<10} {run.variant or '-':<9} "
                     f"{run.seconds:>7}  {result}")
    per_release = {}
    for run in runs:
        per_release[run.release] = per_release.get(run.release, 0) + run.seconds
    lines.append("busy seconds per release: " + ", ".join(
        f"{RELEASES[r]} {per_release[r]}" for r in order if r in per_release))
    lines.append(f"wall time of all runs: {wall} s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="SCENARIO:RELEASE[:VARIANT]")
    parser.add_argument("--jobs", type=int, default=3, help="runs at once (default 3)")
    parser.add_argument("--tail", type=int, default=40, help="log lines shown for a passed run")
    parser.add_argument("--timeout", type=int, default=1500,
                        help="seconds after which a run is stopped and counted as failed (default 1500)")
    args = parser.parse_args()
    runs = [Run(spec) for spec in args.runs]
    if len({run.label for run in runs}) != len(runs):
        raise SystemExit("molecule_matrix: a run is listed twice (it would share containers and state)")
    pending = sorted(runs, key=lambda r: -COST.get(r.scenario, 200))
    active: list[Run] = []
    begin = time.monotonic()

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"=== {len(runs)} Molecule runs, {args.jobs} at once: "
          + " ".join(r.label for r in pending), flush=True)
    try:
        while pending or active:
            while pending and len(active) < args.jobs:
                run = pending.pop(0)
                active.append(run)
                run.start()
                print(f"=== started {run.label}", flush=True)
            time.sleep(1)
            for run in [r for r in active if r.proc.poll() is None]:
                if time.monotonic() - run.started > args.timeout:
                    print(f"=== {run.label}: no end after {args.timeout} s, stopping it", flush=True)
                    run.stop()
            for run in [r for r in active if r.proc.poll() is not None]:
                run.finish()
                active.remove(run)
                report(run, args.tail)
    finally:
        for run in active:  # interrupted or crashed: leave no Molecule run or container behind
            run.stop(grace=10)
            if run.proc is not None:
                run.finish()
        wall = round(time.monotonic() - begin)
        summary = table(runs, wall)
        TIMES.write_text(summary + "\n")
        print("=== time per scenario and release")
        print(summary, flush=True)
    failed = [r.label for r in runs if r.status]
    if failed:
        for run in runs:
            if run.status:
                print(f"=== why {run.label} failed (from {run.log.relative_to(ROOT)}):")
                for line in why(run):
                    print(f"    | {line}")
        print(f"=== FAILED: {' '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
