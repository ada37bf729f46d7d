"""Checks of examples/: the bots repository the demo deploys and the GitHub Actions workflow."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BOTS_REPO = EXAMPLES / "bots-repo"
WORKFLOW = EXAMPLES / "github-actions" / "deploy.yml"

# Folders that appear when a bot runs or installs in place; git ignores them in the bots repository.
UNTRACKED_DIRS = {"node_modules", "__pycache__", ".venv", "data"}

EXACT_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!-]+$")
TOKEN_PATTERNS = {
    # Discord bot tokens: base64 user id, timestamp and HMAC joined by dots.
    "discord token": re.compile(r"[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}"),
    "secret assignment": re.compile(
        r"(?i)(token|secret|password|api[_-]?key)\w*\s*[:=]\s*['\"][^'\"\s]{8,}['\"]"
    ),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


def load_workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def workflow_steps() -> list[dict[str, Any]]:
    return load_workflow()["jobs"]["deploy"]["steps"]


def check_github_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def bots_repo_files() -> list[Path]:
    return [
        path
        for path in sorted(BOTS_REPO.rglob("*"))
        if path.is_file() and not UNTRACKED_DIRS & set(path.relative_to(BOTS_REPO).parts)
    ]


def find_token_like(text: str) -> list[str]:
    return [kind for kind, pattern in TOKEN_PATTERNS.items() if pattern.search(text)]


def pinned_packages(requirements: Path) -> dict[str, str]:
    """Map each requirement line to its package name, keeping lines that are not exact pins."""
    lines = requirements.read_text(encoding="utf-8").splitlines()
    pins = {}
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            pins[re.split(r"[\[=<>!~ ;]", requirement, maxsplit=1)[0]] = requirement
    return pins


def test_workflow_matches_github_schema() -> None:
    result = check_github_schema(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  deploy:\n    steps:\n      - run: true\n")
    result = check_github_schema(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "runs-on" in result.stdout


def test_workflow_triggers() -> None:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    triggers = load_workflow()[True]
    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers


def test_workflow_one_deploy_at_a_time() -> None:
    concurrency = load_workflow()["concurrency"]
    assert concurrency["group"]
    assert concurrency["cancel-in-progress"] is False


def test_workflow_runs_deploy_playbook() -> None:
    commands = " ".join(step.get("run", "") for step in workflow_steps())
    assert (
        "ansible-playbook -i inventory/hosts.yml playbooks/deploy.yml "
        "-e botfleet_version=${{ github.sha }}"
    ) in commands
    assert "ansible-galaxy collection install" in commands


@pytest.mark.parametrize(
    "secret", ["DEPLOY_SSH_KEY", "DEPLOY_KNOWN_HOSTS", "ANSIBLE_VAULT_PASSWORD"]
)
def test_workflow_writes_secret_file(secret: str) -> None:
    writers = [step for step in workflow_steps() if secret in step.get("env", {})]
    assert len(writers) == 1
    assert writers[0]["env"][secret] == f"${{{{ secrets.{secret} }}}}"
    assert "umask 077" in writers[0]["run"]
    assert "chmod 0600" in writers[0]["run"]


def test_workflow_deletes_secret_files() -> None:
    last_step = workflow_steps()[-1]
    assert last_step["if"] == "always()"
    assert 'rm -rf "$RUNNER_TEMP/botfleet-secrets"' in last_step["run"]


def test_workflow_keeps_secrets_out_of_scripts() -> None:
    # Secrets reach scripts through env, so a value is never pasted into the shell source.
    scripts = [step.get("run", "") for step in workflow_steps()]
    assert not [script for script in scripts if "secrets." in script]


@pytest.mark.parametrize(
    ("folder", "script"),
    [("ping-bot", "index.js"), ("weather-bot", "bot.py"), ("todoist bot", "main.py")],
)
def test_bot_script_exists(folder: str, script: str) -> None:
    assert (BOTS_REPO / "bots" / folder / script).is_file()


def test_package_lock_matches_package_json() -> None:
    bot = BOTS_REPO / "bots" / "ping-bot"
    manifest = json.loads((bot / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((bot / "package-lock.json").read_text(encoding="utf-8"))
    root = lock["packages"][""]
    assert lock["name"] == manifest["name"]
    assert lock["lockfileVersion"] >= 2
    assert root["dependencies"] == manifest["dependencies"]
    for name, version in manifest["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version} is not an exact version"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


@pytest.mark.parametrize(
    ("folder", "expected_packages"),
    [("weather-bot", {"discord.py"}), ("todoist bot", set())],
)
def test_requirements_pins_exact(folder: str, expected_packages: set[str]) -> None:
    pins = pinned_packages(BOTS_REPO / "bots" / folder / "requirements.txt")
    assert set(pins) == expected_packages
    assert [line for line in pins.values() if not EXACT_PIN.match(line)] == []


@pytest.mark.parametrize(
    ("line", "exact"),
    [
        ("discord.py==2.7.1", True),
        ("discord.py[voice]==2.7.1", True),
        ("discord.py>=2.7", False),
        ("discord.py==2.*", False),
        ("discord.py", False),
    ],
)
def test_exact_pin_pattern(line: str, exact: bool) -> None:
    assert bool(EXACT_PIN.match(line)) is exact


def test_bots_repo_has_no_token_like_strings() -> None:
    files = bots_repo_files()
    assert len(files) >= 9
    findings = {
        str(path.relative_to(BOTS_REPO)): find_token_like(path.read_text(encoding="utf-8"))
        for path in files
    }
    assert {path: kinds for path, kinds in findings.items() if kinds} == {}


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        ("M" + "a" * 23 + "." + "b" * 6 + "." + "c" * 27, "discord token"),
        ('DISCORD_TOKEN = "' + "x" * 20 + '"', "secret assignment"),
        ("-----BEGIN OPENSSH " + "PRIVATE KEY-----", "private key"),
    ],
)
def test_token_detector_finds_sample(sample: str, kind: str) -> None:
    assert find_token_like(sample) == [kind]


def run_python_bot(
    repo: Path, folder: str, script: str, revision: str | None, stop_signal: signal.Signals
) -> tuple[int, str]:
    """Run a Python bot offline with a 0.3 s heartbeat for about 1.5 s, then stop it."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DISCORD_TOKEN", "BOTFLEET_BOT", "BOTFLEET_REVISION"}
    }
    env.update(HEARTBEAT_SECONDS="0.3", PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    if revision is not None:
        env["BOTFLEET_REVISION"] = revision
    bot_folder = repo / "bots" / folder
    with subprocess.Popen(
        [sys.executable, str(bot_folder / script)],
        cwd=bot_folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        time.sleep(1.5)
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=10)
    return process.returncode, output


@pytest.mark.parametrize(
    ("folder", "script", "name", "revision", "stop_signal", "old_state", "expected_starts"),
    [
        ("weather-bot", "bot.py", "weather-bot", "0a1b2c3d", signal.SIGINT, '{"starts": 4}', 5),
        ("todoist bot", "main.py", "todoist-bot", None, signal.SIGTERM, None, 1),
        ("weather-bot", "bot.py", "weather-bot", "0a1b2c3d", signal.SIGTERM, "not json", 1),
    ],
    ids=["weather restart sigint", "todoist first sigterm", "weather corrupt state"],
)
def test_python_bot_offline_run(
    tmp_path: Path,
    folder: str,
    script: str,
    name: str,
    revision: str | None,
    stop_signal: signal.Signals,
    old_state: str | None,
    expected_starts: int,
) -> None:
    repo = tmp_path / "bots-repo"
    shutil.copytree(BOTS_REPO, repo, ignore=shutil.ignore_patterns(*UNTRACKED_DIRS))
    state_path = repo / "bots" / folder / "data" / "state.json"
    if old_state is not None:
        state_path.parent.mkdir()
        state_path.write_text(old_state)

    returncode, output = run_python_bot(repo, folder, script, revision, stop_signal)

    state = json.loads(state_path.read_text())
    expected_revision = revision or "unknown"
    assert returncode == 0, output
    assert (
        f"{name} starting: revision {expected_revision}, offline mode "
        f"(DISCORD_TOKEN is not set), start number {expected_starts}"
    ) in output
    assert output.count("heartbeat ") >= 2, output
    assert f"Received {stop_signal.name}, stopping" in output
    assert f"{name} stopped" in output
    assert ("Unable to read state file" in output) is (old_state == "not json"), output
    assert state["starts"] == expected_starts
    assert state["revision"] == expected_revision
    assert datetime.fromisoformat(state["last_heartbeat"]).utcoffset() is not None
    assert list(state_path.parent.iterdir()) == [state_path]
