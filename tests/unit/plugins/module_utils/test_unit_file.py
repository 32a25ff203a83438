"""unit_file: quoting systemd reads back literally, typed values, the [Service] allowlist and the
hardening profiles. What systemd itself makes of the rendered units is checked by systemd-analyze
in test_systemd.py and test_worker.py, and on real systemd in Molecule."""

from __future__ import annotations

import pytest
from ansible_collections.supervised.background.plugins.module_utils import unit_file as uf
from ansible_collections.supervised.background.plugins.module_utils.validate import InputError


@pytest.mark.parametrize("arg,written", [
    ("plain", "plain"), ("%i", "%i"), ("%I", "%I"), ("worker-%i.log", "worker-%i.log"), ("100%", "100%%"),
    ("%n %%", '"%%n %%%%"'), ("$HOME", "$$HOME"), ("${X}", "$${X}"), ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'), ("it's", '"it\'s"'), ("back\\slash", '"back\\\\slash"'),
    ("trailing\\", '"trailing\\\\"'), ("", '""'), (";", '";"'), ("a;b", '"a;b"'), ("\u00fcn\u00efc\u00f8d\u00e9", "\u00fcn\u00efc\u00f8d\u00e9"),
])
def test_exec_arg_quoting(arg, written):
    assert uf.quote_exec_arg(arg) == written


def test_environment_quoting():
    assert uf.quote_environment("A", 'x y$Z%i\\n"q') == '"A=x y$Z%i\\\\n\\"q"'
    assert uf.quote_environment("B", "50%") == '"B=50%%"'
    assert uf.escape_percent("%i%I%%n%") == "%i%I%%%%n%%"


@pytest.mark.parametrize("value", ["/usr/bin/x", "/opt/app/bin/run-1.2"])
def test_executable_ok(value):
    assert uf.executable("exec_start", value) == value


@pytest.mark.parametrize("value,words", [
    ("bin/x", "absolute"), ("/usr/bin/x y", "must not contain"), ("/usr/bin/$x", "must not contain"),
    ("/usr/bin/x%i", "must not contain"), ("/usr/bin/x\n", "single line"), ("/usr/../bin/x", "normalised"),
    ("/usr/bin/x\u2028", "single line"), ("/usr/bin/x;reboot", "must not contain"),
])
def test_executable_bad(value, words):
    with pytest.raises(InputError) as err:
        uf.executable("exec_start", value)
    assert str(err.value).startswith("exec_start:") and words in str(err.value)


def test_command_line():
    assert uf.command_line("exec_start", ["/bin/echo", "a b", "$X", "%i"]) == ('/bin/echo "a b" $$X %i', "/bin/echo")
    for bad in ([], "/bin/echo x", ["/bin/echo", "a\nExecStartPre=+/bin/sh"], ["/bin/echo", "x\r"]):
        with pytest.raises(InputError, match="^exec_start"):
            uf.command_line("exec_start", bad)


@pytest.mark.parametrize("value,optional,written", [
    ("/srv/app", False, "/srv/app"), ("-/etc/app/%i.env", True, "-/etc/app/%i.env"), ("/srv/100%", False, "/srv/100%%"),
])
def test_path_value_ok(value, optional, written):
    assert uf.path_value("p", value, optional_prefix=optional) == written


@pytest.mark.parametrize("value", ["relative", "/a b", "/a'b", "/a\\b", "/a$b", "/a;b", "/a\n", "-/x", "/x/"])
def test_path_value_bad(value):
    with pytest.raises(InputError, match="^p:"):
        uf.path_value("p", value)


@pytest.mark.parametrize("value", ["app", "app/%i", "a.b-c_d", "%i"])
def test_relative_dir_ok(value):
    assert uf.relative_dir("state_directory", value) == value


@pytest.mark.parametrize("value", ["", "/abs", "app/", "..", ".", "a/../b", "a//b", "a b", ".hidden", "app\n", "a:b"])
def test_relative_dir_bad(value):
    with pytest.raises(InputError, match="^state_directory:"):
        uf.relative_dir("state_directory", value)


@pytest.mark.parametrize("value,words", [("", "must not be empty"), (" x", "whitespace"), ("x\\", "backslash"),
                                         ("a\nb", "single line"), ("a\u2028b", "single line")])
def test_description_bad(value, words):
    with pytest.raises(InputError) as err:
        uf.description("description", value)
    assert words in str(err.value)


def test_description_percent():
    assert uf.description("description", "qw %i 100%") == "qw %i 100%%"


# -- the allowlist --------------------------------------------------------------------------------
@pytest.mark.parametrize("given,rendered", [
    ({"LimitNOFILE": 4096}, {"LimitNOFILE": ["4096"]}),
    ({"LimitNOFILE": "1024:4096"}, {"LimitNOFILE": ["1024:4096"]}),
    ({"NoNewPrivileges": False}, {"NoNewPrivileges": ["no"]}),
    ({"ProtectSystem": "full"}, {"ProtectSystem": ["full"]}),
    ({"ProtectSystem": True}, {"ProtectSystem": ["yes"]}),
    ({"TimeoutStartSec": "1min 30s"}, {"TimeoutStartSec": ["90s"]}),
    ({"KillSignal": "int"}, {"KillSignal": ["SIGINT"]}),
    ({"UMask": "0027"}, {"UMask": ["0027"]}),
    ({"ReadOnlyPaths": ["/srv/a", "-/srv/b"]}, {"ReadOnlyPaths": ["/srv/a", "-/srv/b"]}),
    ({"RestrictAddressFamilies": "~AF_PACKET AF_NETLINK"}, {"RestrictAddressFamilies": ["~AF_PACKET AF_NETLINK"]}),
    ({"SuccessExitStatus": "3 SIGHUP"}, {"SuccessExitStatus": ["3 SIGHUP"]}),
    ({"IPAddressDeny": "any"}, {"IPAddressDeny": ["any"]}),
    ({"CapabilityBoundingSet": ""}, {"CapabilityBoundingSet": [""]}),
])
def test_settings_ok(given, rendered):
    assert uf.settings("settings", given) == rendered


@pytest.mark.parametrize("given,words", [
    ({"ExecStartPre": "+/bin/sh"}, "is refused, it runs a command as written"),
    ({"User": "root"}, "is refused"),
    ({"BindPaths": "/etc"}, "is refused"),
    ({"SetCredential": "x:y"}, "every local user can read"),
    ({"Frobnicate": "1"}, "is not a directive this collection lets you set"),
    ({"limitnofile": "1"}, "is not a directive name"),
    ({"LimitNOFILE\n": "1"}, "is not a directive name"),
    ({"LimitNOFILE": "lots"}, "must be a number"),
    ({"LimitNOFILE": "1\nExecStartPre=+/bin/sh"}, "single line"),
    ({"StandardOutput": "file:/etc/shadow"}, "must be one of"),
    ({"UMask": "0777x"}, "not an octal mode"),
    ({"StateDirectoryMode": "0777"}, "refused"),
    ({"ReadOnlyPaths": []}, "empty list"),
    ({"ReadOnlyPaths": ["relative"]}, "absolute"),
    ({"SystemCallFilter": "@system-service\nX=1"}, "single line"),
    ({"KillSignal": "SIGSTOP"}, "is not one of"),
    ({"IPAddressAllow": "10.0.0.0/33"}, "not an address"),
    ({"Nice": 20}, "from -20 to 19"),
])
def test_settings_bad(given, words):
    with pytest.raises(InputError) as err:
        uf.settings("settings", given)
    assert str(err.value).startswith("settings") and words in str(err.value), str(err.value)


def test_settings_owned_and_transient_only():
    with pytest.raises(InputError, match="settings.TimeoutStopSec: is set by the option 'timeout_stop_sec'"):
        uf.settings("settings", {"TimeoutStopSec": "5s"}, owned={"TimeoutStopSec": "timeout_stop_sec"})
    with pytest.raises(InputError, match="is not a directive this collection lets you set"):
        uf.settings("settings", {"LogRateLimitBurst": 5}, transient_only=True)
    with pytest.raises(InputError, match="is not a directive"):
        uf.settings("settings", {"Nice": 5}, allowed={"MemoryMax"})


def test_every_directive_has_a_validator_and_refused_ones_are_not_allowed():
    assert not set(uf.SERVICE_DIRECTIVES) & set(uf.REFUSED)
    assert all(callable(d.check) for d in uf.SERVICE_DIRECTIVES.values())


def test_overrides_are_reported():
    rendered = uf.settings("settings", {"MemoryDenyWriteExecute": False, "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
                                        "LimitNOFILE": 10})
    assert uf.overrides(rendered, "strict") == ["AmbientCapabilities=CAP_NET_BIND_SERVICE", "MemoryDenyWriteExecute=no"]
    assert uf.overrides(rendered, "none") == ["AmbientCapabilities=CAP_NET_BIND_SERVICE"]


def test_merge_hardening_replaces_in_place_then_sorted():
    lines = uf.merge_hardening({"PrivateTmp": ["no"], "Nice": ["5"], "LimitCORE": ["0"]}, "baseline")
    assert lines[1] == ("PrivateTmp", "no") and lines[-2:] == [("LimitCORE", "0"), ("Nice", "5")]
    assert dict(uf.merge_hardening({}, "strict"))["CapabilityBoundingSet"] == ""
    assert uf.merge_hardening({}, "none") == []


def test_render():
    text = uf.render("# header", [("Unit", [("Description", "x")]), ("Service", [("ExecStart", "/bin/true")])])
    assert text == "# header\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n"


@pytest.mark.parametrize("value", ["qw", "qw/%i", "qw-cache", "qw.d/x", "qw_data", "qw-%i"])
def test_owned_dir_ok(value):
    assert uf.owned_dir("state_directory", value, "qw") == value


@pytest.mark.parametrize("value", ["dpkg", "systemd", "qwx", "q", "%i", "%i/qw", "QW", "sudo/qw"])
def test_owned_dir_names_the_unit(value):
    with pytest.raises(InputError, match="must be 'qw' or start with 'qw-'"):
        uf.owned_dir("state_directory", value, "qw")
