# Copyright: botfleet.pm2 developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run PM2 as the bots user and read its process table, dump and ecosystem file.

Nothing here returns or logs an app's environment: summaries carry names, statuses,
numbers and the BOTFLEET_REVISION/BOTFLEET_FINGERPRINT values only.
"""

from __future__ import annotations

import json
import os
import posixpath
import pwd
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PM2_PATH = "/usr/local/bin/pm2"

# Options of every module that runs pm2 as the PM2 user; documented in the
# botfleet.pm2.pm2 doc fragment.
PM2_USER_ARGUMENT_SPEC = {
    "user": {"type": "str", "default": "bots"},
    "pm2_home": {"type": "path"},
    "pm2_path": {"type": "path"},
    "systemd_unit": {"type": "str"},
}
DEFAULT_NODE_PATH = "/usr/bin/node"
SYSTEM_PATH = "/usr/bin:/bin"
MASK = "********"

# Env keys that botfleet sets and that are not secret. Every other env value of an
# app counts as a secret when messages and logs are masked.
PUBLIC_ENV_KEYS = frozenset(
    {
        "BOTFLEET_BOT",
        "BOTFLEET_REVISION",
        "BOTFLEET_FINGERPRINT",
        "PYTHONUNBUFFERED",
        "PYTHONPYCACHEPREFIX",
    }
)
# Keys that every app inherits from the pm2 command line or that PM2 adds itself.
# Their values are host paths and ids, not secrets.
INHERITED_ENV_KEYS = frozenset(
    {
        "HOME",
        "PM2_HOME",
        "PATH",
        "PWD",
        "PM2_USAGE",
        "PM2_JSON_PROCESSING",
        "NODE_APP_INSTANCE",
        "unique_id",
    }
)
# Values shorter than this are not masked: replacing "1" or "true" everywhere would
# make every message unreadable, and no real token is that short.
MIN_MASKED_LENGTH = 6

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
DAEMON_TITLE = re.compile(r"PM2 v(\S+): God Daemon")
DAEMON_LOG_VERSION = re.compile(r"PM2 version\s*:\s*(\S+)")
MEMORY_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*$", re.IGNORECASE)
MEMORY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

Runner = Callable[[list[str], str], tuple[int, str, str]]


class Pm2Error(Exception):
    """A PM2 operation that failed; rc, stdout and stderr come from the command."""

    def __init__(self, message: str, rc: int | None = None, stdout: str = "", stderr: str = ""):
        super().__init__(message)
        self.message = message
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def details(self) -> dict[str, Any]:
        """Return the keys that fail_json takes besides msg."""
        result: dict[str, Any] = {}
        if self.rc is not None:
            result.update(rc=self.rc, stdout=self.stdout, stderr=self.stderr)
        return result


@dataclass(frozen=True)
class Pm2Context:
    """The user, PM2 home and binaries that PM2 commands run with."""

    user: str
    uid: int
    home: str
    pm2_home: str
    pm2_path: str
    node_path: str

    @property
    def env(self) -> dict[str, str]:
        """Return the whole environment of a pm2 command, because nothing else is inherited."""
        dirs = [os.path.dirname(self.node_path), os.path.dirname(self.pm2_path)]
        dirs += SYSTEM_PATH.split(":")
        path = ":".join(dict.fromkeys(directory for directory in dirs if directory))
        return {"HOME": self.home, "PM2_HOME": self.pm2_home, "PATH": path}


def make_context(
    user: str,
    pm2_home: str | None = None,
    pm2_path: str | None = None,
    node_path: str | None = None,
) -> Pm2Context:
    """Resolve the PM2 user, PM2 home and binaries; raise Pm2Error for what is missing."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise Pm2Error(
            f"Unable to run PM2 as user {user}: the user does not exist. "
            "Create it first (the provision role does) or set the user option."
        ) from None
    pm2 = pm2_path or shutil.which("pm2") or DEFAULT_PM2_PATH
    if not os.path.isfile(pm2) or not os.access(pm2, os.X_OK):
        raise Pm2Error(
            f"Unable to run PM2 as user {user}: no executable pm2 at {pm2}. "
            "Install it with npm install -g pm2 or set pm2_path."
        )
    node = node_path or shutil.which("node") or DEFAULT_NODE_PATH
    return Pm2Context(
        user=user,
        uid=entry.pw_uid,
        home=entry.pw_dir,
        pm2_home=pm2_home or os.path.join(entry.pw_dir, ".pm2"),
        pm2_path=pm2,
        node_path=node,
    )


def build_command(context: Pm2Context, args: Iterable[str], euid: int | None = None) -> list[str]:
    """Build the argv that runs `pm2 <args>` as the PM2 user with a minimal environment."""
    current = os.geteuid() if euid is None else euid
    env_args = ["env", "-i", *(f"{key}={value}" for key, value in context.env.items())]
    command = [*env_args, context.pm2_path, *args]
    if current == context.uid:
        return command
    if current == 0:
        return ["runuser", "-u", context.user, "--", *command]
    raise Pm2Error(
        f"Unable to run PM2 as user {context.user}: the module runs as uid {current}, "
        "which can switch to another user only as root. Set become: true on the task."
    )


def run_pm2(
    runner: Runner, context: Pm2Context, args: list[str], action: str, secrets: Iterable[str] = ()
) -> str:
    """Run one PM2 command and return its stdout; raise Pm2Error when it fails."""
    argv = build_command(context, args)
    rc, stdout, stderr = runner(argv, context.home)
    if rc == 0:
        return stdout
    stdout = mask_secrets(stdout, secrets)
    stderr = mask_secrets(stderr, secrets)
    if rc == 127:
        cause = f"a command was not found (rc 127) running {context.pm2_path} as {context.user}"
        advice = "Check that node and pm2 are installed and that pm2_path is right."
    else:
        cause = last_line(stderr) or last_line(stdout) or f"pm2 {args[0]} returned rc {rc}"
        advice = f"Check the PM2 log {os.path.join(context.pm2_home, 'pm2.log')}."
    raise Pm2Error(f"Unable to {action}: {cause}. {advice}", rc, stdout, stderr)


def last_line(text: str) -> str:
    """Return the last non-empty line of text without ANSI colour codes."""
    lines = [line.strip() for line in strip_ansi(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in text by a fixed mask, longest value first."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_MASKED_LENGTH:
            text = text.replace(secret, MASK)
    return text


def secret_values(envs: Iterable[dict[str, Any]]) -> set[str]:
    """Collect the env values that count as secrets from app environments."""
    values: set[str] = set()
    for env in envs:
        for key, value in env.items():
            text = str(value)
            if key in PUBLIC_ENV_KEYS or key in INHERITED_ENV_KEYS:
                continue
            if len(text) >= MIN_MASKED_LENGTH:
                values.add(text)
    return values


# Process table -----------------------------------------------------------------


@dataclass
class Pm2Process:
    """One entry of `pm2 jlist`, keeping the environment private."""

    name: str
    pm_id: int | None
    pid: int
    status: str
    restart_time: int
    unstable_restarts: int
    pm_uptime: int | None
    memory: int
    cpu: float
    cwd: str
    interpreter: str
    script: str
    err_log_path: str
    pm2_env: dict[str, Any] = field(repr=False)

    @property
    def env(self) -> dict[str, Any]:
        env = self.pm2_env.get("env")
        return env if isinstance(env, dict) else {}

    @property
    def fingerprint(self) -> str | None:
        return self.env.get("BOTFLEET_FINGERPRINT") or self.pm2_env.get("BOTFLEET_FINGERPRINT")

    @property
    def revision(self) -> str | None:
        return self.env.get("BOTFLEET_REVISION") or self.pm2_env.get("BOTFLEET_REVISION")

    def summary(self) -> dict[str, Any]:
        """Return the facts a module may report: no environment values."""
        return {
            "name": self.name,
            "pm_id": self.pm_id,
            "status": self.status,
            "pid": self.pid,
            "uptime": self.pm_uptime,
            "restarts": self.restart_time,
            "unstable_restarts": self.unstable_restarts,
            "memory": self.memory,
            "cpu": self.cpu,
            "cwd": self.cwd,
            "interpreter": self.interpreter,
            "script": self.script,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
        }


def _as_int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def process_from_entry(entry: dict[str, Any]) -> Pm2Process:
    """Build a Pm2Process from one decoded jlist entry."""
    pm2_env = entry.get("pm2_env") if isinstance(entry.get("pm2_env"), dict) else {}
    monit = entry.get("monit") if isinstance(entry.get("monit"), dict) else {}
    uptime = pm2_env.get("pm_uptime")
    return Pm2Process(
        name=str(entry.get("name", pm2_env.get("name", ""))),
        pm_id=entry.get("pm_id", pm2_env.get("pm_id")),
        pid=_as_int(entry.get("pid")),
        status=str(pm2_env.get("status", "unknown")),
        restart_time=_as_int(pm2_env.get("restart_time")),
        unstable_restarts=_as_int(pm2_env.get("unstable_restarts")),
        pm_uptime=_as_int(uptime) if uptime is not None else None,
        memory=_as_int(monit.get("memory")),
        cpu=_as_float(monit.get("cpu")),
        cwd=str(pm2_env.get("pm_cwd") or pm2_env.get("cwd") or ""),
        interpreter=str(pm2_env.get("exec_interpreter") or ""),
        script=str(pm2_env.get("pm_exec_path") or ""),
        err_log_path=str(pm2_env.get("pm_err_log_path") or ""),
        pm2_env=pm2_env,
    )


def _is_process_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and "name" in item and "pm2_env" in item for item in value
    )


def parse_jlist(stdout: str) -> list[Pm2Process]:
    """Decode `pm2 jlist` output that may carry banners, spawn notices or ANSI codes.

    PM2 prints its version-mismatch banner and daemon spawn notices on stdout before
    the JSON, so the first '[' that decodes to a list of processes is the table.
    """
    text = strip_ansi(stdout)
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\[", text):
        try:
            value, _end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if _is_process_list(value):
            return [process_from_entry(entry) for entry in value]
    raise Pm2Error(
        "Unable to parse the output of pm2 jlist: it contains no JSON list of processes",
        0,
        "",
        "",
    )


def group_by_name(processes: Iterable[Pm2Process]) -> dict[str, list[Pm2Process]]:
    """Group processes by app name; a cluster app has one process per instance."""
    groups: dict[str, list[Pm2Process]] = {}
    for process in processes:
        groups.setdefault(process.name, []).append(process)
    return groups


def read_jlist(
    runner: Runner, context: Pm2Context, secrets: Iterable[str] = ()
) -> list[Pm2Process]:
    """Run `pm2 jlist`; this spawns a daemon when none runs, so check the daemon first."""
    action = f"list the PM2 apps of user {context.user}"
    stdout = run_pm2(runner, context, ["jlist"], action, secrets)
    try:
        return parse_jlist(stdout)
    except Pm2Error as error:
        error.stdout = mask_secrets(stdout, secrets)
        raise


# Ecosystem file ------------------------------------------------------------------


@dataclass
class DeclaredApp:
    """One app of the generated ecosystem file."""

    name: str
    definition: dict[str, Any] = field(repr=False)

    @property
    def env(self) -> dict[str, Any]:
        env = self.definition.get("env")
        return env if isinstance(env, dict) else {}

    @property
    def fingerprint(self) -> str | None:
        return self.env.get("BOTFLEET_FINGERPRINT")

    @property
    def revision(self) -> str | None:
        return self.env.get("BOTFLEET_REVISION")

    @property
    def min_uptime(self) -> int:
        return _as_int(self.definition.get("min_uptime"))


def parse_ecosystem(text: str, path: str) -> list[DeclaredApp]:
    """Parse the generated `module.exports = {"apps": [...]};` file without node."""
    body_lines = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    body = "\n".join(body_lines).strip()
    prefix = "module.exports"
    if not body.startswith(prefix):
        raise Pm2Error(
            f"Unable to parse ecosystem file {path}: it does not start with module.exports "
            "after its comment lines. Regenerate it with the botfleet.pm2 ecosystem role."
        )
    body = body[len(prefix) :].lstrip()
    if not body.startswith("="):
        raise Pm2Error(f"Unable to parse ecosystem file {path}: no '=' after module.exports.")
    body = body[1:].strip().removesuffix(";").strip()
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise Pm2Error(
            f"Unable to parse ecosystem file {path}: the exported value is not JSON "
            f"({error.msg} at line {error.lineno}). Regenerate it instead of editing it."
        ) from None
    apps = document.get("apps") if isinstance(document, dict) else None
    if not isinstance(apps, list):
        raise Pm2Error(f"Unable to parse ecosystem file {path}: it has no list under 'apps'.")
    declared: list[DeclaredApp] = []
    for index, app in enumerate(apps):
        if not isinstance(app, dict) or not isinstance(app.get("name"), str) or not app["name"]:
            raise Pm2Error(f"Unable to parse ecosystem file {path}: app {index} has no name.")
        declared.append(DeclaredApp(name=app["name"], definition=app))
    names = [app.name for app in declared]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise Pm2Error(
            f"Unable to parse ecosystem file {path}: app names {', '.join(duplicates)} "
            "appear more than once."
        )
    return declared


def load_ecosystem(path: str) -> list[DeclaredApp]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise Pm2Error(
            f"Unable to read ecosystem file {path}: {error.strerror}. "
            "Generate it first with the botfleet.pm2 ecosystem role."
        ) from None
    return parse_ecosystem(text, path)


# Definition drift -----------------------------------------------------------------


def memory_bytes(value: Any) -> int | None:
    """Convert a max_memory_restart value ("300M", 314572800) to bytes as PM2 does."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    match = MEMORY_SIZE.match(str(value))
    if not match:
        return None
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2).upper()])


EXEC_MODES = {"fork": "fork_mode", "cluster": "cluster_mode"}
PLAIN_OPTIONS = (
    "autorestart",
    "min_uptime",
    "max_restarts",
    "exp_backoff_restart_delay",
    "kill_timeout",
    "time",
)


def declared_script_path(definition: dict) -> str:
    """Return the absolute script path PM2 reports for a definition.

    A script given relative to cwd (the ecosystem file does that for paths with
    spaces) shows up in pm_exec_path joined to cwd.
    """
    script = str(definition["script"])
    if posixpath.isabs(script) or not definition.get("cwd"):
        return script
    return posixpath.normpath(posixpath.join(str(definition["cwd"]), script))


def definition_differences(app: DeclaredApp, processes: list[Pm2Process]) -> list[str]:
    """List the fields (never values) in which the running app differs from its definition."""
    first = processes[0]
    running = first.pm2_env
    expected = app.definition
    differences: list[str] = []
    if app.fingerprint and first.fingerprint != app.fingerprint:
        differences.append("fingerprint")
    if "script" in expected and first.script != declared_script_path(expected):
        differences.append("script")
    if "cwd" in expected and first.cwd != expected["cwd"]:
        differences.append("cwd")
    if "interpreter" in expected and first.interpreter != expected["interpreter"]:
        differences.append("interpreter")
    if "args" in expected and list(running.get("args") or []) != list(expected["args"] or []):
        differences.append("args")
    for key, value in app.env.items():
        if str(first.env.get(key)) != str(value):
            differences.append(f"env.{key}")
    for option in PLAIN_OPTIONS:
        if option in expected and running.get(option) != expected[option]:
            differences.append(option)
    if "max_memory_restart" in expected and memory_bytes(running.get("max_memory_restart")) != (
        memory_bytes(expected["max_memory_restart"])
    ):
        differences.append("max_memory_restart")
    if running.get("cron_restart") != expected.get("cron_restart"):
        differences.append("cron_restart")
    exec_mode = EXEC_MODES.get(str(expected.get("exec_mode", "fork")), expected.get("exec_mode"))
    if running.get("exec_mode") != exec_mode:
        differences.append("exec_mode")
    instances = expected.get("instances", 1)
    if isinstance(instances, int) and instances > 0 and len(processes) != instances:
        differences.append("instances")
    return differences


# Daemon, dump and systemd ---------------------------------------------------------


@dataclass
class DaemonState:
    """The PM2 daemon as seen from its pid file and /proc, without contacting it."""

    pid_file: str
    pid: int | None
    running: bool
    version: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid_file": self.pid_file,
            "pid": self.pid,
            "running": self.running,
            "version": self.version,
        }


def pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_daemon_state(pm2_home: str, proc_root: str = "/proc") -> DaemonState:
    """Read the daemon pid from <pm2_home>/pm2.pid and its version from its process title."""
    pid_file = os.path.join(pm2_home, "pm2.pid")
    try:
        with open(pid_file, encoding="ascii") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return DaemonState(pid_file, None, False, None)
    if not pid_is_alive(pid):
        return DaemonState(pid_file, pid, False, None)
    return DaemonState(pid_file, pid, True, daemon_version(pm2_home, pid, proc_root))


def daemon_version(pm2_home: str, pid: int, proc_root: str = "/proc") -> str | None:
    """Read the daemon's PM2 version without asking the daemon.

    PM2 7.0.4 sets the daemon title to "PM2 v<version>: God Daemon (<home>)" unless
    PM2_DAEMON_TITLE overrides it; jlist exposes `_pm2_version` only for cluster-mode
    apps. The last "PM2 version" line of pm2.log is the fallback.
    """
    try:
        with open(os.path.join(proc_root, str(pid), "cmdline"), "rb") as handle:
            title = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        title = ""
    match = DAEMON_TITLE.search(title)
    if match:
        return match.group(1)
    try:
        with open(os.path.join(pm2_home, "pm2.log"), encoding="utf-8", errors="replace") as handle:
            versions = DAEMON_LOG_VERSION.findall(handle.read())
    except OSError:
        return None
    return versions[-1] if versions else None


def cli_version(pm2_path: str) -> str | None:
    """Read the version of the pm2 package the CLI belongs to; `pm2 --version` spawns a daemon."""
    directory = os.path.dirname(os.path.realpath(pm2_path))
    for _level in range(4):
        manifest = os.path.join(directory, "package.json")
        try:
            with open(manifest, encoding="utf-8") as handle:
                package = json.load(handle)
        except (OSError, ValueError):
            package = None
        if isinstance(package, dict) and package.get("name") == "pm2":
            version = package.get("version")
            return str(version) if version else None
        directory = os.path.dirname(directory)
    return None


@dataclass
class DumpState:
    """Contents of <pm2_home>/dump.pm2, the list that `pm2 resurrect` restores at boot."""

    path: str
    exists: bool
    apps: list[str]

    def matches(self, declared: Iterable[str]) -> bool:
        return sorted(self.apps) == sorted(set(declared))


def read_dump(pm2_home: str) -> DumpState:
    path = os.path.join(pm2_home, "dump.pm2")
    try:
        with open(path, encoding="utf-8") as handle:
            entries = json.load(handle)
    except FileNotFoundError:
        return DumpState(path, False, [])
    except (OSError, ValueError) as error:
        raise Pm2Error(
            f"Unable to read PM2 dump {path}: {error}. Run pm2 save --force as the PM2 user "
            "to rewrite it."
        ) from None
    names = sorted({str(entry.get("name")) for entry in entries if isinstance(entry, dict)})
    return DumpState(path, True, names)


def systemd_available(run_root: str = "/run/systemd/system") -> bool:
    return os.path.isdir(run_root)


def systemd_unit_state(runner: Runner, unit: str) -> dict[str, Any]:
    """Return LoadState, ActiveState and MainPID of a unit; load_state is None without systemd."""
    state: dict[str, Any] = dict.fromkeys(("load_state", "active_state", "main_pid"))
    state["unit"] = unit
    systemctl = shutil.which("systemctl")
    if not systemctl or not systemd_available():
        return state
    rc, stdout, _stderr = runner(
        [systemctl, "show", "--property=LoadState,ActiveState,MainPID", unit], "/"
    )
    if rc != 0:
        return state
    values = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    state["load_state"] = values.get("LoadState")
    state["active_state"] = values.get("ActiveState")
    main_pid = _as_int(values.get("MainPID"), 0)
    state["main_pid"] = main_pid or None
    return state


def tail_file(path: str, lines: int, max_bytes: int = 65536) -> list[str]:
    """Return the last lines of a log file, reading at most max_bytes from its end."""
    if lines <= 0 or not path:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    text = strip_ansi(data.decode("utf-8", "replace"))
    return text.splitlines()[-lines:]
