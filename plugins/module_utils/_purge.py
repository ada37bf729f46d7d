# Copyright: botfleet.pm2 developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removal of the files of bots that left the inventory, after saving their data."""

from __future__ import annotations

import glob
import os
import posixpath
import shutil
import tarfile
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ansible_collections.botfleet.pm2.plugins.module_utils._git import is_under, utc_now

ARCHIVE_MODE = 0o600


class PurgeError(Exception):
    """Failure of a purge. The message names the bot, the path and whether its data was saved."""


def _check_path(name: str, field: str, path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise PurgeError(f"Unable to purge bot {name!r}: {field} entry {path!r} is not absolute")
    normalized = posixpath.normpath(path)
    if normalized != path.rstrip("/") or normalized.count("/") < 2:
        raise PurgeError(
            f"Unable to purge bot {name!r}: {field} entry {path!r} must be a normalised "
            "absolute path at least two folders deep"
        )
    return normalized


def _expand(paths: list[str]) -> list[str]:
    """Return the existing paths, with glob patterns expanded, in a stable order."""
    found: list[str] = []
    for path in paths:
        pattern = path if "*" in path else glob.escape(path)
        for match in sorted(glob.glob(pattern)):
            if match not in found:
                found.append(match)
    return found


def _archive(target: str, paths: list[str], exclude: list[str]) -> None:
    """Write the existing paths into a new tar.gz readable only by its owner."""
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)

    def skip(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if is_under("/" + info.name, exclude) else info

    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ARCHIVE_MODE)
    try:
        with (
            os.fdopen(descriptor, "wb") as handle,
            tarfile.open(fileobj=handle, mode="w:gz") as tar,
        ):
            for path in paths:
                tar.add(path, arcname=path.lstrip("/"), filter=skip)
    except BaseException:
        os.unlink(target)
        raise


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _archive_path(backup_root: str, name: str, now: Callable[[], datetime]) -> str:
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    base = posixpath.join(backup_root, f"purged-{name}-{stamp}")
    target = f"{base}.tar.gz"
    count = 1
    while os.path.lexists(target):
        target = f"{base}-{count}.tar.gz"
        count += 1
    return target


def purge_bots(
    bots: list[Mapping[str, Any]],
    backup_root: str,
    check_mode: bool,
    now: Callable[[], datetime] = utc_now,
) -> list[dict[str, Any]]:
    """Save then remove the files of each bot; return what was (or would be) done per bot."""
    checked = []
    for bot in bots:
        name = bot["name"]
        remove = [_check_path(name, "remove", path) for path in bot.get("remove") or []]
        save = [_check_path(name, "save", path) for path in bot.get("save") or []]
        exclude = [_check_path(name, "exclude", path) for path in bot.get("exclude") or []]
        checked.append((name, remove, save, exclude))

    results = []
    for name, remove, save, exclude in checked:
        existing = _expand(remove)
        # Nothing is saved for a bot with nothing left to remove, so a rerun writes no archive.
        saved = _expand(save) if existing else []
        archive = None
        if saved:
            archive = _archive_path(backup_root, name, now)
            if not check_mode:
                try:
                    _archive(archive, saved, exclude)
                except OSError as error:
                    raise PurgeError(
                        f"Unable to purge bot {name!r}: saving {', '.join(saved)} into "
                        f"{archive} failed ({error}), so nothing of this bot was removed"
                    ) from None
        if not check_mode:
            for path in existing:
                try:
                    _remove(path)
                except OSError as error:
                    message = f"Unable to purge bot {name!r}: removing {path} failed ({error})"
                    if archive:
                        message += f". Its data is saved in {archive}"
                    raise PurgeError(message) from None
        results.append({"name": name, "removed": existing, "saved": saved, "archive": archive})
    return results
