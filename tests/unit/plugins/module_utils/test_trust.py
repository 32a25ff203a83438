"""trust: the one policy for paths, as a table. Real files, real owners, modes and ACLs.

Each row of TABLE is one situation on disk; each column is a purpose; each cell is what the policy
answers. Read a row as "a path that is <situation> may be trusted as <purpose>?". The answers:

  ok          trusted
  missing     refused: the path does not exist and the purpose needs it
  not-dir     refused: a directory is needed
  not-file    refused: a regular file is needed
  not-exec    refused: an executable is needed
  link        refused: the leaf is a symlink and the purpose wants the real path
  dangling    refused: the leaf is a symlink to nothing
  via-link    refused: a directory on the way is a symlink (sudo matches the path as a string)
  loose       refused: the leaf is writable by its group or by everyone (ACL write shows here too)
  owner       refused: the leaf is owned by someone other than root
  dir-loose   refused: a directory above is writable by its group or everyone
  dir-sticky  refused: a directory above is sticky and world-writable (/tmp): a missing name is anyone's
  dir-owner   refused: a directory above is owned by someone other than root
  default-acl refused: a secret's directory with a default ACL (new files would be shared)

Tests run as root (to chown); the tree lives under the build directory, whose every ancestor is
root-owned and not writable by others (a tree under /tmp could never be trusted).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from ansible_collections.supervised.background.plugins.module_utils import trust

NOBODY = 65534
HAVE_ACL = shutil.which("setfacl") is not None
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")

COLUMNS = ("WRITE_DIR", "SECRET_DIR", "ROOT_DIR", "ROOT_READ", "ROOT_READ_LINK", "ROOT_BINARY", "SUDO_BINARY",
           "SUDO_FILE")

# situation                           WRITE_DIR     SECRET_DIR    ROOT_DIR      ROOT_READ     ROOT_READ_LINK ROOT_BINARY  SUDO_BINARY   SUDO_FILE
TABLE = [
    # -- directories as leaves
    ("dir root 0755", "ok", "ok", "ok", "not-file", "not-file", "not-file", "not-file", "ok"),
    ("dir root 0700", "ok", "ok", "ok", "not-file", "not-file", "not-file", "not-file", "ok"),
    ("dir root 0775", "loose", "loose", "loose", "not-file", "not-file", "not-file", "not-file", "loose"),
    ("dir root 0757", "loose", "loose", "loose", "not-file", "not-file", "not-file", "not-file", "loose"),
    ("dir sticky 1777 (like /tmp)", "loose", "loose", "loose", "not-file", "not-file", "not-file", "not-file", "loose"),
    ("dir owned by nobody 0755", "owner", "owner", "owner", "not-file", "not-file", "not-file", "not-file", "owner"),
    ("dir with default ACL", "ok", "default-acl", "ok", "not-file", "not-file", "not-file", "not-file", "ok"),
    ("dir ACL: nobody may write", "loose", "loose", "loose", "not-file", "not-file", "not-file", "not-file", "loose"),
    ("dir ACL: nobody rwx, mask r-x", "ok", "ok", "ok", "not-file", "not-file", "not-file", "not-file", "ok"),
    # -- files as leaves
    ("file root 0644", "not-dir", "not-dir", "not-dir", "ok", "ok", "not-exec", "not-exec", "ok"),
    ("file root 0755", "not-dir", "not-dir", "not-dir", "ok", "ok", "ok", "ok", "ok"),
    ("file root 0775", "not-dir", "not-dir", "not-dir", "loose", "loose", "loose", "loose", "loose"),
    ("file root 0757", "not-dir", "not-dir", "not-dir", "loose", "loose", "loose", "loose", "loose"),
    ("file owned by nobody 0755", "not-dir", "not-dir", "not-dir", "owner", "owner", "owner", "owner", "owner"),
    ("file ACL: nobody may write", "not-dir", "not-dir", "not-dir", "loose", "loose", "loose", "loose", "loose"),
    ("file ACL: nobody may read", "not-dir", "not-dir", "not-dir", "ok", "ok", "ok", "ok", "ok"),
    ("fifo", "not-dir", "not-dir", "not-dir", "not-file", "not-file", "not-file", "not-file", "ok"),
    # -- what lies above the leaf
    ("file in a dir 0775", "not-dir", "not-dir", "not-dir", "dir-loose", "dir-loose", "dir-loose", "dir-loose", "dir-loose"),
    ("file in a sticky dir 1777", "not-dir", "not-dir", "not-dir", "dir-sticky", "dir-sticky", "dir-sticky", "dir-sticky", "dir-sticky"),
    ("file in a dir owned by nobody", "not-dir", "not-dir", "not-dir", "dir-owner", "dir-owner", "dir-owner", "dir-owner", "dir-owner"),
    ("file two levels below a 0777 dir", "not-dir", "not-dir", "not-dir", "dir-loose", "dir-loose", "dir-loose", "dir-loose", "dir-loose"),
    ("file in a dir ACL: nobody writes", "not-dir", "not-dir", "not-dir", "dir-loose", "dir-loose", "dir-loose", "dir-loose", "dir-loose"),
    ("dir in a sticky dir 1777", "dir-sticky", "dir-sticky", "dir-sticky", "not-file", "not-file", "not-file", "not-file", "dir-sticky"),
    # -- missing leaves
    ("missing, in a good dir", "ok", "ok", "missing", "missing", "missing", "missing", "missing", "ok"),
    ("missing, its parent missing too", "ok", "ok", "missing", "missing", "missing", "missing", "missing", "ok"),
    ("missing, in a dir 0775", "dir-loose", "dir-loose", "missing", "missing", "missing", "missing", "missing", "dir-loose"),
    ("missing, in a sticky dir 1777", "dir-sticky", "dir-sticky", "missing", "missing", "missing", "missing", "missing", "dir-sticky"),
    ("missing, in a dir of nobody", "dir-owner", "dir-owner", "missing", "missing", "missing", "missing", "missing", "dir-owner"),
    # -- symlinks as leaves
    ("symlink to a good file", "link", "link", "link", "link", "ok", "link", "link", "link"),
    ("symlink to a good dir", "link", "link", "link", "link", "not-file", "link", "link", "link"),
    ("symlink to a 0666 file", "link", "link", "link", "link", "loose", "link", "link", "link"),
    ("symlink to a file of nobody", "link", "link", "link", "link", "owner", "link", "link", "link"),
    ("symlink to a file in nobody's dir", "link", "link", "link", "link", "dir-owner", "link", "link", "link"),
    ("symlink in a dir 0775", "link", "link", "link", "link", "dir-loose", "link", "link", "link"),
    ("dangling symlink", "link", "link", "link", "link", "dangling", "link", "link", "link"),
    # -- symlinks among the directories: the path as given and as resolved must both pass
    ("via a symlinked dir, all good", "not-dir", "not-dir", "not-dir", "ok", "ok", "ok", "via-link", "ok"),
    ("via a symlinked dir into nobody's dir (as resolved)", "not-dir", "not-dir", "not-dir", "dir-owner", "dir-owner", "dir-owner", "via-link", "dir-owner"),
    ("via a symlink in nobody's dir to a good dir (as given)", "not-dir", "not-dir", "not-dir", "dir-owner", "dir-owner", "dir-owner", "via-link", "dir-owner"),
    ("via a symlinked dir into a sticky dir", "not-dir", "not-dir", "not-dir", "dir-sticky", "dir-sticky", "dir-sticky", "via-link", "dir-sticky"),
    ("dir via a symlinked dir, all good", "ok", "ok", "ok", "not-file", "not-file", "not-file", "not-file", "ok"),
    ("missing dir via a symlinked dir into a 0775 dir", "dir-loose", "dir-loose", "missing", "missing", "missing", "missing", "missing", "dir-loose"),
]

ANSWERS = {
    "missing": r"does not exist",
    "not-dir": r"is not a directory",
    "not-file": r"is not a regular file",
    "not-exec": r"is not executable",
    "link": r"is a symlink \(to .*\); .* must be named by its real path",
    "dangling": r"is a dangling symlink",
    "via-link": r"goes through (the symlink|a symlink)",
    "loose": r"is not trusted as .*: it is owned by uid 0, mode [0-7]{4}, so someone other than root could change it",
    "owner": r"owned by uid 65534",
    "dir-loose": r"directory \S+ is owned by uid 0, mode 0(775|777), so another user could replace",
    "dir-sticky": r"directory \S+ is owned by uid 0, mode 1777 \(sticky or not: a missing name there is anyone's\)",
    "dir-owner": r"directory \S+ is owned by uid 65534, mode 0755",
    "default-acl": r"carries a default ACL",
}
ACL_ROWS = {"dir with default ACL", "dir ACL: nobody may write", "dir ACL: nobody rwx, mask r-x",
            "file ACL: nobody may write", "file ACL: nobody may read", "file in a dir ACL: nobody writes"}


def _dir(path, mode=0o755, uid=0):
    os.makedirs(path, exist_ok=True)
    os.chown(path, uid, 0)
    os.chmod(path, mode)
    return path


def _file(path, mode=0o644, uid=0):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("x\n")
    os.chown(path, uid, 0)
    os.chmod(path, mode)
    return path


def _acl(path, *args):
    subprocess.run(["setfacl", *args, path], check=True)
    return path


def build(root, situation):
    """Make ``situation`` under ``root`` and return the path to ask about."""
    j = os.path.join
    good = _dir(j(root, "good"))
    exe = _file(j(good, "exe"), 0o755)
    builders = {
        "dir root 0755": lambda: _dir(j(root, "d")),
        "dir root 0700": lambda: _dir(j(root, "d"), 0o700),
        "dir root 0775": lambda: _dir(j(root, "d"), 0o775),
        "dir root 0757": lambda: _dir(j(root, "d"), 0o757),
        "dir sticky 1777 (like /tmp)": lambda: _dir(j(root, "d"), 0o1777),
        "dir owned by nobody 0755": lambda: _dir(j(root, "d"), uid=NOBODY),
        "dir with default ACL": lambda: _acl(_dir(j(root, "d")), "-d", "-m", f"u:{NOBODY}:rwx"),
        "dir ACL: nobody may write": lambda: _acl(_dir(j(root, "d")), "-m", f"u:{NOBODY}:rwx"),
        "dir ACL: nobody rwx, mask r-x": lambda: _acl(_dir(j(root, "d")), "-m", f"u:{NOBODY}:rwx,m::r-x"),
        "file root 0644": lambda: _file(j(root, "f")),
        "file root 0755": lambda: exe,
        "file root 0775": lambda: _file(j(root, "f"), 0o775),
        "file root 0757": lambda: _file(j(root, "f"), 0o757),
        "file owned by nobody 0755": lambda: _file(j(root, "f"), 0o755, uid=NOBODY),
        "file ACL: nobody may write": lambda: _acl(_file(j(root, "f"), 0o755), "-m", f"u:{NOBODY}:rwx"),
        "file ACL: nobody may read": lambda: _acl(_file(j(root, "f"), 0o755), "-m", f"u:{NOBODY}:r-x"),
        "fifo": lambda: (os.mkfifo(j(root, "fifo"), 0o644), j(root, "fifo"))[1],
        "file in a dir 0775": lambda: _file(j(_dir(j(root, "loose"), 0o775), "f"), 0o755),
        "file in a sticky dir 1777": lambda: _file(j(_dir(j(root, "sticky"), 0o1777), "f"), 0o755),
        "file in a dir owned by nobody": lambda: _file(j(_dir(j(root, "foreign"), uid=NOBODY), "f"), 0o755),
        "file two levels below a 0777 dir": lambda: _file(
            j(_dir(j(_dir(j(root, "open"), 0o777), "inner")), "f"), 0o755),
        "file in a dir ACL: nobody writes": lambda: _file(
            j(_acl(_dir(j(root, "acl")), "-m", f"u:{NOBODY}:rwx"), "f"), 0o755),
        "dir in a sticky dir 1777": lambda: _dir(j(_dir(j(root, "sticky"), 0o1777), "d")),
        "missing, in a good dir": lambda: j(good, "missing"),
        "missing, its parent missing too": lambda: j(good, "nope", "missing"),
        "missing, in a dir 0775": lambda: j(_dir(j(root, "loose"), 0o775), "missing"),
        "missing, in a sticky dir 1777": lambda: j(_dir(j(root, "sticky"), 0o1777), "missing"),
        "missing, in a dir of nobody": lambda: j(_dir(j(root, "foreign"), uid=NOBODY), "missing"),
        "symlink to a good file": lambda: _link(exe, j(root, "l")),
        "symlink to a good dir": lambda: _link(good, j(root, "l")),
        "symlink to a 0666 file": lambda: _link(_file(j(root, "f"), 0o666), j(root, "l")),
        "symlink to a file of nobody": lambda: _link(_file(j(root, "f"), 0o755, uid=NOBODY), j(root, "l")),
        "symlink to a file in nobody's dir": lambda: _link(
            _file(j(_dir(j(root, "foreign"), uid=NOBODY), "f"), 0o755), j(root, "l")),
        "symlink in a dir 0775": lambda: _link(exe, j(_dir(j(root, "loose"), 0o775), "l")),
        "dangling symlink": lambda: _link(j(root, "nowhere"), j(root, "l")),
        "via a symlinked dir, all good": lambda: j(_link(good, j(root, "ldir")), "exe"),
        "via a symlinked dir into nobody's dir (as resolved)": lambda: j(
            _link(os.path.dirname(_file(j(_dir(j(root, "foreign"), uid=NOBODY), "exe"), 0o755)), j(root, "ldir")),
            "exe"),
        "via a symlink in nobody's dir to a good dir (as given)": lambda: j(
            _link(good, j(_dir(j(root, "foreign"), uid=NOBODY), "ldir")), "exe"),
        "via a symlinked dir into a sticky dir": lambda: j(
            _link(os.path.dirname(_file(j(_dir(j(root, "sticky"), 0o1777), "exe"), 0o755)), j(root, "ldir")), "exe"),
        "dir via a symlinked dir, all good": lambda: j(_link(root, j(good, "up")), "good"),
        "missing dir via a symlinked dir into a 0775 dir": lambda: j(
            _link(_dir(j(root, "loose"), 0o775), j(root, "ldir")), "missing"),
    }
    return builders[situation]()


def _link(target, path):
    os.symlink(target, path)
    return path


def _cases():
    for row in TABLE:
        situation, answers = row[0], row[1:]
        assert len(answers) == len(COLUMNS), situation
        for column, answer in zip(COLUMNS, answers):
            marks = [needs_root]
            if situation in ACL_ROWS:
                marks.append(pytest.mark.skipif(not HAVE_ACL, reason="setfacl is not installed"))
            yield pytest.param(situation, column, answer, id=f"{situation} | {column}", marks=marks)


@pytest.mark.parametrize("situation,column,answer", list(_cases()))
def test_trust_table(tmp_path, situation, column, answer):
    root = str(tmp_path / "t")
    _dir(root)
    path = build(root, situation)
    purpose = getattr(trust, column)
    if answer == "ok":
        trust.check("field", path, purpose)
        return
    with pytest.raises(trust.TrustError) as err:
        trust.check("field", path, purpose)
    msg = str(err.value)
    assert msg.startswith("field: "), msg
    assert re.search(ANSWERS[answer], msg), f"{situation} as {column}: expected {answer}, got: {msg}"


def test_table_covers_every_purpose():
    assert set(COLUMNS) == {p for p in dir(trust) if isinstance(getattr(trust, p), trust.Purpose)}
    assert len(trust.PURPOSES) == len(COLUMNS)


# -- things a row cannot say -----------------------------------------------------------------------
def test_real_tmp_is_never_trusted():
    for purpose in (trust.WRITE_DIR, trust.SECRET_DIR, trust.SUDO_FILE):
        with pytest.raises(trust.TrustError, match="sticky or not"):
            trust.check("path", "/tmp/supervised-never-created", purpose)
    with pytest.raises(trust.TrustError, match="/tmp is not trusted"):
        trust.check("path", "/tmp", trust.WRITE_DIR)


def test_root_itself_and_system_dirs():
    trust.check("path", "/", trust.ROOT_DIR)
    trust.check("path", "/etc", trust.WRITE_DIR)
    trust.check("path", "/etc/passwd", trust.ROOT_READ)


@needs_root
def test_own_user_may_own_a_directory_the_module_writes_to(tmp_path, monkeypatch):
    """WRITE_DIR and SECRET_DIR also accept the user the module runs as (it can already do what the
    file allows); the root-only purposes do not."""
    mine = _dir(str(tmp_path / "mine"), uid=NOBODY)
    monkeypatch.setattr(os, "geteuid", lambda: NOBODY)
    trust.check("path", mine, trust.WRITE_DIR)
    trust.check("path", mine, trust.SECRET_DIR)
    with pytest.raises(trust.TrustError, match="owned by uid 65534"):
        trust.check("path", mine, trust.ROOT_DIR)


def test_check_directory_of(tmp_path):
    _dir(str(tmp_path / "d"), 0o775)
    with pytest.raises(trust.TrustError, match="is not trusted"):
        trust.check_directory_of("path", str(tmp_path / "d" / "file.env"))
    trust.check_directory_of("path", str(tmp_path / "file.env"))


def test_error_is_an_input_error_with_the_way_out(tmp_path):
    loose = _dir(str(tmp_path / "loose"), 0o777)
    with pytest.raises(trust.TrustError) as err:
        trust.check("secret_env_file", os.path.join(loose, "x"), trust.SECRET_DIR)
    assert isinstance(err.value, ValueError)
    assert "keep it and every directory above it owned by root and writable by no one else" in str(err.value)


def test_nothing_on_the_host_changes(tmp_path, snapshot_tree):
    root = str(tmp_path / "t")
    _dir(root)
    for situation in ("dir root 0775", "missing, in a dir 0775"):
        sub = os.path.join(root, situation.replace(" ", "_").replace(",", ""))
        _dir(sub)
        path = build(sub, situation)
        before = snapshot_tree(root)
        for purpose in trust.PURPOSES:
            try:
                trust.check("f", path, purpose)
            except trust.TrustError:
                pass
        assert snapshot_tree(root) == before
