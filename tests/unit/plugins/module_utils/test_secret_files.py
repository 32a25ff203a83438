"""secret_files: EnvironmentFiles and credentials: root-only, diffs that carry no value, every value
in no_log_values as soon as it is read (also the values of the file that was there)."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from ansible_collections.supervised.background.plugins.module_utils import env_rules, safe_file, secret_files
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

ME = os.geteuid()


class FakeModule:
    def __init__(self, check_mode=False, diff=True, creds=False):
        self.check_mode = check_mode
        self._diff = diff
        self.no_log_values = set()
        self.warnings = []
        self.calls = []
        self.creds = creds

    def warn(self, msg):
        self.warnings.append(msg)

    def get_bin_path(self, name, required=False):
        return "/usr/bin/systemd-creds" if self.creds and name == "systemd-creds" else None

    def run_command(self, args, data=None, **kw):
        """A stand-in for systemd-creds: a new ciphertext every time, decryptable."""
        self.calls.append(args[1])
        if args[1] == "encrypt":
            return 0, b"CRED" + os.urandom(8) + base64.b64encode(data), b""
        if args[1] == "decrypt":
            if not data.startswith(b"CRED"):
                return 1, b"", b"not a credential"
            return 0, base64.b64decode(data[12:]), b""
        raise AssertionError(args)


SECRET = "s3cr3t-'$HOME'-\"x\""


def _blob(*things):
    return json.dumps(list(things), default=str)


def test_env_file_written_root_only_and_read_back(tmp_path):
    module = FakeModule()
    path = str(tmp_path / "app.env")
    env = env_rules.environment("env", {"DB_PASSWORD": SECRET, "PORT": 5432})
    changed, diff, changes = secret_files.write_env_file(module, path, env, owner=ME, group=os.getegid())
    assert changed and changes == {"added": ["DB_PASSWORD", "PORT"], "removed": [], "changed": []}
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    text = open(path, encoding="utf-8").read()
    assert text.startswith(secret_files.ENV_HEADER) and env_rules.parse_file(text) == env
    assert diff["after"] == "DB_PASSWORD=<redacted, added>\nPORT=<redacted, added>\n" and diff["before"] == ""
    assert {SECRET, "5432"} <= module.no_log_values
    assert SECRET not in _blob(diff, changes) and "5432" not in _blob(diff, changes)
    assert secret_files.write_env_file(FakeModule(), path, env, owner=ME, group=os.getegid())[0] is False


def test_hand_edited_previous_file_shows_valid_keys_only_and_its_values_are_masked(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("# old password: hand-secret-1\nexport TOKEN=hand-secret-2\nA='hand-secret-3'\n"
                    "hand secret 4=x\nB=keep\n")
    os.chmod(path, 0o600)
    module = FakeModule()
    changed, diff, changes = secret_files.write_env_file(module, str(path), {"A": "new", "B": "keep"}, owner=ME,
                                                         group=os.getegid())
    assert changed and changes == {"added": [], "removed": [], "changed": ["A"]}
    assert diff["before"] == "A=<redacted>\nB=<redacted>\n<redacted> (2 more lines)\n"
    assert diff["after"] == "A=<redacted, changed>\nB=<redacted>\n"
    assert {"hand-secret-2", "hand-secret-3", "keep"} <= module.no_log_values
    assert "new" not in module.no_log_values  # too short to mask (see test_short_values_are_not_masked)
    for n in range(1, 5):
        assert f"hand-secret-{n}" not in _blob(diff, changes) and f"secret {n}" not in _blob(diff, changes)


def test_short_values_are_not_masked(tmp_path):
    """Ansible replaces a masked value everywhere: "7" would turn V007 into V00******** and so show
    itself. Values under four characters are left to Ansible's own no_log of the option."""
    module = FakeModule()
    secret_files.write_env_file(module, str(tmp_path / "a.env"), {"V007": "7", "B": "on", "C": "four"}, owner=ME,
                                group=os.getegid())
    assert module.no_log_values == {"four"}


def test_remove_env_file(tmp_path):
    path = str(tmp_path / "app.env")
    secret_files.write_env_file(FakeModule(), path, {"A": SECRET}, owner=ME, group=os.getegid())
    check = FakeModule(check_mode=True)
    changed, diff, changes = secret_files.write_env_file(check, path, None)
    assert changed and os.path.exists(path) and changes["removed"] == ["A"]
    assert diff["after_header"].endswith("(absent)") and SECRET not in _blob(diff)
    assert secret_files.write_env_file(FakeModule(), path, None)[0] and not os.path.exists(path)
    assert secret_files.write_env_file(FakeModule(), path, None)[0] is False


def test_missing_directory(tmp_path):
    path = str(tmp_path / "later" / "app.env")
    with pytest.raises(InputError, match="does not exist; create it first"):
        secret_files.write_env_file(FakeModule(), path, {"A": "1"})
    check = FakeModule(check_mode=True)
    changed, diff, _changes = secret_files.write_env_file(check, path, {"A": "1"})
    assert changed and diff["after"] == "A=<redacted, added>\n" and check.warnings
    assert secret_files.write_env_file(FakeModule(), path, None)[0] is False
    assert not (tmp_path / "later").exists()


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_untrusted_directory_refused_before_reading(tmp_path, mode):
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "app.env").write_text(f"A='{SECRET}'\n")
    os.chmod(loose, mode)
    module = FakeModule()
    for env in ({"A": "new-value"}, None):
        with pytest.raises(InputError) as err:
            secret_files.write_env_file(module, str(loose / "app.env"), env)
        assert "is not trusted as a secret's directory" in str(err.value)
    assert module.no_log_values == {"new-value"}  # the old file was not even read


def test_ensure_secret_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(secret_files, "COLLECTION_DIR", str(tmp_path / "etc" / "sb"))
    deep = tmp_path / "etc" / "sb" / "credentials" / "w"
    assert secret_files.ensure_secret_directory(FakeModule(check_mode=True), str(deep)) is True
    assert not (tmp_path / "etc").exists()
    assert secret_files.ensure_secret_directory(FakeModule(), str(deep)) is True
    for d in (tmp_path / "etc", tmp_path / "etc" / "sb", deep):
        assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    assert secret_files.ensure_secret_directory(FakeModule(), str(deep)) is False
    os.chmod(deep, 0o755)
    assert secret_files.ensure_secret_directory(FakeModule(), str(deep)) is True
    assert stat.S_IMODE(os.lstat(deep).st_mode) == 0o700


def test_ensure_secret_directory_leaves_a_shared_directory_as_it_is(tmp_path, monkeypatch):
    """A given file in /etc must not turn /etc into a 0700 directory."""
    monkeypatch.setattr(secret_files, "COLLECTION_DIR", str(tmp_path / "etc" / "sb"))
    shared = tmp_path / "etc"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    assert secret_files.ensure_secret_directory(FakeModule(), str(shared)) is False
    assert stat.S_IMODE(os.lstat(shared).st_mode) == 0o755


@pytest.mark.parametrize("uid,mode", [(65534, 0o700), (0, 0o777), (0, 0o1777)])
def test_ensure_secret_directory_never_takes_over_a_foreign_directory(tmp_path, uid, mode, snapshot_tree):
    foreign = tmp_path / "creds"
    foreign.mkdir()
    (foreign / "planted").write_text("x")
    os.chown(foreign, uid, uid)
    os.chmod(foreign, mode)
    before = snapshot_tree(tmp_path)
    with pytest.raises(InputError, match="is not trusted as a secret's directory"):
        secret_files.ensure_secret_directory(FakeModule(), str(foreign))
    assert snapshot_tree(tmp_path) == before


# -- credentials ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["db_password", "A", "x.y-z", "_1", "9" * 64])
def test_credential_id_ok(value):
    assert secret_files.credential_id("name", value) == value


@pytest.mark.parametrize("value", ["", "-x", ".x", "a/b", "a:b", "x" * 65, "db\n", "a b", "..", None])
def test_credential_id_bad(value):
    with pytest.raises(InputError, match="^name:"):
        secret_files.credential_id("name", value)


@pytest.mark.parametrize("value", ["multi\nline\x00binary\u2028", "", "\U0001f600"])
def test_credential_value_takes_any_text(value):
    assert secret_files.credential_value("value", value) == value.encode("utf-8")


@pytest.mark.parametrize("value,words", [(None, "must be a string"), (True, "must be a string"),
                                         ([SECRET], "must be a string"), (SECRET + "\udc80", "not valid UTF-8"),
                                         ("x" * (1 << 20) + "y", "larger than")])
def test_credential_value_bad_never_shown(value, words):
    with pytest.raises(InputError) as err:
        secret_files.credential_value("value", value)
    assert words in str(err.value) and "s3cr" not in str(err.value) and "xxxx" not in str(err.value)


def test_plain_credential(tmp_path):
    path = str(tmp_path / "db_password")
    module = FakeModule()
    changed, diff = secret_files.write_credential(module, path, "db_password", b"line1\nline2\x00")
    assert changed and open(path, "rb").read() == b"line1\nline2\x00"
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600 and os.lstat(path).st_uid == 0
    assert diff == {"before": "", "after": "credential db_password: <redacted, added>\n",
                    "before_header": f"{path} (absent)", "after_header": path}
    assert secret_files.write_credential(FakeModule(), path, "db_password", b"line1\nline2\x00") == (False, None)
    changed, diff = secret_files.write_credential(FakeModule(), path, "db_password", b"other")
    assert changed and diff["before"] == "credential db_password: <redacted>\n"
    assert diff["after"] == "credential db_password: <redacted, changed>\n"
    changed, diff = secret_files.write_credential(FakeModule(), path, "db_password", None)
    assert changed and not os.path.exists(path) and "other" not in _blob(diff)


def test_encrypted_credential_compares_by_decrypting(tmp_path):
    path = str(tmp_path / "tok.cred")
    module = FakeModule(creds=True)
    assert secret_files.write_credential(module, path, "tok", b"s3cret", encrypted=True)[0]
    first = open(path, "rb").read()
    assert first.startswith(b"CRED") and b"s3cret" not in first
    again = FakeModule(creds=True)
    assert secret_files.write_credential(again, path, "tok", b"s3cret", encrypted=True) == (False, None)
    assert again.calls == ["decrypt"] and open(path, "rb").read() == first
    check = FakeModule(creds=True, check_mode=True)
    assert secret_files.write_credential(check, path, "tok", b"new", encrypted=True)[0]
    assert "encrypt" not in check.calls and open(path, "rb").read() == first
    assert secret_files.write_credential(FakeModule(creds=True), path, "tok", b"new", encrypted=True)[0]
    assert open(path, "rb").read() != first


def test_encrypt_without_systemd_creds_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="encrypt: systemd-creds is not installed"):
        secret_files.write_credential(FakeModule(), str(tmp_path / "t"), "t", b"x", encrypted=True)
    assert list(tmp_path.iterdir()) == []


def test_credential_in_untrusted_directory(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o700)
    os.chown(loose, 65534, 65534)
    with pytest.raises(InputError, match="owned by uid 65534"):
        secret_files.write_credential(FakeModule(), str(loose / "t"), "t", b"x")
    assert list(loose.iterdir()) == []


def test_symlink_at_credential_path(tmp_path):
    real = tmp_path / "real"
    real.write_bytes(b"keep")
    (tmp_path / "t").symlink_to(real)
    with pytest.raises(safe_file.FileError, match="symlink"):
        secret_files.write_credential(FakeModule(), str(tmp_path / "t"), "t", b"x")
    assert real.read_bytes() == b"keep"
