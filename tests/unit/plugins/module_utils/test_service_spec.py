"""service_spec: the options of a worker or a periodic job's service and the one unit they render to.
Pure (no host): the text is checked line by line; systemd-analyze verifies it in test_worker.py."""

from __future__ import annotations

import pytest
from ansible_collections.supervised.background.plugins.module_utils import service_spec
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError


def params(**kw):
    p = {k: v.get("default") for k, v in service_spec.EXEC_SPEC.items()}
    p.update({k: v.get("default") for k, v in service_spec.WORKER_SPEC.items()})
    p.update(exec_start=["/usr/local/bin/qw", "--id", "%i"], user="qw", group="qw")
    p.update(kw)
    return p


def test_worker_unit_lines_in_order():
    plan = service_spec.render("qw", params(environment_files=["/etc/supervised-background/qw.env", "-/etc/qw/%i.env"],
                                            environment={"B": "2", "A": "x y"},
                                            credentials={"tok": "/etc/supervised-background/credentials/qw/tok"},
                                            requires=["db.service"], after=["db.service"], wait_for_network=True,
                                            state_directory="qw/%i", memory_max="512M"))
    lines = plan.text.splitlines()
    assert lines[0] == service_spec.HEADER
    assert lines[1:4] == ["[Unit]", "Description=qw worker %i", "StartLimitIntervalSec=60s"]
    for line in ("After=db.service", "After=network-online.target", "Wants=network-online.target",
                 "Requires=db.service", "Type=exec", "ExecStart=/usr/local/bin/qw --id %i", "User=qw", "Group=qw",
                 "EnvironmentFile=/etc/supervised-background/qw.env", "EnvironmentFile=-/etc/qw/%i.env",
                 'Environment="A=x y"', 'Environment="B=2"', "LoadCredential=tok:/etc/supervised-background/credentials/qw/tok",
                 "Restart=always",
                 "RestartSec=2s", "KillMode=mixed", "KillSignal=SIGTERM", "TimeoutStopSec=30s",
                 "StateDirectory=qw/%i", "MemoryMax=512M", "ProtectSystem=strict", "[Install]",
                 "WantedBy=multi-user.target"):
        assert line in lines, line
    assert lines.index('Environment="A=x y"') < lines.index('Environment="B=2"')
    assert plan.executables == {"/usr/local/bin/qw"} and plan.credentials == ["tok"]
    # An EnvironmentFile outside the collection's secrets directory is read by PID 1 as root: reported.
    assert plan.needed_units["db.service"] == "requires" and plan.overrides == ["EnvironmentFile=-/etc/qw/%i.env"]


def test_rendering_is_deterministic():
    assert service_spec.render("qw", params(environment={"Z": 1, "A": 2})).text == \
        service_spec.render("qw", params(environment={"A": 2, "Z": 1})).text


def test_notify_and_watchdog():
    text = service_spec.render("qw", params(type="notify", watchdog_sec="10s")).text
    assert "WatchdogSec=10s\nNotifyAccess=main" in text
    with pytest.raises(InputError, match="^watchdog_sec: needs type=notify"):
        service_spec.render("qw", params(watchdog_sec="10s"))


def test_oneshot_kind():
    text = service_spec.render("job", params(), kind="oneshot").text
    assert "Type=oneshot" in text and "Restart=" not in text and "[Install]" not in text
    assert "Description=job periodic job" in text


@pytest.mark.parametrize("override,field", [
    ({"exec_start": None}, "exec_start"),
    ({"exec_start": ["/bin/x", "a\nExecStartPre=+/bin/sh"]}, "exec_start[1]"),
    ({"user": "qw\n"}, "user"),
    ({"environment": {"A": "x\ny"}}, "environment"),
    ({"environment": {"NOTIFY_SOCKET": "/x"}}, "environment"),
    ({"environment_files": ["relative.env"]}, "environment_files[0]"),
    ({"credentials": {"tok": "/etc/x:y"}}, "credentials.tok"),
    ({"credentials": {"bad/id": "/etc/x"}}, "credentials"),
    ({"credentials": {"tok": "/etc/credstore/a"}, "encrypted_credentials": {"tok": "/etc/credstore/b"}},
     "encrypted_credentials.tok"),
    # PID 1 would read /etc/shadow as root and hand it to the worker.
    ({"credentials": {"shadow": "/etc/shadow"}}, "credentials.shadow"),
    ({"encrypted_credentials": {"key": "/var/lib/systemd/credential.secret"}}, "encrypted_credentials.key"),
    ({"credentials": {"x": "/etc/credstore"}}, "credentials.x"),
    ({"requires": ["db"]}, "requires[0]"),
    ({"after": ["db.service\n"]}, "after[0]"),
    ({"wanted_by": "multi-user.service"}, "wanted_by"),
    ({"settings": {"ExecStartPre": "/bin/true"}}, "settings.ExecStartPre"),
    ({"settings": {"User": "root"}}, "settings.User"),
    ({"settings": {"TimeoutStopSec": "1s"}}, "settings.TimeoutStopSec"),
    ({"restart_sec": "soon"}, "restart_sec"),
    ({"description": "x\\"}, "description"),
    ({"state_directory": "../etc"}, "state_directory"),
    ({"read_write_paths": ["/srv/a b"]}, "read_write_paths[0]"),
    ({"nice": 42}, "nice"),
])
def test_refusals_name_the_option(override, field):
    with pytest.raises(InputError) as err:
        service_spec.render("qw", params(**override))
    assert str(err.value).startswith(field), str(err.value)


def test_weakening_settings_are_overrides():
    plan = service_spec.render("qw", params(settings={"PrivateTmp": False}))
    assert plan.overrides == ["PrivateTmp=no"] and "PrivateTmp=no" in plan.text


def test_a_directory_someone_else_owns_is_refused_on_a_first_deploy(tmp_path, monkeypatch):
    from ansible_collections.supervised.background.plugins.module_utils import systemd
    monkeypatch.setattr(systemd, "SYSTEM_UNIT_DIR", str(tmp_path))
    # /var/lib/dpkg exists and is root's: a worker named dpkg running as nobody would be handed it.
    with pytest.raises(InputError, match="^state_directory: /var/lib/dpkg already exists and belongs to uid 0, not to nobody"):
        service_spec.render("dpkg", params(user="nobody", state_directory="dpkg"))
    # Not on a later deploy (the directory is this worker's, made by systemd), nor for a root service.
    (tmp_path / "dpkg@.service").write_text("# Managed by supervised.background\n")
    assert "StateDirectory=dpkg" in service_spec.render("dpkg", params(user="nobody", state_directory="dpkg")).text
    assert "StateDirectory=apt" in service_spec.render("apt", params(user="root", state_directory="apt")).text
