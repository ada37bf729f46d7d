"""Dependency installs of bots: a venv and pip for Python, npm for Node, guarded by stamps."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass
from typing import Any

STAMP_FILE = "dependencies.json"
NODE_MANIFESTS = ("package.json", "npm-shrinkwrap.json", "package-lock.json")
NODE_LOCKFILES = ("npm-shrinkwrap.json", "package-lock.json")
REQUIREMENT_INCLUDES = ("-r", "--requirement", "-c", "--constraint")
STDERR_TAIL_LINES = 15
COMMAND_ENV = {
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PIP_NO_INPUT": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "npm_config_progress": "false",
}

REASON_FIRST = "first install"
REASON_CHANGED = "manifest changed"
REASON_VENV = "venv recreated"
REASON_NODE_MODULES = "node_modules missing"
REASON_UP_TO_DATE = "up to date"
REASON_NO_MANIFEST = "no manifest"


class InstallError(Exception):
    """A failed step for one bot, with the output of the command that failed."""

    def __init__(self, message: str, rc: int | None = None, stdout: str = "", stderr: str = ""):
        super().__init__(message)
        self.message = message
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


@dataclass
class Bot:
    """One entry of the bots option."""

    name: str
    runtime: str
    dir: str
    state_dir: str
    venv: str | None = None


@dataclass
class Tools:
    """Paths and extra arguments shared by every bot of the call."""

    python_path: str
    npm_path: str | None
    node_path: str | None
    git_path: str | None
    pip_extra_args: list[str]
    npm_extra_args: list[str]


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def error_excerpt(text: str) -> str:
    """Return the lines of a failed install that state the cause.

    npm 10 and 11 prefix every line with "npm error" and follow the cause with the usage of the
    command, so only the lines before "Usage:" are kept, plus the path of npm's debug log.
    Other tools, such as pip, end with the cause, so their last lines are kept.
    """
    prefix = re.compile(r"^npm (?:error|ERR!) ?")
    npm_lines = [prefix.sub("", line).strip() for line in text.splitlines() if prefix.match(line)]
    if not npm_lines:
        return tail(text)
    cause = []
    for line in npm_lines:
        if line == "Usage:":
            break
        if line:
            cause.append(line)
    log = [line for line in npm_lines if "complete log of this run" in line]
    if log and log[0] not in cause:
        cause.append(log[0])
    return "\n".join(cause[-STDERR_TAIL_LINES:])


def requirement_files(path: str, seen: set[str] | None = None) -> list[str]:
    """Return requirements.txt and the files it includes with -r or -c, recursively."""
    seen = seen if seen is not None else set()
    real = os.path.realpath(path)
    if real in seen or not os.path.isfile(path):
        return []
    seen.add(real)
    files = [path]
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            option, _, value = words[0].partition("=")
            if option in REQUIREMENT_INCLUDES:
                value = value or (words[1] if len(words) > 1 else "")
            elif option.startswith(("-r", "-c")) and len(option) > 2:
                value = option[2:]
            else:
                continue
            if value and "://" not in value:
                included = os.path.join(os.path.dirname(path), value)
                files += requirement_files(included, seen)
    return files


def manifest_files(bot: Bot) -> list[str]:
    if bot.runtime == "python":
        return requirement_files(os.path.join(bot.dir, "requirements.txt"))
    if not os.path.isfile(os.path.join(bot.dir, "package.json")):
        return []
    candidates = [os.path.join(bot.dir, name) for name in NODE_MANIFESTS]
    return [path for path in candidates if os.path.isfile(path)]


def manifest_hash(bot: Bot, files: list[str]) -> str | None:
    """Hash a sha256sum-style listing of the manifests, or None when there is none."""
    if not files:
        return None
    listing = []
    for path in files:
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        listing.append(f"{digest}  {os.path.relpath(path, bot.dir)}\n")
    return hashlib.sha256("".join(listing).encode()).hexdigest()


def read_stamp(bot: Bot) -> str | None:
    try:
        with open(os.path.join(bot.state_dir, STAMP_FILE), encoding="utf-8") as handle:
            data = json.load(handle)
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("runtime") != bot.runtime:
        return None
    return data.get("manifest_hash")


def remove_stamp(bot: Bot) -> None:
    """Forget the last install, because a failed one may have left half of the packages."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(bot.state_dir, STAMP_FILE))


def write_stamp(bot: Bot, digest: str) -> None:
    os.makedirs(bot.state_dir, exist_ok=True)
    path = os.path.join(bot.state_dir, STAMP_FILE)
    content = {
        "runtime": bot.runtime,
        "manifest_hash": digest,
        "installed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


class Installer:
    """Runs the per-bot steps through AnsibleModule.run_command."""

    def __init__(self, module: Any, tools: Tools, check_mode: bool):
        self.module = module
        self.tools = tools
        self.check_mode = check_mode
        self.warnings: list[str] = []
        self.env = dict(COMMAND_ENV)
        if tools.node_path:
            node_dir = os.path.dirname(tools.node_path)
            self.env["PATH"] = f"{node_dir}{os.pathsep}{os.environ.get('PATH', '')}"

    def run(self, bot: Bot, command: list[str], action: str, hint: str) -> None:
        rc, stdout, stderr = self.module.run_command(command, cwd=bot.dir, environ_update=self.env)
        if rc != 0:
            cause = error_excerpt(stderr) or tail(stdout) or f"exit code {rc}"
            raise InstallError(
                f"Unable to {action} of bot {bot.name}: {shlex.join(command)} failed with "
                f"rc {rc}: {cause}\n{hint}",
                rc,
                stdout,
                stderr,
            )

    def venv_state(self, bot: Bot) -> str:
        """Return 'ok', 'missing' or 'broken' for the venv of a Python bot."""
        assert bot.venv is not None
        python = os.path.join(bot.venv, "bin", "python")
        if not os.path.exists(python):
            has_content = os.path.isdir(bot.venv) and bool(os.listdir(bot.venv))
            return "broken" if has_content else "missing"
        rc, _, _ = self.module.run_command([python, "-c", "import sys"], cwd=bot.dir)
        return "ok" if rc == 0 else "broken"

    def create_venv(self, bot: Bot, state: str) -> None:
        assert bot.venv is not None
        command = [self.tools.python_path, "-m", "venv"]
        if state == "broken":
            if not os.path.isfile(os.path.join(bot.venv, "pyvenv.cfg")):
                raise InstallError(
                    f"Unable to create the venv of bot {bot.name}: {bot.venv} is not empty and "
                    "is not a virtual environment (no pyvenv.cfg); move it away or set another "
                    "venv for this bot"
                )
            command.append("--clear")
        command.append(bot.venv)
        self.run(
            bot,
            command,
            "create the venv",
            f"Check that {self.tools.python_path} works and has the venv module "
            "(Debian package python3-venv).",
        )

    def pip_command(self, bot: Bot) -> list[str]:
        assert bot.venv is not None
        python = os.path.join(bot.venv, "bin", "python")
        return [
            python,
            "-m",
            "pip",
            "install",
            "--progress-bar",
            "off",
            "--requirement",
            "requirements.txt",
            *self.tools.pip_extra_args,
        ]

    def npm_command(self, bot: Bot) -> list[str]:
        npm = self.tools.npm_path or "npm"
        if any(os.path.isfile(os.path.join(bot.dir, name)) for name in NODE_LOCKFILES):
            return [npm, "ci", "--omit=dev", *self.tools.npm_extra_args]
        return [npm, "install", "--omit=dev", "--no-package-lock", *self.tools.npm_extra_args]

    def worktree_status(self, bot: Bot) -> set[str] | None:
        """Return the git status lines of the bot folder, or None outside a git checkout."""
        if not self.tools.git_path:
            return None
        command = [
            self.tools.git_path,
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
            ".",
            ":(exclude)node_modules",
        ]
        rc, stdout, _ = self.module.run_command(command, cwd=bot.dir)
        if rc != 0:
            return None
        return {entry for entry in stdout.split("\0") if entry}

    def check_worktree(self, bot: Bot, before: set[str] | None, tool: str) -> None:
        """Fail when the install changed tracked files; warn about new untracked files."""
        if before is None:
            return
        after = self.worktree_status(bot) or set()
        new = sorted(after - before)
        tracked = [entry[3:] for entry in new if not entry.startswith("??")]
        untracked = [entry[3:] for entry in new if entry.startswith("??")]
        if tracked:
            raise InstallError(
                f"Unable to install the dependencies of bot {bot.name}: {tool} changed tracked "
                f"files in {bot.dir}: {', '.join(tracked)}. The next deploy would discard these "
                f"changes; check the extra arguments and the manifests of {bot.name}"
            )
        if untracked:
            self.warnings.append(
                f"Installing the dependencies of bot {bot.name} left new untracked files in "
                f"{bot.dir}: {', '.join(untracked)}. The next deploy backs them up and deletes "
                "them; add them to .gitignore or make the install write elsewhere"
            )

    def process(self, bot: Bot) -> dict[str, Any]:
        if not os.path.isdir(bot.dir):
            raise InstallError(
                f"Unable to install the dependencies of bot {bot.name}: its folder {bot.dir} "
                "does not exist; check the bot's path in botfleet_bots and that the "
                "repository contains it"
            )
        if bot.runtime == "python":
            return self.process_python(bot)
        return self.process_node(bot)

    def process_python(self, bot: Bot) -> dict[str, Any]:
        files = manifest_files(bot)
        digest = manifest_hash(bot, files)
        stamp = read_stamp(bot)
        state = self.venv_state(bot)

        if state == "missing":
            reason = REASON_VENV if stamp else REASON_FIRST
        elif state == "broken":
            reason = REASON_VENV
        elif stamp is None:
            reason = REASON_FIRST
        elif stamp != digest:
            reason = REASON_CHANGED
        else:
            reason = REASON_UP_TO_DATE
        if digest is None:
            reason = REASON_NO_MANIFEST
        install = reason not in (REASON_UP_TO_DATE, REASON_NO_MANIFEST)
        command = self.pip_command(bot) if install else None
        result = _bot_result(bot, install, reason, digest, command)
        result["venv_created"] = state != "ok"
        if self.check_mode:
            return result

        if state != "ok":
            remove_stamp(bot)
            self.create_venv(bot, state)
        if install and command and digest:
            before = self.worktree_status(bot)
            remove_stamp(bot)
            self.run(
                bot,
                command,
                "install the Python dependencies",
                f"Fix requirements.txt of {bot.name} or the package index settings, then deploy "
                "again.",
            )
            self.check_worktree(bot, before, "pip")
            write_stamp(bot, digest)
        return result

    def process_node(self, bot: Bot) -> dict[str, Any]:
        files = manifest_files(bot)
        digest = manifest_hash(bot, files)
        stamp = read_stamp(bot)

        if digest is None:
            reason = REASON_NO_MANIFEST
        elif stamp is None:
            reason = REASON_FIRST
        elif stamp != digest:
            reason = REASON_CHANGED
        elif needs_node_modules(bot) and not os.path.isdir(os.path.join(bot.dir, "node_modules")):
            reason = REASON_NODE_MODULES
        else:
            reason = REASON_UP_TO_DATE
        install = reason not in (REASON_UP_TO_DATE, REASON_NO_MANIFEST)
        command = self.npm_command(bot) if install else None
        result = _bot_result(bot, install, reason, digest, command)
        if command and command[1] == "install":
            self.warnings.append(
                f"Bot {bot.name} has no package-lock.json or npm-shrinkwrap.json, so npm install "
                "resolves its dependencies anew on every host and versions may differ; commit a "
                "lockfile"
            )
        if self.check_mode or not command or digest is None:
            return result

        before = self.worktree_status(bot)
        remove_stamp(bot)
        self.run(
            bot,
            command,
            "install the Node dependencies",
            f"Fix package.json or the lockfile of {bot.name}, then deploy again.",
        )
        self.check_worktree(bot, before, "npm")
        write_stamp(bot, digest)
        return result


def needs_node_modules(bot: Bot) -> bool:
    """Return False when package.json declares no runtime dependencies, so npm creates nothing."""
    try:
        with open(os.path.join(bot.dir, "package.json"), encoding="utf-8") as handle:
            package = json.load(handle)
    except ValueError:
        return True
    if not isinstance(package, dict):
        return True
    return bool(package.get("dependencies") or package.get("optionalDependencies"))


def _bot_result(
    bot: Bot, install: bool, reason: str, digest: str | None, command: list[str] | None
) -> dict[str, Any]:
    return {
        "name": bot.name,
        "runtime": bot.runtime,
        "installed": install,
        "reason": reason,
        "manifest_hash": digest,
        "command": shlex.join(command) if command else None,
    }


def diff_text(results: list[dict[str, Any]], stamps: dict[str, str | None]) -> dict[str, str]:
    before = [
        f"{item['name']}: {stamps.get(item['name']) or '(not installed)'}" for item in results
    ]
    after = [f"{item['name']}: {item['manifest_hash'] or '(no manifest)'}" for item in results]
    return {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"}
