"""Proof on real systemd: every value env_file accepts reaches a running service byte for byte.

Hypothesis generates values (any Unicode text, with the characters that quoting gets wrong and the
ones systemd or a line splitter would cut at mixed in); each example writes about a hundred of
them with supervised.background.env_file (through ansible-playbook and the scenario's inventory),
restarts a probe service that loads the file with EnvironmentFile=, and reads
/proc/MAINPID/environ back. Every value the documented rule accepts must come back exactly (as
UTF-8 bytes); every value it refuses is offered on its own and must be refused before anything is
written (the file's inode, mtime and checksum unchanged), by a message that names the key and
shows nothing of the value. Lone surrogates are not generated: Ansible cannot carry them to a
module (its YAML/JSON loaders refuse them); the unit tests cover them.

The run is reproducible (derandomize, no example database) and prints a FIGURE line per host.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

PROBE_UNIT = "sb-envprobe.service"
PROBE_DIR = "/etc/sb-envprobe"
PROBE_ENV = f"{PROBE_DIR}/probe.env"
EXAMPLES = 6
GOOD_PER_EXAMPLE = 98
BAD_PER_EXAMPLE = 2
PLAYBOOK = "env_roundtrip.yml"

PROBE_UNIT_TEXT = f"""[Unit]
Description=supervised.background env_file round trip probe

[Service]
Type=exec
EnvironmentFile={PROBE_ENV}
ExecStart=/bin/sleep infinity
"""

# What the documentation of env_file says is refused, written here independently of the module.
BAD_CHARS = ["\n", "\r", "\t", "\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029",
             "\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff", "\x1c"]


def refused_char(ch):
    code = ord(ch)
    return (code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F or ch in "\u2028\u2029" or 0xD800 <= code <= 0xDFFF
            or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE)


def refused(value):
    return any(refused_char(ch) for ch in value)


# Characters quoting and parsing get wrong, and Unicode that a byte-level bug would mangle.
TRICKY = list(" '\"\\$`#;=%{}!*?~&|<>()[]^@,.:/-_+") + ["''", '\\"', "{{", "}}", "{%", "$(", "${", "\\n"] + [
    "\u00e9", "\u00fc", "\u00df", "\u65e5", "\u672c", "\U0001f600", "\U0001f4a9", "\u00a0", "\ufeff", "\ufffd",
    "\u200b", "\ue000", "\U0010fffd", "\u0301", "\u202e"]
ANY = st.characters(blacklist_categories=("Cs", "Cc"))
GOOD = st.lists(st.one_of(ANY, st.sampled_from(TRICKY), st.sampled_from(TRICKY)), max_size=16).map("".join)
BAD = st.builds(lambda a, bad, b: a + bad + b, GOOD, st.sampled_from(BAD_CHARS), GOOD).filter(lambda v: len(v) >= 4)
# Each example: mostly values to accept, a few that must be refused (each refusal costs a module run),
# shuffled so the refused ones are anywhere in the key order.
EXAMPLE = st.builds(lambda good, bad, order: [v for _k, v in sorted(zip(order, good + bad))],
                    st.lists(GOOD, min_size=GOOD_PER_EXAMPLE, max_size=GOOD_PER_EXAMPLE),
                    st.lists(BAD, min_size=BAD_PER_EXAMPLE, max_size=BAD_PER_EXAMPLE),
                    st.permutations(range(GOOD_PER_EXAMPLE + BAD_PER_EXAMPLE)))

FIGURES = {}


@pytest.fixture(scope="module")
def probe(host):
    unit = PROBE_UNIT_TEXT.replace("'", "'\\''")
    host.check_output(f"install -d -m 0700 -o root -g root {PROBE_DIR} && "
                      f"printf '%s' '{unit}' > /etc/systemd/system/{PROBE_UNIT} && systemctl daemon-reload")
    yield host.backend.get_hostname()
    host.run(f"systemctl stop {PROBE_UNIT}; rm -f /etc/systemd/system/{PROBE_UNIT}; rm -rf {PROBE_DIR}; "
             "systemctl daemon-reload")


def run_example(hostname, accepted, refused_values):
    env = dict(os.environ)
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    with tempfile.TemporaryDirectory(prefix="sb-roundtrip-") as scratch:
        extra = os.path.join(scratch, "vars.json")
        b64 = {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in accepted.items()}
        bad = {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in refused_values.items()}
        with open(extra, "w", encoding="utf-8") as handle:
            json.dump({"probe_accepted_b64": b64, "probe_refused_b64": bad, "probe_env_file": PROBE_ENV,
                       "probe_unit": PROBE_UNIT}, handle)
        proc = subprocess.run(
            ["ansible-playbook", "-i", env["MOLECULE_INVENTORY_FILE"], "--limit", hostname,
             os.path.join(env["MOLECULE_SCENARIO_DIRECTORY"], "files", PLAYBOOK), "-e", f"@{extra}"],
            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    return [task["hosts"][hostname] for task in tasks]


def fragments(value, size=4):
    return [value[i:i + size] for i in range(len(value) - size + 1) if value[i:i + size].strip()]


def test_every_accepted_value_reaches_the_service_byte_for_byte(probe):
    hostname = probe
    counts = FIGURES.setdefault(hostname, {"tried": 0, "accepted": 0, "refused": 0, "seconds": 0.0})
    start = time.monotonic()

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(EXAMPLE)
    def example(values):
        env = {f"V{i:03d}": value for i, value in enumerate(values)}
        accepted = {k: v for k, v in env.items() if not refused(v)}
        bad = {k: v for k, v in env.items() if refused(v)}
        write, read, offered, after = run_example(hostname, accepted, bad)
        assert not write.get("failed"), write.get("msg")
        # Names only, never values; Ansible masks every no_log value wherever it occurs, so a value
        # such as "7" turns the name V007 into V00******** here: compare the count.
        assert len(write["variables"]) == len(accepted)
        environ, before_stat, before_sum = read["stdout"].split("\n")
        got = {}
        for entry in base64.b64decode(environ).split(b"\0"):
            key, sep, value = entry.partition(b"=")
            if sep:
                got[key.decode("ascii", "replace")] = value
        wrong = {k: (v, got.get(k)) for k, v in accepted.items() if got.get(k) != v.encode("utf-8")}
        assert not wrong, f"values that did not reach the service exactly: {wrong!r}"
        results = offered.get("results", [])
        assert [r["item"]["key"] for r in results] == sorted(bad)
        for result in results:
            key = result["item"]["key"]
            value = bad[key]
            msg = result.get("msg", "")
            assert result.get("changed") is False and f"key '{key}'" in msg, (key, msg)
            shown = msg.replace(f"'{key}'", "")
            assert not [f for f in fragments(value) if f in shown], (key, msg)
            module_result = {k: v for k, v in result.items() if k not in ("item", "invocation", "_ansible_item_label")}
            assert value not in json.dumps(module_result, ensure_ascii=False) or len(value.strip()) < 4
        # inode, mtime, mode, owner and content: nothing was written by a refused run.
        assert after["stdout"].split("\n") == [before_stat, before_sum]
        assert before_stat.split()[2:] == ["600", "0"]
        counts["tried"] += len(env)
        counts["accepted"] += len(accepted)
        counts["refused"] += len(bad)

    example()
    counts["seconds"] = time.monotonic() - start
    print(f"FIGURE: env_file round trip on {hostname}: {counts['tried']} values tried, {counts['accepted']} accepted "
          f"and read back byte for byte from /proc/MAINPID/environ, {counts['refused']} refused before writing "
          f"(key named, value not shown), in {counts['seconds']:.0f} s")
    assert counts["tried"] >= 500
