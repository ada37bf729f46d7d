"""Filters that turn the normalised bot list into the deploy role's work lists."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from ansible_collections.botfleet.pm2.plugins.module_utils._bots import pm2_log_name

DOCUMENTATION = r"""
name: deploy_checkouts
short_description: List the git checkouts a deploy syncs
version_added: 0.1.0
description:
  - Groups the bots returned by C(botfleet.pm2.bots_normalize) by checkout and returns one item
    per checkout with the repository, the version to sync and the paths that C(git clean) must
    spare (each bot's persist paths and, for Node bots, C(node_modules)).
  - A checkout is listed only when a present bot uses it, so the checkout of a removed bot
    with a repository of its own is left alone. In a checkout that is synced, bots with
    C(state=absent) still count, so their data survives the clean.
  - The monorepo checkout gets the revision resolved once for every host; a bot with its own
    repository keeps its own version.
options:
  _input:
    description: The normalised bot list.
    type: list
    elements: dict
    required: true
  revision:
    description: Exact revision of the shared repository.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Sync each checkout
  botfleet.pm2.git_sync:
    dest: "{{ item.dest }}"
    repo: "{{ item.repo }}"
    version: "{{ item.version }}"
    keep: "{{ item.keep }}"
    backup_root: /srv/botfleet/backups
  loop: "{{ bots | botfleet.pm2.deploy_checkouts(revision) }}"
"""

RETURN = r"""
_value:
  description: One item per checkout with C(dest), C(repo), C(version), C(keep) and C(bots).
  type: list
  elements: dict
"""


def _relative_to(path: str, base: str) -> str:
    return posixpath.relpath(path, base)


def deploy_checkouts(bots: list[Mapping[str, Any]], revision: str) -> list[dict[str, Any]]:
    """Group bots by checkout, with the paths git clean must spare."""
    checkouts: dict[str, dict[str, Any]] = {}
    for bot in bots:
        dest = bot["checkout"]
        checkout = checkouts.setdefault(
            dest,
            {
                "dest": dest,
                "repo": bot["repo"],
                "version": bot["version"] if bot["own_repo"] else revision,
                "keep": [],
                "bots": [],
            },
        )
        checkout["bots"].append(bot["name"])
        keep = [_relative_to(path, dest) for path in bot.get("persist_paths") or []]
        if bot["runtime"] == "node" and bot.get("cwd"):
            keep.append(_relative_to(posixpath.join(bot["cwd"], "node_modules"), dest))
        for path in keep:
            if path not in checkout["keep"]:
                checkout["keep"].append(path)
    used = {bot["checkout"] for bot in bots if bot.get("state", "present") == "present"}
    return [checkout for dest, checkout in checkouts.items() if dest in used]


def deploy_purge_bots(bots: list[Mapping[str, Any]], pm2_home: str) -> list[dict[str, Any]]:
    """Return the items of the bots option of botfleet.pm2.bot_purge."""
    items = []
    for bot in bots:
        paths = bot.get("purge_paths")
        if bot.get("state") != "absent" or not paths:
            continue
        logs = posixpath.join(pm2_home, "logs", pm2_log_name(bot["name"]))
        # PM2 writes <name>-out.log and <name>-error.log; logrotate adds .1, .2.gz and so on.
        log_patterns = [f"{logs}-out.log*", f"{logs}-error.log*"]
        items.append(
            {
                "name": bot["name"],
                "save": [*paths["save"], *log_patterns],
                "exclude": list(paths["exclude"]),
                "remove": [*paths["remove"], *log_patterns],
            }
        )
    return items


def deploy_dependency_bots(bots: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the items of the bots option of botfleet.pm2.bot_dependencies."""
    items = []
    for bot in bots:
        if bot.get("state", "present") != "present":
            continue
        item = {
            "name": bot["name"],
            "runtime": bot["runtime"],
            "dir": bot["cwd"],
            "state_dir": bot["state_dir"],
        }
        if bot["runtime"] == "python":
            item["venv"] = bot["venv"]
        items.append(item)
    return items


class FilterModule:
    """Filters for the deploy role of botfleet.pm2."""

    def filters(self) -> dict[str, Any]:
        return {
            "deploy_checkouts": deploy_checkouts,
            "deploy_dependency_bots": deploy_dependency_bots,
            "deploy_purge_bots": deploy_purge_bots,
        }
