"""openfortivpn: the config format, the option rules, and a redaction that splits like openfortivpn.

openfortivpn (src/config.c, load_config) ends a line at '\\n' only, splits key and value at the
first '=', trims with C isspace() and treats '#' in column 0 as a comment. A redaction that split
anywhere else (str.splitlines() also splits at \\r, \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028, \\u2029)
would show part of a line openfortivpn reads as one, such as the tail of a password.
"""

from __future__ import annotations

import pytest
from ansible_collections.supervised.background.plugins.module_utils import openfortivpn as ofv
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

R = ofv.REDACTED
H = ofv.HEADER
DIGEST = "e46d4aff08ba6914e64daa85bc6112a422fa7ce16631bff0b592a28556f993db"


class FakeModule:
    def __init__(self, check_mode=False):
        self.check_mode = check_mode
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


def params(**kw):
    base = {"host": "vpn.example.com", "port": 443, "username": "ci-bot", "password": None, "otp": None,
            "pem_passphrase": None, "realm": None, "trusted_cert": [], "ca_file": None, "user_cert": None,
            "user_key": None, "set_dns": None, "set_routes": None, "pppd_use_peerdns": None,
            "half_internet_routes": None, "persistent": None, "extra": {}}
    base.update(kw)
    return base


def render(version=(1, 19), **kw):
    config, secrets = ofv.entries(params(**kw), FakeModule(), version)
    return ofv.render(config), secrets


# -- redaction, line by line ----------------------------------------------------------------------
REDACT = [
    # (line as in the file, line as the diff shows it, why)
    ("host = vpn.example.com", "host = vpn.example.com", "a known key that is not secret: shown"),
    ("  port=443  ", "  port=443  ", "keys are trimmed before they are looked up"),
    ("password = s3cret", f"password = {R}", "a secret key: its value masked"),
    ("otp=123456", f"otp = {R}", ""),
    ("\vpem-passphrase\t= p", f"pem-passphrase = {R}", "C isspace() includes \\v"),
    ("Password = s3cret", R, "openfortivpn's keys are case sensitive: unknown, masked whole"),
    ("hunter2secret = 1", R, "an unknown key may itself be a secret"),
    ("pppd-plugin = /x.so", f"pppd-plugin = {R}", "a key openfortivpn knows: named, value masked"),
    ("# password = s3cret", f"# {R}", "a comment: masked"),
    ("  # s3cret", R, "an indented '#' is no comment for openfortivpn"),
    ("s3cret", R, "a line without '='"),
    ("=s3cret", R, "an empty key"),
    ("host = a\rpassword = s3cret", f"host = {R}", "\\r does not end a line for openfortivpn"),
    ("host = a\u2028password = s3cret", f"host = {R}", "nor does U+2028"),
    ("host = a\x85b", f"host = {R}", "nor U+0085"),
    ("host = a\x00password = s3cret", f"host = {R}", "a NUL: openfortivpn reads up to it, masked"),
    ("user-cert = pkcs11:token=ci", "user-cert = pkcs11:token=ci", "a certificate URI is shown"),
    ("user-cert = pkcs11:token=ci?pin-value=4711", f"user-cert = {R}", "one with a PIN is not"),
    ("user-cert = PKCS11:token=ci;Pin-Source=/x", f"user-cert = {R}", ""),
    ("", "", "empty lines stay"),
    ("   ", "   ", "blank lines stay"),
    (H.rstrip("\n"), H.rstrip("\n"), "the header"),
]


@pytest.mark.parametrize("line,shown,why", REDACT, ids=[r[0].encode("unicode_escape").decode() for r in REDACT])
def test_redact_line(line, shown, why):
    assert ofv.redact(line) == shown, why


def test_redact_splits_exactly_as_openfortivpn():
    # openfortivpn reads one password "pw\u2028host = et-leak"; a splitlines() redaction would have
    # shown "host = et-leak".
    text = "password = pw\u2028host = et-leak\nhost = real\n"
    assert ofv.redact(text) == f"password = {R}\nhost = real\n"
    assert ofv.redact(text).split("\n") == ["password = ********", "host = real", ""]
    assert ofv.redact(b"password = x\xff\nhost = h\n") == f"password = {R}\nhost = h\n"
    assert ofv.redact(None) is None


def test_redact_of_a_rendered_file():
    text, secrets = render(password="pw-1", otp="123456", pem_passphrase="pem-pass", realm="eng",
                           trusted_cert=[DIGEST], set_dns=False, persistent=5, extra={"min-tls": "1.2"})
    assert secrets == ["pw-1", "123456", "pem-pass"]
    assert ofv.redact(text) == (
        H + "host = vpn.example.com\nport = 443\n" + f"trusted-cert = {DIGEST}\n" + "username = ci-bot\n"
        + f"password = {R}\notp = {R}\nrealm = eng\npem-passphrase = {R}\nset-dns = 0\npersistent = 5\n"
        + "min-tls = 1.2\n")


# -- the property: no secret fragment ever reaches a redacted diff --------------------------------
def _fragments(text, size=4):
    return {text[i:i + size] for i in range(len(text) - size + 1)}


# A secret the module accepts: one line, no edge whitespace, no character any reader splits at.
MODULE_SECRET = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x10FFFF), min_size=4, max_size=31).filter(
    lambda s: s == s.strip() and len(s.encode("utf-8", "surrogatepass")) <= 31
    and not any(ofv.validate.bad_char(c) for c in s))
# A secret someone typed into the file by hand: anything but a newline.
HAND_SECRET = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_characters="\n"),
                      min_size=4, max_size=40)
# Where a hand edit may leave a secret. Not covered, because openfortivpn shows them by design: the
# value of a non-secret key (host, username...), which is what the diff is for.
SLOTS = [
    "# {s}", "#{s}", "  # {s}", "{s}", "password = {s}", "Password = {s}", "  password={s}\r", "otp = {s}",
    "pem-passphrase = {s}", "pin = {s}", "{s} = 1", "pppd-plugin = {s}", "host = vpn.example.com\x00{s}",
    "user-cert = pkcs11:token=a?pin-value={s}",
    "host = vpn.example.com\u2028{s}", "host = vpn.example.com\r{s}", "cookie = {s}", "password = {s}{s}",
]


def _hand_file(slots, secret):
    return H + "host = vpn.example.com\n" + "".join(slot.format(s=secret) + "\n" for slot in slots) + "port = 443\n"


def _looks_like_a_shown_line(secret):
    """A secret that, alone on a line, is a line openfortivpn reads as a non-secret option (it is
    shown because it is one)."""
    return any(piece.partition("=")[0].strip(ofv.C_SPACE) in ofv.NAMED_KEYS or not piece.strip(ofv.C_SPACE)
               or piece.strip(ofv.C_SPACE) in ofv.NAMED_KEYS
               for piece in (secret,) + tuple(secret.split("\x00")))


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(old=HAND_SECRET, new=MODULE_SECRET, otp=MODULE_SECRET, slots=st.lists(st.sampled_from(SLOTS), min_size=1,
                                                                             max_size=6))
@example(old="hunter2secret", new="p@ss=#word'\"$x", otp="123456", slots=["{s} = 1", "# {s}"])
@example(old="et-leak", new="pw\u00e9\u00e9\u00e9\u00e9", otp="0000", slots=["host = vpn.example.com\u2028{s}"])
def test_no_secret_fragment_in_a_redacted_diff(old, new, otp, slots):
    assume(not _looks_like_a_shown_line(old))
    before_file = _hand_file(slots, old)
    after_file, _secrets = render(password=new, otp=otp, pem_passphrase=new)
    shown = ofv.redact(before_file) + ofv.redact(after_file)
    # The same files with other secrets of the same length: what both show is the fixed text.
    placeholder = ofv.redact(_hand_file(slots, "Q" * len(old))) + ofv.redact(
        render(password="Z" * len(new), otp="Z" * len(otp), pem_passphrase="Z" * len(new))[0])
    for secret in (old, new, otp):
        leaks = [f for f in _fragments(secret) if f in shown and f not in placeholder]
        assert not leaks, (secret, leaks, shown)
    # Stronger: the diff of a file the module wrote does not depend on its secrets at all.
    assert ofv.redact(after_file) == ofv.redact(
        render(password="Z" * len(new), otp="Z" * len(otp), pem_passphrase="Z" * len(new))[0])


# -- secrets: refused if any reader would split, trim or cut them; never shown --------------------
BAD_SECRETS = [
    ("line separator", "pw\u2028host = evil"),
    ("paragraph separator", "pw\u2029x"),
    ("NEL", "pw\x85x"),
    ("vertical tab", "pw\x0bx"),
    ("form feed", "pw\x0cx"),
    ("carriage return", "pw\rx"),
    ("newline", "pw\npppd-plugin = /tmp/x.so"),
    ("NUL", "pw\x00x"),
    ("tab", "pw\tx"),
    ("noncharacter", "pw\ufdd0x"),
    ("noncharacter plane 1", "pw\U0001fffex"),
    ("lone surrogate", "pw\udc80x"),
    ("leading space (trimmed)", " pw-secret"),
    ("trailing space (trimmed)", "pw-secret "),
    ("empty", ""),
]


@pytest.mark.parametrize("option", ["password", "otp", "pem_passphrase"])
@pytest.mark.parametrize("label,secret", BAD_SECRETS, ids=[b[0] for b in BAD_SECRETS])
def test_bad_secret_refused_without_being_shown(option, label, secret):
    with pytest.raises(InputError) as err:
        ofv.entries(params(**{option: secret}), FakeModule(), (1, 23))
    msg = str(err.value)
    assert msg.startswith(f"{option}: "), msg
    assert "pw" not in msg and "secret" not in msg and "evil" not in msg and "U+" not in msg


@pytest.mark.parametrize("option,limit", [("password", 256), ("otp", 63), ("pem_passphrase", 31)])
def test_secret_longer_than_the_field_is_refused_not_cut(option, limit):
    ofv.entries(params(**{option: "x" * limit}), FakeModule(), (1, 23))
    with pytest.raises(InputError) as err:
        ofv.entries(params(**{option: "y" * (limit + 1)}), FakeModule(), (1, 23))
    assert "yyyy" not in str(err.value) and f"longer than {limit} bytes" in str(err.value)


def test_secret_may_hold_anything_openfortivpn_keeps():
    text, secrets = render(password="p@ss = #word 'q' \"dq\" $HOME \\ \u00e9\u65e5 \U0001f600")
    assert "password = p@ss = #word 'q' \"dq\" $HOME \\ \u00e9\u65e5 \U0001f600\n" in text
    assert secrets == ["p@ss = #word 'q' \"dq\" $HOME \\ \u00e9\u65e5 \U0001f600"]


# -- versions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,version", [("1.19.0", (1, 19)), ("openfortivpn 1.23.1\n", (1, 23)),
                                          ("2.0", (2, 0)), ("", None), (None, None), ("x", None)])
def test_parse_version(text, version):
    assert ofv.parse_version(text) == version


def test_keys_newer_than_the_installed_openfortivpn_are_refused():
    with pytest.raises(InputError, match="pem_passphrase: 'pem-passphrase' needs openfortivpn 1.17 or later, this host "
                                         "has 1.15"):
        ofv.entries(params(pem_passphrase="p"), FakeModule(), (1, 15))
    with pytest.raises(InputError, match="extra.sni: 'sni' needs openfortivpn 1.23"):
        ofv.entries(params(extra={"sni": "vpn.example.com"}), FakeModule(), (1, 19))
    with pytest.raises(InputError, match="not installed"):
        ofv.entries(params(extra={"sni": "vpn.example.com"}), FakeModule(), None)
    module = FakeModule(check_mode=True)
    ofv.entries(params(extra={"sni": "vpn.example.com"}), module, None)
    assert module.warnings and "not installed yet" in module.warnings[0]


def test_order_puts_what_secures_the_connection_first():
    text, _s = render(password="p", trusted_cert=[DIGEST, DIGEST.upper()], ca_file="/etc/passwd", realm="r",
                      extra={"use-syslog": True, "otp-delay": 3})
    keys = [line.split(" = ")[0] for line in text.splitlines()[1:]]
    assert keys == ["host", "port", "trusted-cert", "ca-file", "username", "password", "realm", "otp-delay",
                    "use-syslog"]


def test_config_path_and_dedicated():
    assert ofv.config_path("corp", None) == "/etc/openfortivpn/corp.conf"
    assert ofv.config_path(None, "/srv/vpn/x.conf") == "/srv/vpn/x.conf"
    for bad in ("/etc/profile.d/corp.sh", "/etc/openfortivpn/.conf", "relative.conf"):
        with pytest.raises(InputError, match="^path:"):
            ofv.config_path(None, bad)
    with pytest.raises(InputError, match="^name:"):
        ofv.config_path("../x", None)
    assert ofv.dedicated("/etc/openfortivpn") and ofv.dedicated("/srv/openfortivpn/")
    assert not ofv.dedicated("/etc") and not ofv.dedicated("/root")
