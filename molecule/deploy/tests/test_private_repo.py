"""Deploys from the bots repository over git+SSH with a deploy key and a pinned host key.

The test host serves its own repository over SSH to a `git` user, standing in
for a private GitHub repository reached with a read-only deploy key.
"""

from __future__ import annotations

import json

import pytest
from helpers import BOTS, PLAYBOOK, as_bots, deploy, jlist, pids, run_playbook

SSH_REPO = "git@localhost:/srv/git/bots.git"
KEY = "/root/botfleet-test-deploy-key"


@pytest.fixture
def git_server(host):
    """Serve /srv/git over SSH to the user git, with a fresh key pair; return its settings."""
    host.check_output(
        "id git >/dev/null 2>&1 || useradd --create-home --shell /usr/bin/git-shell git"
    )
    # The repository belongs to bots; git 2.36 and newer refuse to serve it to
    # another user unless it is listed as safe.
    host.check_output(
        "git config --system --get-all safe.directory | grep -qx /srv/git/bots.git"
        " || git config --system --add safe.directory /srv/git/bots.git"
    )
    host.check_output(f"test -f {KEY} || ssh-keygen -q -t ed25519 -N '' -C deploy -f {KEY}")
    host.check_output(
        f"install -d -m 0700 -o git -g git /home/git/.ssh"
        f" && install -m 0600 -o git -g git {KEY}.pub /home/git/.ssh/authorized_keys"
    )
    # ssh-keyscan prints comment lines about the server next to the key line.
    known_hosts = host.check_output("ssh-keyscan -t ed25519 localhost 2>/dev/null | grep -v '^#'")
    assert known_hosts.startswith("localhost ssh-ed25519 ")
    return {
        "botfleet_repo": SSH_REPO,
        "botfleet_deploy_key": host.file(KEY).content_string,
        "botfleet_known_hosts": known_hosts,
    }


def test_deploy_key_reaches_repo(host, git_server):
    before = pids(host)

    result = run_playbook(host, PLAYBOOK, "-v", "-e", json.dumps(git_server))
    origin = as_bots(host, "git -C /srv/botfleet/checkout remote get-url origin")
    restored = deploy(host)

    assert result.returncode == 0, result.stdout[-3000:]
    assert origin == SSH_REPO
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    key = host.file("/home/bots/.ssh/botfleet_deploy_key")
    assert key.user == "bots"
    assert key.mode == 0o600
    assert restored.returncode == 0, restored.stdout[-3000:]
    after = pids(host)
    for name in BOTS:
        assert after[name] == before[name], name


def test_unpinned_host_key_rejected(host, git_server):
    wrong = git_server["botfleet_known_hosts"].split(" ")[:2]
    host.check_output(
        "rm -f /tmp/other /tmp/other.pub && ssh-keygen -q -t ed25519 -N '' -f /tmp/other"
    )
    other_key = host.file("/tmp/other.pub").content_string.split(" ")[1]
    settings = {**git_server, "botfleet_known_hosts": f"{wrong[0]} {wrong[1]} {other_key}"}

    result = run_playbook(host, PLAYBOOK, "-e", json.dumps(settings))
    restored = deploy(host)

    assert result.returncode != 0
    assert "Host key verification failed" in result.stdout + result.stderr
    assert restored.returncode == 0, restored.stdout[-3000:]
    apps = jlist(host)
    for name in BOTS:
        assert apps[name]["pm2_env"]["status"] == "online", name
