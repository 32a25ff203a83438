"""openfortivpn_config: the module end to end on a temp tree: rendering, modes, secrecy of the
password, otp and pem_passphrase, and the refusal catalogue (every refusal leaves the tree as it
was). The format and redaction rules are tested in module_utils/test_openfortivpn.py."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.supervised.background.plugins.module_utils import openfortivpn
from ansible_collections.supervised.background.plugins.module_utils.openfortivpn import redact
from ansible_collections.supervised.background.plugins.modules import openfortivpn_config as vpn_config

SECRET = "s3cr3t-Pa55=#word"
DIGEST = "e46d4aff08ba6914e64daa85bc6112a422fa7ce16631bff0b592a28556f993db"


@pytest.fixture(autouse=True)
def installed(monkeypatch):
    """openfortivpn 1.19 (Debian 12) as the installed version, unless a test says otherwise."""
    versions = {"version": (1, 19)}
    monkeypatch.setattr(openfortivpn, "installed_version", lambda module: versions["version"])
    return versions


@pytest.fixture
def target(tmp_path):
    os.chmod(tmp_path, 0o755)
    return tmp_path / "openfortivpn" / "corp.conf"


def args(target, **kw):
    base = {"path": str(target), "host": "vpn.example.com", "username": "ci-bot", "password": SECRET}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def test_renders_every_option_root_only(run_module, target):
    result = run_module(vpn_config.main, args(
        target, port=8443, realm="eng", trusted_cert=[DIGEST, DIGEST.upper()], ca_file="/etc/ssl/ca.pem",
        user_cert="pkcs11:token=ci", user_key="/etc/ssl/private-sb-key.pem", set_dns=False,
        set_routes=True, pppd_use_peerdns=False, half_internet_routes=True, persistent=10,
        extra={"min-tls": "1.2", "use-syslog": True, "otp-delay": 3}), diff=True)
    assert result["changed"] is True, result
    lines = target.read_text().splitlines()
    assert lines[0].startswith("#")
    # What secures the connection first; a digest given twice (any case) is written once.
    assert lines[1:] == [
        "host = vpn.example.com", "port = 8443", f"trusted-cert = {DIGEST}", "ca-file = /etc/ssl/ca.pem",
        "user-cert = pkcs11:token=ci", "user-key = /etc/ssl/private-sb-key.pem", "username = ci-bot",
        f"password = {SECRET}", "realm = eng", "set-dns = 0", "set-routes = 1", "pppd-use-peerdns = 0",
        "half-internet-routes = 1", "persistent = 10", "min-tls = 1.2", "otp-delay = 3", "use-syslog = 1",
    ]
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600)
    dst = target.parent.stat()
    assert (dst.st_uid, stat.S_IMODE(dst.st_mode)) == (0, 0o700)
    assert SECRET not in json.dumps(result)
    assert "password = ********" in result["diff"]["after"]
    again = run_module(vpn_config.main, args(
        target, port=8443, realm="eng", trusted_cert=[DIGEST, DIGEST.upper()], ca_file="/etc/ssl/ca.pem",
        user_cert="pkcs11:token=ci", user_key="/etc/ssl/private-sb-key.pem", set_dns=False,
        set_routes=True, pppd_use_peerdns=False, half_internet_routes=True, persistent=10,
        extra={"min-tls": "1.2", "use-syslog": True, "otp-delay": 3}))
    assert again["changed"] is False


def test_password_change_diff_is_redacted_both_sides(run_module, target):
    run_module(vpn_config.main, args(target))
    result = run_module(vpn_config.main, args(target, password="other-secret", otp="123456",
                                              pem_passphrase="pem-secret"), diff=True)
    dumped = json.dumps(result)
    assert result["changed"] is True
    assert SECRET not in dumped and "other-secret" not in dumped and "123456" not in dumped
    assert "pem-secret" not in dumped
    assert result["diff"]["before"].count("********") == 1
    assert result["diff"]["after"].count("********") == 3
    assert "otp = ********" in result["diff"]["after"]


def test_hand_edited_secrets_stay_hidden_in_the_diff(run_module, target):
    """A file edited by hand may hold secrets under keys, comments or lines the module does not know."""
    run_module(vpn_config.main, args(target))
    target.write_text("host = old.example.com\nPassword = hand-secret-1\n# pw was hand-secret-2\n"
                      "hand-secret-3\npin = hand-secret-4\nhand-secret-5 = x\n  # hand-secret-6\n"
                      "password = hand-secret-7\u2028host = hand-secret-8\nhost = h\rhand-secret-9\n")
    result = run_module(vpn_config.main, args(target), diff=True)
    dumped = json.dumps(result)
    assert result["changed"] is True
    for n in range(1, 10):
        assert f"secret-{n}" not in dumped
    assert "host = old.example.com" in result["diff"]["before"]


def test_default_path_from_name(run_module):
    # Only the path computation: point at a name and ask check mode on a host without the dir.
    result = run_module(vpn_config.main, {"name": "corp", "host": "vpn.example.com", "state": "absent"},
                        check_mode=True)
    assert result["path"] == "/etc/openfortivpn/corp.conf"


def test_loose_root_directory_is_tightened(run_module, target):
    target.parent.mkdir(mode=0o755)
    os.chmod(target.parent, 0o755)
    result = run_module(vpn_config.main, args(target))
    assert result["changed"] is True
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


def test_loose_file_is_rewritten_0600(run_module, target):
    run_module(vpn_config.main, args(target))
    os.chmod(target, 0o644)
    result = run_module(vpn_config.main, args(target))
    assert result["changed"] is True and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_check_mode_writes_nothing(run_module, target, snapshot_tree):
    root = str(target.parent.parent)
    before = snapshot_tree(root)
    result = run_module(vpn_config.main, args(target), check_mode=True, diff=True)
    assert result["changed"] is True and "password = ********" in result["diff"]["after"]
    assert snapshot_tree(root) == before


def test_absent_removes_file_keeps_directory(run_module, target):
    run_module(vpn_config.main, args(target))
    result = run_module(vpn_config.main, {"path": str(target), "state": "absent"}, diff=True)
    assert result["changed"] is True and not target.exists() and target.parent.is_dir()
    assert SECRET not in json.dumps(result)
    assert run_module(vpn_config.main, {"path": str(target), "state": "absent"})["changed"] is False


def test_redact():
    text = "host = a\npassword = x\n# password = y\npem-passphrase=z\nrealm = r\n"
    assert redact(text) == "host = a\npassword = ********\n# ********\npem-passphrase = ********\nrealm = r\n"


def test_shared_directory_is_never_tightened(run_module, tmp_path):
    shared = tmp_path / "etc"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    (shared / "other").write_text("keep\n")
    result = run_module(vpn_config.main, args(shared / "corp.conf"))
    assert result["changed"] is True, result
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "corp.conf").stat().st_mode) == 0o600


def test_shared_directory_writable_by_others_is_refused(run_module, tmp_path, snapshot_tree):
    shared = tmp_path / "etc"
    shared.mkdir()
    os.chmod(shared, 0o775)
    before = snapshot_tree(str(tmp_path))
    result = run_module(vpn_config.main, args(shared / "corp.conf"))
    assert result["failed"] and result["msg"].startswith("path:"), result
    assert snapshot_tree(str(tmp_path)) == before


def test_sticky_world_writable_directory_is_refused(run_module, tmp_path, snapshot_tree):
    shared = tmp_path / "tmpish"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    before = snapshot_tree(str(tmp_path))
    result = run_module(vpn_config.main, args(shared / "corp.conf"))
    assert result["failed"] and result["msg"].startswith("path:") and "writable by no one else" in result["msg"]
    assert SECRET not in json.dumps(result)
    assert snapshot_tree(str(tmp_path)) == before


def test_missing_ca_file_is_a_warning(run_module, target):
    from ansible.module_utils.common import warnings

    result = run_module(vpn_config.main, args(target, ca_file="/etc/ssl/sb-no-such-ca.pem"))
    assert result["changed"] is True
    assert any("ca_file" in str(w) for w in warnings.get_warning_messages())


BAD = [
    ("no-name-no-path", "NOPATH", "name", "one of"),
    ("bad-name", {"path": None, "name": "../etc/x"}, "name", "must not contain"),
    ("relative-path", {"path": "etc/corp.conf"}, "path", "absolute"),
    ("dotdot-path", {"path": "/etc/../tmp/corp.conf"}, "path", "normalised"),
    ("no-host", {"host": None}, "host", "missing"),
    ("host-newline", {"host": "vpn\npppd-plugin = /tmp/x.so"}, "host", "single line"),
    ("host-bad-chars", {"host": "vpn example"}, "host", "not a host"),
    ("port-zero", {"port": 0}, "port", "from 1 to 65535"),
    ("port-big", {"port": 70000}, "port", "from 1 to 65535"),
    ("username-newline", {"username": "a\nb"}, "username", "single line"),
    ("username-space-edge", {"username": " ci"}, "username", "whitespace"),
    ("username-long", {"username": "u" * 65}, "username", "longer than"),
    ("password-newline", {"password": "pw\npppd-plugin = /tmp/x.so"}, "password", "cannot be written safely"),
    ("password-edge-space", {"password": "pw "}, "password", "whitespace"),
    ("password-empty", {"password": ""}, "password", "empty"),
    ("realm-long", {"realm": "r" * 64}, "realm", "longer than"),
    ("digest-short", {"trusted_cert": ["abc"]}, "trusted_cert[0]", "SHA-256"),
    ("digest-second", {"trusted_cert": [DIGEST, "z" * 64]}, "trusted_cert[1]", "SHA-256"),
    ("ca-relative", {"ca_file": "ca.pem"}, "ca_file", "may only use"),
    ("cert-relative", {"user_cert": "cert.pem"}, "user_cert", "may only use"),
    ("key-relative", {"user_key": "key.pem"}, "user_key", "may only use"),
    ("persistent-negative", {"persistent": -1}, "persistent", "from 0 to"),
    ("extra-unknown", {"extra": {"foo-bar": "1"}}, "extra", "unknown key"),
    ("extra-uppercase", {"extra": {"Host": "x"}}, "extra", "not an openfortivpn key"),
    ("extra-plugin", {"extra": {"pppd-plugin": "/tmp/evil.so"}}, "extra.pppd-plugin", "code execution as root"),
    ("extra-log", {"extra": {"pppd-log": "/etc/shadow"}}, "extra.pppd-log", "overwriting any file"),
    ("extra-call", {"extra": {"pppd-call": "evil"}}, "extra.pppd-call", "scripts as root"),
    ("extra-ipparam", {"extra": {"pppd-ipparam": "x"}}, "extra.pppd-ipparam", "as root"),
    ("extra-pinentry", {"extra": {"pinentry": "/tmp/evil"}}, "extra.pinentry", "runs as root"),
    ("extra-structured", {"extra": {"password": "x"}}, "extra.password", "option 'password'"),
    ("extra-bool", {"extra": {"insecure-ssl": "maybe"}}, "extra.insecure-ssl", "boolean"),
    ("extra-min-tls", {"extra": {"min-tls": "1.5"}}, "extra.min-tls", "one of"),
    ("extra-ifname", {"extra": {"pppd-ifname": "ppp0; rm"}}, "extra.pppd-ifname", "interface"),
    ("extra-newline", {"extra": {"user-agent": "a\npppd-plugin = /x"}}, "extra.user-agent", "single line"),
    ("extra-otp", {"extra": {"otp": "123456"}}, "extra.otp", "option 'otp'"),
    ("extra-pem", {"extra": {"pem-passphrase": "x"}}, "extra.pem-passphrase", "option 'pem_passphrase'"),
    ("otp-newline", {"otp": "1\npppd-plugin = /tmp/x.so"}, "otp", "cannot be written safely"),
    ("pem-newline", {"pem_passphrase": "p\rq"}, "pem_passphrase", "cannot be written safely"),
    ("extra-plugin-upper", {"extra": {"PPPD-PLUGIN": "/tmp/evil.so"}}, "extra", "not an openfortivpn key"),
    ("extra-plugin-underscore", {"extra": {"pppd_plugin": "/tmp/evil.so"}}, "extra", "not an openfortivpn key"),
    ("extra-plugin-lead-space", {"extra": {" pppd-plugin": "/tmp/evil.so"}}, "extra", "not an openfortivpn key"),
    ("extra-plugin-trail-space", {"extra": {"pppd-plugin ": "/tmp/evil.so"}}, "extra", "not an openfortivpn key"),
    ("extra-plugin-newline-key", {"extra": {"pppd-plugin\n": "/tmp/evil.so"}}, "extra", "not an openfortivpn key"),
    ("extra-key-with-equals", {"extra": {"user-agent = x\npppd-plugin": "/x"}}, "extra", "not an openfortivpn key"),
    ("extra-ppp-system", {"extra": {"ppp-system": "x"}}, "extra.ppp-system", "FreeBSD"),
    ("realm-cr", {"realm": "eng\rpppd-plugin = /x"}, "realm", "single line"),
    ("host-injects-key", {"host": "vpn = x"}, "host", "not a host"),
    ("path-not-conf", {"path": "/etc/profile.d/corp.sh"}, "path", ".conf"),
    ("path-dotconf-only", {"path": "/etc/openfortivpn/.conf"}, "path", ".conf"),
    ("pkcs11-module-path", {"user_cert": "pkcs11:token=a;object=b?module-path=/tmp/evil.so"},
     "user_cert", "module-path"),
    ("pkcs11-module-name", {"user_cert": "pkcs11:token=a?Module-Name=evil"}, "user_cert", "module-name"),
    ("pkcs11-pin-value", {"user_cert": "pkcs11:token=a?pin-value=4711"}, "user_cert", "pin-value"),
    ("ca-world-writable", "CA_WORLD_WRITABLE", "ca_file", "mode 0666, so someone other than root"),
    ("ca-owned-by-user", "CA_OWNED_BY_USER", "ca_file", "uid 65534"),
    ("ca-symlink", "CA_SYMLINK", "ca_file", "symlink"),
    ("ca-in-loose-dir", "CA_LOOSE_DIR", "ca_file", "directory"),
    ("cert-world-writable", "CERT_WORLD_WRITABLE", "user_cert", "mode 0646"),
    ("key-world-readable", "KEY_WORLD_READABLE", "user_key", "readable by everyone"),
    ("extra-no-value", {"extra": {"otp-delay": None}}, "extra.otp-delay", "value"),
    # The trailing-newline class and every character some reader splits a line at.
    ("host-trailing-newline", {"host": "vpn.example.com\n"}, "host", "single line"),
    ("name-trailing-newline", {"path": None, "name": "corp\n"}, "name", "single line"),
    ("path-trailing-newline", {"path": "/etc/openfortivpn/corp.conf\n"}, "path", "single line"),
    ("username-u2028", {"username": "ci\u2028password = x"}, "username", "single line"),
    ("realm-nel", {"realm": "eng\x85x"}, "realm", "C1 control"),
    ("password-u2028", {"password": SECRET + "\u2028host = evil"}, "password", "cannot be written safely"),
    ("password-u2029", {"password": SECRET + "\u2029"}, "password", "cannot be written safely"),
    ("password-nel", {"password": SECRET + "\x85"}, "password", "cannot be written safely"),
    ("password-vt", {"password": SECRET + "\x0b"}, "password", "cannot be written safely"),
    ("password-ff", {"password": SECRET + "\x0c"}, "password", "cannot be written safely"),
    ("password-nul", {"password": SECRET + "\x00"}, "password", "cannot be written safely"),
    ("password-nonchar", {"password": SECRET + "\ufdd0"}, "password", "cannot be written safely"),
    ("password-surrogate", {"password": SECRET + "\udc80"}, "password", "cannot be written safely"),
    ("password-too-long", {"password": SECRET * 20}, "password", "longer than 256 bytes"),
    ("otp-u2028", {"otp": SECRET + "\u2028"}, "otp", "cannot be written safely"),
    ("otp-too-long", {"otp": SECRET * 4}, "otp", "longer than 63 bytes"),
    ("pem-u2028", {"pem_passphrase": SECRET + "\u2028"}, "pem_passphrase", "cannot be written safely"),
    ("pem-too-long", {"pem_passphrase": SECRET * 2}, "pem_passphrase", "longer than 31 bytes"),
    ("pem-edge-space", {"pem_passphrase": " " + SECRET}, "pem_passphrase", "whitespace"),
    ("extra-key-trailing-newline", {"extra": {"min-tls\n": "1.2"}}, "extra", "not an openfortivpn key"),
    ("extra-cookie", {"extra": {"cookie": SECRET}}, "extra.cookie", "secret"),
    ("extra-saml", {"extra": {"saml-login": "8020"}}, "extra.saml-login", "listener"),
    ("extra-sni-too-new", {"extra": {"sni": "vpn.example.com"}}, "extra.sni", "1.23 or later"),
    ("pkcs11-pin-source", {"user_cert": "pkcs11:token=a?pin-source=/tmp/pin"}, "user_cert", "pin-source"),
    ("bad-lock-timeout", {"lock_timeout": "whenever"}, "lock_timeout", "time span"),
]


def _file_case(base, case):
    """Files openfortivpn would read as root, in states someone other than root could change."""
    base.mkdir(mode=0o755, exist_ok=True)
    pem = base / "file.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    os.chmod(pem, 0o644)
    if case == "CA_WORLD_WRITABLE":
        os.chmod(pem, 0o666)
        return {"ca_file": str(pem)}
    if case == "CA_OWNED_BY_USER":
        os.chown(pem, 65534, 65534)
        return {"ca_file": str(pem)}
    if case == "CA_SYMLINK":
        os.symlink(pem, base / "link.pem")
        return {"ca_file": str(base / "link.pem")}
    if case == "CA_LOOSE_DIR":
        loose = base / "loose"
        loose.mkdir()
        os.chmod(loose, 0o777)
        (loose / "ca.pem").write_text("x\n")
        return {"ca_file": str(loose / "ca.pem")}
    if case == "CERT_WORLD_WRITABLE":
        os.chmod(pem, 0o646)
        return {"user_cert": str(pem)}
    if case == "KEY_WORLD_READABLE":
        os.chmod(pem, 0o644)
        return {"user_key": str(pem)}
    raise AssertionError(case)


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_catalogue(run_module, target, snapshot_tree, case):
    _id, overrides, field, words = case
    root = str(target.parent.parent)
    before = snapshot_tree(root)
    if isinstance(overrides, str) and overrides != "NOPATH":
        overrides = _file_case(target.parent.parent / "inputs", overrides)
        before = snapshot_tree(root)
    if overrides == "NOPATH":
        module_args = {"host": "vpn.example.com"}
    else:
        module_args = args(target, **overrides)
        if "path" in overrides and overrides["path"] is None:
            module_args.pop("path", None)
    result = run_module(vpn_config.main, module_args, diff=True)
    assert result.get("failed"), result
    if _id in ("no-name-no-path", "no-host"):  # Ansible's own required-option messages
        assert field in result["msg"], result["msg"]
    else:
        assert result["msg"].startswith(f"{field}:"), result["msg"]
    assert words in result["msg"], result["msg"]
    assert SECRET[:6] not in json.dumps(result) and SECRET[-6:] not in json.dumps(result)
    assert snapshot_tree(root) == before


def test_directory_owned_by_another_user_is_refused(run_module, target, snapshot_tree):
    target.parent.mkdir(mode=0o700)
    os.chown(target.parent, 65534, 65534)
    root = str(target.parent.parent)
    before = snapshot_tree(root)
    result = run_module(vpn_config.main, args(target))
    assert result["failed"] and result["msg"].startswith("path:") and "owned by uid 65534" in result["msg"]
    assert snapshot_tree(root) == before


def test_directory_under_a_world_writable_parent_is_refused(run_module, target, snapshot_tree):
    os.chmod(target.parent.parent, 0o777)
    result = run_module(vpn_config.main, args(target))
    assert result["failed"] and result["msg"].startswith("path:") and "writable by no one else" in result["msg"]
    assert not target.parent.exists()


def test_symlinked_directory_is_refused(run_module, target, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(real, target.parent)
    result = run_module(vpn_config.main, args(target))
    assert result["failed"] and "symlink" in result["msg"]
    assert list(real.iterdir()) == []


def test_pem_passphrase_needs_openfortivpn_117(run_module, target, installed, snapshot_tree):
    installed["version"] = (1, 15)
    root = str(target.parent.parent)
    before = snapshot_tree(root)
    result = run_module(vpn_config.main, args(target, pem_passphrase="pem-secret"))
    assert result["failed"] and result["msg"].startswith("pem_passphrase: 'pem-passphrase' needs openfortivpn 1.17")
    assert "pem-secret" not in json.dumps(result) and snapshot_tree(root) == before


def test_version_is_reported(run_module, target, installed):
    assert run_module(vpn_config.main, args(target))["version"] == "1.19"
    installed["version"] = None
    assert run_module(vpn_config.main, args(target))["version"] is None


def test_check_mode_with_the_directory_missing_plans_it(run_module, target, snapshot_tree):
    root = str(target.parent.parent)
    before = snapshot_tree(root)
    result = run_module(vpn_config.main, args(target, otp="123456"), check_mode=True, diff=True)
    assert result["changed"] is True and snapshot_tree(root) == before
    assert result["diff"]["before_header"].endswith("(absent)")
    assert "otp = ********" in result["diff"]["after"] and "123456" not in json.dumps(result)


def test_second_run_with_the_same_secrets_changes_nothing(run_module, target):
    first = run_module(vpn_config.main, args(target, otp="123456", pem_passphrase="pem-secret"), diff=True)
    again = run_module(vpn_config.main, args(target, otp="123456", pem_passphrase="pem-secret"), diff=True)
    assert first["changed"] is True and again["changed"] is False and "diff" not in again
