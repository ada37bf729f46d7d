"""Each role's defaults, argument spec and README agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(path.parent.parent.name for path in ROOT.glob("roles/*/meta/argument_specs.yml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def spec_options(role: str) -> dict:
    spec = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    return spec["argument_specs"]["main"]["options"]


def test_roles_found():
    assert {"ca_certificates", "nodejs", "python", "pm2"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_spec_covers_defaults(role):
    defaults = load(ROOT / "roles" / role / "defaults" / "main.yml")
    assert set(defaults) - set(spec_options(role)) == set()


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_in_defaults_file(role):
    defaults = load(ROOT / "roles" / role / "defaults" / "main.yml")
    options = spec_options(role)
    with_default = {name for name, option in options.items() if "default" in option}
    assert with_default - set(defaults) == set()


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal(role):
    defaults = load(ROOT / "roles" / role / "defaults" / "main.yml")
    for name, option in spec_options(role).items():
        if "default" in option:
            assert option["default"] == defaults[name], name


@pytest.mark.parametrize("role", ROLES)
def test_spec_options_described(role):
    for name, option in spec_options(role).items():
        assert option.get("description"), name
        assert option.get("type"), name


def test_shared_settings_agree():
    """A shared `botfleet_` setting has the same default in every role."""
    seen: dict[str, tuple[str, object]] = {}
    for role in ROLES:
        for name, option in spec_options(role).items():
            if not name.startswith("botfleet_") or "default" not in option:
                continue
            first_role, first_default = seen.setdefault(name, (role, option["default"]))
            assert option["default"] == first_default, f"{name}: {role} vs {first_role}"


def test_role_readmes_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scripts" / "role_readme.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_deploy_spec_names_every_bot_field():
    """The fields of a bot are described in the deploy role's argument spec."""
    from ansible_collections.botfleet.pm2.plugins.module_utils._bots import BOT_FIELDS

    text = " ".join(spec_options("deploy")["botfleet_bots"]["description"])
    missing = [field for field in BOT_FIELDS if f"C({field})" not in text]
    assert missing == []
