# Copyright: botfleet.pm2 developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that validate and normalise the inventory variable botfleet_bots."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.botfleet.pm2.plugins.module_utils._bots import (
    DEFAULT_NODE_PATH,
    DEFAULT_PYTHON_PATH,
    DEFAULT_ROOT,
    DEFAULT_USER,
    DEFAULT_VERSION,
    BotProblems,
    normalize_bots,
    secret_env_of,
)

DOCUMENTATION = r"""
name: bots_normalize
author: botfleet.pm2 developers
version_added: 0.1.0
short_description: Validate botfleet_bots and fill in the defaults and host paths
description:
  - Checks every bot of the inventory variable C(botfleet_bots) and returns the list with the
    defaults filled in and the absolute paths each bot has on the host.
  - Collects every problem before failing. The error lists one problem per line, each naming
    the host, the bot, the field and the fix.
  - The result holds the names of the C(secret_env) variables but none of their values. The
    filter C(botfleet.pm2.bots_secret_env) returns the values, for the C(secret_env) option of
    M(botfleet.pm2.ecosystem_file).
  - docs/inventory.md in the collection lists every field and rule.
options:
  _input:
    description: The bot list, C(botfleet_bots).
    type: list
    elements: dict
    required: true
  root:
    description: Folder of botfleet on the host, C(botfleet_root).
    type: path
    default: /srv/botfleet
  user:
    description: User that owns the bot files and runs PM2, C(botfleet_user).
    type: str
    default: bots
  repo:
    description:
      - Git URL of the bots monorepo, C(botfleet_repo).
      - Required unless every present bot has its own C(repo).
    type: str
  version:
    description: Branch, tag or commit of the monorepo, C(botfleet_version).
    type: str
    default: main
  host:
    description: Name of the host, used in the error message. Pass C(inventory_hostname).
    type: str
    default: localhost
  node_path:
    description: Absolute path of the node binary on the host, the interpreter of Node bots.
    type: path
    default: /usr/bin/node
  python_path:
    description: Absolute path of the Python that creates the venv of each Python bot.
    type: path
    default: /usr/bin/python3
"""

EXAMPLES = r"""
- name: Validate the bot list
  ansible.builtin.set_fact:
    _botfleet_bots: >-
      {{ botfleet_bots | botfleet.pm2.bots_normalize(
           root=botfleet_root, user=botfleet_user, repo=botfleet_repo,
           version=botfleet_version, host=inventory_hostname) }}

- name: Write ecosystem.config.js
  botfleet.pm2.ecosystem_file:
    path: "{{ botfleet_root }}/ecosystem.config.js"
    bots: "{{ _botfleet_bots }}"
    secret_env: "{{ botfleet_bots | botfleet.pm2.bots_secret_env }}"
  become: true
  become_user: "{{ botfleet_user }}"
"""

RETURN = r"""
_value:
  description:
    - The normalised bots, in inventory order. Paths are absolute unless the key ends in
      C(_relative) or is C(path), C(persist) or C(shared_paths).
    - For a bot with C(state=absent), fields the inventory leaves out are null.
  type: list
  elements: dict
  sample:
    - name: ping-bot
      state: present
      runtime: node
      own_repo: false
      repo: git@git.example.com:acme/bots.git
      version: main
      checkout: /srv/botfleet/checkout
      path: bots/ping-bot
      cwd: /srv/botfleet/checkout/bots/ping-bot
      script: /srv/botfleet/checkout/bots/ping-bot/index.js
      script_relative: index.js
      args: []
      env: {LOG_LEVEL: info}
      secret_env_keys: [DISCORD_TOKEN]
      interpreter: /usr/bin/node
      venv: null
      python: null
      state_dir: /srv/botfleet/state/ping-bot
      persist: [data]
      persist_paths: [/srv/botfleet/checkout/bots/ping-bot/data]
      shared_paths: []
      pm2:
        autorestart: true
        max_memory_restart: 300M
        min_uptime: 5000
        max_restarts: 10
        exp_backoff_restart_delay: 100
        kill_timeout: 5000
        cron_restart: null
        instances: 1
        exec_mode: fork
        time: true
      host: vps1
      user: bots
"""


def bots_normalize(
    bots: Any,
    root: str = DEFAULT_ROOT,
    user: str = DEFAULT_USER,
    repo: str | None = None,
    version: str = DEFAULT_VERSION,
    host: str = "localhost",
    node_path: str = DEFAULT_NODE_PATH,
    python_path: str = DEFAULT_PYTHON_PATH,
) -> list[dict[str, Any]]:
    """Validate botfleet_bots and return it normalised."""
    try:
        return normalize_bots(
            bots,
            root=root,
            user=user,
            repo=repo,
            version=version,
            host=host,
            node_path=node_path,
            python_path=python_path,
        )
    except BotProblems as error:
        raise AnsibleFilterError(str(error)) from None


def bots_secret_env(bots: Any) -> dict[str, dict[str, str]]:
    """Return the secret_env of each bot by name, for the secret_env option of ecosystem_file."""
    return secret_env_of(bots)


class FilterModule:
    """Filters for the bot list of botfleet.pm2."""

    def filters(self) -> dict[str, Any]:
        return {"bots_normalize": bots_normalize, "bots_secret_env": bots_secret_env}
