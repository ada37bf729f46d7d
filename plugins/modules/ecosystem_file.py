#!/usr/bin/python
# Copyright: botfleet.pm2 developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the PM2 ecosystem file of botfleet from the normalised bot list."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.botfleet.pm2.plugins.module_utils._bots import (
    DEFAULT_NODE_PATH,
    BotfleetError,
    CheckoutMissing,
    build_app,
    redact,
    redact_existing,
    render_ecosystem,
)

DOCUMENTATION = r"""
module: ecosystem_file
author: botfleet.pm2 developers
version_added: 0.1.0
short_description: Write ecosystem.config.js for the bots of a host
description:
  - Renders the PM2 ecosystem file from the bot list that the filter
    C(botfleet.pm2.bots_normalize) returns, and writes it when its content differs.
  - For each present bot it reads from its checkout the revision (C(git rev-parse HEAD)), the
    git tree of the bot folder and of each shared path at HEAD, and the sha256 of the
    dependency manifests C(package.json), C(package-lock.json) and C(requirements.txt) in the
    bot folder. Together with a hash of the bot's app definition and a hash of its secret
    values, they make C(BOTFLEET_FINGERPRINT). A commit that changes only one bot's folder
    changes only that bot's fingerprint.
  - Run it as the bots user (C(become_user)). The file belongs to that user, with mode 0600,
    because it contains the secret values.
options:
  path:
    description: Path of the ecosystem file on the host. Its folder must exist.
    type: path
    required: true
  bots:
    description: The normalised bot list, the output of C(botfleet.pm2.bots_normalize).
    type: list
    elements: dict
    required: true
  secret_env:
    description:
      - The secret environment variables of each bot, by bot name, the output of
        C(botfleet.pm2.bots_secret_env). A bot must have a value for every name in its
        C(secret_env_keys).
    type: dict
    default: {}
  node_path:
    description:
      - Node binary that loads the rendered file before it is written, to prove PM2 can read it.
      - Set to an empty string to skip that check.
    type: str
    default: /usr/bin/node
attributes:
  check_mode:
    support: full
    description: Reads the checkouts and the current file, and writes nothing.
  diff_mode:
    support: full
    description: Shows the old and new file with every secret value replaced by C(********).
  idempotent:
    support: full
    description: Writes the file only when its content, owner or mode differs.
notes:
  - In check mode the checkouts are still at their old revision, because the git sync before
    this task changed nothing, so the fingerprints are those of the current checkout. On a host
    without the folder of I(path) or without a checkout, check mode warns and reports a change.
  - Bots with C(state=absent) are left out of the file. Stopping them is up to the PM2 modules.
  - The fingerprint does not cover the installed node or Python version, so an upgrade of the
    interpreter alone restarts no bot.
  - In the diff, the old content hides the values of env variables that are secret now, of
    variables that the inventory does not list in a bot's plain C(env), and any quoted copy
    of a current secret. A secret copied by hand into another field under another name, with
    fewer than 8 characters, can still show in the old content.
"""

EXAMPLES = r"""
- name: Write ecosystem.config.js
  botfleet.pm2.ecosystem_file:
    path: /srv/botfleet/ecosystem.config.js
    bots: >-
      {{ botfleet_bots | botfleet.pm2.bots_normalize(repo=botfleet_repo,
                                                     host=inventory_hostname) }}
    secret_env: "{{ botfleet_bots | botfleet.pm2.bots_secret_env }}"
  become: true
  become_user: bots
  register: __botfleet_ecosystem
"""

RETURN = r"""
path:
  description: Path of the ecosystem file.
  returned: always
  type: str
  sample: /srv/botfleet/ecosystem.config.js
msg:
  description: Why check mode could not render the file, on a host not yet provisioned or synced.
  returned: in check mode, when the folder of I(path) or a checkout is missing
  type: str
  sample: >-
    Unable to render the app of bot 'ping-bot': checkout /srv/botfleet/checkout not found.
    Sync the checkout before writing the ecosystem file. The file would be written after the
    first sync
apps:
  description:
    - One entry per present bot, in inventory order. No environment values.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the bot and of its PM2 app.
      type: str
    fingerprint:
      description: Value of C(BOTFLEET_FINGERPRINT) in the app's env.
      type: str
    revision:
      description: Commit of the bot's checkout, C(BOTFLEET_REVISION) in the app's env.
      type: str
    dependencies_hash:
      description: sha256 over the dependency manifests found in the bot folder.
      type: str
  sample:
    - name: ping-bot
      fingerprint: 3f1c9a0e5b7d2c4e8a61
      revision: 8d2f0c5a1b3e4d6f7a8b9c0d1e2f3a4b5c6d7e8f
      dependencies_hash: 4c1e0f2b8a9d7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817065f4e
"""


def read_current(path: str) -> tuple[str | None, os.stat_result | None]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(), os.stat(path)
    except FileNotFoundError:
        return None, None


def check_with_node(module: AnsibleModule, node_path: str, content: str) -> None:
    """Load the rendered file with node from a private temporary file."""
    if not os.path.isfile(node_path):
        module.fail_json(
            msg=(
                f"Unable to load the rendered ecosystem file: node binary {node_path} not found. "
                "Set node_path to the node that PM2 uses, or provision the host first"
            )
        )
    fd, temp_path = tempfile.mkstemp(prefix="ecosystem-", suffix=".config.js", dir=module.tmpdir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        script = "const c = require(process.argv[1]); if (!Array.isArray(c.apps)) process.exit(3)"
        rc, out, err = module.run_command([node_path, "-e", script, temp_path])
    finally:
        os.unlink(temp_path)
    if rc != 0:
        module.fail_json(
            msg=(
                f"Unable to load the rendered ecosystem file with {node_path}: node exited "
                f"with {rc}. Check that node_path is the node binary PM2 uses"
            ),
            rc=rc,
            stdout=out,
            stderr=err,
        )


def write_atomically(path: str, content: str) -> None:
    """Write content to a new 0600 file beside path and rename it over path."""
    fd, temp_path = tempfile.mkstemp(prefix=".ecosystem-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, 0o600)
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "bots": {"type": "list", "elements": "dict", "required": True},
            "secret_env": {"type": "dict", "default": {}, "no_log": True},
            "node_path": {"type": "str", "default": DEFAULT_NODE_PATH},
        },
        supports_check_mode=True,
    )
    path: str = module.params["path"]
    bots: list[dict[str, Any]] = module.params["bots"]
    secrets: dict[str, dict[str, str]] = {
        str(name): {str(k): str(v) for k, v in (values or {}).items()}
        for name, values in module.params["secret_env"].items()
    }

    if not os.path.isdir(os.path.dirname(path)):
        if module.check_mode:
            message = f"Folder {os.path.dirname(path)} not found, so a real run would fail"
            module.warn(message)
            module.exit_json(changed=True, path=path, apps=[], msg=message)
        module.fail_json(
            msg=(
                f"Unable to write the ecosystem file {path}: folder {os.path.dirname(path)} "
                "not found. Provision the host first"
            )
        )

    def run_git(args: list[str], cwd: str) -> tuple[int, str, str]:
        return module.run_command(["git", *args], cwd=cwd, environ_update={"LC_ALL": "C"})

    apps: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for bot in bots:
        if bot.get("state") == "absent":
            continue
        try:
            app, summary = build_app(bot, secrets.get(bot["name"], {}), run_git)
        except CheckoutMissing as error:
            if not module.check_mode:
                module.fail_json(msg=str(error))
            # In check mode the git sync before this task has not cloned anything yet.
            message = f"{error}. The file would be written after the first sync"
            module.warn(message)
            module.exit_json(changed=True, path=path, apps=[], msg=message)
        except BotfleetError as error:
            module.fail_json(msg=str(error), rc=error.rc, stdout=error.stdout, stderr=error.stderr)
        apps.append(app)
        summaries.append(summary)

    content = render_ecosystem(apps)
    if module.params["node_path"]:
        check_with_node(module, module.params["node_path"], content)

    current, stat = read_current(path)
    owner_differs = stat is not None and stat.st_uid != os.geteuid()
    mode_differs = stat is not None and (stat.st_mode & 0o7777) != 0o600
    changed = current != content or owner_differs or mode_differs

    result: dict[str, Any] = {"changed": changed, "path": path, "apps": summaries}
    if module._diff:
        secret_values = {value for values in secrets.values() for value in values.values()}
        secret_keys = {key for values in secrets.values() for key in values}
        result["diff"] = {
            "before": redact_existing(current or "", bots, secrets),
            "after": redact(content, secret_values, secret_keys),
            "before_header": path if current is not None else "(absent)",
            "after_header": path,
        }

    if changed and not module.check_mode:
        try:
            write_atomically(path, content)
        except OSError as error:
            module.fail_json(
                msg=(
                    f"Unable to write the ecosystem file {path}: {error.strerror}. Check that "
                    f"the task runs as the bots user and that it owns {os.path.dirname(path)}"
                )
            )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
