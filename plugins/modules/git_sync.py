#!/usr/bin/python
"""Ansible module botfleet.pm2.git_sync."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: git_sync
short_description: Force a git checkout to a revision, backing up what it discards
description:
  - Clones O(repo) into O(dest) when O(dest) is missing or empty, otherwise fetches from it.
  - Resolves O(version) to a commit and resets the checkout to it with C(git reset --hard),
    then removes untracked files with C(git clean -fd), sparing the O(keep) paths and
    everything that C(.gitignore) ignores.
  - Before discarding anything, saves the edits to tracked files (staged or not) as a patch
    and the untracked files that C(git clean) would delete as a tarball, with a
    C(manifest.json), in a new folder C(<backup_root>/<UTC timestamp>/). Only the newest
    O(backup_keep) backup folders are kept.
  - Removes C(__pycache__) folders and C(.pyc)/C(.pyo) files from the checkout, so that bytecode
    whose source was deleted cannot be imported.
version_added: 0.1.0
author:
  - botfleet.pm2 maintainers
options:
  dest:
    description: Folder of the checkout.
    type: path
    required: true
  repo:
    description:
      - URL of the repository, as given to C(git clone).
      - Credentials embedded in the URL are masked in every message and result.
    type: str
    required: true
  version:
    description:
      - Revision to check out, a full or abbreviated commit sha, a branch or a tag.
      - A name is looked up as a branch of origin first, then as a tag, then as any revision.
    type: str
    required: true
  key_file:
    description:
      - Private deploy key used for SSH URLs, through C(GIT_SSH_COMMAND) with
        C(-o IdentitiesOnly=yes), so that no other key of the user is offered.
    type: path
  known_hosts_file:
    description:
      - File of trusted host keys for SSH URLs. When set, SSH runs with
        C(StrictHostKeyChecking=yes) and this file as C(UserKnownHostsFile).
      - When unset, the SSH defaults of the remote user apply.
    type: path
  keep:
    description:
      - Paths relative to O(dest) that C(git clean) must spare, such as persist folders of bots
        and C(node_modules) folders. The bytecode purge spares them too.
      - Tracked files inside these paths are still reset to the revision.
    type: list
    elements: str
    default: []
  backup_root:
    description:
      - Folder that receives one backup folder per sync that discards something.
      - Must be outside O(dest), because C(git clean) would otherwise delete it.
    type: path
    required: true
  backup_keep:
    description: Number of newest backup folders kept in O(backup_root); older ones are deleted.
    type: int
    default: 10
  purge_bytecode:
    description: Remove C(__pycache__) folders and C(.pyc)/C(.pyo) files from the checkout.
    type: bool
    default: true
  purge_exclude:
    description: Paths relative to O(dest) that the bytecode purge spares.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports the target revision, the files that would be discarded and the bytecode
      that would be purged, without fetching or changing anything.
  diff_mode:
    support: full
    description: Shows the revision before and after, the discarded files and the purged bytecode.
  idempotent:
    support: full
    description: A second run at the same revision changes nothing and reports C(changed=false).
notes:
  - Runs as the owner of the checkout; git rejects checkouts owned by another user.
  - In check mode the revision is resolved with C(git ls-remote), so a commit sha that is not
    fetched yet is reported as given.
  - Submodules are not updated.
  - An ignored file that the new revision tracks is overwritten by the reset without a backup.
  - A commit that no branch or tag contains is fetched by its sha, which some servers refuse.
"""

EXAMPLES = r"""
- name: Sync the monorepo checkout to the deployed revision
  botfleet.pm2.git_sync:
    dest: /srv/botfleet/checkout
    repo: git@github.com:example/bots.git
    version: "{{ botfleet_version }}"
    key_file: /home/bots/.ssh/botfleet_deploy
    known_hosts_file: /home/bots/.ssh/known_hosts
    keep:
      - bots/echo/data
      - bots/echo/node_modules
    backup_root: /srv/botfleet/backups
  become: true
  become_user: bots
"""

RETURN = r"""
before:
  description: Commit the checkout was at before the sync, or null for a new clone.
  returned: always
  type: str
  sample: 0c3a41e8a4d3b7c7c5f0e29a2d1b9f3f6e8a7b21
after:
  description: Commit the checkout is at after the sync, resolved from O(version).
  returned: always
  type: str
  sample: 9f1d2c7b0a5e4f3d8c6b1a09e7d5c3b2a1f0e9d8
cloned:
  description: Whether O(dest) was cloned in this run.
  returned: always
  type: bool
  sample: false
backup:
  description: Backup folder that received the discarded edits and files, or null.
  returned: always
  type: str
  sample: /srv/botfleet/backups/20250301T142233Z
discarded:
  description: Files whose local state was discarded, each with how it differed from the revision.
  returned: always
  type: list
  elements: dict
  sample:
    - path: bots/echo/config.json
      kind: modified
    - path: bots/echo/notes.txt
      kind: untracked
  contains:
    path:
      description: Path relative to O(dest).
      type: str
    kind:
      description: C(modified) (changed in the work tree), C(staged) (changed in the index) or
        C(untracked).
      type: str
purged:
  description: Number of C(__pycache__) folders and stray bytecode files removed.
  returned: always
  type: int
  sample: 3
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.botfleet.pm2.plugins.module_utils._git import (
    GIT_BASE_ENV,
    Git,
    GitError,
    SyncRequest,
    is_under,
    normalize_relative,
    ssh_command,
    sync,
    url_secrets,
)


def build_request(params: dict) -> SyncRequest:
    dest = params["dest"].rstrip("/") or "/"
    backup_root = params["backup_root"].rstrip("/") or "/"
    if is_under(backup_root, [dest]):
        raise GitError(
            f"Unable to use backup_root {backup_root}: it is inside dest {dest}, where "
            "git clean would delete it; choose a folder outside the checkout"
        )
    if params["backup_keep"] < 1:
        raise GitError(f"Unable to use backup_keep {params['backup_keep']}: keep at least 1 backup")
    if params["version"].startswith("-"):
        raise GitError(
            f"Unable to use version {params['version']!r}: a revision cannot start with '-'"
        )
    return SyncRequest(
        dest=dest,
        repo=params["repo"],
        version=params["version"].strip(),
        backup_root=backup_root,
        backup_keep=params["backup_keep"],
        purge_bytecode=params["purge_bytecode"],
        keep=[normalize_relative(path, "keep") for path in params["keep"]],
        purge_exclude=[
            normalize_relative(path, "purge_exclude") for path in params["purge_exclude"]
        ],
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "repo": {"type": "str", "required": True},
            "version": {"type": "str", "required": True},
            "key_file": {"type": "path"},
            "known_hosts_file": {"type": "path"},
            "keep": {"type": "list", "elements": "str", "default": []},
            "backup_root": {"type": "path", "required": True},
            "backup_keep": {"type": "int", "default": 10},
            "purge_bytecode": {"type": "bool", "default": True},
            "purge_exclude": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    module.no_log_values.update(url_secrets(module.params["repo"]))

    git_path = module.get_bin_path("git", required=True)
    env = dict(GIT_BASE_ENV)
    env["GIT_SSH_COMMAND"] = ssh_command(
        module.params["key_file"], module.params["known_hosts_file"]
    )
    try:
        request = build_request(module.params)
        git = Git(module, git_path, request.dest, env)
        result = sync(git, request, module.check_mode)
    except GitError as error:
        module.fail_json(**error.fail_kwargs())
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
