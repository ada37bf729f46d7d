"""Run loop shared by the example Python bots: heartbeat, state file and the Discord client.

Every bot that imports this module lists ``lib/common`` in its ``shared_paths`` in the inventory,
so a change here redeploys and restarts those bots too.

Environment:
  DISCORD_TOKEN      bot token; unset or empty runs the bot offline (heartbeat only)
  BOTFLEET_BOT       bot name in the logs (set by botfleet.pm2; defaults to the folder's bot name)
  BOTFLEET_REVISION  git revision the bot runs (set by botfleet.pm2; defaults to "unknown")
  HEARTBEAT_SECONDS  seconds between heartbeats (default 10)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import signal
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_HEARTBEAT_SECONDS = 10.0


class BotError(Exception):
    """Failure that stops the bot with a message for the operator instead of a traceback."""


def run_bot(default_name: str, bot_folder: Path) -> None:
    """Run the bot until SIGINT or SIGTERM, offline or connected to Discord."""
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    name = os.environ.get("BOTFLEET_BOT") or default_name
    log = logging.getLogger(name)
    revision = os.environ.get("BOTFLEET_REVISION") or "unknown"
    token = os.environ.get("DISCORD_TOKEN", "").strip()
    mode = "online" if token else "offline"
    state_path = bot_folder / "data" / "state.json"

    try:
        interval = read_heartbeat_seconds()
        state = load_state(state_path, log)
        state["starts"] = int(state.get("starts", 0)) + 1
        state["revision"] = revision
        save_state(state_path, state)
        log.info(
            "%s starting: revision %s, %s mode%s, start number %d",
            name,
            revision,
            mode,
            "" if token else " (DISCORD_TOKEN is not set)",
            state["starts"],
        )
        asyncio.run(serve(log, token, revision, mode, interval, state_path, state))
    except (BotError, OSError) as error:
        log.error("%s stopped on an error: %s", name, error)
        sys.exit(1)
    log.info("%s stopped", name)


def read_heartbeat_seconds() -> float:
    raw = os.environ.get("HEARTBEAT_SECONDS", "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise BotError(f"Invalid HEARTBEAT_SECONDS {raw!r}: set a positive number of seconds")
    return seconds


def load_state(path: Path, log: logging.Logger) -> dict[str, Any]:
    """Read the state file, starting over when it is missing or unreadable."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("Unable to read state file %s, starting a new one: %s", path, error)
        return {}
    if not isinstance(state, dict) or not isinstance(state.get("starts", 0), int):
        log.warning("Unable to use state file %s, starting a new one: unexpected content", path)
        return {}
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state file atomically: a reader sees the old or the new file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=".state-", suffix=".tmp", delete=False
    ) as temporary:
        json.dump(state, temporary, indent=2)
        temporary.write("\n")
        temporary.flush()
        os.fsync(temporary.fileno())
    os.replace(temporary.name, path)


async def serve(
    log: logging.Logger,
    token: str,
    revision: str,
    mode: str,
    interval: float,
    state_path: Path,
    state: dict[str, Any],
) -> None:
    """Run the heartbeat (and the Discord client with a token) until a stop signal arrives."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop, log, stop, signum)

    workers = [asyncio.create_task(heartbeat(log, revision, mode, interval, state_path, state))]
    if token:
        workers.append(asyncio.create_task(run_discord(log, token, revision)))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *workers], return_when=asyncio.FIRST_COMPLETED)

    for task in (stopper, *workers):
        task.cancel()
    await asyncio.gather(stopper, *workers, return_exceptions=True)
    for task in done:
        if task is not stopper and not task.cancelled() and task.exception():
            raise task.exception()


def request_stop(log: logging.Logger, stop: asyncio.Event, signum: int) -> None:
    log.info("Received %s, stopping", signal.Signals(signum).name)
    stop.set()


async def heartbeat(
    log: logging.Logger,
    revision: str,
    mode: str,
    interval: float,
    state_path: Path,
    state: dict[str, Any],
) -> None:
    count = 0
    while True:
        count += 1
        # timezone.utc rather than datetime.UTC keeps Python 3.10 (Ubuntu 22.04) working.
        now = datetime.now(timezone.utc)  # noqa: UP017
        state["last_heartbeat"] = now.isoformat(timespec="seconds")
        try:
            save_state(state_path, state)
        except OSError as error:
            log.warning("Unable to write state file %s: %s", state_path, error)
        log.info("heartbeat %d: revision %s, %s mode", count, revision, mode)
        await asyncio.sleep(interval)


async def run_discord(log: logging.Logger, token: str, revision: str) -> None:
    """Log in to Discord and answer ``!ping`` with ``pong`` and the revision.

    NOTE: this online path follows the discord.py 2.x documentation but has not been run against
    Discord; the tests cover the offline mode only.
    """
    # Imported here so that offline mode runs with the standard library alone.
    try:
        import discord
    except ImportError as error:
        raise BotError(
            f"Unable to connect to Discord: {error}. Add discord.py to this bot's "
            "requirements.txt, or unset DISCORD_TOKEN to run offline"
        ) from None

    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)

    @client.event
    async def on_ready() -> None:
        log.info("Logged in to Discord as %s", client.user)

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        if message.content.strip() == "!ping":
            await message.channel.send(f"pong (revision {revision})")

    try:
        async with client:
            await client.start(token)
    except discord.LoginFailure as error:
        reason = str(error).rstrip(".")
        raise BotError(f"Unable to log in to Discord: {reason}. Check DISCORD_TOKEN") from None
    except discord.PrivilegedIntentsRequired:
        raise BotError(
            "Unable to connect to Discord: the Message Content intent is off. Turn it on for "
            "this bot in the Discord Developer Portal (Bot > Privileged Gateway Intents)"
        ) from None
