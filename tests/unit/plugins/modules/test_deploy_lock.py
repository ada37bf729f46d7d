"""Tests of botfleet.pm2.deploy_lock on lock files in temporary folders."""

from __future__ import annotations

import datetime
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from module_runner import run_module_main, warning_messages

from ansible_collections.botfleet.pm2.plugins.modules import deploy_lock

OTHER_LOCK = {
    "holder": "alice@laptop pid 4242",
    "since": "2025-03-01T14:22:33+00:00",
    "revision": "0c3a41e8a4d3b7c7c5f0e29a2d1b9f3f6e8a7b21",
    "token": "a" * 32,
}


def run_module(args: dict[str, Any], **flags: bool) -> dict:
    return run_module_main(deploy_lock, args, **flags)


def write_lock(path: Path, since: datetime.datetime | None = None) -> None:
    content = dict(OTHER_LOCK)
    if since is not None:
        content["since"] = since.isoformat(timespec="seconds")
    path.write_text(json.dumps(content))


def recent() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / "deploy.lock"


@pytest.fixture
def take(lock: Path) -> dict[str, Any]:
    return {"path": str(lock), "holder": "bob@ci pid 77", "revision": "9f1d2c7", "timeout": 1}


def test_acquire_free_lock(lock, take):
    result = run_module(take)
    content = json.loads(lock.read_text())
    assert result["changed"] is True
    assert result["acquired"] is True
    assert content["holder"] == "bob@ci pid 77"
    assert content["revision"] == "9f1d2c7"
    assert content["token"] == result["token"]
    assert content["since"] == result["since"]


def test_contention_times_out_naming_holder(lock, take):
    write_lock(lock, recent())
    since = json.loads(lock.read_text())["since"]
    result = run_module(take)
    assert result["failed"] is True
    assert result["msg"] == (
        f"Unable to take the deploy lock {lock}: held by alice@laptop pid 4242 since {since} "
        "for revision 0c3a41e8a4d3b7c7c5f0e29a2d1b9f3f6e8a7b21 (waited 1 s); wait for that "
        f"deploy to finish, or remove {lock} if it is stale"
    )
    assert json.loads(lock.read_text())["token"] == OTHER_LOCK["token"]


def test_waits_until_lock_released(lock, take):
    write_lock(lock, recent())
    timer = threading.Timer(0.5, lock.unlink)
    timer.start()
    result = run_module({**take, "timeout": 10})
    timer.join()
    assert result["acquired"] is True
    assert result["waited"] >= 0.5
    assert json.loads(lock.read_text())["holder"] == "bob@ci pid 77"


def test_stale_lock_taken_over(lock, take):
    write_lock(lock, datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2))
    result = run_module({**take, "expire": 1800})
    assert result["acquired"] is True
    assert result["taken_over"]["holder"] == "alice@laptop pid 4242"
    assert result["taken_over"]["reason"] == "stale"
    assert "was held by alice@laptop pid 4242 since" in warning_messages(result)[0]
    assert "it was held longer than 1800 s" in warning_messages(result)[0]
    assert json.loads(lock.read_text())["token"] == result["token"]


def test_held_lock_failure_names_token_and_controller(lock, take):
    write_lock(lock, recent())
    content = json.loads(lock.read_text())
    lock.write_text(json.dumps({**content, "controller": {"host": "laptop", "pid": 4242}}))
    result = run_module({**take, "timeout": 0})
    assert result["failed"] is True
    assert result["held_by"]["token"] == OTHER_LOCK["token"]
    assert result["held_by"]["controller"] == {"host": "laptop", "pid": 4242}


def test_abandoned_lock_taken_over_at_once(lock, take):
    write_lock(lock, recent())
    args = {
        **take,
        "timeout": 0,
        "take_over": OTHER_LOCK["token"],
        "controller_host": "ci",
        "controller_pid": 77,
    }
    result = run_module(args)
    assert result["acquired"] is True
    assert result["taken_over"]["reason"] == "abandoned"
    assert "has ended without releasing it" in warning_messages(result)[0]
    content = json.loads(lock.read_text())
    assert content["token"] == result["token"] != OTHER_LOCK["token"]
    assert content["controller"] == {"host": "ci", "pid": 77}


def test_take_over_of_another_token_still_waits(lock, take):
    write_lock(lock, recent())
    result = run_module({**take, "timeout": 0, "take_over": "b" * 32})
    assert result["failed"] is True
    assert json.loads(lock.read_text())["token"] == OTHER_LOCK["token"]


def test_unreadable_lock_counts_as_held(lock, take):
    lock.write_text("not json")
    result = run_module({**take, "timeout": 0})
    assert result["failed"] is True
    assert "held by an unknown deploy since" in result["msg"]


def test_reacquire_with_own_token(lock, take):
    first = run_module(take)
    second = run_module({**take, "token": first["token"]})
    assert second["changed"] is False
    assert second["acquired"] is True
    assert second["since"] == first["since"]


def test_release_with_own_token(lock, take):
    token = run_module(take)["token"]
    result = run_module({"path": str(lock), "state": "absent", "token": token})
    assert result["changed"] is True
    assert result["released"] is True
    assert not lock.exists()


def test_release_wrong_token_refused(lock):
    write_lock(lock, recent())
    result = run_module({"path": str(lock), "state": "absent", "token": "b" * 32})
    assert result["failed"] is True
    assert result["msg"].startswith(
        f"Unable to release the deploy lock {lock}: it is held by alice@laptop pid 4242"
    )
    assert lock.exists()


def test_release_missing_lock_unchanged(lock):
    result = run_module({"path": str(lock), "state": "absent", "token": "c" * 32})
    assert result["changed"] is False
    assert result["released"] is False


@pytest.mark.parametrize(
    ("existing", "changed", "acquired", "would_wait"),
    [
        ("none", True, True, False),
        ("held", True, False, True),
        ("stale", True, True, False),
    ],
)
def test_check_mode_reports_outcome(lock, take, existing, changed, acquired, would_wait):
    ages = {"held": datetime.timedelta(seconds=5), "stale": datetime.timedelta(hours=2)}
    if existing in ages:
        write_lock(lock, datetime.datetime.now(datetime.UTC) - ages[existing])
    before = lock.read_text() if lock.exists() else None
    result = run_module(take, check=True)
    assert result["changed"] is changed
    assert result["acquired"] is acquired
    assert result["would_wait"] is would_wait
    assert (lock.read_text() if lock.exists() else None) == before


def test_check_mode_release_mismatch_warns(lock):
    write_lock(lock, recent())
    result = run_module({"path": str(lock), "state": "absent", "token": "d" * 32}, check=True)
    assert result["changed"] is False
    assert "its token differs" in warning_messages(result)[0]
    assert lock.exists()


def test_missing_folder_fails_clearly(tmp_path, take):
    path = tmp_path / "absent" / "deploy.lock"
    result = run_module({**take, "path": str(path)})
    assert result["msg"] == (
        f"Unable to take the deploy lock {path}: the folder {path.parent} does not exist; "
        "run the provision playbook first"
    )


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        ({"state": "present"}, "holder"),
        ({"state": "absent"}, "token"),
    ],
)
def test_required_options_per_state(lock, args, missing):
    result = run_module({"path": str(lock), **args})
    assert result["failed"] is True
    assert missing in result["msg"]
