# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Files that hold secrets: EnvironmentFiles and systemd credentials.

Both are written through safe_file (temp file with its final owner and mode before the first byte,
atomic rename) in a directory the trust policy trusts as a secret's directory, and their diffs
never carry a value: an EnvironmentFile's diff names keys, a credential's diff says whether it
changed. Every value (of four characters or more, see mask) is added to ``module.no_log_values``
as soon as it is read. Shared by
env_file, credential and worker.
"""

from __future__ import annotations

import os

from ansible_collections.supervised.background.plugins.module_utils import env_rules, safe_file, trust, validate
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError

ENV_HEADER = "# Managed by supervised.background; do not edit\n"
REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted, changed>"
REDACTED_ADDED = "<redacted, added>"
# The collection's own tree: only a directory in it is ever tightened (see ensure_secret_directory).
COLLECTION_DIR = "/etc/supervised-background"
CREDENTIAL_DIR = "/etc/supervised-background/credentials"
CREDENTIAL_ID_RE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
MAX_CREDENTIAL_BYTES = 1 << 20
MIN_MASKED = 4
ENCRYPTED_SUFFIX = ".cred"


def directory_ready(module, path, present):
    """Whether the directory of ``path`` exists (and is trusted as a secret's directory). A missing
    one is an error, or a planned change in check mode, where an earlier task may create it."""
    parent = os.path.dirname(path) or "/"
    if os.path.lexists(parent):
        trust.check("path", parent, trust.SECRET_DIR)
        return True
    if present and not module.check_mode:
        raise InputError(f"path: directory {parent} does not exist; create it first")
    if present:
        module.warn(f"check mode: directory {parent} does not exist yet; the plan assumes an earlier task creates it")
    return False


def ensure_secret_directory(module, directory):
    """Create ``directory`` and its missing parents root:root 0700 (a secret's directory); an
    existing directory is tightened to 0700 only when it is the leaf and lies in the collection's
    own tree (``/etc/supervised-background``): a directory such as ``/etc`` that holds a given file
    is never changed (it must pass the trust policy as it is). Returns True on a change."""
    missing = []
    current = directory
    while not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    changed = False
    for path in reversed(missing):
        changed = safe_file.ensure_directory(module, path, "root", "root", 0o700, purpose=trust.SECRET_DIR) or changed
        if module.check_mode:
            return True
    if not missing:
        # Tighten our own directory; never take over one someone else owns or can write to.
        trust.check("path", directory, trust.SECRET_DIR)
        own = directory == COLLECTION_DIR or directory.startswith(COLLECTION_DIR + "/")
        if own:
            changed = safe_file.ensure_directory(module, directory, "root", "root", 0o700, purpose=trust.SECRET_DIR)
    return changed


def _marker(key, changes):
    if key in changes["added"]:
        return REDACTED_ADDED
    if key in changes["changed"]:
        return REDACTED_CHANGED
    return REDACTED


def mask(module, value):
    """Hide ``value`` in everything the module returns. Ansible replaces every occurrence of a
    masked value, anywhere in the output: a value of one to three characters ("7", "on") would turn
    unrelated names into "V00********" and so show itself; such a value has no fragment of four
    characters to leak, and the module never shows values anyway."""
    if isinstance(value, str) and len(value) >= MIN_MASKED:
        module.no_log_values.add(value)


def write_env_file(module, path, env, owner="root", group="root", mode=0o600):
    """Make the EnvironmentFile ``path`` hold ``env`` (validated ``{key: str}``), or remove it
    (``env`` None). Returns ``(changed, diff, changes)``; ``changes`` names added, removed and
    changed keys."""
    for value in (env or {}).values():
        mask(module, value)
    ready = directory_ready(module, path, env is not None)
    previous = safe_file.read_state(path) if ready else None
    old_env = env_rules.parse_file(previous.content.decode("utf-8", errors="replace")) if previous else {}
    for value in old_env.values():
        mask(module, value)
    new_env = env if env is not None else {}
    shown_old = env_rules.shown_keys(old_env)
    changes = {
        "added": sorted(k for k in new_env if k not in old_env),
        "removed": sorted(k for k in shown_old if k not in new_env),
        "changed": sorted(k for k in new_env if k in old_env and old_env[k] != new_env[k]),
    }
    hidden = len(old_env) - len(shown_old)
    before = "".join(f"{k}={REDACTED}\n" for k in sorted(shown_old))
    if hidden:
        before += f"{REDACTED} ({hidden} more lines)\n"
    if env is not None and not ready:
        after = "".join(f"{k}={REDACTED_ADDED}\n" for k in sorted(new_env))
        return True, safe_file.make_diff(path, None, after) if module._diff else None, changes
    if env is None:
        outcome = safe_file.remove_file(module, path, diff_before=before, purpose=trust.SECRET_DIR)
    else:
        after = "".join(f"{k}={_marker(k, changes)}\n" for k in sorted(new_env))
        outcome = safe_file.write_file(module, path, env_rules.render_file(ENV_HEADER, env), owner=owner, group=group,
                                       mode=mode, diff_before=before, diff_after=after, purpose=trust.SECRET_DIR)
    return outcome.changed, outcome.diff, changes


# -- credentials ----------------------------------------------------------------------------------
def credential_id(field, value):
    return validate.pattern(field, value, CREDENTIAL_ID_RE,
                            "is not a credential name (letters, digits, '_', '.', '-', a letter, digit or '_' first, "
                            "at most 64)")


def credential_value(field, value):
    """A credential is bytes handed to the service as a file: any text (also several lines), at
    most 1 MiB. Never shown."""
    if value is None or isinstance(value, (bool, dict, list)):
        raise InputError(f"{field}: must be a string")
    data = str(value).encode("utf-8", "surrogatepass")
    try:
        str(value).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{field}: is not valid UTF-8 text (a lone surrogate)") from None
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise InputError(f"{field}: is larger than {MAX_CREDENTIAL_BYTES} bytes")
    return data


def systemd_creds(module):
    """The systemd-creds binary, or an error that says the host's systemd is too old to encrypt."""
    binary = module.get_bin_path("systemd-creds")
    if binary is None:
        raise InputError("encrypt: systemd-creds is not installed on this host (systemd 250 or later is needed to "
                         "encrypt credentials; keep encrypt=false, the file is root-only either way)")
    return binary


def encrypt(module, cred_id, data):
    """``systemd-creds encrypt`` with the host key: the result can only be read on this host."""
    binary = systemd_creds(module)
    rc, out, err = module.run_command([binary, "encrypt", "--with-key=host", f"--name={cred_id}", "-", "-"],
                                      data=data, binary_data=True, encoding=None)
    if rc != 0:
        message = (err.decode("utf-8", "replace") if isinstance(err, bytes) else err).strip()
        raise InputError(f"encrypt: systemd-creds could not encrypt credential '{cred_id}': {message}")
    return out


def decrypt(module, cred_id, data):
    binary = systemd_creds(module)
    rc, out, _err = module.run_command([binary, "decrypt", f"--name={cred_id}", "-", "-"], data=data,
                                       binary_data=True, encoding=None)
    return out if rc == 0 else None


def write_credential(module, path, cred_id, data, encrypted=False):
    """Make ``path`` hold the credential ``data`` (bytes; None removes it), root:root 0600. With
    ``encrypted`` the file holds systemd-creds' output, compared by decrypting the current one (the
    ciphertext differs every time). Returns ``(changed, diff)``."""
    ready = directory_ready(module, path, data is not None)
    previous = safe_file.read_state(path) if ready else None
    header = f"credential {cred_id}"
    if data is None:
        outcome = safe_file.remove_file(module, path, diff_before=f"{header}: {REDACTED}\n", purpose=trust.SECRET_DIR)
        return outcome.changed, outcome.diff
    if not ready:
        return True, safe_file.make_diff(path, None, f"{header}: {REDACTED_ADDED}\n") if module._diff else None
    content = data
    before = f"{header}: {REDACTED}\n" if previous is not None else None
    after = f"{header}: {REDACTED_CHANGED if previous is not None else REDACTED_ADDED}\n"
    if encrypted:
        if previous is not None and previous.uid == 0 and previous.mode == 0o600 \
                and decrypt(module, cred_id, previous.content) == data:
            return False, None
        if module.check_mode:
            # Encrypting may create the host key: nothing of it in check mode.
            systemd_creds(module)
            return True, safe_file.make_diff(path, before, after) if module._diff else None
        content = encrypt(module, cred_id, data)
    outcome = safe_file.write_file(module, path, content, owner="root", group="root", mode=0o600,
                                   diff_before=before, diff_after=after, purpose=trust.SECRET_DIR)
    return outcome.changed, outcome.diff
