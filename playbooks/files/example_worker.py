"""Example queue worker shipped with supervised.background (used by the demo and the tests).

* Reads its settings from the environment (EnvironmentFile + Environment= of its unit).
* Proves it sees its secret without ever printing it: writes the secret's SHA-256 into a state
  file only it (and root) can read.
* Spawns a child process (a heartbeat helper), like real workers spawn subprocesses.
* On SIGTERM it drains: it stops taking work, finishes the current "job" (DRAIN_SECONDS), stops
  its child and exits 0. With KillMode=mixed only this process gets SIGTERM, so the drain is never
  cut short by systemd signalling the children too.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

instance = sys.argv[1] if len(sys.argv) > 1 else "0"
drain_seconds = float(os.environ.get("DRAIN_SECONDS", "3"))
tick_seconds = float(os.environ.get("TICK_SECONDS", "5"))
state_dir = os.environ.get("STATE_DIRECTORY", "/tmp").split(":")[0]
secret = os.environ.get("WORKER_SECRET", "")
draining = False


def log(message):
    print(f"example-worker[{instance}] {message}", flush=True)


def on_term(signum, _frame):
    global draining
    draining = True
    log(f"got signal {signum}, draining for {drain_seconds:g} s")


def write_state(child_pid):
    state = {
        "instance": instance,
        "pid": os.getpid(),
        "child_pid": child_pid,
        "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(),
        "greeting": os.environ.get("WORKER_GREETING", ""),
        "started": time.time(),
    }
    path = os.path.join(state_dir, f"{instance}.json")
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)
    os.replace(tmp, path)


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    child = subprocess.Popen(["/bin/sleep", "infinity"])
    write_state(child.pid)
    log(f"started (pid {os.getpid()}, child {child.pid})")
    while not draining:
        log("working")
        deadline = time.monotonic() + tick_seconds
        while not draining and time.monotonic() < deadline:
            time.sleep(0.1)
    started = time.monotonic()
    # Finish the job in hand: the drain takes DRAIN_SECONDS whatever signals arrive meanwhile.
    while time.monotonic() - started < drain_seconds:
        time.sleep(0.05)
    child.terminate()
    child.wait(timeout=5)
    log(f"drained in {time.monotonic() - started:.2f} s, exiting cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
