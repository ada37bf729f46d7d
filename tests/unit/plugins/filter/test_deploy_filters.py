"""Tests of the deploy role's filters: checkouts to sync and bots to purge."""

from __future__ import annotations

from ansible_collections.botfleet.pm2.plugins.filter.bots import bots_normalize
from ansible_collections.botfleet.pm2.plugins.filter.deploy import (
    deploy_checkouts,
    deploy_purge_bots,
)

REPO = "git@git.example.com:acme/bots.git"
PM2_HOME = "/home/bots/.pm2"
PING = {
    "name": "ping-bot",
    "runtime": "node",
    "path": "bots/ping-bot",
    "script": "index.js",
    "persist": ["data"],
}


def normalize(bots: list[dict]) -> list[dict]:
    return bots_normalize(bots, repo=REPO, host="vps1")


def test_checkout_keeps_persist_of_absent_bot() -> None:
    old = {"name": "old_bot", "state": "absent", "path": "bots/old", "persist": ["db"]}
    [checkout] = deploy_checkouts(normalize([PING, old]), "a" * 40)
    assert checkout["dest"] == "/srv/botfleet/checkout"
    assert checkout["version"] == "a" * 40
    assert checkout["keep"] == ["bots/ping-bot/data", "bots/ping-bot/node_modules", "bots/old/db"]
    assert checkout["bots"] == ["ping-bot", "old_bot"]


def test_checkout_of_removed_own_repo_bot_left_alone() -> None:
    own = {"name": "solo", "state": "absent", "repo": "https://git.example.com/solo.git"}
    checkouts = deploy_checkouts(normalize([PING, own]), "b" * 40)
    assert [checkout["dest"] for checkout in checkouts] == ["/srv/botfleet/checkout"]


def test_only_absent_bots_sync_nothing() -> None:
    bots = bots_normalize([{"name": "old-bot", "state": "absent"}], repo=None, host="vps1")
    assert deploy_checkouts(bots, "c" * 40) == []


def test_purge_items_only_for_absent_bots_marked_purge() -> None:
    bots = normalize([PING, {"name": "kept", "state": "absent", "path": "bots/kept"}])
    assert deploy_purge_bots(bots, PM2_HOME) == []


def test_purge_of_monorepo_bot_keeps_tracked_files() -> None:
    old = {
        "name": "old_bot",
        "state": "absent",
        "purge": True,
        "path": "bots/old bot",
        "persist": ["data", "cache/db"],
    }
    [item] = deploy_purge_bots(normalize([PING, old]), PM2_HOME)
    folder = "/srv/botfleet/checkout/bots/old bot"
    logs = ["/home/bots/.pm2/logs/old-bot-out.log*", "/home/bots/.pm2/logs/old-bot-error.log*"]
    assert item == {
        "name": "old_bot",
        "save": [f"{folder}/data", f"{folder}/cache/db", *logs],
        "exclude": [f"{folder}/node_modules"],
        "remove": [
            f"{folder}/data",
            f"{folder}/cache/db",
            f"{folder}/node_modules",
            "/srv/botfleet/venvs/old_bot",
            "/srv/botfleet/state/old_bot",
            *logs,
        ],
    }


def test_purge_of_own_repo_bot_saves_whole_checkout() -> None:
    own = {
        "name": "solo",
        "state": "absent",
        "purge": True,
        "repo": "https://git.example.com/solo.git",
    }
    [item] = deploy_purge_bots(normalize([own]), PM2_HOME)
    assert item["save"][0] == "/srv/botfleet/bots/solo"
    assert item["exclude"] == ["/srv/botfleet/bots/solo/node_modules"]
    assert item["remove"][:3] == [
        "/srv/botfleet/bots/solo",
        "/srv/botfleet/venvs/solo",
        "/srv/botfleet/state/solo",
    ]
