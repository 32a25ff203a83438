from __future__ import annotations

import pytest
from ansible_collections.supervised.background.plugins.module_utils import validate as v


@pytest.mark.parametrize("value", ["worker", "queue-consumer", "a_b.c:d", "w1"])
def test_unit_base_name_ok(value):
    assert v.unit_base_name("name", value) == value


@pytest.mark.parametrize("value, rule", [
    ("", "empty"), ("a@b", "'@'"), ("a/b", "'/'"), ("a b", "may only use"), ("-x", "must start"),
    (".hidden", "must start"), ("x.service", "without the unit suffix"), ("a\nb", "single line"),
    ("a\x00b", "NUL"), ("x" * 300, "too long"), ("a\tb", "control"),
])
def test_unit_base_name_bad(value, rule):
    with pytest.raises(v.InputError) as err:
        v.unit_base_name("name", value)
    assert str(err.value).startswith("name:") and rule in str(err.value)


@pytest.mark.parametrize("value, seconds", [
    (5, 5.0), ("5", 5.0), ("1.5s", 1.5), ("500ms", 0.5), ("2min 30s", 150.0), ("1h", 3600.0),
    ("2min30s", 150.0), (0, 0.0),
])
def test_timespan_ok(value, seconds):
    assert v.timespan("t", value) == seconds


@pytest.mark.parametrize("value", [-1, "-1", "abc", "5 parsecs", "", True, "1s;2", "5s\n"])
def test_timespan_bad(value):
    with pytest.raises(v.InputError) as err:
        v.timespan("restart_sec", value)
    assert str(err.value).startswith("restart_sec:")


def test_format_timespan():
    assert v.format_timespan(5.0) == "5s"
    assert v.format_timespan(1.5) == "1500ms"
    assert v.format_timespan(0.0000015) == "2us"
    assert v.format_timespan(120.0) == "120s"
    assert v.format_timespan(float("inf")) == "infinity"


@pytest.mark.parametrize("value, mode", [("0600", 0o600), ("600", 0o600), (0o600, 0o600), ("0o640", 0o640)])
def test_file_mode_ok(value, mode):
    assert v.file_mode("mode", value) == mode


@pytest.mark.parametrize("value", ["0644", "0604", "0660", 0o644, "0777"])
def test_file_mode_forbidden(value):
    with pytest.raises(v.InputError) as err:
        v.file_mode("mode", value, forbid_bits=0o077)
    assert str(err.value).startswith("mode:") and "refused" in str(err.value)


@pytest.mark.parametrize("value", [600, "rw-------", "99", True, "01777"])
def test_file_mode_not_a_mode(value):
    with pytest.raises(v.InputError, match="^mode:"):
        v.file_mode("mode", value)


@pytest.mark.parametrize("value", ["/usr/bin/x", "/"])
def test_absolute_path_ok(value):
    assert v.absolute_path("p", value) == value


@pytest.mark.parametrize("value", ["usr/bin/x", "/usr/../bin", "/usr//bin", "/usr/./bin", "", "/a\nb"])
def test_absolute_path_bad(value):
    with pytest.raises(v.InputError, match="^p:"):
        v.absolute_path("p", value)


@pytest.mark.parametrize("key", ["1A", "A-B", "A B", "", "A=B", "É"])
def test_env_key_bad(key):
    with pytest.raises(v.InputError, match="^env:"):
        v.env_key("env", key)


def test_full_unit_name():
    assert v.full_unit_name("unit", "w@1.service") == "w@1.service"
    assert v.full_unit_name("unit", "migrate.service") == "migrate.service"
    for bad in ("w@1", "../x.service", "w@a b.service", "w@@.service"):
        with pytest.raises(v.InputError, match="^unit:"):
            v.full_unit_name("unit", bad)


@pytest.mark.parametrize("fn, good, bad", [
    (v.memory_size, ["512M", "2G", "50%", "infinity", "1024"], ["lots", "-1G", "1Q"]),
    (v.cpu_quota, ["50%", "200%"], ["50", "0%", "x%"]),
    (v.tasks_max, ["10", "infinity", "50%"], ["0", "-3", "many"]),
])
def test_limits(fn, good, bad):
    for value in good:
        assert fn("limit", value) == value
    for value in bad:
        with pytest.raises(v.InputError, match="^limit:"):
            fn("limit", value)
