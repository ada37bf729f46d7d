"""Tests of the ecosystem_file module on a real git checkout, checked with the real node."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.template import Templar

from ansible_collections.botfleet.pm2.plugins.filter.bots import bots_normalize, bots_secret_env
from ansible_collections.botfleet.pm2.plugins.module_utils._bots import (
    ECOSYSTEM_HEADER,
    REDACTED,
    parse_ecosystem,
    redact,
    redact_existing,
)
from ansible_collections.botfleet.pm2.plugins.modules import ecosystem_file

ROOT_DIR = Path(__file__).resolve().parents[4]
INVENTORY = ROOT_DIR / "inventory.example"
GROUP_VARS = INVENTORY / "group_vars" / "bot_hosts"
FIXTURES = ROOT_DIR / "tests" / "unit" / "fixtures" / "bots"
NODE = shutil.which("node") or "/usr/bin/node"

TEST_TOKENS = {
    "vault_ping_bot_discord_token": "ping-token-0123456789abcdef",
    "vault_weather_bot_discord_token": "weather-token-0123456789abcdef",
    "vault_todoist_bot_discord_token": "todoist-token-0123456789abcdef",
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "botfleet tests",
    "GIT_AUTHOR_EMAIL": "tests@botfleet.invalid",
    "GIT_COMMITTER_NAME": "botfleet tests",
    "GIT_COMMITTER_EMAIL": "tests@botfleet.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(checkout: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=checkout, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit_all(checkout: Path, message: str) -> str:
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", message)
    return git(checkout, "rev-parse", "HEAD")


def load_inventory_vars() -> dict[str, Any]:
    """Load group_vars of inventory.example, decrypting vault.yml with the example password."""
    loader = DataLoader()
    password = (INVENTORY / ".vault-password-example").read_text().strip().encode()
    loader.set_vault_secrets([("default", VaultSecret(password))])
    variables = dict(loader.load_from_file(str(GROUP_VARS / "main.yml"), trusted_as_template=True))
    variables.update(loader.load_from_file(str(GROUP_VARS / "vault.yml")))
    return variables


def template_bots(variables: dict[str, Any]) -> list[dict[str, Any]]:
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(variables["botfleet_bots"])


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Any]:
    """A botfleet root with the fixture repository checked out and the example bots."""
    root = tmp_path / "srv"
    checkout = root / "checkout"
    shutil.copytree(FIXTURES / "repo", checkout)
    git(checkout, "init", "-q", "-b", "main")
    revision = commit_all(checkout, "Add the test bots")

    variables = load_inventory_vars()
    variables.update(TEST_TOKENS)
    raw_bots = template_bots(variables)
    bots = bots_normalize(
        raw_bots,
        root=str(root),
        user=variables["botfleet_user"],
        repo=variables["botfleet_repo"],
        version=variables["botfleet_version"],
        host="vps1",
        node_path=NODE,
    )
    return {
        "root": root,
        "checkout": checkout,
        "revision": revision,
        "raw_bots": raw_bots,
        "bots": bots,
        "secret_env": bots_secret_env(raw_bots),
        "path": root / "ecosystem.config.js",
        "tmp": tmp_path,
    }


def run_module(
    fleet: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    check: bool = False,
    diff: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    args = {
        "path": str(fleet["path"]),
        "bots": fleet["bots"],
        "secret_env": fleet["secret_env"],
        "node_path": NODE,
        "_ansible_check_mode": check,
        "_ansible_diff": diff,
        "_ansible_remote_tmp": str(fleet["tmp"] / "ansible-tmp"),
        "_ansible_keep_remote_files": False,
    }
    args.update(overrides)
    with patch_module_args(args), pytest.raises(SystemExit):
        ecosystem_file.main()
    return json.loads(capsys.readouterr().out)


def load_with_node(path: Path) -> dict[str, Any]:
    script = "console.log(JSON.stringify(require(process.argv[1])))"
    done = subprocess.run(
        [NODE, "-e", script, str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def fingerprints(result: dict[str, Any]) -> dict[str, str]:
    return {app["name"]: app["fingerprint"] for app in result["apps"]}


def expected_apps(fleet: dict[str, Any], loaded: dict[str, Any]) -> list[dict[str, Any]]:
    """Fill the recorded expected apps with this run's root, node, revision and fingerprints."""
    text = (FIXTURES / "inventory_example_apps.json").read_text()
    text = text.replace("@ROOT@", str(fleet["root"])).replace("@NODE@", NODE)
    text = text.replace("@REVISION@", fleet["revision"])
    apps = json.loads(text)
    running = {app["name"]: app["env"]["BOTFLEET_FINGERPRINT"] for app in loaded["apps"]}
    for app in apps:
        app["env"]["BOTFLEET_FINGERPRINT"] = running[app["name"]]
    return apps


def test_inventory_example_vault_decrypts() -> None:
    variables = load_inventory_vars()
    assert sorted(k for k in variables if k.startswith("vault_")) == sorted(TEST_TOKENS)


def test_rendered_file_loads_in_node(fleet, capsys) -> None:
    run_module(fleet, capsys)
    loaded = load_with_node(fleet["path"])
    assert loaded["apps"] == expected_apps(fleet, loaded)


def test_rendered_file_header(fleet, capsys) -> None:
    run_module(fleet, capsys)
    text = fleet["path"].read_text()
    assert text.startswith(f"{ECOSYSTEM_HEADER}module.exports = {{")
    assert text.endswith("};\n")


def test_rendered_file_parses_without_node(fleet, capsys) -> None:
    run_module(fleet, capsys)
    assert parse_ecosystem(fleet["path"].read_text()) == load_with_node(fleet["path"])


def test_file_mode_and_owner(fleet, capsys) -> None:
    run_module(fleet, capsys)
    info = fleet["path"].stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.geteuid()


def test_result_apps_summary(fleet, capsys) -> None:
    result = run_module(fleet, capsys)
    loaded = load_with_node(fleet["path"])
    assert [app["name"] for app in result["apps"]] == ["ping-bot", "weather-bot", "todoist-bot"]
    assert {app["revision"] for app in result["apps"]} == {fleet["revision"]}
    assert fingerprints(result) == {
        app["name"]: app["env"]["BOTFLEET_FINGERPRINT"] for app in loaded["apps"]
    }


def test_second_run_unchanged(fleet, capsys) -> None:
    first = run_module(fleet, capsys)
    second = run_module(fleet, capsys)
    assert first["changed"] is True
    assert second["changed"] is False


def test_check_mode_writes_nothing(fleet, capsys) -> None:
    result = run_module(fleet, capsys, check=True, diff=True)
    assert result["changed"] is True
    assert not fleet["path"].exists()
    assert result["diff"]["before"] == ""


def test_hand_edit_put_back(fleet, capsys) -> None:
    run_module(fleet, capsys)
    original = fleet["path"].read_text()
    fleet["path"].write_text(original.replace('"max_restarts": 10', '"max_restarts": 99'))
    result = run_module(fleet, capsys, diff=True)
    assert result["changed"] is True
    assert fleet["path"].read_text() == original
    assert '"max_restarts": 99' in result["diff"]["before"]
    assert '"max_restarts": 99' not in result["diff"]["after"]


def test_wrong_mode_fixed(fleet, capsys) -> None:
    run_module(fleet, capsys)
    fleet["path"].chmod(0o644)
    result = run_module(fleet, capsys)
    assert result["changed"] is True
    assert stat.S_IMODE(fleet["path"].stat().st_mode) == 0o600


def test_absent_bot_left_out(fleet, capsys) -> None:
    fleet["bots"][1]["state"] = "absent"
    run_module(fleet, capsys)
    names = [app["name"] for app in load_with_node(fleet["path"])["apps"]]
    assert names == ["ping-bot", "todoist-bot"]


def test_commit_in_one_bot_folder(fleet, capsys) -> None:
    first = run_module(fleet, capsys)
    before = fingerprints(first)
    revisions_before = {app["name"]: app["revision"] for app in first["apps"]}
    (fleet["checkout"] / "bots" / "ping-bot" / "index.js").write_text("// changed\n")
    revision = commit_all(fleet["checkout"], "Change only ping-bot")
    result = run_module(fleet, capsys)
    after = fingerprints(result)
    revisions = {app["name"]: app["revision"] for app in result["apps"]}
    assert after["ping-bot"] != before["ping-bot"]
    assert after["weather-bot"] == before["weather-bot"]
    assert after["todoist-bot"] == before["todoist-bot"]
    assert revisions["ping-bot"] == revision
    assert revisions["weather-bot"] == revisions_before["weather-bot"]
    assert revisions["todoist-bot"] == revisions_before["todoist-bot"]


def test_commit_outside_any_bot(fleet, capsys) -> None:
    before = fingerprints(run_module(fleet, capsys))
    (fleet["checkout"] / "README.md").write_text("# bots\n")
    commit_all(fleet["checkout"], "Add a README")
    assert fingerprints(run_module(fleet, capsys)) == before


def test_shared_path_change(fleet, capsys) -> None:
    before = fingerprints(run_module(fleet, capsys))
    (fleet["checkout"] / "lib" / "common" / "helpers.py").write_text('GREETING = "hi"\n')
    commit_all(fleet["checkout"], "Change lib/common")
    after = fingerprints(run_module(fleet, capsys))
    assert after["ping-bot"] == before["ping-bot"]
    assert after["weather-bot"] != before["weather-bot"]
    assert after["todoist-bot"] != before["todoist-bot"]


def test_uncommitted_manifest_change(fleet, capsys) -> None:
    first = run_module(fleet, capsys)
    requirements = fleet["checkout"] / "bots" / "weather-bot" / "requirements.txt"
    requirements.write_text("requests==2.32.4\n")
    second = run_module(fleet, capsys)
    changed = {a["name"] for a, b in zip(first["apps"], second["apps"], strict=True) if a != b}
    assert changed == {"weather-bot"}


def test_secret_change_changes_fingerprint(fleet, capsys) -> None:
    before = fingerprints(run_module(fleet, capsys))
    fleet["secret_env"]["todoist-bot"]["DISCORD_TOKEN"] = "rotated-token-fedcba9876543210"
    result = run_module(fleet, capsys, diff=True)
    after = fingerprints(result)
    assert after["todoist-bot"] != before["todoist-bot"]
    assert after["ping-bot"] == before["ping-bot"]


def test_secret_values_written_to_file(fleet, capsys) -> None:
    run_module(fleet, capsys)
    env = load_with_node(fleet["path"])["apps"][0]["env"]
    assert env["DISCORD_TOKEN"] == TEST_TOKENS["vault_ping_bot_discord_token"]


def test_secret_rotation_diff_redacted(fleet, capsys) -> None:
    run_module(fleet, capsys)
    old_text = fleet["path"].read_text()
    old_token = TEST_TOKENS["vault_todoist_bot_discord_token"]
    new_token = "rotated-token-fedcba9876543210"
    fleet["secret_env"]["todoist-bot"]["DISCORD_TOKEN"] = new_token
    result = run_module(fleet, capsys, diff=True)
    new_text = fleet["path"].read_text()
    before = redact_existing(old_text, fleet["bots"], fleet["secret_env"])
    after_keys = {"DISCORD_TOKEN"}
    after = redact(new_text, {new_token}, after_keys)
    assert old_token in old_text
    assert new_token in new_text
    assert old_token not in before
    assert new_token not in after
    assert REDACTED in before
    assert old_token not in json.dumps(result)
    assert new_token not in json.dumps(result)


def test_module_diff_hides_secrets(fleet, capsys) -> None:
    result = run_module(fleet, capsys, diff=True)
    after = result["diff"]["after"]
    assert f'"DISCORD_TOKEN": "{REDACTED}"' in after
    for token in TEST_TOKENS.values():
        assert token not in after


def test_hand_added_secret_hidden(fleet, capsys) -> None:
    run_module(fleet, capsys)
    text = fleet["path"].read_text()
    edited = text.replace('"HEARTBEAT_SECONDS": "30"', '"OTHER_TOKEN": "hand-pasted-secret-1234"')
    assert edited != text
    before = redact_existing(edited, fleet["bots"], fleet["secret_env"])
    assert "hand-pasted-secret-1234" not in before
    assert f'"OTHER_TOKEN": "{REDACTED}"' in before


def test_plain_env_shown_in_diff(fleet, capsys) -> None:
    result = run_module(fleet, capsys, diff=True)
    assert '"HEARTBEAT_SECONDS": "30"' in result["diff"]["after"]


def test_missing_script_fails(fleet, capsys) -> None:
    (fleet["checkout"] / "bots" / "weather-bot" / "bot.py").unlink()
    commit_all(fleet["checkout"], "Remove the weather bot script")
    result = run_module(fleet, capsys)
    script = fleet["checkout"] / "bots" / "weather-bot" / "bot.py"
    assert result["failed"] is True
    assert f"script {script} not found" in result["msg"]
    assert "bot 'weather-bot'" in result["msg"]
    assert "Fix 'script' of this bot in botfleet_bots" in result["msg"]


def test_missing_shared_path_fails(fleet, capsys) -> None:
    shutil.rmtree(fleet["checkout"] / "lib")
    commit_all(fleet["checkout"], "Remove lib")
    result = run_module(fleet, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(
        "Unable to resolve shared path 'lib/common' of bot 'weather-bot'"
    )


def test_missing_checkout_fails(fleet, capsys) -> None:
    shutil.rmtree(fleet["checkout"])
    result = run_module(fleet, capsys)
    assert result["failed"] is True
    assert "checkout" in result["msg"]
    assert result["msg"].startswith("Unable to render the app of bot 'ping-bot'")


def test_missing_secret_value_fails(fleet, capsys) -> None:
    del fleet["secret_env"]["ping-bot"]
    result = run_module(fleet, capsys)
    assert result["failed"] is True
    assert "no value for secret_env DISCORD_TOKEN" in result["msg"]


def test_missing_folder_fails(fleet, capsys) -> None:
    result = run_module(fleet, capsys, path=str(fleet["tmp"] / "nowhere" / "eco.config.js"))
    assert result["failed"] is True
    assert "Provision the host first" in result["msg"]


def test_check_mode_without_checkout(fleet, capsys) -> None:
    shutil.rmtree(fleet["checkout"])
    result = run_module(fleet, capsys, check=True)
    assert result["changed"] is True
    assert result["msg"].endswith("The file would be written after the first sync")
    assert not fleet["path"].exists()


def test_raw_inventory_bots_rejected(fleet, capsys) -> None:
    raw = [dict(bot, secret_env={}) for bot in fleet["raw_bots"]]
    result = run_module(fleet, capsys, bots=raw)
    assert result["failed"] is True
    assert "not the output of the botfleet.pm2.bots_normalize filter" in result["msg"]


REDACT_CASES = {
    "json string": ('"DISCORD_TOKEN": "abc123456789"', {"abc123456789"}, set()),
    "single quoted": ("DISCORD_TOKEN: 'abc123456789'", {"abc123456789"}, set()),
    "key match": ('"DISCORD_TOKEN": "short"', set(), {"DISCORD_TOKEN"}),
    "escaped quote": ('"DISCORD_TOKEN": "a\\"b"', set(), {"DISCORD_TOKEN"}),
    "pasted in args": ('"args": ["--token", "abc123456789"]', {"abc123456789"}, set()),
}


@pytest.mark.parametrize("case", REDACT_CASES, ids=list(REDACT_CASES))
def test_redact_hides_value(case: str) -> None:
    text, values, keys = REDACT_CASES[case]
    redacted = redact(text, values, keys)
    assert REDACTED in redacted
    assert "abc123456789" not in redacted
    assert "short" not in redacted
    assert 'a\\"b' not in redacted


def test_redact_keeps_plain_values() -> None:
    text = '"HEARTBEAT_SECONDS": "30",\n"DISCORD_TOKEN": "abc123456789"'
    assert redact(text, {"abc123456789"}, {"DISCORD_TOKEN"}) == (
        f'"HEARTBEAT_SECONDS": "30",\n"DISCORD_TOKEN": "{REDACTED}"'
    )


def test_removed_bot_env_hidden_alone(fleet, capsys) -> None:
    run_module(fleet, capsys)
    old_text = fleet["path"].read_text()
    kept = [bot for bot in fleet["bots"] if bot["name"] == "ping-bot"]
    before = redact_existing(old_text, kept, {"ping-bot": fleet["secret_env"]["ping-bot"]})
    assert '"HEARTBEAT_SECONDS": "30"' in before
    assert '"HEARTBEAT_SECONDS": "60"' not in before
    assert TEST_TOKENS["vault_weather_bot_discord_token"] not in before
    assert '"PYTHONUNBUFFERED": "1"' in before


def test_reformatted_file_still_redacted(fleet, capsys) -> None:
    run_module(fleet, capsys)
    data = parse_ecosystem(fleet["path"].read_text())
    squeezed = f"module.exports = {json.dumps(data)};\n"
    before = redact_existing(squeezed, fleet["bots"], fleet["secret_env"])
    for token in TEST_TOKENS.values():
        assert token not in before
    assert '"HEARTBEAT_SECONDS": "30"' in before
