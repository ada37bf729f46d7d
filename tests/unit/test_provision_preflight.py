"""playbooks/provision.yml rejects bad settings before any role changes a host.

The playbook runs against a host name with a local connection, in check mode
and limited to the preflight tag, so nothing on this machine changes even
when a check is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "provision.yml"
PROVISION_PLAY = "PLAY [Provision hosts for bots under PM2]"


def run_checks(extra_vars: dict) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "checkhost,",
        "-c",
        "local",
        "--check",
        "--tags",
        "preflight",
        "-e",
        json.dumps({"botfleet_hosts": "all", **extra_vars}),
        str(PLAYBOOK),
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def test_valid_settings_pass():
    result = run_checks({"pm2_version": "7.0.4", "botfleet_user": "bots"})
    assert result.returncode == 0, result.stdout[-2000:]
    assert "failed=0" in result.stdout


BAD_SETTINGS = [
    ("unknown node source", {"nodejs_source": "snap"}, ["nodejs_source", "distribution"]),
    (
        "node minimum not version",
        {"nodejs_min_version": "18"},
        ["nodejs_min_version '18'", "X.Y.Z"],
    ),
    ("pm2 version not version", {"pm2_version": "latest"}, ["pm2_version 'latest'", "X.Y.Z"]),
    (
        "user name rejected",
        {"botfleet_user": "Bad User"},
        ["botfleet_user 'Bad User'", "lowercase"],
    ),
    ("user name too long", {"botfleet_user": "b" * 33}, ["botfleet_user", "at most 32"]),
    (
        "ca certificate not pem",
        {"ca_certificates_extra": [{"name": "corp", "pem": "not a certificate"}]},
        ["ca_certificates_extra item 'corp'", "-----BEGIN CERTIFICATE-----"],
    ),
    (
        "ca certificate both sources",
        {"ca_certificates_extra": [{"name": "corp", "pem": "x", "src": "/etc/hostname"}]},
        ["ca_certificates_extra item 'corp'", "exactly one of 'pem'"],
    ),
    ("pip index not url", {"python_pip_index_url": "ftp://mirror"}, ["python_pip_index_url"]),
    ("logrotate size invalid", {"pm2_logrotate_max_size": "big"}, ["pm2_logrotate_max_size 'big'"]),
]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [(case[1], case[2]) for case in BAD_SETTINGS],
    ids=[case[0] for case in BAD_SETTINGS],
)
def test_bad_setting_rejected_first(settings, expected):
    result = run_checks(settings)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "failed=1" in result.stdout
    assert PROVISION_PLAY not in result.stdout
    for text in expected:
        assert text in output, text
