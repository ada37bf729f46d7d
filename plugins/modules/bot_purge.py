#!/usr/bin/python
"""Ansible module botfleet.pm2.bot_purge."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bot_purge
short_description: Save, then remove the files of bots that left the inventory
description:
  - For each bot of O(bots), first writes every existing path of O(bots[].save) into one new
    archive C(<backup_root>/purged-<name>-<UTC timestamp>.tar.gz), mode 0600, then removes
    every existing path of O(bots[].remove).
  - When the archive cannot be written, fails before removing anything of that bot.
  - A path that does not exist is skipped, so a second run with the same bots changes nothing.
  - Symbolic links are removed, never followed.
  - The deploy role calls it for bots with C(state=absent) and C(purge=true), after PM2 has
    stopped them. The filter C(botfleet.pm2.deploy_purge_bots) builds O(bots).
version_added: 0.2.0
author:
  - botfleet.pm2 maintainers
options:
  bots:
    description: Bots whose files go.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the bot, used in the archive name and in messages.
        type: str
        required: true
      remove:
        description:
          - Absolute paths to remove, files or folders, at least two folders deep.
          - A path that contains C(*) is a glob pattern, such as the rotated logs of the bot.
        type: list
        elements: str
        default: []
      save:
        description:
          - Absolute paths written into the archive before anything is removed. Glob patterns
            as in O(bots[].remove).
          - With no existing path to save, or nothing left to remove, no archive is written.
        type: list
        elements: str
        default: []
      exclude:
        description: Absolute paths left out of the archive, such as C(node_modules).
        type: list
        elements: str
        default: []
  backup_root:
    description: Folder of the archives. Created with mode 0700 when missing.
    type: path
    required: true
attributes:
  check_mode:
    support: full
    description: Reports the paths that would be saved and removed and the archive name,
      without writing or removing anything.
  diff_mode:
    support: full
    description: Lists the paths that go, one per line.
  idempotent:
    support: full
    description: Once the paths are gone, a second run reports C(changed=false) and writes no
      archive.
notes:
  - The archives are not rotated; remove them by hand when the data is no longer needed.
"""

EXAMPLES = r"""
- name: Remove the files of old-bot, saving its data first
  botfleet.pm2.bot_purge:
    bots:
      - name: old-bot
        save:
          - /srv/botfleet/checkout/bots/old-bot/data
          - /home/bots/.pm2/logs/old-bot-*.log*
        remove:
          - /srv/botfleet/checkout/bots/old-bot/data
          - /srv/botfleet/venvs/old-bot
          - /srv/botfleet/state/old-bot
          - /home/bots/.pm2/logs/old-bot-*.log*
    backup_root: /srv/botfleet/backups
  become: true
  become_user: bots
"""

RETURN = r"""
purged:
  description: One entry per bot of O(bots), in the same order.
  returned: always
  type: list
  elements: dict
  sample:
    - name: old-bot
      removed:
        - /srv/botfleet/checkout/bots/old-bot/data
        - /srv/botfleet/venvs/old-bot
      saved:
        - /srv/botfleet/checkout/bots/old-bot/data
      archive: /srv/botfleet/backups/purged-old-bot-20261204T101500Z.tar.gz
  contains:
    name:
      description: Name of the bot.
      type: str
    removed:
      description: Paths that existed and were removed (in check mode, would be).
      type: list
      elements: str
    saved:
      description: Paths written into the archive (in check mode, would be).
      type: list
      elements: str
    archive:
      description: Archive written (in check mode, would be), or null when nothing was saved.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.botfleet.pm2.plugins.module_utils._purge import PurgeError, purge_bots


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "bots": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "remove": {"type": "list", "elements": "str", "default": []},
                    "save": {"type": "list", "elements": "str", "default": []},
                    "exclude": {"type": "list", "elements": "str", "default": []},
                },
            },
            "backup_root": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        purged = purge_bots(module.params["bots"], module.params["backup_root"], module.check_mode)
    except PurgeError as error:
        module.fail_json(msg=str(error))
    changed = any(entry["removed"] for entry in purged)
    result = {"changed": changed, "purged": purged}
    if module._diff:
        removed_paths = [path for entry in purged for path in entry["removed"]]
        result["diff"] = {
            "before": "".join(f"{path}\n" for path in removed_paths),
            "after": "",
            "before_header": "paths of purged bots",
            "after_header": "paths of purged bots",
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
