"""Helpers of the deploy scenario's tests: PM2 state, the bots repository, playbook runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = ROOT / "playbooks" / "deploy.yml"
STATUS_PLAYBOOK = ROOT / "playbooks" / "status.yml"
BOTS = ("ping-bot", "weather-bot", "todoist-bot")
SECRET = "molecule-secret-value-7f3a9c"
WORK = "/srv/git/bots-work"
CHECKOUT = "/srv/botfleet/checkout"
LOCK = "/srv/botfleet/deploy.lock"
PM2 = "sudo -u bots env HOME=/home/bots PM2_HOME=/home/bots/.pm2 /usr/local/bin/pm2"


def jlist(host) -> dict[str, dict]:
    apps = json.loads(host.check_output(f"{PM2} jlist"))
    return {app["name"]: app for app in apps}


def pids(host) -> dict[str, int]:
    return {name: app["pid"] for name, app in jlist(host).items()}


def as_bots(host, script: str) -> str:
    return host.check_output(f"sudo -u bots bash -ec {json.dumps(script)}")


def commit(host, change: str, message: str) -> str:
    as_bots(host, f"cd {WORK} && {change} && git add -A && git commit -qm '{message}'")
    as_bots(host, f"cd {WORK} && git push -q /srv/git/bots.git main")
    return as_bots(host, f"git -C {WORK} rev-parse HEAD")


def playbook_command(host, playbook: Path, *options: str) -> tuple[list[str], dict[str, str]]:
    """Return the ansible-playbook command limited to host, and its environment."""
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        # Molecule sets ANSIBLE_FORCE_COLOR, which wins over ANSIBLE_NOCOLOR.
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    name = host.backend.get_hostname()
    command = ["ansible-playbook", "-i", inventory, "--limit", name, *options, str(playbook)]
    return command, env


def run_playbook(host, playbook: Path, *options: str) -> subprocess.CompletedProcess:
    command, env = playbook_command(host, playbook, *options)
    return subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=600
    )


def deploy(host) -> subprocess.CompletedProcess:
    return run_playbook(host, PLAYBOOK)


def declared_bots() -> list[dict]:
    scenario = yaml.safe_load((Path(__file__).parents[1] / "molecule.yml").read_text())
    return scenario["provisioner"]["inventory"]["group_vars"]["bot_hosts"]["botfleet_bots"]
