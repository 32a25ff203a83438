"""safe_file: the one writer. Real files in tmp_path; no mocks of the filesystem."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import threading

import pytest
from ansible_collections.supervised.background.plugins.module_utils import safe_file, trust


class FakeModule:
    def __init__(self, check_mode=False, diff=False):
        self.check_mode = check_mode
        self._diff = diff


ME = pwd.getpwuid(os.geteuid()).pw_name
MYGROUP = grp.getgrgid(os.getegid()).gr_name


def write(path, content, mode=0o600, module=None, **kw):
    return safe_file.write_file(module or FakeModule(), str(path), content, owner=ME, group=MYGROUP,
                                mode=mode, **kw)


def test_creates_with_exact_mode_and_content(tmp_path):
    target = tmp_path / "secret.env"
    res = write(target, b"A=1\n")
    assert res.changed and res.previous is None
    st = os.lstat(target)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert target.read_bytes() == b"A=1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["secret.env"], "temp file left behind"


def test_idempotent(tmp_path):
    target = tmp_path / "f"
    write(target, b"x")
    assert write(target, b"x").changed is False


def test_mode_change_alone_is_a_change(tmp_path):
    target = tmp_path / "f"
    write(target, b"x", mode=0o640)
    assert write(target, b"x", mode=0o600).changed
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o600


def test_replaces_with_a_new_inode(tmp_path):
    target = tmp_path / "f"
    write(target, b"old")
    before = os.lstat(target).st_ino
    write(target, b"new")
    assert os.lstat(target).st_ino != before


def test_refuses_symlink(tmp_path):
    real = tmp_path / "real"
    real.write_bytes(b"keep")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(safe_file.FileError, match="symlink"):
        write(link, b"evil")
    assert real.read_bytes() == b"keep" and link.is_symlink()


def test_refuses_dangling_symlink(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(safe_file.FileError, match="symlink"):
        write(link, b"evil")
    assert not (tmp_path / "nowhere").exists()


def test_refuses_directory_target(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(safe_file.FileError, match="not a regular file"):
        write(tmp_path / "d", b"x")


def test_missing_directory(tmp_path):
    with pytest.raises(safe_file.FileError, match="does not exist"):
        write(tmp_path / "nope" / "f", b"x")


def test_check_mode_writes_nothing(tmp_path):
    res = write(tmp_path / "f", b"x", module=FakeModule(check_mode=True))
    assert res.changed
    assert list(tmp_path.iterdir()) == []


def test_check_mode_with_missing_directory_predicts_a_change(tmp_path):
    res = write(tmp_path / "later" / "f", b"x", module=FakeModule(check_mode=True, diff=True))
    assert res.changed and res.diff["after"] == "x"
    assert list(tmp_path.iterdir()) == []


def test_validate_failure_leaves_old_file(tmp_path):
    target = tmp_path / "f"
    write(target, b"good")
    seen = []

    def refuse(tmp):
        seen.append(open(tmp, "rb").read())
        return "syntax error"

    with pytest.raises(safe_file.FileError, match="syntax error"):
        write(target, b"bad", validate=refuse)
    assert seen == [b"bad"]
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_validate_runs_in_check_mode_on_a_private_copy(tmp_path):
    seen = []
    write(tmp_path / "f", b"x", module=FakeModule(check_mode=True),
          validate=lambda tmp: seen.append(os.path.dirname(tmp)))
    assert seen and seen[0] != str(tmp_path)
    assert not os.path.exists(seen[0]), "check-mode scratch directory left behind"


def test_temp_file_is_never_looser_than_final_mode(tmp_path):
    """Watch the directory while writing: every temp file seen has mode <= final mode."""
    seen_modes = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for entry in os.scandir(tmp_path):
                if entry.name.endswith(".tmp"):
                    try:
                        seen_modes.append(stat.S_IMODE(os.lstat(entry.path).st_mode))
                    except FileNotFoundError:
                        pass

    t = threading.Thread(target=watch)
    t.start()
    try:
        for i in range(200):
            write(tmp_path / "f", f"secret {i}".encode() * 1000)
    finally:
        stop.set()
        t.join()
    assert all(m & 0o077 == 0 for m in seen_modes), seen_modes


def test_diff_uses_redacted_texts(tmp_path):
    res = write(tmp_path / "f", b"PASSWORD=hunter2\n", module=FakeModule(diff=True),
                diff_before="", diff_after="PASSWORD=<redacted>\n")
    assert "hunter2" not in repr(res.diff)
    assert res.diff["after"] == "PASSWORD=<redacted>\n"


def test_no_diff_without_diff_mode(tmp_path):
    assert write(tmp_path / "f", b"x").diff is None


def test_restore_puts_back_previous(tmp_path):
    target = tmp_path / "f"
    write(target, b"old", mode=0o640)
    res = write(target, b"new", mode=0o600)
    safe_file.restore(FakeModule(), str(target), res.previous)
    assert target.read_bytes() == b"old"
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o640


def test_restore_removes_when_nothing_was_there(tmp_path):
    target = tmp_path / "f"
    res = write(target, b"new")
    safe_file.restore(FakeModule(), str(target), res.previous)
    assert not target.exists()


def test_remove_file(tmp_path):
    target = tmp_path / "f"
    write(target, b"x")
    assert safe_file.remove_file(FakeModule(check_mode=True), str(target)).changed
    assert target.exists()
    assert safe_file.remove_file(FakeModule(), str(target)).changed
    assert not target.exists()
    assert safe_file.remove_file(FakeModule(), str(target)).changed is False


def test_ensure_directory(tmp_path):
    d = tmp_path / "conf"
    assert safe_file.ensure_directory(FakeModule(), str(d), ME, MYGROUP, 0o700)
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    assert safe_file.ensure_directory(FakeModule(), str(d), ME, MYGROUP, 0o700) is False
    os.chmod(d, 0o755)
    assert safe_file.ensure_directory(FakeModule(check_mode=True), str(d), ME, MYGROUP, 0o700)
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o755
    assert safe_file.ensure_directory(FakeModule(), str(d), ME, MYGROUP, 0o700)
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700


def test_ensure_directory_refuses_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(safe_file.FileError, match="symlink"):
        safe_file.ensure_directory(FakeModule(), str(tmp_path / "link"), ME, MYGROUP, 0o700)


def test_unknown_owner(tmp_path):
    with pytest.raises(safe_file.FileError, match="owner"):
        safe_file.write_file(FakeModule(), str(tmp_path / "f"), b"x", owner="no-such-user-xyz",
                             group=MYGROUP)
    assert list(tmp_path.iterdir()) == []


def test_refuses_group_writable_parent(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o775)
    with pytest.raises(safe_file.FileError, match="mode 0775"):
        write(loose / "f", b"x")
    assert list(loose.iterdir()) == []


def test_refuses_world_writable_ancestor(tmp_path):
    top = tmp_path / "top"
    (top / "inner").mkdir(parents=True)
    os.chmod(top, 0o777)
    with pytest.raises(safe_file.FileError, match="directory .*top"):
        write(top / "inner" / "f", b"x")


def test_sticky_world_writable_ancestor_is_refused(tmp_path):
    # A sticky directory (like /tmp) is no exception: anyone can create a missing name there.
    top = tmp_path / "sticky"
    (top / "inner").mkdir(parents=True)
    os.chmod(top, 0o1777)
    with pytest.raises(safe_file.FileError, match="sticky or not"):
        write(top / "inner" / "f", b"x")
    assert list((top / "inner").iterdir()) == []


def test_error_messages_never_hold_the_content(tmp_path):
    secret = b"hunter2-very-secret"
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    for target in (loose / "f", tmp_path / "missing" / "f"):
        with pytest.raises(safe_file.FileError) as err:
            write(target, secret)
        assert b"hunter" not in str(err.value).encode()

    def refuse(_tmp):
        return "refused by the check"

    with pytest.raises(safe_file.FileError) as err:
        write(tmp_path / "f", secret, validate=refuse)
    assert str(err.value) == "refused by the check"


def test_diff_shows_owner_and_mode_changes(tmp_path):
    target = tmp_path / "f"
    write(target, b"x\n", mode=0o640)
    res = write(target, b"x\n", mode=0o600, module=FakeModule(diff=True))
    assert res.diff["before"].endswith("mode=0640\n") and res.diff["after"].endswith("mode=0600\n")
    assert res.diff["before_header"] == res.diff["after_header"] == str(target)


def test_diff_headers_of_a_new_file(tmp_path):
    res = write(tmp_path / "f", b"x", module=FakeModule(diff=True), diff_after="<redacted>")
    assert res.diff == {"before": "", "after": "<redacted>", "before_header": f"{tmp_path / 'f'} (absent)",
                        "after_header": str(tmp_path / "f")}


def test_remove_a_symlink_removes_the_link_not_its_target(tmp_path):
    real = tmp_path / "real"
    real.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(real)
    assert safe_file.remove_file(FakeModule(), str(tmp_path / "link")).changed
    assert real.read_bytes() == b"keep" and not (tmp_path / "link").is_symlink()


def test_remove_refuses_a_directory(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(safe_file.FileError, match="is a directory"):
        safe_file.remove_file(FakeModule(), str(tmp_path / "d"))


HAVE_ACL = shutil.which("setfacl") is not None


@pytest.mark.skipif(not HAVE_ACL, reason="setfacl is not installed")
def test_file_in_a_directory_with_a_default_acl_inherits_no_entries(tmp_path):
    """The mode alone says who may read the file: entries a default ACL would hand down are dropped
    before the first byte is written."""
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["setfacl", "-d", "-m", "u:65534:rwx", str(shared)], check=True)
    write(shared / "f", b"secret")
    assert "user:nobody" not in subprocess.run(["getfacl", "-p", str(shared / "f")], capture_output=True,
                                               text=True, check=True).stdout
    assert "system.posix_acl_access" not in os.listxattr(shared / "f")
    # A secret's directory refuses such a directory outright.
    with pytest.raises(safe_file.FileError, match="default ACL"):
        safe_file.write_file(FakeModule(), str(shared / "g"), b"x", owner=ME, group=MYGROUP, mode=0o600,
                             purpose=trust.SECRET_DIR)


def test_owner_and_group_by_number(tmp_path):
    res = safe_file.write_file(FakeModule(), str(tmp_path / "f"), "text", owner=str(os.geteuid()),
                               group=os.getegid(), mode=0o600)
    assert res.changed and (tmp_path / "f").read_bytes() == b"text"
    with pytest.raises(safe_file.FileError, match="group: group 'no-such-group-xyz'"):
        safe_file.resolve_gid("no-such-group-xyz")


def test_program_text_and_install(tmp_path):
    from ansible_collections.supervised.background.plugins.module_utils import validate

    text = safe_file.program_text(validate)
    assert text.startswith("#!/usr/bin/python3") and "def bad_char" in text
    target = tmp_path / "lib" / "helper" / "prog"
    assert safe_file.install_program(FakeModule(check_mode=True), str(target), validate)
    assert not (tmp_path / "lib").exists()
    assert safe_file.install_program(FakeModule(), str(target), validate)
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o755 and os.access(target, os.X_OK)
    assert safe_file.install_program(FakeModule(), str(target), validate) is False


def test_check_mode_validate_failure_is_reported(tmp_path):
    with pytest.raises(safe_file.FileError, match="bad"):
        write(tmp_path / "f", b"x", module=FakeModule(check_mode=True), validate=lambda tmp: "bad")
    assert list(tmp_path.iterdir()) == []


def test_remove_and_ensure_directory_check_ancestors_too(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "f").write_bytes(b"x")
    os.chmod(loose, 0o777)
    with pytest.raises(safe_file.FileError):
        safe_file.remove_file(FakeModule(), str(loose / "f"))
    with pytest.raises(safe_file.FileError):
        safe_file.ensure_directory(FakeModule(), str(loose / "d"), ME, MYGROUP, 0o700)
    assert sorted(p.name for p in loose.iterdir()) == ["f"]
