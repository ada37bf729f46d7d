"""Each module's DOCUMENTATION matches the argument spec it passes to AnsibleModule."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from ansible_collections.botfleet.pm2.plugins.doc_fragments.pm2 import ModuleDocFragment

MODULES_DIR = Path(__file__).resolve().parents[4] / "plugins" / "modules"
MODULES = sorted(path.stem for path in MODULES_DIR.glob("*.py") if path.stem != "__init__")
FRAGMENTS = {"botfleet.pm2.pm2": yaml.safe_load(ModuleDocFragment.DOCUMENTATION)}


class SpecCaptured(Exception):
    """Raised by the fake AnsibleModule once it has the argument spec."""


def captured_argument_spec(name: str, monkeypatch) -> dict:
    module = importlib.import_module(f"ansible_collections.botfleet.pm2.plugins.modules.{name}")
    captured: dict = {}

    def fake_module(*args, **kwargs):
        captured.update(kwargs.get("argument_spec") or args[0])
        raise SpecCaptured

    monkeypatch.setattr(module, "AnsibleModule", fake_module)
    with pytest.raises(SpecCaptured):
        module.main()
    return captured


def documented_options(name: str) -> dict:
    module = importlib.import_module(f"ansible_collections.botfleet.pm2.plugins.modules.{name}")
    doc = yaml.safe_load(module.DOCUMENTATION)
    options = dict(doc.get("options") or {})
    for fragment in doc.get("extends_documentation_fragment") or []:
        options.update(FRAGMENTS[fragment]["options"])
    return options


def test_modules_found():
    assert {"pm2_status", "pm2_ecosystem", "git_sync", "ecosystem_file"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_match_spec(name, monkeypatch):
    spec = captured_argument_spec(name, monkeypatch)
    options = documented_options(name)
    assert set(options) == set(spec)
    for option, documented in options.items():
        actual = spec[option]
        assert documented.get("type", "str") == actual.get("type", "str"), option
        assert documented.get("default") == actual.get("default"), option
        assert documented.get("choices") == actual.get("choices"), option
        assert bool(documented.get("required")) == bool(actual.get("required")), option
        assert documented.get("description"), option
