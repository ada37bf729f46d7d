"""The deploy's preflight reports inventory changes that are not committed.

A copy of the scenario's inventory goes into a git repository on the
controller with one uncommitted edit, as an operator's inventory checkout
would look before a forgotten commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import BOTS, PLAYBOOK, pids, playbook_command

GIT_ENV = {
    "GIT_AUTHOR_NAME": "botfleet tests",
    "GIT_AUTHOR_EMAIL": "tests@botfleet.invalid",
    "GIT_COMMITTER_NAME": "botfleet tests",
    "GIT_COMMITTER_EMAIL": "tests@botfleet.invalid",
}


@pytest.fixture
def dirty_inventory(tmp_path: Path) -> Path:
    """Return the inventory file of a git repository with one uncommitted edit."""
    source = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    copy = tmp_path / "inventory"
    shutil.copytree(source, copy)
    env = {**os.environ, **GIT_ENV}
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "Add the inventory"]):
        subprocess.run(["git", *command], cwd=copy, env=env, check=True)
    with (copy / "ansible_inventory.yml").open("a") as inventory:
        inventory.write("# an edit nobody committed\n")
    return copy / "ansible_inventory.yml"


def run_with_inventory(host, inventory: Path, check: str) -> subprocess.CompletedProcess:
    command, env = playbook_command(host, PLAYBOOK, "-e", f"deploy_inventory_check={check}")
    command[command.index("-i") + 1] = str(inventory)
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def test_uncommitted_inventory_fails_first(host, dirty_inventory):
    before = pids(host)

    result = run_with_inventory(host, dirty_inventory, "fail")

    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "uncommitted or unpushed changes" in output, output[-3000:]
    assert "ansible_inventory.yml" in output, output[-3000:]
    assert "Take the deploy lock" not in output, output[-3000:]
    after = pids(host)
    for name in BOTS:
        assert after[name] == before[name], name


def test_uncommitted_inventory_warns(host, dirty_inventory):
    result = run_with_inventory(host, dirty_inventory, "warn")

    assert result.returncode == 0, result.stdout[-3000:]
    assert "Warning: the inventory repository" in result.stdout
