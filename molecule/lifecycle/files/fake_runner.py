#!/usr/bin/env python
"""A stand-in for gitlab-runner: on SIGQUIT it stops taking jobs and exits when the running job
(/run/sb-runner/job holds its end time) has finished; on SIGTERM it exits at once, killing it."""
import os
import signal
import sys
import time

JOB = "/run/sb-runner/job"
DONE = "/run/sb-runner/done"
quitting = False


def on_quit(_sig, _frame):
    global quitting
    quitting = True
    print("runner: SIGQUIT, finishing the running job", flush=True)


def on_term(_sig, _frame):
    print("runner: SIGTERM, exiting now", flush=True)
    sys.exit(0)


signal.signal(signal.SIGQUIT, on_quit)
signal.signal(signal.SIGTERM, on_term)
print("runner: up", flush=True)
while True:
    if os.path.exists(JOB):
        with open(JOB, encoding="utf-8") as handle:
            end = float(handle.read().strip() or 0)
        if time.time() >= end:
            os.unlink(JOB)
            with open(DONE, "a", encoding="utf-8") as handle:
                handle.write(f"{time.time()}\n")
            print("runner: job finished", flush=True)
    elif quitting:
        print("runner: no job left, exiting", flush=True)
        sys.exit(0)
    time.sleep(0.1)
