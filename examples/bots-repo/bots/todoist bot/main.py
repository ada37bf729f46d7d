"""Todoist bot: an example Python bot in a folder whose name has a space, standard library only."""

import sys
from pathlib import Path

BOT_FOLDER = Path(__file__).resolve().parent
# The shared helper lives in lib/common at the repository root (listed in shared_paths).
sys.path.insert(0, str(BOT_FOLDER.parents[1] / "lib" / "common"))

from bot_runtime import run_bot  # noqa: E402

if __name__ == "__main__":
    run_bot("todoist-bot", BOT_FOLDER)
