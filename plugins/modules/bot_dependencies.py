#!/usr/bin/python
"""Ansible module botfleet.pm2.bot_dependencies."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bot_dependencies
short_description: Install the dependencies of every bot of a host in one call
description:
  - Handles the bots in the order given, and stops at the first bot whose install fails.
  - For a Python bot, creates its venv with O(python_path) when the venv is missing, or
    recreates it when its python cannot run, then runs
    C(<venv>/bin/python -m pip install --requirement requirements.txt) in the bot folder.
  - For a Node bot, runs C(npm ci --omit=dev) when C(package-lock.json) or
    C(npm-shrinkwrap.json) exists, otherwise C(npm install --omit=dev --no-package-lock) with a
    warning naming the bot.
  - An install runs only on the first deploy, when the manifests changed since the last
    successful install, when the venv was (re)created, or when C(node_modules) is missing.
    The hash of the manifests is stored in C(<state_dir>/dependencies.json) after a
    successful install.
  - After an install in a git checkout, fails when tracked files of the bot folder changed, and
    warns about new untracked files other than C(node_modules), because the next deploy would
    discard both.
version_added: 0.1.0
author:
  - botfleet.pm2 maintainers
options:
  bots:
    description: Bots of the host.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the bot, used in messages.
        type: str
        required: true
      runtime:
        description: Runtime of the bot.
        type: str
        choices: [node, python]
        required: true
      dir:
        description: Absolute path of the bot folder, which contains its manifests.
        type: path
        required: true
      venv:
        description: Folder of the venv of a Python bot. Required when O(bots[].runtime=python).
        type: path
      state_dir:
        description: Folder for the stamp of the last successful install; created when missing.
        type: path
        required: true
  python_path:
    description: Python that creates the venvs.
    type: path
    default: /usr/bin/python3
  npm_path:
    description: npm binary. Defaults to C(npm) found in the PATH of the remote user.
    type: path
  node_path:
    description: Node.js binary. Its folder is put first in the PATH of npm, so that npm and
      install scripts run with it.
    type: path
  pip_extra_args:
    description: Extra arguments for C(pip install), such as C(--index-url).
    type: list
    elements: str
    default: []
  npm_extra_args:
    description: Extra arguments for C(npm ci) and C(npm install).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports, per bot, whether an install would run and why, without creating a
      venv, installing or writing a stamp.
  diff_mode:
    support: full
    description: Shows the stored and the current manifest hash of each bot.
  idempotent:
    support: full
    description: A second run with unchanged manifests installs nothing and reports
      C(changed=false).
notes:
  - The manifest hash covers C(requirements.txt) and the files it includes with C(-r) or C(-c),
    or C(package.json) and its lockfile. A change elsewhere, such as a new index set in
    O(pip_extra_args), does not trigger an install.
  - A venv made with another Python than O(python_path) is kept as long as its python runs.
  - A failed install removes the stamp of that bot, so the next run installs again.
  - The git checks are skipped when the bot folder is not in a git checkout or git is missing.
"""

EXAMPLES = r"""
- name: Install the dependencies of each bot
  botfleet.pm2.bot_dependencies:
    bots:
      - name: echo
        runtime: node
        dir: /srv/botfleet/checkout/bots/echo
        state_dir: /srv/botfleet/state/echo
      - name: weather
        runtime: python
        dir: /srv/botfleet/checkout/bots/weather
        venv: /srv/botfleet/venvs/weather
        state_dir: /srv/botfleet/state/weather
  become: true
  become_user: bots
"""

RETURN = r"""
bots:
  description: One entry per bot, in the order of O(bots); on failure, the bots handled so far.
  returned: always
  type: list
  elements: dict
  sample:
    - name: echo
      runtime: node
      installed: true
      reason: manifest changed
      manifest_hash: 3b5d0c6f4e1a2b7c9d8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c
      command: /usr/bin/npm ci --omit=dev
    - name: weather
      runtime: python
      installed: false
      reason: up to date
      manifest_hash: 7e2f1d0c9b8a7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a2918070f6e
      command: null
      venv_created: false
  contains:
    name:
      description: Name of the bot.
      type: str
    runtime:
      description: C(node) or C(python).
      type: str
    installed:
      description: Whether dependencies were installed (in check mode, would be).
      type: bool
    reason:
      description: Why an install ran or not, one of C(first install), C(manifest changed),
        C(venv recreated), C(node_modules missing), C(up to date) or C(no manifest).
      type: str
    manifest_hash:
      description: sha256 of a sha256sum-style listing of the manifests, or null without a
        manifest.
      type: str
    command:
      description: Install command that ran (in check mode, would run), or null.
      type: str
    venv_created:
      description: Whether the venv was created or recreated. Python bots only.
      type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.botfleet.pm2.plugins.module_utils._deps import (
    Bot,
    Installer,
    InstallError,
    Tools,
    diff_text,
    read_stamp,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "bots": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "runtime": {"type": "str", "choices": ["node", "python"], "required": True},
                    "dir": {"type": "path", "required": True},
                    "venv": {"type": "path"},
                    "state_dir": {"type": "path", "required": True},
                },
                "required_if": [("runtime", "python", ["venv"])],
            },
            "python_path": {"type": "path", "default": "/usr/bin/python3"},
            "npm_path": {"type": "path"},
            "node_path": {"type": "path"},
            "pip_extra_args": {"type": "list", "elements": "str", "default": []},
            "npm_extra_args": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    bots = [Bot(**entry) for entry in params["bots"]]
    npm_path = params["npm_path"]
    if npm_path is None and any(bot.runtime == "node" for bot in bots):
        npm_path = module.get_bin_path("npm", required=True)
    tools = Tools(
        python_path=params["python_path"],
        npm_path=npm_path,
        node_path=params["node_path"],
        git_path=module.get_bin_path("git"),
        pip_extra_args=params["pip_extra_args"],
        npm_extra_args=params["npm_extra_args"],
    )

    installer = Installer(module, tools, module.check_mode)
    stamps = {bot.name: read_stamp(bot) for bot in bots}
    results = []
    for bot in bots:
        try:
            results.append(installer.process(bot))
        except InstallError as error:
            for warning in installer.warnings:
                module.warn(warning)
            module.fail_json(
                msg=error.message,
                rc=error.rc,
                stdout=error.stdout,
                stderr=error.stderr,
                bots=results,
            )

    for warning in installer.warnings:
        module.warn(warning)
    changed = any(item["installed"] or item.get("venv_created") for item in results)
    outcome = {"changed": changed, "bots": results}
    if module._diff:
        outcome["diff"] = diff_text(results, stamps)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
