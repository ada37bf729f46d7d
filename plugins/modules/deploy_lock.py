#!/usr/bin/python
"""Ansible module botfleet.pm2.deploy_lock."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take or release the deploy lock of a host
description:
  - With O(state=present), creates the lock file O(path) atomically, writing the holder, the
    time it was taken (UTC, ISO 8601), the revision and a random token as JSON, and returns the
    token.
  - While another deploy holds the lock, polls every second until O(timeout) seconds have
    passed, then fails with the holder, the time and the revision of that deploy.
  - A lock older than O(expire) seconds counts as stale; it is taken over with a warning.
  - With O(state=absent), removes the lock only when its token equals O(token), so that one
    deploy never releases the lock of another.
version_added: 0.1.0
author:
  - botfleet.pm2 maintainers
options:
  path:
    description: Lock file. Its folder must exist.
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  holder:
    description: Who deploys, shown to any deploy that has to wait, for example
      C(alice@laptop pid 4242).
    type: str
  revision:
    description: Revision being deployed, shown to any deploy that has to wait.
    type: str
  timeout:
    description: Seconds to wait for a lock held by another deploy. C(0) fails at once.
    type: int
    default: 300
  expire:
    description: Age in seconds after which a held lock counts as stale and is taken over.
      C(0) means a lock never expires.
    type: int
    default: 1800
  controller_host:
    description:
      - Name of the machine that runs the deploy, written into the lock so that a later deploy
        from the same machine can tell whether the holder is still running.
    type: str
  controller_pid:
    description: Process id of the deploy on O(controller_host), written into the lock.
    type: int
  take_over:
    description:
      - Token of a lock whose deploy is known to be gone, such as an C(ansible-playbook) that
        was interrupted. Such a lock is replaced at once, with a warning, instead of waited for.
      - The deploy role finds the token in RV(held_by) of a first attempt and passes it only
        after checking on the controller that the holder's process has ended.
    type: str
  token:
    description:
      - Token returned when the lock was taken. Required to release it.
      - With O(state=present), a lock that already carries this token counts as taken, so a
        retried task does not wait for itself.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports whether the lock would be taken, taken over or waited for, without
      waiting or writing.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Taking a lock again with its own token, or releasing a lock that is gone,
      reports C(changed=false).
notes:
  - Waiting deploys are serialized with C(flock) on the folder of O(path), which works on local
    file systems only.
  - A stale lock is judged by the time written in it, so the clocks of the hosts that deploy must
    agree within O(expire).
"""

EXAMPLES = r"""
- name: Take the deploy lock
  botfleet.pm2.deploy_lock:
    path: /srv/botfleet/deploy.lock
    holder: "{{ lookup('ansible.builtin.env', 'USER') }} via {{ inventory_hostname }}"
    revision: "{{ botfleet_version }}"
  register: __botfleet_deploy_lock

- name: Release the deploy lock
  botfleet.pm2.deploy_lock:
    path: /srv/botfleet/deploy.lock
    state: absent
    token: "{{ __botfleet_deploy_lock.token }}"
"""

RETURN = r"""
acquired:
  description: Whether this deploy holds the lock now (always false in check mode when it
    would wait).
  returned: state=present
  type: bool
  sample: true
would_wait:
  description: In check mode, whether the run would wait for another deploy.
  returned: state=present
  type: bool
  sample: false
token:
  description: Token to pass to O(state=absent) to release the lock.
  returned: state=present
  type: str
  sample: 5f0c6a1e9b2d4c7a8e3f1b0d9c8a7e6f
holder:
  description: Holder written in the lock file.
  returned: when a lock exists or is taken
  type: str
  sample: alice@laptop pid 4242
since:
  description: When the lock was taken, UTC, ISO 8601; null in check mode for a lock not taken yet.
  returned: when a lock exists or is taken
  type: str
  sample: "2025-03-01T14:22:33+00:00"
revision:
  description: Revision written in the lock file.
  returned: when a lock exists or is taken
  type: str
  sample: 9f1d2c7b0a5e4f3d8c6b1a09e7d5c3b2a1f0e9d8
taken_over:
  description:
    - The lock that was replaced, with its holder, since, revision and controller, or null.
    - C(reason) is C(stale) for a lock older than O(expire) and C(abandoned) for the lock of
      O(take_over).
  returned: state=present
  type: dict
  sample:
    holder: bob@ci pid 77
    since: "2025-03-01T09:00:00+00:00"
    revision: 0c3a41e8a4d3b7c7c5f0e29a2d1b9f3f6e8a7b21
    controller: {host: ci-runner-3, pid: 77}
    reason: stale
held_by:
  description:
    - When the task fails because another deploy holds the lock, that lock's holder, since,
      revision, controller and token.
  returned: failure because the lock is held
  type: dict
  sample:
    holder: alice on laptop
    since: "2025-03-01T14:22:33+00:00"
    revision: 9f1d2c7b0a5e4f3d8c6b1a09e7d5c3b2a1f0e9d8
    controller: {host: laptop, pid: 4242}
    token: 5f0c6a1e9b2d4c7a8e3f1b0d9c8a7e6f
waited:
  description: Seconds spent waiting for another deploy.
  returned: state=present
  type: float
  sample: 12.0
released:
  description: Whether the lock file was removed.
  returned: state=absent
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.botfleet.pm2.plugins.module_utils._lock import (
    LockError,
    acquire,
    release,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "holder": {"type": "str"},
            "revision": {"type": "str"},
            "timeout": {"type": "int", "default": 300},
            "expire": {"type": "int", "default": 1800},
            "token": {"type": "str"},
            "controller_host": {"type": "str"},
            "controller_pid": {"type": "int"},
            "take_over": {"type": "str"},
        },
        required_if=[("state", "present", ["holder"]), ("state", "absent", ["token"])],
        supports_check_mode=True,
    )
    params = module.params
    controller = None
    if params["controller_host"] or params["controller_pid"] is not None:
        controller = {"host": params["controller_host"], "pid": params["controller_pid"]}
    try:
        if params["state"] == "present":
            result = acquire(
                params["path"],
                params["holder"],
                params["revision"],
                params["token"],
                max(params["timeout"], 0),
                max(params["expire"], 0),
                module.check_mode,
                controller=controller,
                take_over=params["take_over"],
            )
            warnings = []
            old = result["taken_over"]
            if old:
                verb = "would take" if module.check_mode else "took"
                if old["reason"] == "abandoned":
                    cause = "the deploy that held it has ended without releasing it"
                else:
                    cause = f"it was held longer than {params['expire']} s"
                warnings.append(
                    f"The deploy lock {params['path']} was held by {old['holder']} since "
                    f"{old['since']} for revision {old['revision'] or 'unknown'}, but {cause}; "
                    f"this deploy {verb} it over"
                )
        else:
            result, warnings = release(params["path"], params["token"], module.check_mode)
    except LockError as error:
        if error.held_by is not None:
            module.fail_json(msg=str(error), held_by=error.held_by)
        module.fail_json(msg=str(error))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
