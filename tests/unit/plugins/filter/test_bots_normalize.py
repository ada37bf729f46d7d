"""Tests of the bots_normalize and bots_secret_env filters."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.botfleet.pm2.plugins.filter.bots import (
    FilterModule,
    bots_normalize,
    bots_secret_env,
)
from ansible_collections.botfleet.pm2.plugins.module_utils._bots import pm2_log_name

REPO = "git@git.example.com:acme/bots.git"


def node_bot(**fields: Any) -> dict[str, Any]:
    bot = {"name": "ping-bot", "runtime": "node", "path": "bots/ping-bot", "script": "index.js"}
    bot.update(fields)
    return bot


def python_bot(**fields: Any) -> dict[str, Any]:
    bot = {"name": "weather-bot", "runtime": "python", "path": "bots/weather-bot"}
    bot["script"] = "bot.py"
    bot.update(fields)
    return bot


def problems_of(bots: Any, **settings: Any) -> list[str]:
    settings.setdefault("repo", REPO)
    settings.setdefault("host", "vps1")
    with pytest.raises(AnsibleFilterError) as caught:
        bots_normalize(bots, **settings)
    return str(caught.value.message).splitlines()[1:]


# Each case: bots, extra filter settings, and the exact problem lines expected.
INVALID = {
    "duplicate name": (
        [node_bot(), node_bot()],
        {},
        ["vps1: bot 'ping-bot', field 'name': is used by 2 bots; give each bot its own name"],
    ),
    "duplicate after pm2 sanitising": (
        [node_bot(name="ping_bot"), node_bot(name="ping-bot", path="bots/other")],
        {},
        [
            "vps1: bot 'ping-bot', field 'name': 'ping-bot', 'ping_bot' share the PM2 log file "
            "name 'ping-bot'; rename one of them so that the names differ in more than '_' and '-'"
        ],
    ),
    "name with a space": (
        [node_bot(name="ping bot")],
        {},
        [
            "vps1: bot 'ping bot', field 'name': 'ping bot' contains characters unsafe for PM2 or "
            "a shell; use letters, digits, '.', '_' and '-', starting with a letter or digit, "
            "like 'ping-bot'"
        ],
    ),
    "name with shell characters": (
        [node_bot(name="ping;rm")],
        {},
        [
            "vps1: bot 'ping;rm', field 'name': 'ping;rm' contains characters unsafe for PM2 or a "
            "shell; use letters, digits, '.', '_' and '-', starting with a letter or digit, "
            "like 'ping-bot'"
        ],
    ),
    "numeric name": (
        [node_bot(name="1e3")],
        {},
        [
            "vps1: bot '1e3', field 'name': '1e3' reads as a number, which PM2 takes for a "
            "process id; use letters, digits, '.', '_' and '-', starting with a letter or digit, "
            "like 'ping-bot'"
        ],
    ),
    "name all": (
        [node_bot(name="all")],
        {},
        [
            "vps1: bot 'all', field 'name': 'all' is the PM2 keyword for every process; use "
            "letters, digits, '.', '_' and '-', starting with a letter or digit, like 'ping-bot'"
        ],
    ),
    "name like config file": (
        [node_bot(name="bot.json")],
        {},
        [
            "vps1: bot 'bot.json', field 'name': 'bot.json' contains '.json', so PM2 reads it as "
            "a configuration file; use letters, digits, '.', '_' and '-', starting with a letter "
            "or digit, like 'ping-bot'"
        ],
    ),
    "missing name": (
        [{"runtime": "node", "path": "bots/ping-bot", "script": "index.js"}],
        {},
        ["vps1: bot 'botfleet_bots[0]', field 'name': is missing; add a name"],
    ),
    "unknown runtime": (
        [node_bot(runtime="ruby")],
        {},
        [
            "vps1: bot 'ping-bot', field 'runtime': 'ruby' is not a supported runtime; "
            "use node or python"
        ],
    ),
    "path with dot dot": (
        [node_bot(path="bots/../../etc")],
        {},
        [
            "vps1: bot 'ping-bot', field 'path': 'bots/../../etc' contains '..'; use the bot's "
            "folder relative to the repository root, like 'bots/ping-bot'"
        ],
    ),
    "absolute script": (
        [node_bot(script="/usr/bin/evil.js")],
        {},
        [
            "vps1: bot 'ping-bot', field 'script': '/usr/bin/evil.js' is an absolute path; use "
            "the entry file relative to the bot folder, like 'index.js'"
        ],
    ),
    "script with a space": (
        [node_bot(script="start bot.js")],
        {},
        [
            "vps1: bot 'ping-bot', field 'script': 'start bot.js' contains whitespace, so PM2 "
            "would run it as a shell command; use the entry file relative to the bot folder, "
            "like 'index.js'"
        ],
    ),
    "persist outside bot": (
        [node_bot(persist=["../shared-data"])],
        {},
        [
            "vps1: bot 'ping-bot', field 'persist': '../shared-data' is outside the bot folder; "
            "use a path inside the bot folder, relative to it, like 'data'"
        ],
    ),
    "persist whole folder": (
        [node_bot(persist=["./"])],
        {},
        [
            "vps1: bot 'ping-bot', field 'persist': './' names the folder itself; use a path "
            "inside the bot folder, relative to it, like 'data'"
        ],
    ),
    "shared path absolute": (
        [python_bot(shared_paths=["/lib/common"])],
        {},
        [
            "vps1: bot 'weather-bot', field 'shared_paths': '/lib/common' is an absolute path; "
            "use a folder relative to the repository root, like 'lib/common'"
        ],
    ),
    "node path with tilde": (
        [node_bot()],
        {"node_path": "~/.nvm/node"},
        [
            "vps1: variable 'node_path': '~/.nvm/node' starts with '~', which PM2 and systemd do "
            "not expand; use an absolute path, like /usr/bin/node"
        ],
    ),
    "relative python path": (
        [python_bot()],
        {"python_path": "bin/python3"},
        [
            "vps1: variable 'python_path': 'bin/python3' is a relative path; use an absolute "
            "path, like /usr/bin/node"
        ],
    ),
    "invalid env name": (
        [node_bot(env={"API-URL": "https://example.com"})],
        {},
        [
            "vps1: bot 'ping-bot', field 'env': 'API-URL' is not a valid environment variable "
            "name; rename the variable, using letters, digits and '_', like API_URL"
        ],
    ),
    "env key pm2 name": (
        [node_bot(env={"name": "other"})],
        {},
        [
            "vps1: bot 'ping-bot', field 'env': 'name' is read by PM2 as its own option and "
            "would override it; rename the variable, using letters, digits and '_', like API_URL"
        ],
    ),
    "env key pm2 internal": (
        [node_bot(env={"NODE_APP_INSTANCE": "3"})],
        {},
        [
            "vps1: bot 'ping-bot', field 'env': 'NODE_APP_INSTANCE' is read by PM2 as its own "
            "option and would override it; rename the variable, using letters, digits and '_', "
            "like API_URL"
        ],
    ),
    "env key botfleet prefix": (
        [node_bot(env={"BOTFLEET_REVISION": "x"})],
        {},
        [
            "vps1: bot 'ping-bot', field 'env': 'BOTFLEET_REVISION' starts with 'BOTFLEET_', "
            "which botfleet sets itself; rename the variable, using letters, digits and '_', "
            "like API_URL"
        ],
    ),
    "key in env and secret": (
        [node_bot(env={"DISCORD_TOKEN": "a"}, secret_env={"DISCORD_TOKEN": "b"})],
        {},
        [
            "vps1: bot 'ping-bot', field 'secret_env': 'DISCORD_TOKEN' is also in env; keep the "
            "variable in secret_env only and remove it from env"
        ],
    ),
    "boolean env value": (
        [node_bot(env={"DEBUG": True})],
        {},
        [
            "vps1: bot 'ping-bot', field 'env.DEBUG': has a boolean value, environment values "
            "are strings; quote the value in YAML"
        ],
    ),
    "node option on python": (
        [python_bot(instances=2, exec_mode="cluster")],
        {},
        [
            "vps1: bot 'weather-bot', field 'instances': applies to Node bots only, a Python bot "
            "always runs 1 instance in fork mode; remove 'instances' from this bot",
            "vps1: bot 'weather-bot', field 'exec_mode': applies to Node bots only, a Python bot "
            "always runs 1 instance in fork mode; remove 'exec_mode' from this bot",
        ],
    ),
    "bad memory size": (
        [node_bot(max_memory_restart="300MB")],
        {},
        [
            "vps1: bot 'ping-bot', field 'max_memory_restart': '300MB' is not a size; use bytes "
            "or a number with K, M or G, like '300M'"
        ],
    ),
    "min uptime too short": (
        [node_bot(min_uptime=50)],
        {},
        [
            "vps1: bot 'ping-bot', field 'min_uptime': 50 is not a duration of at least 100 ms; "
            "use milliseconds, like 5000, or a string '<n>s', '<n>m' or '<n>h'"
        ],
    ),
    "boolean max restarts": (
        [node_bot(max_restarts=True)],
        {},
        [
            "vps1: bot 'ping-bot', field 'max_restarts': True is not a whole number of 0 or "
            "more; use a number, like 10"
        ],
    ),
    "bad cron expression": (
        [node_bot(cron_restart="every day")],
        {},
        [
            "vps1: bot 'ping-bot', field 'cron_restart': 'every day' is not a cron expression of "
            "5 or 6 fields; use a quoted expression like '0 4 * * *', or remove the field"
        ],
    ),
    "zero instances": (
        [node_bot(instances=0)],
        {},
        [
            "vps1: bot 'ping-bot', field 'instances': 0 is not a whole number of 1 or more; use "
            "a number, like 1"
        ],
    ),
    "unknown exec mode": (
        [node_bot(exec_mode="thread")],
        {},
        [
            "vps1: bot 'ping-bot', field 'exec_mode': 'thread' is not a PM2 exec mode; "
            "use fork or cluster"
        ],
    ),
    "typo in field": (
        [node_bot(max_memory="1G")],
        {},
        [
            "vps1: bot 'ping-bot', field 'max_memory': is not a known bot field; did you mean "
            "'max_memory_restart'?"
        ],
    ),
    "no repo anywhere": (
        [node_bot()],
        {"repo": None},
        [
            "vps1: bot 'ping-bot', field 'repo': is not set and botfleet_repo is empty; set "
            "botfleet_repo to the URL of the bots repository, or give this bot its own repo"
        ],
    ),
    "version without repo": (
        [node_bot(version="v2")],
        {},
        [
            "vps1: bot 'ping-bot', field 'version': only applies to a bot with its own repo; set "
            "repo for this bot, or change botfleet_version for the monorepo"
        ],
    ),
    "float version": (
        [node_bot(repo="https://git.example.com/acme/ping.git", version=1.1)],
        {},
        [
            "vps1: bot 'ping-bot', field 'version': must be a string, got number (quote it in "
            "YAML); use a branch, tag or commit, like main"
        ],
    ),
    "missing script": (
        [{"name": "ping-bot", "runtime": "node", "path": "bots/ping-bot"}],
        {},
        ["vps1: bot 'ping-bot', field 'script': is missing; add the entry file, like 'index.js'"],
    ),
    "unknown state": (
        [node_bot(state="stopped")],
        {},
        ["vps1: bot 'ping-bot', field 'state': 'stopped' is not a state; use present or absent"],
    ),
    "purge of a present bot": (
        [node_bot(purge=True)],
        {},
        [
            "vps1: bot 'ping-bot', field 'purge': only applies to a bot with state: absent; add "
            "state: absent to remove the bot and its files, or drop purge"
        ],
    ),
    "purge not a boolean": (
        [{"name": "old-bot", "state": "absent", "purge": "yes"}],
        {},
        [
            "vps1: bot 'old-bot', field 'purge': must be true or false, got string; "
            "write true or false"
        ],
    ),
    "purge of persist data without path": (
        [{"name": "old-bot", "state": "absent", "purge": True, "persist": ["data"]}],
        {},
        [
            "vps1: bot 'old-bot', field 'path': is missing, so the persist paths to purge cannot "
            "be found; keep the bot's path in the inventory until it is purged"
        ],
    ),
    "purge of a folder another bot uses": (
        [
            python_bot(persist=["data"]),
            {
                "name": "old-bot",
                "state": "absent",
                "purge": True,
                "path": "bots/weather-bot",
                "persist": ["data"],
            },
        ],
        {},
        [
            "vps1: bot 'old-bot', field 'purge': would remove "
            "/srv/botfleet/checkout/bots/weather-bot/data, which bot 'weather-bot' still uses; "
            "drop purge and remove the files that are not shared by hand"
        ],
    ),
    "bot not a mapping": (
        ["ping-bot"],
        {},
        [
            "vps1: bot 'botfleet_bots[0]', field '(item)': must be a mapping, got string; write "
            "each bot as a mapping with name, runtime, path and script"
        ],
    ),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_inventory_problems(case: str) -> None:
    bots, settings, expected = INVALID[case]
    assert problems_of(copy.deepcopy(bots), **settings) == expected


def test_every_problem_listed_together() -> None:
    bots = [
        node_bot(name="a b", runtime="ruby", script="../x.js"),
        python_bot(env={"name": "x"}, instances=3),
    ]
    problems = problems_of(bots)
    assert len(problems) == 5


def test_error_header_names_host_and_count() -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        bots_normalize([node_bot(runtime="go")], repo=REPO, host="vps7")
    assert (
        str(caught.value.message).splitlines()[0]
        == "Invalid botfleet_bots on host vps7 (1 problem):"
    )


def test_secret_value_not_in_error() -> None:
    problems = problems_of([node_bot(secret_env={"bad-name": "s3cr3t-token-value"})])
    assert "s3cr3t-token-value" not in "\n".join(problems)


def test_node_bot_defaults() -> None:
    [bot] = bots_normalize([node_bot()], repo=REPO, host="vps1")
    assert bot["pm2"] == {
        "max_memory_restart": "300M",
        "min_uptime": 5000,
        "max_restarts": 10,
        "exp_backoff_restart_delay": 100,
        "kill_timeout": 5000,
        "cron_restart": None,
        "instances": 1,
        "exec_mode": "fork",
        "autorestart": True,
        "time": True,
    }


def test_node_bot_paths() -> None:
    [bot] = bots_normalize([node_bot()], repo=REPO, host="vps1", root="/opt/fleet/")
    assert bot["checkout"] == "/opt/fleet/checkout"
    assert bot["cwd"] == "/opt/fleet/checkout/bots/ping-bot"
    assert bot["script"] == "/opt/fleet/checkout/bots/ping-bot/index.js"
    assert bot["interpreter"] == "/usr/bin/node"
    assert bot["venv"] is None
    assert bot["state_dir"] == "/opt/fleet/state/ping-bot"


def test_python_bot_paths_with_space() -> None:
    bot_in = python_bot(name="todoist-bot", path="./bots/todoist bot/", script="main.py")
    [bot] = bots_normalize([bot_in], repo=REPO, host="vps1")
    assert bot["path"] == "bots/todoist bot"
    assert bot["cwd"] == "/srv/botfleet/checkout/bots/todoist bot"
    assert bot["script"] == "/srv/botfleet/checkout/bots/todoist bot/main.py"
    assert bot["venv"] == "/srv/botfleet/venvs/todoist-bot"
    assert bot["interpreter"] == "/srv/botfleet/venvs/todoist-bot/bin/python"
    assert bot["python"] == "/usr/bin/python3"


def test_own_repo_bot_checkout() -> None:
    bot_in = node_bot(repo="https://git.example.com/acme/ping.git", version="v1.2.0")
    del bot_in["path"]
    [bot] = bots_normalize([bot_in], repo=REPO, host="vps1")
    assert bot["checkout"] == "/srv/botfleet/bots/ping-bot"
    assert bot["cwd"] == "/srv/botfleet/bots/ping-bot"
    assert bot["version"] == "v1.2.0"
    assert bot["own_repo"] is True


def test_monorepo_version_applies() -> None:
    [bot] = bots_normalize([node_bot()], repo=REPO, version="release", host="vps1")
    assert bot["version"] == "release"
    assert bot["repo"] == REPO


def test_durations_and_sizes_converted() -> None:
    bot_in = node_bot(min_uptime="10s", kill_timeout="1m", max_memory_restart=1048576)
    [bot] = bots_normalize([bot_in], repo=REPO, host="vps1")
    assert bot["pm2"]["min_uptime"] == 10000
    assert bot["pm2"]["kill_timeout"] == 60000
    assert bot["pm2"]["max_memory_restart"] == "1048576"


def test_exec_mode_suffix_dropped() -> None:
    [bot] = bots_normalize([node_bot(exec_mode="cluster_mode", instances=2)], repo=REPO)
    assert bot["pm2"]["exec_mode"] == "cluster"
    assert bot["pm2"]["instances"] == 2


def test_env_numbers_become_strings() -> None:
    [bot] = bots_normalize([node_bot(env={"PORT": 8080})], repo=REPO)
    assert bot["env"] == {"PORT": "8080"}


def test_secret_values_left_out() -> None:
    [bot] = bots_normalize([node_bot(secret_env={"DISCORD_TOKEN": "tok-123"})], repo=REPO)
    assert bot["secret_env_keys"] == ["DISCORD_TOKEN"]
    assert "tok-123" not in repr(bot)


def test_persist_paths_absolute() -> None:
    [bot] = bots_normalize([node_bot(persist=["data", "./data/", "cache/db"])], repo=REPO)
    assert bot["persist"] == ["data", "cache/db"]
    assert bot["persist_paths"] == [
        "/srv/botfleet/checkout/bots/ping-bot/data",
        "/srv/botfleet/checkout/bots/ping-bot/cache/db",
    ]


def test_absent_bot_needs_name_only() -> None:
    [bot] = bots_normalize([{"name": "old-bot", "state": "absent"}], repo=None)
    assert bot["state"] == "absent"
    assert bot["state_dir"] == "/srv/botfleet/state/old-bot"


def test_empty_list_allowed() -> None:
    assert bots_normalize(None, repo=REPO) == []


def test_secret_env_filter_by_name() -> None:
    bots = [node_bot(secret_env={"DISCORD_TOKEN": "a", "RETRIES": 3}), python_bot()]
    assert bots_secret_env(bots) == {
        "ping-bot": {"DISCORD_TOKEN": "a", "RETRIES": "3"},
        "weather-bot": {},
    }


def test_filter_module_lists_filters() -> None:
    assert sorted(FilterModule().filters()) == ["bots_normalize", "bots_secret_env"]


@pytest.mark.parametrize(
    ("name", "log_name"),
    [("ping_bot", "ping-bot"), ("v1.2", "v1.2"), ("Bot-A", "Bot-A")],
)
def test_pm2_log_name(name: str, log_name: str) -> None:
    assert pm2_log_name(name) == log_name
