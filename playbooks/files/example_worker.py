"""Example queue worker shipped with supervised.background (used by the demo and the tests).

* Reads its settings from the environment (EnvironmentFile + Environment= of its unit).
* Proves it sees its secret without ever printing it: writes the secret's SHA-256 into a state
  file only it (and root) can read.
* Spawns a child process (a heartbeat helper), like real workers spawn subprocesses.
* Speaks sd_notify when systemd asks for it (Type=notify): READY=1 once it is set up, so a deploy
  waits for it, and WATCHDOG=1 pings (every third of WatchdogSec) while it is healthy, so a worker
  that hangs with its process still alive is restarted. STOPPING=1 when it starts to drain.
* On SIGTERM it drains: it stops taking work, finishes the current "job" (DRAIN_SECONDS), stops
  its child and exits 0. With KillMode=mixed only this process gets SIGTERM, so the drain is never
  cut short by systemd signalling the children too.
"""

import hashlib
import json
import os
import signal
import socket
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


def notify(message):
    """sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (nothing when unset)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def watchdog_interval():
    """Seconds between WATCHDOG=1 pings: a third of WatchdogSec (None without a watchdog)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 3e6


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
    notify("READY=1")
    ping = watchdog_interval()
    last_ping = time.monotonic()
    hang_file = os.path.join(state_dir, f"hang-{instance}")
    while not draining:
        log("working")
        deadline = time.monotonic() + tick_seconds
        while not draining and time.monotonic() < deadline:
            time.sleep(0.1)
            # A stand-in for a deadlock: with the file present the worker stops pinging.
            if ping and time.monotonic() - last_ping >= ping and not os.path.exists(hang_file):
                notify("WATCHDOG=1")
                last_ping = time.monotonic()
    notify("STOPPING=1")
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
