"""Run an Ansible module's main() in the test process and return its JSON result."""

from __future__ import annotations

import contextlib
import io
import json
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import _internal as module_internal
from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.testing import patch_module_args


def run_module_main(
    module: ModuleType,
    args: dict[str, Any],
    check: bool = False,
    diff: bool = False,
) -> dict:
    """Run module.main() with args as a module process would and return the parsed result."""
    payload = {**args, "_ansible_check_mode": check, "_ansible_diff": diff}
    output = io.StringIO()
    with (
        contextlib.redirect_stdout(output),
        patch_module_args(payload),
        mock.patch.object(module_internal, "is_controller", False),
        pytest.raises(SystemExit),
    ):
        # Warnings go to a process-wide list, or to the controller's display after other tests
        # import controller code. Each run starts with an empty list, as in a module process.
        module_warnings._global_warnings.clear()
        module.main()
    return json.loads(output.getvalue())


def warning_messages(result: dict[str, Any]) -> list[str]:
    """Return the warning texts, which ansible-core 2.19 wraps in an event object."""
    return [
        item["event"]["msg"] if isinstance(item, dict) else item
        for item in result.get("warnings", [])
    ]
