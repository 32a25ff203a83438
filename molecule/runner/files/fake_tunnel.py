"""Stand-in for openfortivpn in the `runner` scenario (there is no VPN gateway to test against).

Usage: python3 fake_tunnel.py [--ready-after SECONDS | --never-ready] CONFIG

Like openfortivpn it reads its config file (so a missing /etc/openfortivpn/NAME.conf fails the
start), starts a helper child (openfortivpn starts pppd), tells systemd READY=1 from the main
process once "up", and on SIGTERM ends its child and exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys


def notify(message):
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        sys.exit("fake-tunnel: NOTIFY_SOCKET is not set (run me as a Type=notify unit)")
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def main():
    parser = argparse.ArgumentParser(prog="fake-tunnel")
    parser.add_argument("--ready-after", type=float, default=0.2)
    parser.add_argument("--never-ready", action="store_true")
    parser.add_argument("config")
    args = parser.parse_args()

    with open(args.config, encoding="utf-8") as handle:
        handle.read()

    # Named after the config, so a leftover helper is easy to attribute to its tunnel.
    child = subprocess.Popen(  # pylint: disable=consider-using-with
        [f"fake-pppd:{args.config}", "infinity"], executable="/bin/sleep"
    )
    # SIGTERM is blocked (after the child started, which must stay killable) and taken with
    # sigtimedwait/sigwait, so a stop request is never lost between a check and a wait.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    print(f"fake-tunnel: connecting with {args.config} (helper PID {child.pid})", flush=True)

    if args.never_ready:
        signal.sigwait({signal.SIGTERM})
    elif signal.sigtimedwait({signal.SIGTERM}, args.ready_after) is None:
        print("fake-tunnel: Tunnel is up and running.", flush=True)
        notify("READY=1")
        signal.sigwait({signal.SIGTERM})
    child.terminate()
    child.wait()
    print("fake-tunnel: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
