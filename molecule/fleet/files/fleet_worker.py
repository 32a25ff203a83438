"""Stand-in worker of the `fleet` scenario: python3 fleet_worker.py KIND VERSION INSTANCE

A Type=notify worker: it "starts up" for STARTUP seconds (loading, connecting), tells systemd
READY=1, idles until SIGTERM, then drains for DRAIN seconds and exits 0. So each restart keeps the
instance out of active/running for about DRAIN + STARTUP seconds, long enough to be seen by a
sampler polling every 0.25 s.

VERSION is only part of the argv (what a roll-out changes); a VERSION that starts with "broken"
stands for a build that crashes at start: it exits 3 at once, before READY=1.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

STARTUP = 3.0
DRAIN = 0.3


def notify(message):
    """sd_notify: one datagram to $NOTIFY_SOCKET ("@..." names an abstract socket)."""
    address = os.environ["NOTIFY_SOCKET"]  # a KeyError: not started as a Type=notify unit
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


def main():
    kind, version, instance = sys.argv[1:4]
    if version.startswith("broken"):
        print(f"fleet-worker: {kind}@{instance} version {version} crashes at start", flush=True)
        return 3
    # SIGTERM is blocked and taken with sigtimedwait/sigwait: a stop during start-up is not lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    if signal.sigtimedwait({signal.SIGTERM}, STARTUP) is not None:
        return 0
    notify(f"READY=1\nSTATUS={kind} version {version} serving")
    print(f"fleet-worker: {kind}@{instance} version {version} ready", flush=True)
    signal.sigwait({signal.SIGTERM})
    notify("STOPPING=1")
    time.sleep(DRAIN)  # the drain: finish the jobs in hand
    print(f"fleet-worker: {kind}@{instance} version {version} drained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
