#!/usr/bin/python
# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpn_config
short_description: Write a root-only openfortivpn configuration file
version_added: 0.1.0
author:
  - supervised.background maintainers (@supervised-background)
description:
  - Writes an openfortivpn configuration file (default C(/etc/openfortivpn/NAME.conf)) from
    structured options, owned by root:root with mode 0600, in a directory owned by root with mode
    0700, through the collection's atomic file writer.
  - The module never writes a looser mode and has no option to ask for one. A missing directory is
    created C(root:root 0700); an existing directory named C(openfortivpn) owned by root but with a
    looser mode (Debian's package ships C(/etc/openfortivpn) as 0755) is tightened to 0700 and
    reported as a change. Any other existing directory (say C(/etc) for O(path=/etc/corp.conf)) is
    never changed. A directory owned by anyone else, a symlink, or a directory that is or lies below
    one writable by others (without the sticky bit) is refused.
  - The file name must end in C(.conf).
  - O(ca_file), O(user_cert) and O(user_key) must not be replaceable by anyone but root (whoever can
    replace the CA bundle can impersonate the gateway); a world-readable O(user_key) is refused.
  - Keys that let whoever writes the file run code or write files as root (C(pppd-plugin),
    C(pppd-log), C(pppd-call), C(pppd-ipparam), C(pinentry)) are refused, as are keys openfortivpn
    does not know (openfortivpn refuses to start on an unknown key).
  - O(password), O(otp) and O(pem_passphrase) never appear in the output, the diff or the host's
    log. Values in O(extra) are not secret and are shown.
extends_documentation_fragment:
  - supervised.background.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Secret values are shown as C(********).
options:
  name:
    description:
      - Connection name; the default O(path) is C(/etc/openfortivpn/NAME.conf), which an
        C(openfortivpn@NAME.service) unit can read.
      - "Letters, digits, C(_ . : -)."
    type: str
  path:
    description: Full path of the configuration file. Required when O(name) is not given.
    type: path
  state:
    description: C(present) writes the file, C(absent) removes it (the directory is kept).
    type: str
    choices: [present, absent]
    default: present
  host:
    description: VPN gateway host name or address. Required with O(state=present).
    type: str
  port:
    description: VPN gateway port.
    type: int
    default: 443
  username:
    description: VPN account user name.
    type: str
  password:
    description: VPN account password. Never shown in output or diff.
    type: str
  otp:
    description: One-time password (C(otp) key). Never shown in output or diff.
    type: str
  pem_passphrase:
    description: Passphrase of an encrypted O(user_key) (C(pem-passphrase) key). Never shown in output or diff.
    type: str
  realm:
    description: Authentication realm.
    type: str
  trusted_cert:
    description: SHA-256 digests (64 hex characters) of gateway certificates to trust.
    type: list
    elements: str
    default: []
  ca_file:
    description: Absolute path of a PEM CA bundle used instead of the system store.
    type: path
  user_cert:
    description:
      - Absolute path of a PEM client certificate, or a C(pkcs11:) URI.
      - A URI with C(module-path) or C(module-name) (loads a library as root) or C(pin-value) or
        C(pin-source) (a secret in a non-secret option) is refused.
    type: str
  user_key:
    description: Absolute path of the PEM key for O(user_cert).
    type: path
  set_dns:
    description: Whether openfortivpn adds the VPN's name servers to C(/etc/resolv.conf).
    type: bool
  set_routes:
    description: Whether openfortivpn sets routes through the tunnel.
    type: bool
  pppd_use_peerdns:
    description: Whether pppd asks the peer for DNS servers.
    type: bool
  half_internet_routes:
    description: Whether to add 0.0.0.0/1 and 128.0.0.0/1 routes instead of replacing the default route.
    type: bool
  persistent:
    description: Reconnect interval in seconds (0 = do not reconnect).
    type: int
  extra:
    description:
      - Other openfortivpn configuration keys, written as C(key = value); booleans as C(1)/C(0).
      - 'Allowed keys: C(otp-prompt), C(otp-delay), C(no-ftm-push), C(use-resolvconf), C(use-syslog), C(insecure-ssl), C(cipher-list), C(min-tls),
        C(seclevel-1), C(user-agent), C(hostcheck), C(check-virtual-desktop), C(sni),
        C(pppd-ifname), C(pppd-accept-remote). C(sni) and C(pppd-accept-remote) need
        openfortivpn 1.20 or later (older versions refuse the whole file).'
      - Keys with an option of their own (C(host), C(password), C(otp), C(pem-passphrase)...) must use
        that option. Values given here are not secret (they are shown in output and logs).
      - C(pppd-plugin), C(pppd-log), C(pppd-call), C(pppd-ipparam) and C(pinentry) are refused
        because they let the file's writer run code or write files as root.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Corporate tunnel for the CI runner
  supervised.background.vpn_config:
    name: corp
    host: vpn.example.com
    username: ci-bot
    password: "{{ vault_corp_vpn_password }}"
    trusted_cert:
      - e46d4aff08ba6914e64daa85bc6112a422fa7ce16631bff0b592a28556f993db
    set_dns: false
    set_routes: true
    persistent: 10
    extra:
      min-tls: "1.2"
"""

RETURN = r"""
path:
  description: The configuration file managed.
  returned: always
  type: str
  sample: /etc/openfortivpn/corp.conf
diff:
  description: Before/after texts with secrets replaced by C(********) (with --diff).
  returned: when changed and diff mode is on
  type: dict
"""

import os
import re
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supervised.background.plugins.module_utils import safe_file
from ansible_collections.supervised.background.plugins.module_utils.validate import (
    InputError,
    absolute_path,
    instance_name,
    single_line,
)

HEADER = "# Managed by supervised.background.vpn_config. Do not edit.\n"
REDACTED = "********"
SECRET_KEYS = frozenset({"password", "otp", "pem-passphrase"})

_HOST_RE = re.compile(r"^[A-Za-z0-9._:-]+$")
_DIGEST_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,15}$")
_EXTRA_KEY_RE = re.compile(r"[a-z0-9-]+")
# pkcs11 URI attributes that load a library (code as root) or carry a secret in a shown option.
_PKCS11_REFUSED = ("module-path", "module-name", "pin-value", "pin-source")

# Keys refused in `extra` because they let the writer of the file act as root.
DANGEROUS_KEYS = {
    "pppd-plugin": "it makes the root pppd load a shared library of the writer's choice (code execution as root)",
    "pppd-log": "the root pppd writes its debug log to the named file, overwriting any file on the host",
    "pppd-call": "it replaces openfortivpn's pppd arguments with an options file that can run scripts as root",
    "pppd-ipparam": "its value is handed to the ip-up/ip-down scripts pppd runs as root",
    "pinentry": "it names a program openfortivpn runs as root",
    "ppp-system": "it is only for FreeBSD's ppp and hands over a ppp.conf profile",
}
# Keys with an option of their own.
STRUCTURED_KEYS = {
    "host": "host", "port": "port", "username": "username", "password": "password",
    "realm": "realm", "trusted-cert": "trusted_cert", "ca-file": "ca_file", "user-cert": "user_cert",
    "user-key": "user_key", "set-dns": "set_dns", "set-routes": "set_routes",
    "pppd-use-peerdns": "pppd_use_peerdns", "half-internet-routes": "half_internet_routes",
    "persistent": "persistent", "otp": "otp", "pem-passphrase": "pem_passphrase",
}
# Other keys openfortivpn's config parser knows, with the kind of value each takes.
EXTRA_KEYS = {
    "otp-prompt": "str", "otp-delay": "uint", "no-ftm-push": "bool", "use-resolvconf": "bool", "use-syslog": "bool",
    "insecure-ssl": "bool", "cipher-list": "str", "min-tls": "tls", "seclevel-1": "bool",
    "user-agent": "str", "hostcheck": "str", "check-virtual-desktop": "str", "sni": "host",
    "pppd-ifname": "ifname", "pppd-accept-remote": "bool",
}
# Keys whose values a diff may show.
SHOWN_KEYS = frozenset(set(STRUCTURED_KEYS) | set(EXTRA_KEYS)) - SECRET_KEYS
# Order the structured options are written in.
ORDER = ["host", "port", "username", "password", "otp", "realm", "trusted-cert", "ca-file", "user-cert",
         "user-key", "pem-passphrase", "set-dns", "set-routes", "pppd-use-peerdns", "half-internet-routes", "persistent"]


def text_value(field, value, maximum=None, secret=False):
    """A value openfortivpn reads back unchanged: one line, no edge whitespace, not empty."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{field}: must be a string")
    value = str(value)
    if secret:
        _secret_line(field, value)
    else:
        single_line(field, value)
    if value == "":
        raise InputError(f"{field}: must not be empty (leave the option out instead)")
    if value != value.strip():
        raise InputError(f"{field}: must not start or end with whitespace (openfortivpn strips it)")
    if maximum is not None and len(value) > maximum:
        raise InputError(f"{field}: is longer than {maximum} characters (openfortivpn would cut it short)")
    return value


def _secret_line(field, value):
    # Same rule as validate.single_line, but never echoing the value.
    for ch in value:
        if ch in "\r\n" or ord(ch) < 32 or ord(ch) == 127:
            raise InputError(f"{field}: must be a single line without control characters")


def bool_value(field, value):
    if not isinstance(value, bool):
        if isinstance(value, str) and value.lower() in ("yes", "true", "1", "on", "no", "false", "0", "off"):
            return "1" if value.lower() in ("yes", "true", "1", "on") else "0"
        raise InputError(f"{field}: '{value}' is not a boolean")
    return "1" if value else "0"


def uint_value(field, value, maximum=4294967295, minimum=0):
    if isinstance(value, bool):
        raise InputError(f"{field}: '{value}' is not a whole number")
    try:
        number = int(str(value), 10)
    except ValueError:
        raise InputError(f"{field}: '{value}' is not a whole number") from None
    if number < minimum or number > maximum:
        raise InputError(f"{field}: {number} must be between {minimum} and {maximum}")
    return str(number)


def redact(text):
    """Hide every value but the ones this module knows are not secret (used for diffs).

    The file before a run may have been edited by hand: unknown keys, comments and odd lines can
    hold a secret as well, so only known non-secret keys and this module's header are shown."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = []
    for line in text.splitlines(keepends=True):
        key, sep, _value = line.partition("=")
        stripped = line.strip()
        if line == HEADER or not stripped:
            out.append(line)
        elif stripped.startswith("#"):
            out.append(f"# {REDACTED}\n")
        elif sep and key.strip() in SHOWN_KEYS:
            out.append(line if line.endswith("\n") else line + "\n")
        elif sep:
            out.append(f"{key.rstrip()} = {REDACTED}\n")
        else:
            out.append(f"{REDACTED}\n")
    return "".join(out)


class VpnConfig:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.secrets = []

    def _path(self):
        p = self.params
        if p["path"]:
            absolute_path("path", p["path"])
            path = p["path"]
        else:
            instance_name("name", p["name"])
            path = f"/etc/openfortivpn/{p['name']}.conf"
        if path.endswith("/"):
            raise InputError(f"path: '{path}' names a directory, not a file")
        if not path.endswith(".conf") or path.endswith("/.conf"):
            raise InputError(
                f"path: '{path}' must name a '.conf' file (a file in another place, such as a shell "
                "snippet or a cron/sudoers/apt directory, would be read as something else)"
            )
        return path

    def _entries(self):
        p = self.params
        values = {}
        host = text_value("host", p["host"], 253)
        if not _HOST_RE.match(host):
            raise InputError(f"host: '{host}' is not a host name or address (letters, digits, '.', ':', '-')")
        values["host"] = host
        values["port"] = uint_value("port", p["port"], 65535, 1)
        if p["username"] is not None:
            values["username"] = text_value("username", p["username"], 64)
        for option, key in (("password", "password"), ("otp", "otp"), ("pem_passphrase", "pem-passphrase")):
            if p[option] is not None:
                values[key] = text_value(option, p[option], 255, secret=True)
                self.secrets.append(values[key])
        if p["realm"] is not None:
            values["realm"] = text_value("realm", p["realm"], 63)
        certs = []
        for index, digest in enumerate(p["trusted_cert"]):
            digest = text_value(f"trusted_cert[{index}]", digest)
            if not _DIGEST_RE.match(digest):
                raise InputError(
                    f"trusted_cert[{index}]: '{digest}' is not a SHA-256 digest (64 hex characters, "
                    "from: openssl x509 -outform der | sha256sum)"
                )
            certs.append(digest.lower())
        if certs:
            values["trusted-cert"] = certs
        if p["ca_file"] is not None:
            values["ca-file"] = self._trusted_input("ca_file", p["ca_file"])
        if p["user_cert"] is not None:
            cert = text_value("user_cert", p["user_cert"])
            if cert.startswith("pkcs11:"):
                attributes = [part.split("=", 1)[0].strip().lower()
                              for part in re.split(r"[;?&]", cert[len("pkcs11:"):])]
                for name in _PKCS11_REFUSED:
                    if name in attributes:
                        raise InputError(
                            f"user_cert: the pkcs11 URI attribute '{name}' is refused (module-path and "
                            "module-name load a library as root; pin-value and pin-source put a secret "
                            "where it is shown)"
                        )
            else:
                self._trusted_input("user_cert", cert)
            values["user-cert"] = cert
        if p["user_key"] is not None:
            values["user-key"] = self._trusted_input("user_key", p["user_key"], private=True)
        for option in ("set_dns", "set_routes", "pppd_use_peerdns", "half_internet_routes"):
            if p[option] is not None:
                values[option.replace("_", "-")] = bool_value(option, p[option])
        if p["persistent"] is not None:
            values["persistent"] = uint_value("persistent", p["persistent"])

        entries = []
        for key in ORDER:
            if key not in values:
                continue
            for value in values[key] if isinstance(values[key], list) else [values[key]]:
                entries.append((key, value))
        for key in sorted(p["extra"] or {}, key=str):
            entries.append((key, self._extra(key, p["extra"][key])))
        return entries

    def _trusted_input(self, field, path, private=False):
        """A file openfortivpn reads as root must not be replaceable by anyone else: a CA bundle
        another user can write lets them impersonate the gateway."""
        absolute_path(field, path)
        single_line(field, path)
        if not re.fullmatch(r"/[A-Za-z0-9@%+._/:-]+", path):
            raise InputError(f"{field}: '{path}' may only use letters, digits and @ % + . / _ : -")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.module.warn(f"{field}: '{path}' does not exist yet; openfortivpn will fail until it does")
            st = None
        except OSError as exc:
            raise InputError(f"{field}: '{path}' cannot be inspected: {exc.strerror}") from None
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                raise InputError(f"{field}: '{path}' is a symlink; name the real file")
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{field}: '{path}' is not a regular file")
            if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
                raise InputError(
                    f"{field}: '{path}' is owned by uid {st.st_uid} with mode "
                    f"{stat.S_IMODE(st.st_mode):04o}; someone other than root could replace it "
                    "(keep it root-owned and not group/world writable)"
                )
            if private and st.st_mode & 0o004:
                raise InputError(
                    f"{field}: '{path}' is readable by everyone (mode {stat.S_IMODE(st.st_mode):04o}); "
                    "a private key must not be"
                )
        try:
            safe_file.check_trusted_directory(os.path.dirname(path))
        except safe_file.FileError as err:
            raise InputError(f"{field}: {err}") from None
        return path

    def _extra(self, key, value):
        field = f"extra.{key}"
        if not isinstance(key, str) or not _EXTRA_KEY_RE.fullmatch(key):
            raise InputError(f"extra: '{key}' is not an openfortivpn key (lower-case letters, digits and '-')")
        if key in DANGEROUS_KEYS:
            raise InputError(f"{field}: refused because {DANGEROUS_KEYS[key]}")
        if key in STRUCTURED_KEYS:
            raise InputError(f"{field}: use the module option '{STRUCTURED_KEYS[key]}' instead")
        kind = EXTRA_KEYS.get(key)
        if kind is None:
            raise InputError(
                f"extra: '{key}' is not an openfortivpn config key this module knows (openfortivpn "
                f"refuses to start on an unknown key); known: {', '.join(sorted(EXTRA_KEYS))}"
            )
        if value is None:
            raise InputError(f"{field}: needs a value")
        if kind == "bool":
            return bool_value(field, value)
        if kind == "uint":
            return uint_value(field, value)
        text = text_value(field, value, 255)
        if kind == "tls" and text not in ("1.0", "1.1", "1.2", "1.3"):
            raise InputError(f"{field}: '{text}' must be one of 1.0, 1.1, 1.2, 1.3 (quote it in YAML)")
        if kind == "host" and not _HOST_RE.match(text):
            raise InputError(f"{field}: '{text}' is not a host name")
        if kind == "ifname" and not _IFNAME_RE.match(text):
            raise InputError(f"{field}: '{text}' is not an interface name (up to 15 letters, digits, '_', '-')")
        return text

    def _check_directory(self, directory):
        """Refuse a directory someone other than root controls; say whether it must be created."""
        try:
            st = os.lstat(directory)
        except FileNotFoundError:
            st = None
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                raise InputError(f"path: directory '{directory}' is a symlink; refusing to write through it")
            if not stat.S_ISDIR(st.st_mode):
                raise InputError(f"path: '{directory}' exists and is not a directory")
            if st.st_uid != 0:
                raise InputError(
                    f"path: directory '{directory}' is owned by uid {st.st_uid}, not root; its owner "
                    "could read or swap the credentials"
                )
            if st.st_mode & 0o022 and not self._dedicated(directory):
                # Sticky or not (/tmp), others could plant the file name before us or after a removal.
                raise InputError(
                    f"path: directory '{directory}' is writable by others (mode "
                    f"{stat.S_IMODE(st.st_mode):04o}); keep the credentials in a directory only root can change"
                )
        try:
            safe_file.check_trusted_directory(os.path.dirname(directory))
            if st is not None and not self._dedicated(directory):
                # Not ours to tighten: it must already be safe as it is.
                safe_file.check_trusted_directory(directory)
        except safe_file.FileError as err:
            raise InputError(f"path: {err}; the config could be swapped") from None
        return st is None

    @staticmethod
    def _dedicated(directory):
        """Only a directory of openfortivpn's own is created or tightened to 0700; a shared one
        (/etc, /root...) is left exactly as it is."""
        return os.path.basename(directory.rstrip("/")) == "openfortivpn"

    def run(self):
        p = self.params
        try:
            path = self._path()
            entries = self._entries() if p["state"] == "present" else []
            directory = os.path.dirname(path)
            missing = self._check_directory(directory) if p["state"] == "present" else False
        except InputError as err:
            self.module.fail_json(msg=str(err))
        for secret in self.secrets:
            self.module.no_log_values.add(secret)
        result = {"changed": False, "path": path}
        try:
            if p["state"] == "absent":
                previous = safe_file.read_state(path)
                res = safe_file.remove_file(
                    self.module, path, diff_before=redact(previous.content) if previous else None)
                result["changed"] = res.changed
                if res.diff:
                    result["diff"] = res.diff
                return result

            content = HEADER + "".join(f"{key} = {value}\n" for key, value in entries)
            redacted_after = redact(content)
            dir_changed = False
            if missing or self._dedicated(directory):
                dir_changed = safe_file.ensure_directory(self.module, directory, "root", "root", 0o700)
            if missing and self.module.check_mode:
                result["changed"] = True
                if self.module._diff:
                    result["diff"] = safe_file.make_diff(path, None, redacted_after)
                return result
            previous = safe_file.read_state(path)
            res = safe_file.write_file(
                self.module, path, content, owner="root", group="root", mode=0o600,
                diff_before=redact(previous.content) if previous else None,
                diff_after=redacted_after)
        except (safe_file.FileError, OSError) as err:
            self.module.fail_json(msg=f"path: {err}", **result)
        result["changed"] = res.changed or dir_changed
        if res.diff:
            result["diff"] = res.diff
        elif dir_changed and self.module._diff:
            result["diff"] = {"before_header": directory, "after_header": directory,
                              "before": "", "after": "# directory tightened to root:root 0700\n"}
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            path=dict(type="path"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
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
        ),
        required_one_of=[("name", "path")],
        required_if=[("state", "present", ["host"])],
        supports_check_mode=True,
    )
    result = VpnConfig(module).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
