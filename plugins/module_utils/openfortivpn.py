# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The openfortivpn configuration file: options, rendering, and a redaction that reads the file the
way openfortivpn does. Shared by the openfortivpn_config and ci_tunnel modules.

How openfortivpn 1.15 to 1.23 reads the file (src/config.c, load_config()): lines end at ``\\n``
only; a ``#`` in column 0 starts a comment; the key ends at the first ``=``; key and value are
trimmed with C ``isspace()``; no quoting or escapes; string values longer than the field are cut
without a word (password 256 bytes, username 64, realm 63, host 253, otp 64, pem-passphrase 31);
an unknown key ends the parsing there, silently on 1.19 and later, so every key after it, such as
``trusted-cert``, would be lost. Hence: values are one line with no edge whitespace and within the
field; keys the installed openfortivpn does not know are refused; secrets are refused if they hold
anything that any reader would split or trim, and never shown.
"""

from __future__ import annotations

import os
import re

from ansible_collections.supervised.background.plugins.module_utils import safe_file, trust, validate
from ansible_collections.supervised.background.plugins.module_utils.systemd import instance_name
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError, absolute_path

HEADER = "# Managed by supervised.background; do not edit. Readable by root only.\n"
REDACTED = "********"
SECRET_KEYS = frozenset({"password", "otp", "pem-passphrase"})
CONFIG_DIR = "/etc/openfortivpn"
# C isspace() in the C locale: what openfortivpn trims around keys and values.
C_SPACE = " \t\n\v\f\r"

_HOST_RE = r"[A-Za-z0-9._:-]+"
_DIGEST_RE = r"[0-9a-fA-F]{64}"
_IFNAME_RE = r"[A-Za-z0-9_-]{1,15}"
_EXTRA_KEY_RE = r"[a-z0-9-]+"
# pkcs11 URI attributes that load a library (code as root) or carry a secret in a shown option.
_PKCS11_REFUSED = ("module-path", "module-name", "pin-value", "pin-source")

# Keys refused in `extra` because they let the writer of the file act as root.
DANGEROUS_KEYS = {
    "pppd-plugin": "it makes the root pppd load a shared library of the writer's choice (code execution as root)",
    "pppd-log": "the root pppd writes its debug log to the named file, overwriting any file on the host",
    "pppd-call": "it replaces openfortivpn's pppd arguments with an options file that can run scripts as root",
    "pppd-ipparam": "its value is handed to the ip-up/ip-down scripts pppd runs as root",
    "pinentry": "it names a program openfortivpn runs as root (looked up on PATH)",
    "ppp-system": "it is only for FreeBSD's ppp and hands over a ppp.conf profile",
    "pppd": "it names the pppd binary root runs",
    "cookie": "a session cookie is a secret; openfortivpn ignores it in the file anyway",
    "cookie-on-stdin": "openfortivpn ignores it in the file",
    "saml-login": "it opens a local listener that hands the session to whoever connects first",
}
# Keys with an option of their own.
STRUCTURED_KEYS = {
    "host": "host", "port": "port", "username": "username", "password": "password",
    "realm": "realm", "trusted-cert": "trusted_cert", "ca-file": "ca_file", "user-cert": "user_cert",
    "user-key": "user_key", "set-dns": "set_dns", "set-routes": "set_routes",
    "pppd-use-peerdns": "pppd_use_peerdns", "half-internet-routes": "half_internet_routes",
    "persistent": "persistent", "otp": "otp", "pem-passphrase": "pem_passphrase",
}
# Other keys openfortivpn's parser knows: kind of value, first version that knows the key.
EXTRA_KEYS = {
    "otp-prompt": ("str", (1, 15)), "otp-delay": ("uint", (1, 15)), "no-ftm-push": ("bool", (1, 15)),
    "use-resolvconf": ("bool", (1, 15)), "use-syslog": ("bool", (1, 15)), "insecure-ssl": ("bool", (1, 15)),
    "cipher-list": ("str", (1, 15)), "min-tls": ("tls", (1, 15)), "seclevel-1": ("bool", (1, 15)),
    "user-agent": ("str", (1, 15)), "hostcheck": ("str", (1, 15)), "check-virtual-desktop": ("str", (1, 15)),
    "pppd-ifname": ("ifname", (1, 15)), "sni": ("host", (1, 23)), "pppd-accept-remote": ("bool", (1, 23)),
}
# Structured keys newer than the oldest supported release.
SINCE = {"pem-passphrase": (1, 17)}
# Field sizes in bytes (the smallest over the supported releases).
LIMITS = {"host": 253, "username": 63, "password": 256, "otp": 63, "realm": 63, "pem-passphrase": 31, "sni": 253}
SHOWN_KEYS = frozenset(set(STRUCTURED_KEYS) | set(EXTRA_KEYS)) - SECRET_KEYS
# Keys a redacted line may name: openfortivpn's own. Any other text where a key would be is masked
# whole (a hand-edited line such as "hunter2 = x" holds a secret in the key position).
NAMED_KEYS = frozenset(set(STRUCTURED_KEYS) | set(EXTRA_KEYS) | set(DANGEROUS_KEYS))
# Order the structured options are written in: what secures the connection first, so that even an
# older openfortivpn that stopped at a key would have read them.
ORDER = ["host", "port", "trusted-cert", "ca-file", "user-cert", "user-key", "username", "password", "otp",
         "realm", "pem-passphrase", "set-dns", "set-routes", "pppd-use-peerdns", "half-internet-routes", "persistent"]

# The options, shared by every module that writes an openfortivpn config (documented once in the
# supervised.background.openfortivpn doc fragment).
CONFIG_SPEC = dict(
    host=dict(type="str"),
    port=dict(type="int", default=443),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    otp=dict(type="str", no_log=True),
    pem_passphrase=dict(type="str", no_log=True),
    realm=dict(type="str"),
    trusted_cert=dict(type="list", elements="str", default=[]),
    ca_file=dict(type="path"),
    user_cert=dict(type="str"),
    user_key=dict(type="path", no_log=False),
    set_dns=dict(type="bool"),
    set_routes=dict(type="bool"),
    pppd_use_peerdns=dict(type="bool"),
    half_internet_routes=dict(type="bool"),
    persistent=dict(type="int"),
    extra=dict(type="dict", default={}),
)


def parse_version(text):
    """``openfortivpn --version`` output ("1.19.0") -> (1, 19)."""
    m = re.search(r"\b([0-9]+)\.([0-9]+)(?:\.[0-9]+)?\b", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def installed_version(module):
    """The version of the openfortivpn on the host, None when it is not installed."""
    binary = module.get_bin_path("openfortivpn")
    if not binary:
        return None
    rc, out, err = module.run_command([binary, "--version"])
    return parse_version(out + err) if rc == 0 else None


def _value(field, value, key, secret=False):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{field}: must be a string")
    value = validate.text(field, str(value), secret=secret, empty=False, edges=False, max_bytes=LIMITS.get(key))
    return value


def _bool(field, value):
    return "1" if validate.boolean(field, value) else "0"


def _uint(field, value, maximum=4294967295, minimum=0):
    return str(validate.integer(field, value, minimum, maximum))


def _supported(field, key, since, version, module):
    """Refuse a key the installed openfortivpn does not know: it would stop reading the file there."""
    if since is None or since <= (1, 15):
        return
    if version is None:
        if module.check_mode:
            module.warn(f"{field}: openfortivpn is not installed yet; '{key}' needs {since[0]}.{since[1]} or later")
            return
        raise InputError(f"{field}: '{key}' needs openfortivpn {since[0]}.{since[1]} or later, and openfortivpn is not "
                         "installed; install it first")
    if version < since:
        raise InputError(
            f"{field}: '{key}' needs openfortivpn {since[0]}.{since[1]} or later, this host has {version[0]}.{version[1]} "
            "(an older openfortivpn stops reading the file at a key it does not know, so the keys after it, "
            "trusted-cert among them, would be lost)"
        )


def trusted_input(field, path, module, private=False):
    """A file openfortivpn reads as root must be root's (whoever can replace the CA bundle can
    impersonate the gateway); a private key must not be readable by everyone."""
    validate.pattern(field, path, r"/[A-Za-z0-9@%+._/:-]+", "may only use letters, digits and @ % + . / _ : -")
    validate.absolute_path(field, path)
    if not os.path.lexists(path):
        module.warn(f"{field}: '{path}' does not exist yet; openfortivpn will fail until it does")
        # Whoever may create it there could hand root their own file: the nearest directory that
        # exists (such as /etc when /etc/openfortivpn is still to be made) must be root's.
        directory = os.path.dirname(path)
        while not os.path.lexists(directory):
            directory = os.path.dirname(directory)
        trust.check(field, directory, trust.ROOT_DIR)
        return path
    st = trust.check(field, path, trust.ROOT_READ)
    if private and st.st_mode & 0o004:
        raise InputError(f"{field}: '{path}' is readable by everyone (mode {st.st_mode & 0o777:04o}); a private key "
                         "must not be")
    return path


def entries(params, module, version):
    """Validate the options and return ``(entries, secrets)``; entries are ``(key, value)`` in file order."""
    p = params
    values = {}
    if p.get("host") is None:
        raise InputError("host: required with state=present")
    host = _value("host", p["host"], "host")
    if not re.fullmatch(_HOST_RE, host):
        raise InputError(f"host: '{host}' is not a host name or address (letters, digits, '.', ':', '-')")
    values["host"] = host
    values["port"] = _uint("port", p["port"], 65535, 1)
    if p.get("username") is not None:
        values["username"] = _value("username", p["username"], "username")
    secrets = []
    for option, key in (("password", "password"), ("otp", "otp"), ("pem_passphrase", "pem-passphrase")):
        if p.get(option) is not None:
            _supported(option, key, SINCE.get(key), version, module)
            values[key] = _value(option, p[option], key, secret=True)
            secrets.append(values[key])
    if p.get("realm") is not None:
        values["realm"] = _value("realm", p["realm"], "realm")
    certs = []
    for index, digest in enumerate(p.get("trusted_cert") or []):
        digest = _value(f"trusted_cert[{index}]", digest, None)
        if not re.fullmatch(_DIGEST_RE, digest):
            raise InputError(f"trusted_cert[{index}]: '{digest}' is not a SHA-256 digest (64 hex characters, from: "
                             "openssl x509 -outform der | sha256sum)")
        certs.append(digest.lower())
    if certs:
        values["trusted-cert"] = list(dict.fromkeys(certs))
    if p.get("ca_file") is not None:
        values["ca-file"] = trusted_input("ca_file", p["ca_file"], module)
    if p.get("user_cert") is not None:
        values["user-cert"] = _user_cert(p["user_cert"], module)
    if p.get("user_key") is not None:
        values["user-key"] = trusted_input("user_key", p["user_key"], module, private=True)
    for option in ("set_dns", "set_routes", "pppd_use_peerdns", "half_internet_routes"):
        if p.get(option) is not None:
            values[option.replace("_", "-")] = _bool(option, p[option])
    if p.get("persistent") is not None:
        values["persistent"] = _uint("persistent", p["persistent"])
    result = []
    for key in ORDER:
        for value in values[key] if isinstance(values.get(key), list) else ([values[key]] if key in values else []):
            result.append((key, value))
    for key in sorted(p.get("extra") or {}, key=str):
        result.append((key, _extra(key, p["extra"][key], module, version)))
    return result, secrets


def _pkcs11_attributes(uri):
    return [part.split("=", 1)[0].strip().lower() for part in re.split(r"[;?&]", uri[len("pkcs11:"):])]


def _pkcs11_secret(key, value):
    """A hand-edited user-cert line whose pkcs11 URI carries a PIN (pin-value, pin-source)."""
    return key == "user-cert" and value.lower().startswith("pkcs11:") and any(
        name in _pkcs11_attributes(value) for name in ("pin-value", "pin-source"))


def _user_cert(value, module):
    cert = _value("user_cert", value, None)
    if cert.startswith("pkcs11:"):
        attributes = _pkcs11_attributes(cert)
        for name in _PKCS11_REFUSED:
            if name in attributes:
                raise InputError(f"user_cert: the pkcs11 URI attribute '{name}' is refused (module-path and module-name "
                                 "load a library as root; pin-value and pin-source put a secret where it is shown)")
        return cert
    return trusted_input("user_cert", cert, module)


def _extra(key, value, module, version):
    field = f"extra.{key}"
    if not isinstance(key, str) or not re.fullmatch(_EXTRA_KEY_RE, key):
        raise InputError(f"extra: '{validate.printable_name(key)}' is not an openfortivpn key (lower-case letters, digits and '-')")
    if key in DANGEROUS_KEYS:
        raise InputError(f"{field}: refused because {DANGEROUS_KEYS[key]}")
    if key in STRUCTURED_KEYS:
        raise InputError(f"{field}: use the option '{STRUCTURED_KEYS[key]}' instead")
    if key not in EXTRA_KEYS:
        raise InputError(f"extra: '{key}' is not an openfortivpn key this collection knows (openfortivpn stops reading "
                         f"the file at an unknown key); known: {', '.join(sorted(EXTRA_KEYS))}")
    kind, since = EXTRA_KEYS[key]
    _supported(field, key, since, version, module)
    if value is None:
        raise InputError(f"{field}: needs a value")
    if kind == "bool":
        return _bool(field, value)
    if kind == "uint":
        return _uint(field, value)
    text = _value(field, value, key)
    if kind == "tls" and text not in ("1.0", "1.1", "1.2", "1.3"):
        raise InputError(f"{field}: '{text}' must be one of 1.0, 1.1, 1.2, 1.3 (quote it in YAML)")
    if kind == "host" and not re.fullmatch(_HOST_RE, text):
        raise InputError(f"{field}: '{text}' is not a host name")
    if kind == "ifname" and not re.fullmatch(_IFNAME_RE, text):
        raise InputError(f"{field}: '{text}' is not an interface name (up to 15 letters, digits, '_', '-')")
    return text


def render(config_entries):
    return HEADER + "".join(f"{key} = {value}\n" for key, value in config_entries)


def redact(content):
    """The file as a diff may show it: split exactly as openfortivpn splits (at ``\\n`` only), keys
    trimmed as it trims them; only lines of known non-secret keys and the header are shown, and
    the key of a line of another key openfortivpn knows. A file edited by hand can hold a secret
    anywhere else (a comment, a line without '=', an unknown key), so every other line is masked
    whole."""
    if content is None:
        return None
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    out = []
    for line in text.split("\n"):
        key, sep, _value = line.partition("=")
        if line + "\n" == HEADER or not line.strip(C_SPACE):
            out.append(line)
        elif line.startswith("#"):
            out.append(f"# {REDACTED}")
        elif sep and key.strip(C_SPACE) in SHOWN_KEYS and not any(validate.bad_char(ch) for ch in line) \
                and not _pkcs11_secret(key.strip(C_SPACE), _value.strip(C_SPACE)):
            out.append(line)
        elif sep and key.strip(C_SPACE) in NAMED_KEYS:
            out.append(f"{key.strip(C_SPACE)} = {REDACTED}")
        else:
            out.append(REDACTED)
    return "\n".join(out)


def config_path(name, path):
    """The file of connection ``name`` (or the explicit ``path``), which must be a ``.conf`` file."""
    if path:
        path = absolute_path("path", path)
    else:
        path = os.path.join(CONFIG_DIR, f"{instance_name('name', name)}.conf")
    if not path.endswith(".conf") or path.endswith("/.conf"):
        raise InputError(f"path: '{path}' must name a '.conf' file (a file in another place, such as a shell snippet or "
                         "a cron/sudoers/apt directory, would be read as something else)")
    return path


def dedicated(directory):
    """Only a directory of openfortivpn's own is created or tightened to 0700; a shared one (/etc,
    /root...) is left exactly as it is."""
    return os.path.basename(directory.rstrip("/")) == "openfortivpn"


def write_config(module, path, content):
    """Write (``content``) or remove (None) the config at ``path``; returns ``(changed, diff)``.
    The one place that decides how the config's directory is treated."""
    directory = os.path.dirname(path)
    previous = safe_file.read_state(path)
    before = redact(previous.content) if previous else None
    if content is None:
        res = safe_file.remove_file(module, path, diff_before=before, purpose=trust.SECRET_DIR)
        return res.changed, res.diff
    dir_changed = False
    if dedicated(directory):
        if os.path.lexists(directory):
            # Tighten a root-owned directory (Debian ships it 0755); never take over one that
            # someone else owns or can write to (they may have left anything in it).
            trust.check("path", directory, trust.SECRET_DIR)
        dir_changed = safe_file.ensure_directory(module, directory, "root", "root", 0o700, purpose=trust.SECRET_DIR)
    elif os.path.lexists(directory):
        trust.check("path", directory, trust.SECRET_DIR)
    if module.check_mode and not os.path.isdir(directory):
        diff = safe_file.make_diff(path, None, redact(content)) if module._diff else None
        return True, diff
    res = safe_file.write_file(module, path, content, owner="root", group="root", mode=0o600, diff_before=before,
                               diff_after=redact(content), purpose=trust.SECRET_DIR)
    diff = res.diff
    if diff is None and dir_changed and module._diff:
        diff = {"before_header": directory, "after_header": directory, "before": "",
                "after": "# directory tightened to root:root 0700\n"}
    return res.changed or dir_changed, diff
