"""Every role's defaults/main.yml and meta/argument_specs.yml agree, so neither drifts."""

from __future__ import annotations

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_defaults_match_argument_specs(role):
    spec = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults_file = role / "defaults/main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    defaults = defaults or {}
    for name, option in spec.items():
        assert name.startswith(role.name + "_"), f"{name}: public role vars start with {role.name}_"
        assert option.get("description"), f"{name}: no description"
        if option.get("required"):
            assert name not in defaults, f"{name} is required, so it has no default"
            continue
        assert name in defaults, f"{name}: in argument_specs but not in defaults/main.yml"
        assert defaults[name] == option.get("default"), f"{name}: default differs between the two files"
    extra = set(defaults) - set(spec)
    assert not extra, f"defaults without argument_specs entry: {sorted(extra)}"
