# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The options of an openfortivpn configuration (module_utils/openfortivpn.py), documented once."""

    DOCUMENTATION = r"""
options:
  host:
    description: VPN gateway host name or address. Required with O(state=present).
    type: str
  port:
    description: VPN gateway port.
    type: int
    default: 443
  username:
    description: VPN account user name (at most 63 bytes).
    type: str
  password:
    description:
      - VPN account password (at most 256 bytes). Never shown in output, diffs or the host's log.
      - Refused, without showing it, when it holds a control character, a line separator or a Unicode
        noncharacter, or starts or ends with whitespace (openfortivpn would split or trim it).
    type: str
  otp:
    description: One-time password (C(otp) key, at most 63 bytes). Never shown; same rules as O(password).
    type: str
  pem_passphrase:
    description:
      - Passphrase of an encrypted O(user_key) (C(pem-passphrase) key, openfortivpn 1.17 and later, at most 31
        bytes). Never shown; same rules as O(password).
    type: str
  realm:
    description: Authentication realm (at most 63 bytes).
    type: str
  trusted_cert:
    description: SHA-256 digests (64 hex characters) of gateway certificates to trust.
    type: list
    elements: str
    default: []
  ca_file:
    description:
      - Absolute path of a PEM CA bundle used instead of the system store. It must pass the collection's trust
        policy as a file root reads (whoever can replace it can impersonate the gateway).
    type: path
  user_cert:
    description:
      - Absolute path of a PEM client certificate (trusted like O(ca_file)), or a C(pkcs11:) URI.
      - A URI with C(module-path) or C(module-name) (loads a library as root) or C(pin-value) or C(pin-source)
        (a secret in a non-secret option) is refused.
    type: str
  user_key:
    description: Absolute path of the PEM key for O(user_cert); trusted like O(ca_file), and not readable by everyone.
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
      - 'Allowed keys: C(otp-prompt), C(otp-delay), C(no-ftm-push), C(use-resolvconf), C(use-syslog),
        C(insecure-ssl), C(cipher-list), C(min-tls), C(seclevel-1), C(user-agent), C(hostcheck),
        C(check-virtual-desktop), C(pppd-ifname), and with openfortivpn 1.23 or later C(sni) and
        C(pppd-accept-remote).'
      - A key the installed openfortivpn does not know is refused; openfortivpn stops reading the file at such a
        key, so every key after it (C(trusted-cert) among them) would silently be lost.
      - Keys with an option of their own (C(host), C(password), C(otp), C(pem-passphrase)...) must use that option.
        Values given here are not secret (they are shown in output and logs).
      - C(pppd-plugin), C(pppd-log), C(pppd-call), C(pppd-ipparam), C(pinentry), C(ppp-system), C(pppd),
        C(cookie) and C(saml-login) are refused because they let the file's writer run code or write files as
        root, or carry a session secret.
    type: dict
    default: {}
"""
