"""accounts: a system group and user with no login shell and no home; removal. The account database
and the shadow tools are faked (they change the host); Molecule creates real users."""

from __future__ import annotations

import collections
import types

import pytest
from ansible_collections.supervised.background.plugins.module_utils import accounts

Pw = collections.namedtuple("Pw", "pw_name pw_uid pw_gid pw_dir pw_shell")
Gr = collections.namedtuple("Gr", "gr_name gr_gid")


class Host:
    """A fake account database the fake shadow tools change."""

    def __init__(self, users=(), groups=()):
        self.users = {u.pw_name: u for u in users}
        self.groups = {g.gr_name: g for g in groups}
        self.calls = []
        self.fail = None

    def getpwnam(self, name):
        return self.users[name]

    def getgrnam(self, name):
        return self.groups[name]

    def getpwall(self):
        return list(self.users.values())

    def run(self, argv):
        tool = argv[0].rsplit("/", 1)[-1]
        self.calls.append([tool] + argv[1:])
        if self.fail == tool:
            return 1, "", f"{tool}: cannot lock /etc/passwd; try again later.\n"
        name = argv[-1]
        if tool == "groupadd":
            self.groups[name] = Gr(name, 990)
        elif tool == "useradd":
            gid = self.groups[argv[argv.index("--gid") + 1]].gr_gid
            self.users[name] = Pw(name, 990, gid, accounts.NO_HOME, accounts.NOLOGIN)
        elif tool == "usermod":
            self.users[name] = self.users[name]._replace(pw_shell=accounts.NOLOGIN)
        elif tool == "userdel":
            del self.users[name]
        elif tool == "groupdel":
            del self.groups[name]
        return 0, "", ""


class FakeModule:
    def __init__(self, host, check_mode=False):
        self.host = host
        self.check_mode = check_mode

    def get_bin_path(self, name, required=False):
        return f"/usr/sbin/{name}"

    def run_command(self, argv, **kw):
        return self.host.run(argv)


@pytest.fixture
def host(monkeypatch):
    h = Host(users=[Pw("root", 0, 0, "/root", "/bin/bash")], groups=[Gr("root", 0)])
    monkeypatch.setattr(accounts, "pwd", types.SimpleNamespace(getpwnam=h.getpwnam, getpwall=h.getpwall))
    monkeypatch.setattr(accounts, "grp", types.SimpleNamespace(getgrnam=h.getgrnam))
    return h


def test_creates_group_then_user(host):
    assert accounts.ensure_system_account(FakeModule(host), "qw", "qw") == ["group qw created", "user qw created"]
    assert host.calls == [["groupadd", "--system", "--", "qw"],
                          ["useradd", "--system", "--gid", "qw", "--shell", "/usr/sbin/nologin", "--home-dir",
                           "/nonexistent", "--no-create-home", "--", "qw"]]
    assert accounts.ensure_system_account(FakeModule(host), "qw", "qw") == []
    assert len(host.calls) == 2


def test_check_mode_reports_and_runs_nothing(host):
    assert accounts.ensure_system_account(FakeModule(host, check_mode=True), "qw", "qw") == [
        "group qw created", "user qw created"]
    assert host.calls == []


def test_existing_user_with_a_login_shell_is_fixed(host):
    host.groups["qw"] = Gr("qw", 990)
    host.users["qw"] = Pw("qw", 990, 990, "/home/qw", "/bin/bash")
    assert accounts.ensure_system_account(FakeModule(host), "qw", "qw") == ["user qw changed (shell)"]
    assert host.calls == [["usermod", "--shell", "/usr/sbin/nologin", "--", "qw"]]


def test_existing_user_in_another_group(host):
    host.groups["qw"] = Gr("qw", 990)
    host.groups["other"] = Gr("other", 991)
    host.users["qw"] = Pw("qw", 990, 991, "/nonexistent", accounts.NOLOGIN)
    assert accounts.ensure_system_account(FakeModule(host), "qw", "qw") == ["user qw changed (gid)"]
    assert host.calls == [["usermod", "--gid", "qw", "--", "qw"]]


def test_names_are_passed_after_double_dash(host):
    accounts.ensure_system_account(FakeModule(host), "-rf", "-rf")
    assert all(call[-2] == "--" for call in host.calls)


def test_tool_failure_names_the_account(host):
    host.fail = "useradd"
    with pytest.raises(accounts.AccountError, match=r"user: /usr/sbin/useradd failed \(rc=1\): useradd: cannot lock"):
        accounts.ensure_system_account(FakeModule(host), "qw", "qw")


def test_remove_user_and_group(host):
    accounts.ensure_system_account(FakeModule(host), "qw", "qw")
    host.calls.clear()
    assert accounts.remove_account(FakeModule(host, check_mode=True), "qw", "qw") == ["user qw removed",
                                                                                      "group qw removed"]
    assert host.calls == []
    assert accounts.remove_account(FakeModule(host), "qw", "qw") == ["user qw removed", "group qw removed"]
    assert [c[0] for c in host.calls] == ["userdel", "groupdel"]
    assert accounts.remove_account(FakeModule(host), "qw", "qw") == []


def test_group_another_user_needs_is_kept(host):
    accounts.ensure_system_account(FakeModule(host), "qw", "shared")
    host.users["other"] = Pw("other", 991, host.groups["shared"].gr_gid, "/", accounts.NOLOGIN)
    assert accounts.remove_account(FakeModule(host), "qw", "shared") == ["user qw removed"]
    assert "shared" in host.groups
