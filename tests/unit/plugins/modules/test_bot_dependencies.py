"""Tests of botfleet.pm2.bot_dependencies with real venv, pip and npm in temporary folders.

The installs fetch six 1.16.0 from PyPI and is-number 7.0.0 from the npm registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from module_runner import run_module_main, warning_messages

from ansible_collections.botfleet.pm2.plugins.module_utils._deps import error_excerpt
from ansible_collections.botfleet.pm2.plugins.modules import bot_dependencies

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "deploy"
PYTHON = os.path.realpath(sys.executable)
NPM = shutil.which("npm")
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def run_module(args: dict[str, Any], **flags: bool) -> dict:
    return run_module_main(bot_dependencies, args, **flags)


def git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return completed.stdout


def make_checkout(root: Path, fixture: str) -> Path:
    """Copy a fixture bot into a git checkout that ignores what installs create."""
    root.mkdir(parents=True)
    git(root, "init", "--quiet")
    (root / ".gitignore").write_text("node_modules/\n__pycache__/\n")
    bot_dir = root / "bots" / fixture
    shutil.copytree(FIXTURES / fixture, bot_dir)
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "Add the bot")
    return bot_dir


class Site:
    """A host layout in one folder: checkout, venvs and state, as the deploy role lays it out."""

    def __init__(self, root: Path):
        self.root = root
        self.checkout = root / "checkout"

    def python_bot(self, name: str = "weather") -> dict[str, Any]:
        return {
            "name": name,
            "runtime": "python",
            "dir": str(self.checkout / "bots" / "python-bot"),
            "venv": str(self.root / "venvs" / name),
            "state_dir": str(self.root / "state" / name),
        }

    def node_bot(self, name: str = "echo") -> dict[str, Any]:
        return {
            "name": name,
            "runtime": "node",
            "dir": str(self.checkout / "bots" / "node-bot"),
            "state_dir": str(self.root / "state" / name),
        }

    def args(self, *bots: dict[str, Any]) -> dict[str, Any]:
        return {"bots": list(bots), "python_path": PYTHON, "npm_path": NPM}

    def git_status(self) -> str:
        return git(self.checkout, "status", "--porcelain", "--untracked-files=all")


def new_site(root: Path) -> Site:
    site = Site(root)
    make_checkout(site.checkout, "python-bot")
    shutil.copytree(FIXTURES / "node-bot", site.checkout / "bots" / "node-bot")
    git(site.checkout, "add", ".")
    git(site.checkout, "commit", "--quiet", "-m", "Add the Node bot")
    return site


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Site, dict[str, Any]]:
    """A site after one real run that installed both bots; tests work on copies of it."""
    site = new_site(tmp_path_factory.mktemp("installed") / "site")
    return site, run_module(site.args(site.python_bot(), site.node_bot()))


@pytest.fixture
def site(installed: tuple[Site, dict[str, Any]], tmp_path: Path) -> Site:
    """A private copy of the installed site; a venv still works after a copy."""
    source, _ = installed
    shutil.copytree(source.root, tmp_path / "site", symlinks=True)
    return Site(tmp_path / "site")


def test_first_run_installs_both_bots(installed):
    _, result = installed
    weather, echo = result["bots"]
    assert result["changed"] is True
    assert weather["reason"] == "first install"
    assert weather["installed"] is True
    assert weather["venv_created"] is True
    assert echo["reason"] == "first install"
    assert echo["installed"] is True
    assert echo["command"] == f"{NPM} ci --omit=dev"


def test_first_run_packages_importable(installed):
    site, _ = installed
    python = Path(site.python_bot()["venv"]) / "bin" / "python"
    version = subprocess.run(
        [str(python), "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    node_module = site.checkout / "bots/node-bot/node_modules/is-number/package.json"
    assert version == "1.16.0\n"
    assert json.loads(node_module.read_text())["version"] == "7.0.0"


def test_first_run_leaves_checkout_clean(installed):
    site, _ = installed
    assert site.git_status() == ""


def test_first_run_writes_stamps(installed):
    site, result = installed
    for bot, outcome in zip((site.python_bot(), site.node_bot()), result["bots"], strict=True):
        stamp = json.loads((Path(bot["state_dir"]) / "dependencies.json").read_text())
        assert stamp["manifest_hash"] == outcome["manifest_hash"]


def test_second_run_installs_nothing(site):
    result = run_module(site.args(site.python_bot(), site.node_bot()), diff=True)
    assert result["changed"] is False
    assert [bot["reason"] for bot in result["bots"]] == ["up to date", "up to date"]
    assert [bot["installed"] for bot in result["bots"]] == [False, False]
    assert result["diff"]["before"] == result["diff"]["after"]


def test_requirements_change_reinstalls(site):
    requirements = site.checkout / "bots/python-bot/requirements.txt"
    requirements.write_text("six==1.16.0\n# pinned for the weather API client\n")
    result = run_module(site.args(site.python_bot()))
    assert result["changed"] is True
    assert result["bots"][0]["reason"] == "manifest changed"
    assert result["bots"][0]["venv_created"] is False


def test_included_requirements_file_hashed(site):
    bot_dir = site.checkout / "bots/python-bot"
    (bot_dir / "base.txt").write_text("six==1.16.0\n")
    (bot_dir / "requirements.txt").write_text("-r base.txt\n")
    first = run_module(site.args(site.python_bot()))
    (bot_dir / "base.txt").write_text("six==1.16.0  # same pin, new comment\n")
    second = run_module(site.args(site.python_bot()))
    assert first["bots"][0]["reason"] == "manifest changed"
    assert second["bots"][0]["reason"] == "manifest changed"
    assert first["bots"][0]["manifest_hash"] != second["bots"][0]["manifest_hash"]


def test_broken_venv_recreated(site):
    python = Path(site.python_bot()["venv"]) / "bin" / "python"
    python.unlink()
    python.symlink_to("/nonexistent/python3")
    result = run_module(site.args(site.python_bot()))
    assert result["bots"][0]["reason"] == "venv recreated"
    assert result["bots"][0]["installed"] is True
    assert result["bots"][0]["venv_created"] is True
    assert python.resolve().exists()


def test_pip_failure_surfaces_message(site):
    bot = site.python_bot()
    stamp = Path(bot["state_dir"]) / "dependencies.json"
    (site.checkout / "bots/python-bot/requirements.txt").write_text("six==0.0.1\n")
    result = run_module(site.args(bot, site.node_bot()))
    assert result["failed"] is True
    assert result["msg"].startswith("Unable to install the Python dependencies of bot weather: ")
    assert "No matching distribution found for six==0.0.1" in result["msg"]
    assert result["rc"] == 1
    assert "six==0.0.1" in result["stderr"]
    assert result["bots"] == []
    assert not stamp.exists()
    assert (Path(site.node_bot()["state_dir"]) / "dependencies.json").exists()


def test_node_modules_missing_reinstalls(site):
    shutil.rmtree(site.checkout / "bots/node-bot/node_modules")
    result = run_module(site.args(site.node_bot()))
    assert result["bots"][0]["reason"] == "node_modules missing"
    assert (site.checkout / "bots/node-bot/node_modules/is-number").is_dir()
    assert site.git_status() == ""


def test_node_without_lockfile_warns(site):
    bot_dir = site.checkout / "bots/node-bot"
    git(site.checkout, "rm", "--quiet", "bots/node-bot/package-lock.json")
    git(site.checkout, "commit", "--quiet", "-m", "Drop the lockfile")
    shutil.rmtree(bot_dir / "node_modules")
    result = run_module(site.args(site.node_bot()))
    assert result["bots"][0]["command"] == f"{NPM} install --omit=dev --no-package-lock"
    assert warning_messages(result)[0].startswith(
        "Bot echo has no package-lock.json or npm-shrinkwrap.json"
    )
    assert not (bot_dir / "package-lock.json").exists()
    assert (bot_dir / "node_modules/is-number").is_dir()


def test_lockfile_mismatch_fails_naming_bot(site):
    package = site.checkout / "bots/node-bot/package.json"
    package.write_text(package.read_text().replace('"7.0.0"', '"6.0.0"'))
    result = run_module(site.args(site.node_bot()))
    assert result["failed"] is True
    assert result["msg"].startswith("Unable to install the Node dependencies of bot echo: ")
    assert "package.json and package-lock.json" in result["msg"]
    assert result["rc"] == 1


def test_new_untracked_files_warned(site):
    target = site.checkout / "bots/python-bot/vendor"
    (site.checkout / "bots/python-bot/requirements.txt").write_text("six==1.16.0\n\n")
    args = {**site.args(site.python_bot()), "pip_extra_args": ["--target", str(target)]}
    result = run_module(args)
    assert result["bots"][0]["installed"] is True
    assert "left new untracked files" in warning_messages(result)[0]


def test_check_mode_changes_nothing(tmp_path):
    site = new_site(tmp_path / "site")
    result = run_module(site.args(site.python_bot(), site.node_bot()), check=True)
    assert result["changed"] is True
    assert [bot["reason"] for bot in result["bots"]] == ["first install", "first install"]
    assert not Path(site.python_bot()["venv"]).exists()
    assert not (site.checkout / "bots/node-bot/node_modules").exists()
    assert not (site.root / "state").exists()


def test_python_bot_requires_venv(tmp_path):
    site = Site(tmp_path)
    bot = site.python_bot()
    del bot["venv"]
    result = run_module(site.args(bot))
    assert result["failed"] is True
    assert "venv" in result["msg"]


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            # npm 11.19 output of `npm ci` with a lockfile out of sync.
            "npm-ci-out-of-sync.stderr",
            "code EUSAGE\n"
            "`npm ci` can only install packages when your package.json and package-lock.json or "
            "npm-shrinkwrap.json are in sync. Please update your lock file with `npm install` "
            "before continuing.\n"
            "Invalid: lock file's is-number@7.0.0 does not satisfy is-number@6.0.0\n"
            "Clean install a project\n"
            "A complete log of this run can be found in: "
            "/home/bots/.npm/_logs/2025-03-01T14_22_33_000Z-debug-0.log",
        ),
        (
            # pip 23.2 output for a pinned version that does not exist.
            "pip-no-matching-version.stderr",
            None,
        ),
    ],
)
def test_error_excerpt_keeps_cause(fixture, expected):
    text = (FIXTURES / fixture).read_text()
    excerpt = error_excerpt(text)
    assert excerpt == (expected if expected is not None else text.strip())


def test_missing_bot_folder_fails(tmp_path):
    site = Site(tmp_path)
    result = run_module(site.args(site.node_bot()))
    assert result["msg"] == (
        f"Unable to install the dependencies of bot echo: its folder {site.node_bot()['dir']} "
        "does not exist; check the bot's path in botfleet_bots and that the "
        "repository contains it"
    )
