"""CI job harness of `make bench` (runs as root inside a bench container; copied there by bench/run.py).

Runs one CI job script the way GitLab Runner's shell executor does: as the runner user in
`bash -eo pipefail`, in a session and process group of its own, stdout and stderr on one pipe. Like
a runner it waits for that pipe to close (EOF): only then is the job over. A background process that
keeps the pipe open keeps the job "running" after its shell has exited; the harness gives up at
--cutoff (a runner would wait until the job's timeout) and leaves such processes running.

  ci_job.py --cutoff SECONDS --mark FILE SCRIPT

The job gets BENCH_MARK=FILE, where its failing step writes its end time. Prints one JSON object
(times in seconds from the job's start): rc (the shell's exit status), shell_exit, eof (null when
the output was still open at the cut-off), cutoff (null when the job ended before it), step_end,
pgid (the job's process group, for the caller to clean up).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time

RUNNER = "gitlab-runner"
PATH = "/usr/local/lib/sb-bench/bin:/usr/local/bin:/usr/bin:/bin"


def main():
    parser = argparse.ArgumentParser(prog="ci_job")
    parser.add_argument("--cutoff", type=float, required=True)
    parser.add_argument("--mark", required=True)
    parser.add_argument("script")
    args = parser.parse_args()
    if os.path.exists(args.mark):
        os.unlink(args.mark)
    argv = ["setpriv", f"--reuid={RUNNER}", f"--regid={RUNNER}", "--init-groups",
            "env", "-i", f"HOME=/home/{RUNNER}", f"USER={RUNNER}", f"LOGNAME={RUNNER}", f"PATH={PATH}",
            f"BENCH_MARK={args.mark}", "bash", "-eo", "pipefail", "-c", args.script]
    read_end, write_end = os.pipe()
    start = time.time()
    job = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end,  # pylint: disable=consider-using-with
                           cwd=f"/home/{RUNNER}", start_new_session=True)
    os.close(write_end)
    result = {"rc": None, "shell_exit": None, "eof": None, "cutoff": None, "step_end": None, "pgid": job.pid}
    output = b""
    while result["eof"] is None:
        if result["rc"] is None and job.poll() is not None:
            result["shell_exit"] = round(time.time() - start, 3)
            result["rc"] = job.returncode if job.returncode >= 0 else 128 - job.returncode
        if time.time() - start >= args.cutoff:
            result["cutoff"] = round(time.time() - start, 3)
            break
        ready, _w, _x = select.select([read_end], [], [], 0.02)
        if ready:
            chunk = os.read(read_end, 65536)
            if chunk:
                output += chunk
            else:
                result["eof"] = round(time.time() - start, 3)
    if result["rc"] is None:
        try:
            job.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    if result["rc"] is None and job.returncode is not None:
        result["shell_exit"] = round(time.time() - start, 3)
        result["rc"] = job.returncode if job.returncode >= 0 else 128 - job.returncode
    os.close(read_end)
    if os.path.exists(args.mark):
        with open(args.mark, encoding="utf-8") as handle:
            result["step_end"] = round(float(handle.read().strip()) - start, 3)
    result["output"] = output.decode(errors="replace")[-2000:]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
