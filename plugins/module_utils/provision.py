# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a service of the collection needs before its unit: an account, a working directory, its
secrets (EnvironmentFile and credentials), and their removal. Shared by the worker and
periodic_job modules so the order and the rules are written once.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat

from ansible_collections.supervised.background.plugins.module_utils import (
    accounts,
    env_rules,
    safe_file,
    secret_files,
    trust,
    unit_file,
    validate,
)
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

ENV_DIR = "/etc/supervised-background"
# systemd mounts a service's credentials at /run/credentials/UNIT, owned by the service's user, so
# any process of that user could read them there. A service with a mount namespace (every
# hardening profile but "none", and PrivateMounts= which the collection adds otherwise) sees its
# own /run/credentials; outside, the directory is kept root-only, now and at every boot.
CREDENTIALS_RUN_DIR = "/run/credentials"
CREDENTIALS_TMPFILES = "/etc/tmpfiles.d/supervised-background-credentials.conf"
OWNER_DIRS = (("state_directory", "/var/lib"), ("logs_directory", "/var/log"), ("cache_directory", "/var/cache"))

# The working directory is made root:GROUP 0750 (and removed with remove_working_directory): never
# a directory the system lives in, which that would close to everyone else (or delete). Refused: '/',
# every top-level directory, anything in the trees the operating system owns (/usr, /boot, /proc...),
# and the first level below shared ones (/var/lib, /etc/ssl, /home/alice...).
SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/proc", "/sys", "/dev",
                "/run")
SHARED_TREES = ("/var", "/etc", "/home", "/root", "/tmp")


def working_directory(path):
    """Refuse a working directory the system or other programs use."""
    parts = path.strip("/").split("/")
    top = "/" + parts[0]
    if path == "/" or len(parts) < 2 or top in SYSTEM_TREES or (len(parts) == 2 and top in SHARED_TREES):
        raise InputError(f"working_directory: '{path}' is a directory the system or other programs use; the worker "
                         "module makes its working directory root:GROUP 0750 (and may remove it), so name one of its "
                         "own, such as /opt/NAME or /srv/NAME")
    return path


# The module options of a provisioned service (documented in each module).
SPEC = dict(
    create_user=dict(type="bool", default=True),
    secret_env=dict(type="dict", default={}, no_log=True),
    secret_env_file=dict(type="path"),
    secret_credentials=dict(type="dict", default={}, no_log=True),
    encrypt_credentials=dict(type="bool", default=False),
    remove_user=dict(type="bool", default=False),
    remove_working_directory=dict(type="bool", default=False),
)


class Provision:
    """The account, files and secrets of service ``name``. ``params`` is the module's (copied,
    defaults filled in by :meth:`check`)."""

    def __init__(self, module, name, params):
        self.module = module
        self.name = name
        self.params = params
        self.diffs = []
        self.creds = {}
        self.env = None
        self.cred_dir = os.path.join(secret_files.CREDENTIAL_DIR, name)

    def check(self, present):
        """Fill in defaults and validate; returns the unit parameters for service_spec.render."""
        p = self.params
        name = self.name
        p["user"] = validate.account_name("user", p["user"] if p.get("user") is not None else name, numeric=False)
        p["group"] = validate.account_name("group", p["group"] if p.get("group") is not None else p["user"], numeric=False)
        p["working_directory"] = validate.absolute_path(
            "working_directory", p["working_directory"] if p.get("working_directory") is not None else f"/opt/{name}")
        p["secret_env_file"] = validate.absolute_path("secret_env_file", p.get("secret_env_file")
                                                      or os.path.join(ENV_DIR, f"{name}.env"))
        if p.get("state_directory") is None:
            p["state_directory"] = name
        elif p["state_directory"] == "":
            p["state_directory"] = None
        working_directory(p["working_directory"])
        for option in ("state_directory", "logs_directory", "cache_directory"):
            # Validated for state=absent too: remove_user removes what lies there.
            if p.get(option):
                unit_file.owned_dir(option, p[option], name)
        if not present and p.get("state") == "absent":
            self.guard_removal()
        for cred_id in sorted(p.get("secret_credentials") or {}, key=str):
            secret_files.credential_id("secret_credentials", cred_id)
            value = p["secret_credentials"][cred_id]
            self.creds[cred_id] = secret_files.credential_value(f"secret_credentials.{cred_id}", value)
            secret_files.mask(self.module, str(value))
        unit_params = dict(p)
        if present:
            self.env = env_rules.environment("secret_env", p.get("secret_env") or {})
            unit_params["environment_files"] = [p["secret_env_file"]] + list(p.get("environment_files") or [])
            option = "encrypted_credentials" if p.get("encrypt_credentials") else "credentials"
            paths = {cid: self.cred_path(cid) for cid in self.creds}
            for cid in paths:
                if cid in (p.get(option) or {}):
                    raise InputError(f"secret_credentials.{cid}: is also given in {option}")
            unit_params[option] = dict(p.get(option) or {}, **paths)
        return unit_params

    def guard_removal(self):
        """remove_user removes the worker's StateDirectory=/LogsDirectory= and remove_working_directory
        its working directory: only what is demonstrably the worker's (owned by its user; the
        working directory exactly as this module makes it, root:GROUP 0750). Anything else is left
        in place with a warning."""
        p = self.params
        if p.get("remove_user"):
            try:
                uid = pwd.getpwnam(p["user"]).pw_uid
            except KeyError:
                uid = None
            for option, base in OWNER_DIRS:
                sub = p.get(option)
                if not sub:
                    continue
                target = os.path.join(base, sub.split("/")[0])
                if "%" in target or not os.path.lexists(target):
                    continue
                st = os.lstat(target)
                if uid is None or st.st_uid != uid or not stat.S_ISDIR(st.st_mode):
                    self.module.warn(f"remove_user: {target} is not a directory owned by {p['user']}; it is left in place")
                    p[option] = None
        if p.get("remove_working_directory") and os.path.lexists(p["working_directory"]):
            st = os.lstat(p["working_directory"])
            try:
                gid = grp.getgrnam(p["group"]).gr_gid
            except KeyError:
                gid = None
            if not stat.S_ISDIR(st.st_mode) or (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != (0, gid, 0o750):
                self.module.warn(f"remove_working_directory: {p['working_directory']} is not the directory the worker "
                                 f"module makes (root:{p['group']} 0750); it is left in place")
                p["remove_working_directory"] = False

    def cred_path(self, cred_id):
        return os.path.join(self.cred_dir, cred_id + (secret_files.ENCRYPTED_SUFFIX if self.params.get(
            "encrypt_credentials") else ""))

    def note(self, diff):
        if diff:
            self.diffs.append(diff)

    def apply(self, result):
        """Account, working directory, EnvironmentFile, credentials. Returns ``(changed,
        secrets_changed)``; fills ``accounts``, ``changed_variables`` and ``credentials`` of
        ``result``."""
        p = self.params
        changes = accounts.ensure_system_account(self.module, p["user"], p["group"]) if p.get("create_user", True) else []
        result["accounts"] = changes
        group = "root" if self.module.check_mode and changes else p["group"]
        changed = safe_file.ensure_directory(self.module, p["working_directory"], "root", group, 0o750) or bool(changes)
        secrets = secret_files.ensure_secret_directory(self.module, os.path.dirname(p["secret_env_file"]))
        env_changed, diff, variables = secret_files.write_env_file(self.module, p["secret_env_file"], self.env)
        self.note(diff)
        result["changed_variables"] = variables
        secrets = secrets or env_changed
        if self.creds:
            secrets = secret_files.ensure_secret_directory(self.module, self.cred_dir) or secrets
        for cred_id, data in self.creds.items():
            cred_changed, diff = secret_files.write_credential(self.module, self.cred_path(cred_id), cred_id, data,
                                                               encrypted=p.get("encrypt_credentials"))
            self.note(diff)
            secrets = secrets or cred_changed
        result["credentials"] = sorted(self.creds)
        if self.creds or p.get("credentials") or p.get("encrypted_credentials"):
            changed = hide_credentials_dir(self.module) or changed
        return changed, secrets

    def remove(self, result):
        """Remove the EnvironmentFile and the credentials; with remove_working_directory and
        remove_user also those and the files the service owns. Fills ``removed`` and
        ``accounts``; returns whether anything changed."""
        p = self.params
        removed = result.setdefault("removed", [])
        if self.remove_tree(self.cred_dir):
            removed.append(self.cred_dir)
        if os.path.lexists(os.path.dirname(p["secret_env_file"])):
            changed, diff, _vars = secret_files.write_env_file(self.module, p["secret_env_file"], None)
            self.note(diff)
            if changed:
                removed.append(p["secret_env_file"])
        if p.get("remove_working_directory") and self.remove_tree(p["working_directory"], root_owned=False):
            removed.append(p["working_directory"])
        result["accounts"] = []
        if p.get("remove_user"):
            for option, base in OWNER_DIRS:
                sub = p.get(option)
                if sub:
                    target = os.path.join(base, sub.split("/")[0])
                    if "%" not in target and self.remove_tree(target, root_owned=False):
                        removed.append(target)
            result["accounts"] = accounts.remove_account(self.module, p["user"], p["group"])
        return bool(removed or result["accounts"])

    def remove_tree(self, path, root_owned=True):
        """Remove a directory the collection made (never through a symlink). Returns True when
        something was (or would be) removed."""
        if not os.path.lexists(path):
            return False
        if os.path.islink(path) or not os.path.isdir(path):
            raise safe_file.FileError(f"{path}: is not a directory; refusing to remove it")
        trust.check("path", os.path.dirname(path), trust.WRITE_DIR)
        if root_owned:
            trust.check("path", path, trust.WRITE_DIR)
        if not self.module.check_mode:
            shutil.rmtree(path)
        return True


def hide_credentials_dir(module):
    """Keep /run/credentials root-only (now, and at boot through tmpfiles.d). Returns True on a
    change."""
    result = safe_file.write_file(module, CREDENTIALS_TMPFILES,
                                  "# Managed by supervised.background: credentials are for their service only.\n"
                                  f"d {CREDENTIALS_RUN_DIR} 0700 root root -\n", owner="root", group="root", mode=0o644)
    changed = result.changed
    try:
        st = os.lstat(CREDENTIALS_RUN_DIR)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) != 0o700:
        changed = True
        if not module.check_mode:
            os.chmod(CREDENTIALS_RUN_DIR, 0o700)
    return changed
