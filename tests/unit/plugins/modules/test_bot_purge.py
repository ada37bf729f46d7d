"""Tests of botfleet.pm2.bot_purge on files in temporary folders."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
from module_runner import run_module_main

from ansible_collections.botfleet.pm2.plugins.modules import bot_purge


def run_module(args: dict[str, Any], **flags: bool) -> dict:
    return run_module_main(bot_purge, args, **flags)


@pytest.fixture
def bot_files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "checkout" / "bots" / "old bot"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "state.json").write_text('{"count": 3}\n')
    (folder / "node_modules" / "left-pad").mkdir(parents=True)
    (folder / "main.py").write_text("print('tracked')\n")
    venv = tmp_path / "venvs" / "old-bot"
    (venv / "bin").mkdir(parents=True)
    logs = tmp_path / "pm2" / "logs"
    logs.mkdir(parents=True)
    (logs / "old-bot-out.log").write_text("heartbeat\n")
    (logs / "old-bot-out.log.1").write_text("older heartbeat\n")
    (logs / "old-bot-two-out.log").write_text("another bot\n")
    return {"folder": folder, "venv": venv, "logs": logs, "backups": tmp_path / "backups"}


def purge_args(files: dict[str, Path]) -> dict[str, Any]:
    folder = files["folder"]
    log_pattern = f"{files['logs']}/old-bot-out.log*"
    return {
        "bots": [
            {
                "name": "old-bot",
                "save": [str(folder / "data"), log_pattern],
                "exclude": [str(folder / "node_modules")],
                "remove": [
                    str(folder / "data"),
                    str(folder / "node_modules"),
                    str(files["venv"]),
                    log_pattern,
                ],
            }
        ],
        "backup_root": str(files["backups"]),
    }


def test_data_saved_before_removal(bot_files):
    result = run_module(purge_args(bot_files))

    [entry] = result["purged"]
    assert result["changed"] is True
    assert not (bot_files["folder"] / "data").exists()
    assert not (bot_files["folder"] / "node_modules").exists()
    assert not bot_files["venv"].exists()
    assert (bot_files["folder"] / "main.py").exists()
    assert (bot_files["logs"] / "old-bot-two-out.log").exists()
    archive = Path(entry["archive"])
    assert archive.parent == bot_files["backups"]
    assert archive.name.startswith("purged-old-bot-")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        state = next(name for name in names if name.endswith("data/state.json"))
        assert tar.extractfile(state).read() == b'{"count": 3}\n'
    assert any(name.endswith("old-bot-out.log.1") for name in names)
    assert not any("node_modules" in name for name in names)


def test_second_run_changes_nothing(bot_files):
    run_module(purge_args(bot_files))
    again = run_module(purge_args(bot_files))
    assert again["changed"] is False
    assert again["purged"][0]["archive"] is None
    assert len(list(bot_files["backups"].iterdir())) == 1


def test_check_mode_reports_and_keeps(bot_files):
    result = run_module(purge_args(bot_files), check=True, diff=True)

    [entry] = result["purged"]
    assert result["changed"] is True
    assert str(bot_files["venv"]) in entry["removed"]
    assert str(bot_files["logs"] / "old-bot-out.log.1") in entry["removed"]
    assert str(bot_files["venv"]) in result["diff"]["before"]
    assert (bot_files["folder"] / "data" / "state.json").exists()
    assert not bot_files["backups"].exists()


def test_symlink_removed_not_followed(bot_files, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the bot's\n")
    link = bot_files["folder"] / "data" / "shared"
    link.symlink_to(outside)
    args = purge_args(bot_files)
    args["bots"][0]["remove"].append(str(link))

    run_module(args)

    assert (outside / "keep.txt").read_text() == "not the bot's\n"


def test_unwritable_backup_removes_nothing(bot_files):
    bot_files["backups"].write_text("a file where the folder should be\n")

    result = run_module(purge_args(bot_files))

    assert "nothing of this bot was removed" in result["msg"]
    assert (bot_files["folder"] / "data" / "state.json").exists()
    assert bot_files["venv"].exists()


@pytest.mark.parametrize("path", ["relative/data", "/srv", "/srv/botfleet/../etc"])
def test_unsafe_path_refused(bot_files, path):
    args = purge_args(bot_files)
    args["bots"][0]["remove"] = [path]

    result = run_module(args)

    assert "Unable to purge bot 'old-bot'" in result["msg"]
    assert bot_files["venv"].exists()
