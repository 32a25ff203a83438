from __future__ import annotations

import pytest
from ansible_collections.supervised.background.plugins.module_utils import systemd


def test_parse_show_blocks_in_order():
    text = "Id=a@1.service\nActiveState=active\nMainPID=12\n\nId=a@2.service\nActiveState=failed\nMainPID=0\n"
    blocks = systemd.parse_show(text, 2)
    assert blocks[0]["Id"] == "a@1.service" and blocks[1]["ActiveState"] == "failed"


def test_parse_show_keeps_equals_in_values():
    blocks = systemd.parse_show("Environment=A=1 B=2\nExecStart={ path=/x ; argv[]=/x a=b }\n", 1)
    assert blocks[0]["Environment"] == "A=1 B=2"


def test_parse_show_count_mismatch():
    with pytest.raises(systemd.SystemdError):
        systemd.parse_show("Id=a\n", 2)


@pytest.mark.parametrize("value, expected", [
    ("12", 12), ("[not set]", None), ("18446744073709551615", None), ("", None), ("x", None),
])
def test_to_int(value, expected):
    assert systemd.to_int(value) == expected


def test_instance_of():
    assert systemd.instance_of("w@3.service", "w") == "3"
    assert systemd.instance_of("w@.service", "w") is None
    assert systemd.instance_of("w2@3.service", "w") is None
    assert systemd.instance_of("w.x@3.service", "w") is None
