"""Deploys that change the bot list, settings, dependencies, PM2's own state or race each other.

Each test leaves the host as the scenario's inventory declares it, because the
tests after it compare against that state.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

from helpers import (
    BOTS,
    LOCK,
    PLAYBOOK,
    PM2,
    ROOT,
    SECRET,
    WORK,
    as_bots,
    commit,
    declared_bots,
    deploy,
    jlist,
    pids,
    playbook_command,
    run_playbook,
)

NEW_SECRET = "rotated-secret-value-5d21e8"


def deploy_with_bots(host, bots: list[dict], *options: str):
    return run_playbook(host, PLAYBOOK, *options, "-e", json.dumps({"botfleet_bots": bots}))


def test_undeclared_app_removed(host):
    as_bots(host, "echo 'setInterval(() => {}, 1000);' > /home/bots/stray.js")
    host.check_output(f"{PM2} start /home/bots/stray.js --name stray")
    before = pids(host)

    result = deploy(host)

    assert result.returncode == 0, result.stdout[-3000:]
    after = pids(host)
    assert "stray" not in after
    for name in BOTS:
        assert after[name] == before[name], name


def test_deploy_starts_stopped_daemon(host):
    host.check_output("systemctl stop pm2-bots.service")
    assert not host.service("pm2-bots.service").is_running

    result = deploy(host)

    assert result.returncode == 0, result.stdout[-3000:]
    assert host.service("pm2-bots.service").is_running
    main_pid = host.check_output("systemctl show -p MainPID --value pm2-bots.service")
    assert host.file("/home/bots/.pm2/pm2.pid").content_string.strip() == main_pid
    apps = jlist(host)
    for name in BOTS:
        assert apps[name]["pm2_env"]["status"] == "online", name


def test_env_change_restarts_only_it(host):
    bots = declared_bots()
    bots[1]["env"] = {**bots[1]["env"], "HEARTBEAT_SECONDS": "4"}
    before = pids(host)

    result = deploy_with_bots(host, bots)

    assert result.returncode == 0, result.stdout[-3000:]
    after = pids(host)
    assert after["weather-bot"] != before["weather-bot"]
    assert after["ping-bot"] == before["ping-bot"]
    assert after["todoist-bot"] == before["todoist-bot"]
    assert jlist(host)["weather-bot"]["pm2_env"]["env"]["HEARTBEAT_SECONDS"] == "4"
    assert deploy(host).returncode == 0


def test_secret_rotation_hidden_at_vvv(host):
    bots = declared_bots()
    bots[0]["secret_env"] = {**bots[0]["secret_env"], "MOLECULE_TEST_SECRET": NEW_SECRET}
    before = pids(host)

    rotated = deploy_with_bots(host, bots, "-vvv", "--diff")
    restored = run_playbook(host, PLAYBOOK, "-vvv", "--diff")

    assert rotated.returncode == 0, rotated.stdout[-3000:]
    assert restored.returncode == 0, restored.stdout[-3000:]
    for output in (rotated.stdout, rotated.stderr, restored.stdout, restored.stderr):
        assert NEW_SECRET not in output
        assert SECRET not in output
    after = pids(host)
    assert after["ping-bot"] != before["ping-bot"]
    assert after["weather-bot"] == before["weather-bot"]
    assert jlist(host)["ping-bot"]["pm2_env"]["env"]["MOLECULE_TEST_SECRET"] == SECRET


def test_bot_added_then_removed(host):
    extra = {
        "name": "echo-bot",
        "runtime": "python",
        "path": "bots/todoist bot",
        "script": "main.py",
        "env": {"HEARTBEAT_SECONDS": "2"},
    }
    before = pids(host)

    added = deploy_with_bots(host, [*declared_bots(), extra])
    online = jlist(host).get("echo-bot", {}).get("pm2_env", {}).get("status")
    removed = deploy(host)

    assert added.returncode == 0, added.stdout[-3000:]
    assert online == "online"
    assert removed.returncode == 0, removed.stdout[-3000:]
    after = pids(host)
    assert "echo-bot" not in after
    for name in BOTS:
        assert after[name] == before[name], name
    assert host.file("/srv/botfleet/venvs/echo-bot/bin/python").exists


def test_absent_bot_purged_after_saving_data(host):
    folder = "/srv/botfleet/checkout/bots/echo-bot"
    commit(host, "cp -r 'bots/todoist bot' bots/echo-bot", "Add echo-bot")
    echo = {
        "name": "echo-bot",
        "runtime": "python",
        "path": "bots/echo-bot",
        "script": "main.py",
        "env": {"HEARTBEAT_SECONDS": "2"},
        "persist": ["data"],
    }
    added = deploy_with_bots(host, [*declared_bots(), echo])
    assert added.returncode == 0, added.stdout[-3000:]
    state = as_bots(host, f"cat {folder}/data/state.json")
    before = pids(host)
    retired = {**echo, "state": "absent", "purge": True}

    purged = deploy_with_bots(host, [*declared_bots(), retired])
    again = deploy_with_bots(host, [*declared_bots(), retired])

    assert purged.returncode == 0, purged.stdout[-3000:]
    assert "echo-bot" not in pids(host)
    archive = re.search(r"/srv/botfleet/backups/purged-echo-bot-[0-9TZ-]+\.tar\.gz", purged.stdout)
    assert archive, purged.stdout[-3000:]
    saved = as_bots(
        host, f"tar -xzOf {archive.group(0)} srv/botfleet/checkout/bots/echo-bot/data/state.json"
    )
    assert json.loads(saved)["revision"] == json.loads(state)["revision"]
    for path in (f"{folder}/data", "/srv/botfleet/venvs/echo-bot", "/srv/botfleet/state/echo-bot"):
        assert not host.file(path).exists, path
    assert not host.file("/home/bots/.pm2/logs/echo-bot-out.log").exists
    assert host.file(f"{folder}/main.py").exists
    assert again.returncode == 0, again.stdout[-3000:]
    assert re.search(r"changed=0\s", again.stdout), again.stdout[-3000:]
    after = pids(host)
    for name in BOTS:
        assert after[name] == before[name], name
    as_bots(host, f"cd {WORK} && git rm -rq bots/echo-bot && git commit -qm 'Remove echo-bot'")
    as_bots(host, f"cd {WORK} && git push -q /srv/git/bots.git main")
    assert deploy(host).returncode == 0


def test_new_requirement_installed(host):
    commit(
        host,
        "printf '\\nsix==1.16.0\\n' >> bots/weather-bot/requirements.txt"
        " && sed -i '1i import six' bots/weather-bot/bot.py",
        "Require six in weather-bot",
    )

    result = deploy(host)

    assert result.returncode == 0, result.stdout[-3000:]
    assert jlist(host)["weather-bot"]["pm2_env"]["status"] == "online"
    installed = host.run("/srv/botfleet/venvs/weather-bot/bin/python -m pip show six")
    assert installed.rc == 0
    assert "Version: 1.16.0" in installed.stdout


def test_second_deploy_waits_on_lock(host):
    commit(host, "echo '// race' >> bots/ping-bot/index.js", "Touch ping-bot again")
    command, env = playbook_command(host, PLAYBOOK)
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    deadline = time.monotonic() + 120
    while not host.file(LOCK).exists and time.monotonic() < deadline:
        time.sleep(0.5)

    second = run_playbook(host, PLAYBOOK, "-e", "deploy_lock_timeout=2")
    first_output, _ = first.communicate(timeout=600)

    assert host.file(LOCK).exists is False
    assert second.returncode != 0
    assert "held by" in second.stdout + second.stderr
    assert first.returncode == 0, first_output[-3000:]
    apps = jlist(host)
    for name in BOTS:
        assert apps[name]["pm2_env"]["status"] == "online", name


def test_interrupted_deploy_lock_taken_over(host):
    commit(host, "echo '// interrupted' >> bots/ping-bot/index.js", "Touch ping-bot once more")
    command, env = playbook_command(host, PLAYBOOK)
    interrupted = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not host.file(LOCK).exists and time.monotonic() < deadline:
        time.sleep(0.2)
    # Ctrl-C in a terminal sends SIGINT to the whole process group.
    os.killpg(interrupted.pid, signal.SIGINT)
    interrupted.wait(timeout=120)
    left_behind = host.file(LOCK).exists

    result = run_playbook(host, PLAYBOOK, "-e", "deploy_lock_timeout=5")

    assert left_behind
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "has ended without releasing it" in output
    assert host.file(LOCK).exists is False
    apps = jlist(host)
    for name in BOTS:
        assert apps[name]["pm2_env"]["status"] == "online", name


def test_healthy_set_passes_ten_times(host):
    env = dict(
        os.environ,
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
    )
    command = [
        "ansible",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        host.backend.get_hostname(),
        "-b",
        "-m",
        "botfleet.pm2.pm2_status",
        "-a",
        "ecosystem=/srv/botfleet/ecosystem.config.js user=bots settle=5.5",
    ]
    results = [
        subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        for _attempt in range(10)
    ]
    assert [result.returncode for result in results] == [0] * 10, results[-1].stdout[-2000:]
