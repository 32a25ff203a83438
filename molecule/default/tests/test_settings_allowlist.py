"""worker_unit `settings` on a real host: every setting that would hand a sandboxed worker something
root opened or mounted for it is refused before anything is written, naming the setting and why;
settings that grant privileges but are allowed are reported in hardening_overrides with a warning.

The attack this closes: a worker running as nobody with hardening=strict wrote a working sudo rule
through StandardOutput=append:/etc/sudoers.d/x (PID 1 opens that file as root for the service).
"""
import json

import pytest

UNIT_DIR = "/etc/systemd/system"
PROBE = "sb-allowlist-probe"

# (setting, value, what the refusal must name). One member of each kind, on a real host; the unit tests
# (test_worker_unit.py, test_unit_file.py) hold the whole catalogue.
REFUSED = [
    ("StandardOutput", "append:/etc/sudoers.d/x", "settings.StandardOutput"),
    ("StandardInput", "file:/etc/shadow", "settings.StandardInput"),
    ("ReadWriteDirectories", "/etc", "settings.ReadWriteDirectories"),
    ("BindPaths", "/etc/sudoers.d:/tmp/s", "settings.BindPaths"),
    ("LoadCredential", "shadow:/etc/shadow", "settings.LoadCredential"),
    ("ExecStartPre", "+/bin/sh -c id", "settings.ExecStartPre"),
    ("User", "root", "settings.User"),
    ("Environment", "LD_PRELOAD=/tmp/x.so", "settings.Environment"),
    # Names are matched exactly as systemd spells them: another case or a trailing newline is refused.
    ("standardoutput", "append:/etc/sudoers.d/x", "'standardoutput' is not a directive name"),
    ("StandardOutput\n", "journal", "'StandardOutput\\u000a' is not a directive name"),
]


def worker_unit(host, **args):
    base = {"name": PROBE, "exec_start": ["/bin/sleep", "infinity"], "user": "nobody", "group": "nogroup",
            "hardening": "strict"}
    base.update(args)
    try:
        result = host.ansible("supervised.background.worker_unit", json.dumps(base), check=False, become=True)
    except host.ansible.AnsibleException as exc:
        result = exc.result
    result.setdefault("failed", "msg" in result and not result.get("changed"))
    return result


def unit_dir_listing(host):
    return host.check_output(f"ls -la --time-style=+%s.%N {UNIT_DIR} {UNIT_DIR}/*.wants")


@pytest.mark.parametrize("name,value,field", REFUSED, ids=[f"{n.strip()}={v}" for n, v, _f in REFUSED])
def test_widening_setting_is_refused_and_nothing_is_written(host, name, value, field):
    before = unit_dir_listing(host)
    result = worker_unit(host, settings={name: value})
    assert result["failed"], result
    assert field in result["msg"], result["msg"]
    assert not host.file(f"{UNIT_DIR}/{PROBE}@.service").exists
    assert unit_dir_listing(host) == before, "the refusal left something behind"


def test_granting_setting_is_reported_with_a_warning(host):
    try:
        result = worker_unit(host, settings={"AmbientCapabilities": "CAP_NET_BIND_SERVICE"})
        assert not result["failed"], result
        assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in result["hardening_overrides"], result
        # (The warning itself is asserted in the unit tests: testinfra's ansible runner drops warnings.)
        unit = host.file(f"{UNIT_DIR}/{PROBE}@.service")
        assert unit.user == "root" and unit.mode == 0o644
        assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit.content_string
    finally:
        removed = worker_unit(host, state="absent")
        assert not removed["failed"], removed
    assert not host.file(f"{UNIT_DIR}/{PROBE}@.service").exists
