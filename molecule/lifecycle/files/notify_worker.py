#!/usr/bin/env python
"""A Type=notify worker: READY=1 after a start-up delay, then WATCHDOG=1 pings every second,
until /run/sb-life/hang-INSTANCE exists (a deadlock with the process still alive)."""
import os
import socket
import sys
import time

INSTANCE = sys.argv[1] if len(sys.argv) > 1 else "0"
STARTUP_DELAY = float(os.environ.get("STARTUP_DELAY", "1"))


def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


time.sleep(STARTUP_DELAY)
if os.environ.get("NEVER_READY") == "1":
    print(f"notify-worker[{INSTANCE}] never gets ready", flush=True)
    time.sleep(3600)
notify("READY=1")
print(f"notify-worker[{INSTANCE}] ready", flush=True)
HANG = os.environ.get("HANG_FILE", f"/run/sb-life/hang-{INSTANCE}")
while True:
    if not os.path.exists(HANG):
        notify("WATCHDOG=1")
    time.sleep(1)
