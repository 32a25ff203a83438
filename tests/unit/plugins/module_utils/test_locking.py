"""locking: per-object host locks with bounded waits, a holder record, shared locks in check mode.

A second holder is a real second process (flock locks belong to open files, so a thread of the
same process would share nothing real)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest
from ansible_collections.supervised.background.plugins.module_utils import locking
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError


class Failed(Exception):
    pass


class FakeModule:
    _name = "supervised.background.env_file"

    def __init__(self, check_mode=False):
        self.check_mode = check_mode

    def fail_json(self, msg, **kw):
        raise Failed(msg, kw)


@pytest.fixture
def lock_dir(tmp_path):
    return str(tmp_path / "run" / "lock")


HOLDER = r"""
import fcntl, json, os, sys, time
path, mode, record = sys.argv[1], sys.argv[2], sys.argv[3]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX if mode == "ex" else fcntl.LOCK_SH)
if record:
    os.ftruncate(fd, 0); os.pwrite(fd, record.encode(), 0)
print("held", flush=True)
time.sleep(30)
"""


@pytest.fixture
def holder(lock_dir):
    procs = []

    def _hold(kind, name, mode="ex", record=None):
        locking._ensure_dir(lock_dir)
        path = os.path.join(lock_dir, locking._file_name(kind, name))
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, path, mode, json.dumps(record) if record else ""],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield _hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_lock_dir_and_file_are_root_only_and_record_is_cleared(lock_dir):
    with locking.host_lock(FakeModule(), ("file", "/etc/app/secrets.env"), timeout=1, directory=lock_dir) as waited:
        assert waited < 1
        st = os.lstat(lock_dir)
        assert stat.S_IMODE(st.st_mode) == 0o700
        (name,) = os.listdir(lock_dir)
        assert name.startswith("file-_etc_app_secrets.env-") and name.endswith(".lock")
        path = os.path.join(lock_dir, name)
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        record = json.loads(open(path, encoding="utf-8").read())
        assert record["pid"] == os.getpid() and record["module"] == FakeModule._name
        assert record["object"] == "file /etc/app/secrets.env" and set(record) == {"pid", "module", "since", "object"}
    assert open(path, encoding="utf-8").read() == ""


def test_timeout_names_object_and_holder(lock_dir, holder):
    proc = holder("unit", "w@.service", record={"pid": 4242, "module": "supervised.background.worker",
                                                "since": time.time() - 7})
    start = time.monotonic()
    with pytest.raises(Failed) as err:
        with locking.host_lock(FakeModule(), ("unit", "w@.service"), timeout=0.3, directory=lock_dir):
            pytest.fail("must not get the lock")
    assert 0.25 <= time.monotonic() - start < 5
    msg, kw = err.value.args
    assert msg.startswith("lock_timeout: unit w@.service is being changed by PID 4242 (supervised.background.worker, for")
    assert kw == {"changed": False, "lock_timeout": True}
    assert proc.poll() is None


def test_holder_without_record(lock_dir, holder):
    holder("file", "/x")
    with pytest.raises(Failed, match=r"another run \(holder unknown\)"):
        with locking.host_lock(FakeModule(), ("file", "/x"), timeout=0, directory=lock_dir):
            pass


def test_check_mode_shares_and_waits_for_a_real_run(lock_dir, holder):
    holder("file", "/shared", mode="sh")
    # Another check run does not block a check run...
    with locking.host_lock(FakeModule(check_mode=True), ("file", "/shared"), timeout=0, directory=lock_dir):
        pass
    # ...a real run waits for it.
    with pytest.raises(Failed, match="lock_timeout"):
        with locking.host_lock(FakeModule(), ("file", "/shared"), timeout=0.1, directory=lock_dir):
            pass
    holder("file", "/exclusive")
    with pytest.raises(Failed, match="lock_timeout"):
        with locking.host_lock(FakeModule(check_mode=True), ("file", "/exclusive"), timeout=0.1, directory=lock_dir):
            pass


def test_several_objects_in_one_order_and_all_released(lock_dir):
    objects = [("unit", "b@.service"), ("file", "/z"), ("unit", "a@.service"), ("file", "/z")]
    with locking.host_lock(FakeModule(), objects, timeout=1, directory=lock_dir):
        assert len(os.listdir(lock_dir)) == 3
    # Released: an exclusive lock by another process succeeds at once.
    for name in os.listdir(lock_dir):
        code = ("import fcntl,os,sys; fd=os.open(sys.argv[1], os.O_RDWR); "
                "fcntl.flock(fd, fcntl.LOCK_EX|fcntl.LOCK_NB)")
        subprocess.run([sys.executable, "-c", code, os.path.join(lock_dir, name)], check=True)


def test_released_when_the_block_fails(lock_dir):
    with pytest.raises(RuntimeError):
        with locking.host_lock(FakeModule(), ("file", "/boom"), timeout=1, directory=lock_dir):
            raise RuntimeError("boom")
    with locking.host_lock(FakeModule(), ("file", "/boom"), timeout=0, directory=lock_dir):
        pass


def test_names_that_would_escape_the_directory_stay_inside(lock_dir):
    with locking.host_lock(FakeModule(), [("file", "../../etc/passwd"), ("file", "a\nb")], timeout=1,
                           directory=lock_dir):
        names = os.listdir(lock_dir)
    assert all("/" not in n and "\n" not in n for n in names) and len(names) == 2
    # Two names that sanitise alike still get two locks.
    assert locking._file_name("file", "/a b") != locking._file_name("file", "/a_b")


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_a_lock_dir_others_could_plant_is_refused(tmp_path, mode):
    planted = tmp_path / "run" / "lock"
    planted.mkdir(parents=True)
    os.chmod(planted, mode)
    with pytest.raises(Failed, match="not a directory owned by root"):
        with locking.host_lock(FakeModule(), ("file", "/x"), timeout=0, directory=str(planted)):
            pass


@pytest.mark.parametrize("value,seconds", [("5min", 300.0), (0, 0.0), ("1.5", 1.5), (10, 10.0)])
def test_lock_wait(value, seconds):
    assert locking.lock_wait({"lock_timeout": value}) == seconds


@pytest.mark.parametrize("value", ["forever", -1, "2d", True])
def test_lock_wait_bad(value):
    with pytest.raises(InputError, match="^lock_timeout:"):
        locking.lock_wait({"lock_timeout": value})
