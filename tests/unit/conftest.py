"""Shared fixtures: run a module's main() in-process and get its result dict back.

``run_module(main, args, check_mode=False, diff=False)`` returns the dict the module exited with;
a failure comes back with ``failed: True`` and ``msg`` instead of raising.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import pwd

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.supervised.background.plugins.module_utils import accounts, locking, provision, secret_files, systemd

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _trusted_chain(path):
    """Whether ``path`` and every directory above it is owned by root (or us) and writable by no one else."""
    for part in [path] + list(path.parents):
        st = part.stat()
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            return False
    return True


def pytest_configure(config):
    """Temporary directories outside /tmp: the trust policy refuses sticky world-writable
    directories (anyone can create a missing name there), so tests that write through the
    collection's file writer need a tree only root can change. That is the checkout's .build,
    or, for a checkout below such a directory (a clone in /tmp), a directory in the user's home."""
    if not config.option.basetemp:
        build = ROOT / ".build"
        build.mkdir(parents=True, exist_ok=True)
        if _trusted_chain(build):
            base = build / "pytest-tmp"
        else:
            home = pathlib.Path(pwd.getpwuid(os.geteuid()).pw_dir)
            base = home / ".cache" / "supervised-background-pytest" / hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
            base.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        config.option.basetemp = str(base)


@pytest.fixture(autouse=True)
def keep_umask():
    """Code under test (the job-finish helper) sets the process umask; every test starts with 022."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(autouse=True)
def private_locks(monkeypatch, tmp_path_factory):
    """Host locks of the modules under test live in a private directory."""
    lock_dir = tmp_path_factory.getbasetemp() / "locks"
    monkeypatch.setattr(locking, "LOCK_DIR", str(lock_dir))
    yield


class _ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


@pytest.fixture
def run_module(monkeypatch):
    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        raise _ModuleExit(kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs["failed"] = True
        kwargs["msg"] = msg
        raise _ModuleExit(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def _run(main, args, check_mode=False, diff=False):
        module_args = dict(args)
        if check_mode:
            module_args["_ansible_check_mode"] = True
        if diff:
            module_args["_ansible_diff"] = True
        with patch_module_args(module_args):
            try:
                main()
            except _ModuleExit as done:
                # Round-trip through JSON like the real wire, so tests see what Ansible would.
                return json.loads(json.dumps(done.result, default=str))
        raise AssertionError("module returned without exit_json/fail_json")

    return _run


@pytest.fixture
def snapshot_tree():
    """Return a function that records every path, mode and content under a directory."""
    import os

    def _snap(root):
        state = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                content = None
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as handle:
                        content = handle.read()
                state[path] = (st.st_mode, st.st_uid, st.st_gid, content,
                               os.readlink(path) if os.path.islink(path) else None)
        return state

    return _snap


def _provisioned_host(tmp_path, monkeypatch, removed):
    """A host tree for the modules that provision a service (worker, periodic_job): unit dir,
    /etc/supervised-background, /var/lib, /var/log, /var/cache and /opt under ``tmp_path``, with the
    module_utils pointed at it and account changes recorded (``removed(user)`` is what a removal
    reports). Returns the directories by name, plus ``root``, ``own`` and ``accounts``."""
    root = tmp_path / "host"
    dirs = {name: root / name for name in ("units", "etc", "var-lib", "var-log", "var-cache", "opt")}
    for directory in dirs.values():
        directory.mkdir(parents=True)
    own = dirs["etc"] / "supervised-background"
    monkeypatch.setattr(systemd, "SYSTEM_UNIT_DIR", str(dirs["units"]))
    monkeypatch.setattr(provision, "ENV_DIR", str(own))
    monkeypatch.setattr(secret_files, "COLLECTION_DIR", str(own))
    monkeypatch.setattr(secret_files, "CREDENTIAL_DIR", str(own / "credentials"))
    monkeypatch.setattr(provision, "OWNER_DIRS", (("state_directory", str(dirs["var-lib"])),
                                                  ("logs_directory", str(dirs["var-log"])),
                                                  ("cache_directory", str(dirs["var-cache"]))))
    original_init = provision.Provision.__init__

    def init(self, module, name, params):
        original_init(self, module, name, params)
        self.cred_dir = os.path.join(secret_files.CREDENTIAL_DIR, name)

    monkeypatch.setattr(provision.Provision, "__init__", init)
    account_calls = []
    monkeypatch.setattr(accounts, "ensure_system_account",
                        lambda module, user, group: account_calls.append(("ensure", user, group)) or [])
    monkeypatch.setattr(accounts, "remove_account",
                        lambda module, user, group: account_calls.append(("remove", user, group)) or removed(user))
    dirs["root"] = root
    dirs["own"] = own
    dirs["accounts"] = account_calls
    return dirs


@pytest.fixture
def provisioned_host(tmp_path, monkeypatch):
    """``provisioned_host(removed=...)`` lays out the host tree of :func:`_provisioned_host`."""
    return lambda removed=lambda user: []: _provisioned_host(tmp_path, monkeypatch, removed)
