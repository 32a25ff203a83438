"""Proof: a --diff -vvv run shows no fragment of any secret, and nothing on the host does either.

files/secret_leak.yml runs twice with --diff -vvv: it creates an EnvironmentFile, an openfortivpn
configuration (password, otp, pem_passphrase) and a credential, and offers secrets holding U+2028
and NEL, which must be refused. Between the runs every previous file is edited by hand, the way an
operator might: secrets in comments, under unknown or invalid keys, in a key position, on a line
without '=', behind a '\\r' or a U+2028 inside a line. The second run changes every secret.

Then every substring of length 4 (so every longer one too) of every secret is looked for, raw and
JSON-escaped, in the whole output of both runs, in the journal (journalctl -o export: every field
of every entry) and in every world-readable file under /etc, /run, /var and /tmp.

The secrets are built so that each 4-character window holds at least two runic letters
(U+16A0..U+16EA), which no file of a Debian system holds: a hit is a leak, not a coincidence.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import subprocess
import tempfile

import pytest

RUNIC = [chr(c) for c in range(0x16A0, 0x16EB)]
TRICKY = list("'\"$=#;`\\ {}%!&*<>|") + list("abcXYZ019") + ["\u00e9", "\u00fc", "\u00df", "\U0001f600", "\u20ac"]
FORCED = list("'\"$=#\\`;% ")
PLAYBOOK = "secret_leak.yml"


def secret(seed, max_bytes, newline=False):
    """Two runic letters, then a tricky character, again and again, up to ``max_bytes`` of UTF-8;
    the first tricky characters are quotes, '$', '=', '#', backslash, backtick... No edge
    whitespace (openfortivpn trims it)."""
    rnd = random.Random(seed)
    out = []
    forced = list(FORCED)
    while True:
        i = len(out)
        ch = rnd.choice(RUNIC) if i % 3 != 2 else (forced.pop(0) if forced else rnd.choice(TRICKY))
        if newline and i == 20:
            ch = "\n"
        if len("".join(out + [ch]).encode("utf-8")) > max_bytes:
            break
        out.append(ch)
    while out[-1].strip() == "" or len(out) % 3 == 0:
        out.pop()
    return "".join(out)


# name -> secret. The first run uses the *_1 set, the second the *_2 set; HAND are what the edit by
# hand puts into the previous files.
def secrets(run):
    base = 1000 * run
    return {
        "env_db": secret(base + 1, 200),
        "env_token": secret(base + 2, 90),
        "env_long": secret(base + 3, 6000),
        "vpn_password": secret(base + 4, 256),
        "vpn_otp": secret(base + 5, 63),
        "vpn_pem": secret(base + 6, 31),
        "cred": secret(base + 7, 400, newline=True),
        "bad_env": secret(base + 8, 60) + "\u2028" + secret(base + 9, 60),
        "bad_vpn": secret(base + 10, 60) + "\u2028host = " + secret(base + 11, 60),
        "bad_otp": secret(base + 12, 24) + "\x85" + secret(base + 13, 24),
    }


HAND = {f"hand_{i}": secret(5000 + i, 60) for i in range(1, 13)}
# A secret someone typed where an openfortivpn key goes: only lower-case ASCII and '-', so it is
# checked in the run's output and the journal (random ASCII can occur in the files of a system by
# chance). Every 4-character window holds a '-': sudo journals each become command with Ansible's
# BECOME-SUCCESS-<32 random lower-case letters> token, and a plain-letter window matched one of
# those by chance on Debian 11.
KEY_SECRET = "zq-xh-vk-wj-pf"


def hand_edits(h):
    env = (f"# DB_PASSWORD was {h['hand_1']}\n; {h['hand_2']}\nexport TOKEN={h['hand_3']}\n"
           f"{h['hand_4']}\nOLD_KEY='{h['hand_5']}'\nDB_PASSWORD=\"{h['hand_6']}\"\n")
    vpn = (f"# Managed by supervised.background; do not edit. Readable by root only.\nhost = vpn.example.com\n"
           f"# old password: {h['hand_7']}\nPassword = {h['hand_8']}\n{h['hand_9']}\npin = {h['hand_10']}\n"
           f"{KEY_SECRET} = 1\nhost = vpn.example.com\r{h['hand_11']}\n"
           f"password = x\u2028host = {h['hand_12']}\n")
    cred = f"{h['hand_1']}\n{h['hand_2']}\n"
    return {"/etc/sb-leak/app.env": env, "/etc/openfortivpn/sb-leak.conf": vpn,
            "/etc/supervised-background/credentials/sb-leak/api_token": cred}


def run_playbook(hostname, values):
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="sb-leak-") as scratch:
        extra = os.path.join(scratch, "vars.json")
        with open(extra, "w", encoding="utf-8") as handle:
            json.dump({"leak_b64": {k: base64.b64encode(v.encode("utf-8")).decode("ascii")
                                    for k, v in values.items()}}, handle)
        proc = subprocess.run(
            ["ansible-playbook", "--diff", "-vvv", "-i", env["MOLECULE_INVENTORY_FILE"], "--limit", hostname,
             os.path.join(env["MOLECULE_SCENARIO_DIRECTORY"], "files", PLAYBOOK), "-e", f"@{extra}"],
            env=env, capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def docker_exec(container, script, stdin=b""):
    proc = subprocess.run(["docker", "exec", "-i", container, "python3", "-c", script], input=stdin,
                          capture_output=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-3000:]
    return proc.stdout.decode("utf-8")


WRITE = r"""
import base64, json, os, sys
for path, content in json.loads(sys.stdin.read()).items():
    data = base64.b64decode(content)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    os.write(fd, data)
    os.close(fd)
"""

# Runs in the container: the needles come on stdin; prints one line per hit (label, where).
SCAN = r"""
import json, os, stat, subprocess, sys
needles = [(label, bytes.fromhex(n)) for label, n in json.loads(sys.stdin.read())]
prefixes = (b"\xe1\x9a", b"\xe1\x9b", b"\\u16", b"zq")
hits = set()

def scan(where, data):
    if not any(p in data for p in prefixes):
        return
    for label, needle in needles:
        if needle in data:
            hits.add((label, where))

subprocess.run(["journalctl", "--sync"], check=False)  # what journald still holds in memory counts too
scan("journal", subprocess.run(["journalctl", "--no-pager", "-o", "export"], capture_output=True).stdout)
scanned = 0
for top in ("/etc", "/run", "/var", "/tmp"):
    for root, dirs, files in os.walk(top):
        if root.startswith(("/proc", "/sys")):
            continue
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o004 or st.st_size > 64 << 20:
                continue
            try:
                with open(path, "rb") as handle:
                    scan(path, handle.read())
                scanned += 1
            except OSError:
                pass
print(json.dumps({"hits": sorted(hits), "scanned": scanned}))
"""


def needles(named, size=4):
    """Every window of ``size`` characters of every secret, raw and JSON/repr-escaped. Windows of
    plain ASCII are skipped: they only come from the text an injection attempt carries (the
    'host = ' of a U+2028 secret), which is everywhere; every other window holds a runic letter."""
    out = []
    for label, value in named.items():
        for i in range(len(value) - size + 1):
            window = value[i:i + size]
            if label != "key_secret" and not any(ch in RUNIC for ch in window):
                continue
            for form in (window, json.dumps(window)[1:-1], json.dumps(window, ensure_ascii=False)[1:-1],
                         repr(window)[1:-1]):
                out.append((f"{label}[{i}]", form))
    return out


@pytest.fixture(scope="module")
def leak_runs(host):
    hostname = host.backend.get_hostname()
    first = secrets(1)
    second = secrets(2)
    out1 = run_playbook(hostname, first)
    files = hand_edits(HAND)
    docker_exec(hostname, WRITE, json.dumps({p: base64.b64encode(c.encode("utf-8")).decode("ascii")
                                             for p, c in files.items()}).encode("ascii"))
    out2 = run_playbook(hostname, second)
    named = {f"{k}_run1": v for k, v in first.items()}
    named.update({f"{k}_run2": v for k, v in second.items()})
    named.update(HAND)
    return {"host": host, "hostname": hostname, "output": out1 + out2, "named": named, "first": first,
            "second": second}


def test_the_runs_did_what_they_say(host, leak_runs):
    host = leak_runs["host"]
    for path in ("/etc/sb-leak/app.env", "/etc/openfortivpn/sb-leak.conf",
                 "/etc/supervised-background/credentials/sb-leak/api_token"):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), path
    assert host.file("/etc/openfortivpn").mode == 0o700
    second = leak_runs["second"]
    cred = host.check_output("cat /etc/supervised-background/credentials/sb-leak/api_token | base64 -w0")
    assert base64.b64decode(cred).decode("utf-8") == second["cred"]
    out = leak_runs["output"]
    assert "cannot be written safely" in out  # the U+2028 / NEL secrets were refused...
    assert out.count("changed: [") >= 6      # ...and the others written, then changed
    # The second run's diffs did show the hand-edited previous files, masked.
    assert "password = ********" in out and "otp = ********" in out
    version = host.check_output("dpkg-query -W -f '${Version}' openfortivpn")
    if tuple(int(x) for x in re.findall(r"\d+", version)[:2]) >= (1, 17):  # Debian 11 has 1.15
        assert "pem-passphrase = ********" in out
    assert "# ********" in out and "DB_PASSWORD=<redacted, changed>" in out and "more lines)" in out
    assert "credential api_token: <redacted, changed>" in out


def test_no_secret_fragment_in_the_output(leak_runs):
    out = leak_runs["output"]
    named = dict(leak_runs["named"], key_secret=KEY_SECRET)
    hits = sorted({label for label, needle in needles(named) if needle in out})
    assert not hits, f"secret fragments in the --diff -vvv output: {hits[:20]}"
    print(f"FIGURE: no-secret-leak output of two --diff -vvv runs: {len(out)} characters, "
          f"{len(named)} secrets, {len(needles(named))} fragments looked for, 0 found")


def test_no_secret_fragment_in_the_journal_or_world_readable_files(leak_runs):
    named = dict(leak_runs["named"])
    encoded = [(label, needle.encode("utf-8").hex()) for label, needle in needles(named)]
    encoded += [(f"key_secret[{i}]", KEY_SECRET[i:i + 4].encode().hex()) for i in range(len(KEY_SECRET) - 3)]
    result = json.loads(docker_exec(leak_runs["hostname"], SCAN, json.dumps(encoded).encode("ascii")))
    hits = result["hits"]
    # The KEY_SECRET is plain ASCII: in files it may occur by chance, so only the journal counts.
    hits = [h for h in hits if not (h[0].startswith("key_secret") and h[1] != "journal")]
    assert not hits, f"secret fragments on the host: {hits[:20]}"
    print(f"FIGURE: no-secret-leak host scan: journal (every field) and {result['scanned']} world-readable files "
          f"under /etc, /run, /var, /tmp: 0 fragments of {len(named)} secrets")
