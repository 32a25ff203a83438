"""Samples the instance states of a fleet's hosts while a command (a roll-out playbook) runs.

usage: rollout_sampler.py --out SAMPLES.jsonl --stdout COMMAND.out [--interval 0.25]
                          --watch HOST=UNIT[,UNIT...] [--watch ...] -- COMMAND [ARG...]

One `docker exec -i HOST sh` per host stays open for the whole run (no process start per
sample); each round the sampler asks every host at once for the `systemctl show` properties of
its units and writes one JSON line. Sampling starts before the command and goes on after it
ended (MIN_EDGE rounds on each side), so the record covers the whole command.

Lines of SAMPLES.jsonl:
  {"event": "begin", "watch": {HOST: [UNIT...]}, "interval": S}
  {"sample": N, "t0": T, "t1": T, "hosts": {HOST: {UNIT: {"state": "active/running", "pid": "123"}}}}
  {"event": "command-start", "t": T}   {"event": "command-end", "t": T, "rc": RC}   {"event": "end"}
T is time.monotonic(), the kernel's CLOCK_MONOTONIC, which the containers share with the
controller (systemd's *TimestampMonotonic properties count on the same clock). t0/t1 bracket a
round: every host was asked after t0 and had answered by t1.

The command's stdout goes to COMMAND.out, its stderr to ours; the exit status is the command's
(or 70 when sampling itself broke, after stopping the command).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

END = "@@fleet-sample-end@@"
PROPERTIES = "Id,ActiveState,SubState,MainPID"
MIN_EDGE = 3
TIMEOUT = 900


class Probe:
    """A shell in one host that prints the units' properties for every line it reads."""

    def __init__(self, host, units):
        self.host = host
        self.units = units
        script = f'while read -r _; do systemctl show -p {PROPERTIES} "$@"; echo {END}; done'
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            ["docker", "exec", "-i", host, "/bin/sh", "-c", script, "probe", *units],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def answer(self):
        states = {}
        block = {}
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.host}: the probe ended (rc={self.proc.poll()})")
            line = line.rstrip("\n")
            if line in (END, ""):
                if block.get("Id"):
                    states[block["Id"]] = {"state": f"{block.get('ActiveState')}/{block.get('SubState')}",
                                           "pid": block.get("MainPID")}
                block = {}
                if line == END:
                    break
                continue
            key, _eq, value = line.partition("=")
            block[key] = value
        # A unit systemd does not list counts as missing, never as healthy.
        return {unit: states.get(unit, {"state": "missing/missing", "pid": "0"}) for unit in self.units}

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="rollout_sampler")
    parser.add_argument("--out", required=True)
    parser.add_argument("--stdout", required=True)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--watch", action="append", required=True, metavar="HOST=UNIT[,UNIT...]")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    args.watch = {host: units.split(",") for host, _eq, units in (w.partition("=") for w in args.watch)}
    return args


def main(argv):
    args = parse_args(argv)
    probes = [Probe(host, units) for host, units in args.watch.items()]
    count = 0
    command = None
    rc = 70
    with open(args.out, "w", encoding="utf-8") as out:

        def record(item):
            out.write(json.dumps(item, sort_keys=True) + "\n")
            out.flush()

        def sample():
            nonlocal count
            t0 = time.monotonic()
            for probe in probes:
                probe.ask()
            hosts = {probe.host: probe.answer() for probe in probes}
            count += 1
            record({"sample": count, "t0": t0, "t1": time.monotonic(), "hosts": hosts})
            time.sleep(max(0.0, t0 + args.interval - time.monotonic()))

        record({"event": "begin", "watch": args.watch, "interval": args.interval})
        try:
            for _round in range(MIN_EDGE):
                sample()
            with open(args.stdout, "w", encoding="utf-8") as command_out:
                command = subprocess.Popen(args.command, stdout=command_out)  # pylint: disable=consider-using-with
            record({"event": "command-start", "t": time.monotonic()})
            deadline = time.monotonic() + TIMEOUT
            while command.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the command ran longer than {TIMEOUT} s")
                sample()
            rc = command.returncode
            record({"event": "command-end", "t": time.monotonic(), "rc": rc})
            for _round in range(MIN_EDGE):
                sample()
            record({"event": "end"})
        except (RuntimeError, OSError) as err:
            print(f"rollout_sampler: {err}", file=sys.stderr)
            record({"event": "error", "error": str(err)})
            if command is not None and command.poll() is None:
                command.terminate()
                command.wait()
            rc = 70
        finally:
            for probe in probes:
                probe.close()
    print(f"rollout_sampler: {count} samples of {len(probes)} hosts, command exit status {rc}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
