"""Proofs read back after side_effect: measured fault detection times, a job that outlived its
playbook, and every enabled worker instance coming back after a restart of the container."""

import json
import time

PROOF = "/var/lib/sb-jobs-proof/measurements.json"


def show(host, unit, *props):
    out = host.check_output("systemctl show -p %s -- %s", ",".join(props), unit)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def measurements(host):
    return json.loads(host.file(PROOF).content_string)


def test_fault_detection_times(host):
    times = measurements(host)
    print()
    for key in sorted(times):
        if key != "outlive_invocation_id":
            print(f"FIGURE: jobs {key}: {times[key]} s")
    # RuntimeMaxSec=2 ended the hung job 2 s after it started (systemd's own clock).
    assert 2.0 <= float(times["runtime_max_sec_systemd_duration"]) < 3.0
    # The health gate saw the crash loop well inside its window.
    assert float(times["crash_loop_detected_after"]) < float(times["crash_loop_settle_window"]) + 3
    # The SIGTERM-ignoring worker was killed once TimeoutStopSec had passed, not before.
    assert float(times["stop_timeout_configured"]) <= float(times["stop_took"])


def test_job_outlived_the_playbook_that_started_it(host):
    invocation = measurements(host)["outlive_invocation_id"]
    deadline = time.monotonic() + 30
    while True:
        props = show(host, "sbj-outlive.service", "ActiveState", "SubState", "Result",
                     "ExecMainStatus", "InvocationID")
        if props["SubState"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert props["InvocationID"] == invocation
    assert (props["ActiveState"], props["SubState"], props["Result"], props["ExecMainStatus"]) == (
        "active", "exited", "success", "0")
    out = host.check_output("journalctl --no-pager -o cat _SYSTEMD_UNIT=sbj-outlive.service")
    assert "outlived the playbook" in out


def test_crash_looping_instances_are_gone(host):
    assert host.run("ls /etc/systemd/system/multi-user.target.wants/sbj-crashy@*").rc != 0


def test_stop_timeout_on_systemds_clock(host):
    """The SIGTERM-ignoring instance spent TimeoutStopSec deactivating, then was SIGKILLed."""
    props = show(host, "sbj-stubborn@1.service", "ActiveState", "Result", "ExecMainCode", "ExecMainStatus",
                 "ActiveExitTimestampMonotonic", "InactiveEnterTimestampMonotonic", "TimeoutStopUSec")
    stopping = (int(props["InactiveEnterTimestampMonotonic"]) - int(props["ActiveExitTimestampMonotonic"])) / 1e6
    print(f"\nFIGURE: stop of a SIGTERM-ignoring worker (TimeoutStopSec={props['TimeoutStopUSec']}): "
          f"deactivating for {stopping:.2f} s, then SIGKILL")
    assert (props["ActiveState"], props["Result"]) == ("failed", "timeout")
    assert (props["ExecMainCode"], props["ExecMainStatus"]) == ("2", "9")   # killed, by signal 9
    assert 3.0 <= stopping < 4.0
