"""A deploy lock file: JSON naming who deploys which revision since when, with a release token."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

POLL_SECONDS = 1.0


class LockError(Exception):
    """A lock that cannot be taken or released."""

    def __init__(self, message: str, held_by: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.held_by = held_by


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_token() -> str:
    return secrets.token_hex(16)


@contextlib.contextmanager
def folder_guard(path: str, action: str) -> Iterator[None]:
    """Serialize reading, taking and removing the lock among deploys on this host.

    The guard is a flock on the folder of the lock, so it also protects the moment between a
    stale lock being judged stale and being replaced. It is released when the process exits.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise LockError(
            f"Unable to {action} the deploy lock {path}: the folder {folder} does not exist; "
            "run the provision playbook first"
        ) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


@dataclass
class Holder:
    """Content of an existing lock file."""

    holder: str
    since: str
    revision: str | None
    token: str | None
    age: float
    controller: dict[str, Any] | None = None

    def describe(self) -> str:
        return f"held by {self.holder} since {self.since} for revision {self.revision or 'unknown'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "since": self.since,
            "revision": self.revision,
            "controller": self.controller,
        }


def read_lock(path: str) -> Holder | None:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        modified = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError:
        # A lock written by hand or cut short still counts as held, from its file time.
        data = {}
    mtime = datetime.datetime.fromtimestamp(modified, datetime.UTC)
    since = str(data.get("since") or mtime.isoformat(timespec="seconds"))
    try:
        started = datetime.datetime.fromisoformat(since)
        if started.tzinfo is None:
            started = started.replace(tzinfo=datetime.UTC)
    except ValueError:
        started = mtime
    return Holder(
        holder=str(data.get("holder") or "an unknown deploy"),
        since=since,
        revision=data.get("revision"),
        token=data.get("token"),
        age=(utc_now() - started).total_seconds(),
        controller=data.get("controller") if isinstance(data.get("controller"), dict) else None,
    )


def write_lock(
    path: str,
    holder: str,
    revision: str | None,
    token: str,
    controller: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content = {
        "holder": holder,
        "since": utc_now().isoformat(timespec="seconds"),
        "revision": revision,
        "token": token,
        "controller": controller,
    }
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    return content


def is_stale(current: Holder, expire: int) -> bool:
    return expire > 0 and current.age > expire


def acquire(
    path: str,
    holder: str,
    revision: str | None,
    token: str | None,
    timeout: int,
    expire: int,
    check_mode: bool,
    sleep: Callable[[float], None] = time.sleep,
    controller: dict[str, Any] | None = None,
    take_over: str | None = None,
) -> dict[str, Any]:
    """Take the lock, waiting for another holder until timeout.

    A stale lock, or the lock whose token is take_over (a deploy known to be gone), is replaced.
    """
    token = token or new_token()
    started = time.monotonic()
    while True:
        with folder_guard(path, "take"):
            current = read_lock(path)
            if current is not None and current.token == token:
                return _acquired(False, token, current.as_dict(), None, started)
            abandoned = current is not None and bool(take_over) and current.token == take_over
            if current is None or abandoned or is_stale(current, expire):
                if check_mode:
                    content = {"holder": holder, "since": None, "revision": revision}
                    result = _acquired(True, token, content, current, started)
                    if abandoned:
                        result["taken_over"]["reason"] = "abandoned"
                    return result
                if current is not None:
                    os.unlink(path)
                content = write_lock(path, holder, revision, token, controller)
                result = _acquired(True, token, content, current, started)
                if abandoned:
                    result["taken_over"]["reason"] = "abandoned"
                return result
            if check_mode:
                result = _acquired(True, token, current.as_dict(), None, started)
                result.update(acquired=False, would_wait=True)
                return result
        waited = time.monotonic() - started
        if waited >= timeout:
            raise LockError(
                f"Unable to take the deploy lock {path}: {current.describe()} "
                f"(waited {int(waited)} s); wait for that deploy to finish, or remove {path} "
                "if it is stale",
                held_by={**current.as_dict(), "token": current.token},
            )
        sleep(min(POLL_SECONDS, timeout - waited))


def _acquired(
    changed: bool,
    token: str,
    content: dict[str, Any],
    taken_over: Holder | None,
    started: float,
) -> dict[str, Any]:
    return {
        "changed": changed,
        "acquired": True,
        "would_wait": False,
        "token": token,
        "holder": content["holder"],
        "since": content["since"],
        "revision": content["revision"],
        "taken_over": {**taken_over.as_dict(), "reason": "stale"} if taken_over else None,
        "waited": round(time.monotonic() - started, 1),
    }


def release(path: str, token: str, check_mode: bool) -> tuple[dict[str, Any], list[str]]:
    """Remove the lock when it carries token; return the result and warnings."""
    with folder_guard(path, "release"):
        current = read_lock(path)
        if current is None:
            return {"changed": False, "released": False}, []
        if current.token != token:
            message = (
                f"Unable to release the deploy lock {path}: it is {current.describe()}, "
                "and its token differs from the one given; only the deploy that took the lock "
                f"releases it. Remove {path} by hand if that deploy is gone"
            )
            if check_mode:
                # A check run never took the lock, so its token cannot match.
                return {"changed": False, "released": False, **current.as_dict()}, [message]
            raise LockError(message)
        if not check_mode:
            os.unlink(path)
        return {"changed": True, "released": True, **current.as_dict()}, []
