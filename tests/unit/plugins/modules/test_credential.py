"""credential: the module end to end on a temp tree: root-only from the first byte, the default
directory created 0700, diffs that say added/changed/removed and nothing else, encryption compared
by decrypting (systemd-creds faked: encrypting for real would create the host key), and the
bad-input catalogue (nothing written). LoadCredential= on real systemd: Molecule."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from ansible.module_utils import basic
from ansible_collections.supervised.background.plugins.module_utils import secret_files
from ansible_collections.supervised.background.plugins.modules import credential

SECRET = "m9Vq\nxK'7w' $HOME \"q\" =#; \u00e9\U0001f600 tail-Zr4p"


@pytest.fixture
def creds_dir(tmp_path, monkeypatch):
    own = tmp_path / "etc" / "supervised-background"
    monkeypatch.setattr(secret_files, "COLLECTION_DIR", str(own))
    monkeypatch.setattr(secret_files, "CREDENTIAL_DIR", str(own / "credentials"))
    (tmp_path / "etc").mkdir()
    return own / "credentials"


@pytest.fixture
def fake_creds(monkeypatch):
    """systemd-creds as a stand-in: a new ciphertext every time, decryptable, records calls."""
    calls = []
    real_bin = basic.AnsibleModule.get_bin_path

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/bin/systemd-creds" if name == "systemd-creds" else real_bin(self, name, required, opt_dirs)

    def run_command(self, args, data=None, **kw):
        calls.append(args[1])
        if args[1] == "encrypt":
            return 0, b"CRED" + os.urandom(8) + base64.b64encode(data), b""
        if args[1] == "decrypt":
            return (0, base64.b64decode(data[12:]), b"") if data.startswith(b"CRED") else (1, b"", b"bad")
        raise AssertionError(args)

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return calls


def no_secret(result, *secrets):
    blob = json.dumps(result)
    for secret in secrets or (SECRET,):
        for i in range(len(secret) - 3):
            fragment = secret[i:i + 4]
            if fragment.strip():
                assert fragment not in blob and json.dumps(fragment)[1:-1] not in blob, fragment


def test_default_path_root_only_and_idempotent(run_module, creds_dir):
    res = run_module(credential.main, {"service": "qw", "name": "db_password", "value": SECRET}, diff=True)
    path = creds_dir / "qw" / "db_password"
    assert res["changed"] is True and res["path"] == str(path) and res["encrypted"] is False
    assert path.read_bytes() == SECRET.encode("utf-8")
    st = os.lstat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600)
    for d in (creds_dir.parent, creds_dir, creds_dir / "qw"):
        assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    assert res["diff"]["after"] == "credential db_password: <redacted, added>\n"
    no_secret(res)
    again = run_module(credential.main, {"service": "qw", "name": "db_password", "value": SECRET}, diff=True)
    assert again["changed"] is False and "diff" not in again


def test_change_and_remove(run_module, creds_dir):
    base = {"service": "qw", "name": "tok"}
    run_module(credential.main, dict(base, value="old-value-1"))
    res = run_module(credential.main, dict(base, value="new-value-2"), diff=True)
    assert res["changed"] and res["diff"]["before"] == "credential tok: <redacted>\n"
    assert res["diff"]["after"] == "credential tok: <redacted, changed>\n"
    gone = run_module(credential.main, dict(base, state="absent"), diff=True)
    assert gone["changed"] and not (creds_dir / "qw" / "tok").exists() and (creds_dir / "qw").is_dir()
    assert gone["diff"]["after_header"].endswith("(absent)")
    assert run_module(credential.main, dict(base, state="absent"))["changed"] is False
    no_secret([res, gone], "old-value-1", "new-value-2")


def test_check_mode_writes_nothing(run_module, creds_dir, tmp_path, snapshot_tree):
    before = snapshot_tree(tmp_path)
    res = run_module(credential.main, {"service": "qw", "name": "tok", "value": SECRET}, check_mode=True, diff=True)
    assert res["changed"] is True and snapshot_tree(tmp_path) == before
    assert res["diff"]["after"] == "credential tok: <redacted, added>\n"
    no_secret(res)


def test_explicit_path_in_a_trusted_directory(run_module, tmp_path):
    target = tmp_path / "secrets" / "tok"
    target.parent.mkdir(mode=0o755)
    res = run_module(credential.main, {"path": str(target), "name": "tok", "value": SECRET})
    assert res["changed"] is True and target.read_text() == SECRET
    assert stat.S_IMODE(os.lstat(target.parent).st_mode) == 0o755  # a given directory is never changed


def test_encrypted_compared_by_decrypting(run_module, creds_dir, fake_creds):
    base = {"service": "qw", "name": "tok", "value": SECRET, "encrypt": True}
    res = run_module(credential.main, base)
    path = creds_dir / "qw" / "tok"
    first = path.read_bytes()
    assert res["changed"] and res["encrypted"] is True and SECRET.encode() not in first
    fake_creds.clear()
    assert run_module(credential.main, base)["changed"] is False and fake_creds == ["decrypt"]
    assert path.read_bytes() == first
    check = run_module(credential.main, dict(base, value="other"), check_mode=True)
    assert check["changed"] is True and "encrypt" not in fake_creds and path.read_bytes() == first


def test_encrypt_without_systemd_creds(run_module, creds_dir, monkeypatch, tmp_path, snapshot_tree):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    before = snapshot_tree(tmp_path)
    res = run_module(credential.main, {"service": "qw", "name": "tok", "value": SECRET, "encrypt": True})
    assert res["failed"] and res["msg"].startswith("encrypt: systemd-creds is not installed")
    no_secret(res)


def test_failed_encryption_message_has_no_value(run_module, creds_dir, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: "/usr/bin/systemd-creds")
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, args, **kw: (1, b"", b"Failed to determine local credential host secret"))
    res = run_module(credential.main, {"service": "qw", "name": "tok", "value": SECRET, "encrypt": True})
    assert res["failed"] and "could not encrypt credential 'tok'" in res["msg"]
    assert not (creds_dir / "qw" / "tok").exists()
    no_secret(res)


BAD = [
    ("no service or path", {"service": None}, "service"),
    ("service and path", {"path": "/etc/x/tok"}, "mutually exclusive"),
    ("name with slash", {"name": "a/b"}, "name"),
    ("name with trailing newline", {"name": "tok\n"}, "name"),
    ("name starting with dot", {"name": ".tok"}, "name"),
    ("name too long", {"name": "t" * 65}, "name"),
    ("service with @", {"service": "qw@1"}, "service"),
    ("service with trailing newline", {"service": "qw\n"}, "service"),
    ("service with ..", {"service": ".."}, "service"),
    ("value missing", {"value": None}, "value"),
    ("value with a lone surrogate", {"value": SECRET + "\udc80"}, "value"),
    ("value over 1 MiB", {"value": SECRET + "x" * (1 << 20)}, "value"),
    ("relative path", {"service": None, "path": "tok"}, "path"),
    ("path with ..", {"service": None, "path": "/etc/../tmp/tok"}, "path"),
    ("path in a world-writable dir", {"service": None, "path": "{loose}/tok"}, "path"),
    ("path in a sticky dir", {"service": None, "path": "{sticky}/tok"}, "path"),
    ("path in a dir of another user", {"service": None, "path": "{foreign}/tok"}, "path"),
    ("path in a missing dir", {"service": None, "path": "{root}/missing/tok"}, "path"),
    ("symlink at the path", {"service": None, "path": "{root}/link"}, "symlink"),
    ("lock_timeout", {"lock_timeout": "never"}, "lock_timeout"),
]


@pytest.mark.parametrize("label,override,field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_refused_and_nothing_written(run_module, creds_dir, tmp_path, snapshot_tree, label, override, field):
    root = tmp_path / "t"
    root.mkdir()
    for name, mode, uid in (("loose", 0o777, 0), ("sticky", 0o1777, 0), ("foreign", 0o700, 65534)):
        (root / name).mkdir()
        os.chown(root / name, uid, uid)
        os.chmod(root / name, mode)
    (root / "real").write_text("keep")
    (root / "link").symlink_to(root / "real")
    params = {"service": "qw", "name": "tok", "value": SECRET}
    for key, value in override.items():
        params[key] = value.format(root=root, **{n: root / n for n in ("loose", "sticky", "foreign")}) \
            if isinstance(value, str) else value
    params = {k: v for k, v in params.items() if v is not None}
    before = snapshot_tree(tmp_path)
    res = run_module(credential.main, params, diff=True)
    assert res.get("failed") is True, (label, res)
    assert field in res["msg"], (label, res["msg"])
    assert snapshot_tree(tmp_path) == before, label
    no_secret(res)
