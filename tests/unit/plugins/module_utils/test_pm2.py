from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ansible_collections.botfleet.pm2.plugins.module_utils import _pm2
from ansible_collections.botfleet.pm2.plugins.module_utils._pm2 import (
    DeclaredApp,
    Pm2Context,
    Pm2Error,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "pm2"
SECRET = "fake-secret-do-not-leak-123"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def declared_apps() -> dict[str, DeclaredApp]:
    apps = _pm2.load_ecosystem(str(FIXTURES / "ecosystem.config.js"))
    return {app.name: app for app in apps}


def running_groups(name: str = "jlist_mixed_second.json") -> dict[str, list[_pm2.Pm2Process]]:
    return _pm2.group_by_name(_pm2.parse_jlist(fixture_text(name)))


def make_context(uid: int = 1001) -> Pm2Context:
    return Pm2Context(
        user="bots",
        uid=uid,
        home="/home/bots",
        pm2_home="/home/bots/.pm2",
        pm2_path="/usr/local/bin/pm2",
        node_path="/usr/bin/node",
    )


# pm2 jlist ------------------------------------------------------------------------

JLIST_CASES = [
    ("jlist_mixed_first.json", 7),
    ("jlist_empty.txt", 0),
    ("jlist_spawn_notice.txt", 0),
    ("jlist_version_banner.txt", 1),
]


@pytest.mark.parametrize(("fixture", "count"), JLIST_CASES)
def test_parse_jlist_recorded_outputs(fixture: str, count: int) -> None:
    assert len(_pm2.parse_jlist(fixture_text(fixture))) == count


def test_parse_jlist_banner_app_name() -> None:
    processes = _pm2.parse_jlist(fixture_text("jlist_version_banner.txt"))
    assert processes[0].name == "oldhealthy"


def test_banner_fixture_has_banner() -> None:
    assert "In-memory PM2 is out-of-date" in fixture_text("jlist_version_banner.txt")


def test_spawn_fixture_has_notice() -> None:
    assert "Spawning PM2 daemon" in fixture_text("jlist_spawn_notice.txt")


STATUS_CASES = [
    ("healthy", "online", 0),
    ("pybot", "online", 0),
    ("stopped", "stopped", 0),
    ("errored", "errored", 2),
    ("waiting", "waiting restart", 0),
    ("crashloop", "waiting restart", 26),
    ("crash5s", "online", 1),
]


@pytest.mark.parametrize(("name", "status", "restarts"), STATUS_CASES)
def test_parse_jlist_status(name: str, status: str, restarts: int) -> None:
    process = running_groups()[name][0]
    assert process.status == status


@pytest.mark.parametrize(("name", "status", "restarts"), STATUS_CASES)
def test_parse_jlist_restart_time(name: str, status: str, restarts: int) -> None:
    process = running_groups()[name][0]
    assert process.restart_time == restarts


BAD_OUTPUTS = [
    ("empty output", ""),
    ("banner only", "\x1b[31m>>>> In-memory PM2 is out-of-date, do:\x1b[39m\n"),
    ("truncated json", '[{"name":"a","pm2_env":{'),
    ("list of strings", '["a", "b"]'),
    ("permission error", "Error: EACCES: permission denied, open '/home/bots/.pm2/pm2.log'\n"),
]


@pytest.mark.parametrize(("case", "stdout"), BAD_OUTPUTS, ids=[case[0] for case in BAD_OUTPUTS])
def test_parse_jlist_rejects(case: str, stdout: str) -> None:
    with pytest.raises(Pm2Error, match="Unable to parse the output of pm2 jlist"):
        _pm2.parse_jlist(stdout)


def test_summary_excludes_env_values() -> None:
    summaries = [p.summary() for p in _pm2.parse_jlist(fixture_text("jlist_mixed_first.json"))]
    assert SECRET not in json.dumps(summaries)


def test_summary_reports_fingerprint() -> None:
    assert running_groups()["healthy"][0].summary()["fingerprint"] == "aaaaaaaaaaaaaaaa1111"


def test_summary_reports_revision() -> None:
    summary = running_groups()["healthy"][0].summary()
    assert summary["revision"] == "0123456789abcdef0123456789abcdef01234567"


def test_summary_reports_interpreter() -> None:
    assert running_groups()["pybot"][0].summary()["interpreter"] == "/usr/bin/python3"


# Running PM2 ------------------------------------------------------------------------


def test_build_command_as_root_uses_runuser() -> None:
    assert _pm2.build_command(make_context(), ["jlist"], euid=0) == [
        "runuser",
        "-u",
        "bots",
        "--",
        "env",
        "-i",
        "HOME=/home/bots",
        "PM2_HOME=/home/bots/.pm2",
        "PATH=/usr/bin:/usr/local/bin:/bin",
        "/usr/local/bin/pm2",
        "jlist",
    ]


def test_build_command_as_user_runs_directly() -> None:
    command = _pm2.build_command(make_context(), ["jlist"], euid=1001)
    assert command[:2] == ["env", "-i"]


def test_build_command_other_user_rejected() -> None:
    with pytest.raises(Pm2Error, match="Set become: true"):
        _pm2.build_command(make_context(), ["jlist"], euid=1002)


def test_run_pm2_missing_binary_fails() -> None:
    def runner(argv: list[str], cwd: str) -> tuple[int, str, str]:
        return 127, "", "env: '/usr/local/bin/pm2': No such file or directory\n"

    with pytest.raises(Pm2Error, match=r"rc 127"):
        _pm2.run_pm2(runner, make_context(os.geteuid()), ["jlist"], "list the PM2 apps")


def test_run_pm2_error_masks_secret() -> None:
    def runner(argv: list[str], cwd: str) -> tuple[int, str, str]:
        return 1, "", f"[PM2][ERROR] token {SECRET} rejected\n"

    with pytest.raises(Pm2Error) as raised:
        _pm2.run_pm2(runner, make_context(os.geteuid()), ["start"], "start apps", {SECRET})
    assert SECRET not in raised.value.message + raised.value.stderr


def test_read_jlist_empty_stdout_fails() -> None:
    def runner(argv: list[str], cwd: str) -> tuple[int, str, str]:
        return 0, "", ""

    with pytest.raises(Pm2Error, match="no JSON list"):
        _pm2.read_jlist(runner, make_context(os.geteuid()))


# Secrets ----------------------------------------------------------------------------


def test_secret_values_include_token() -> None:
    envs = [app.env for app in declared_apps().values()]
    assert SECRET in _pm2.secret_values(envs)


def test_secret_values_skip_fingerprint() -> None:
    envs = [app.env for app in declared_apps().values()]
    assert "aaaaaaaaaaaaaaaa1111" not in _pm2.secret_values(envs)


def test_secret_values_skip_inherited_path() -> None:
    envs = [p.env for group in running_groups().values() for p in group]
    assert "/home/bots/.pm2" not in _pm2.secret_values(envs)


def test_mask_secrets_replaces_value() -> None:
    assert _pm2.mask_secrets(f"token={SECRET}!", {SECRET}) == "token=********!"


def test_mask_secrets_keeps_short_values() -> None:
    assert _pm2.mask_secrets("restarts 1", {"1"}) == "restarts 1"


# Ecosystem file ---------------------------------------------------------------------


def test_parse_ecosystem_app_names() -> None:
    assert list(declared_apps()) == [
        "healthy",
        "pybot",
        "stopped",
        "errored",
        "waiting",
        "crashloop",
        "crash5s",
    ]


def test_parse_ecosystem_fingerprint() -> None:
    assert declared_apps()["pybot"].fingerprint == "bbbbbbbbbbbbbbbb2222"


def test_parse_ecosystem_min_uptime() -> None:
    assert declared_apps()["crashloop"].min_uptime == 100


BAD_ECOSYSTEMS = [
    ("no export", '{"apps": []}', "does not start with module.exports"),
    ("no equals", 'module.exports {"apps": []};', "no '=' after module.exports"),
    ("javascript object", "module.exports = {apps: []};", "the exported value is not JSON"),
    ("apps missing", 'module.exports = {"bots": []};', "no list under 'apps'"),
    ("nameless app", 'module.exports = {"apps": [{"script": "/a.js"}]};', "app 0 has no name"),
    (
        "duplicate names",
        'module.exports = {"apps": [{"name": "a"}, {"name": "a"}]};',
        "app names a appear more than once",
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "message"), BAD_ECOSYSTEMS, ids=[case[0] for case in BAD_ECOSYSTEMS]
)
def test_parse_ecosystem_rejects(case: str, text: str, message: str) -> None:
    with pytest.raises(Pm2Error, match=message):
        _pm2.parse_ecosystem(text, "/srv/botfleet/ecosystem.config.js")


def test_parse_ecosystem_empty_apps() -> None:
    assert _pm2.parse_ecosystem('// header\nmodule.exports = {"apps": []};\n', "x") == []


def test_load_ecosystem_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Pm2Error, match="Unable to read ecosystem file"):
        _pm2.load_ecosystem(str(tmp_path / "absent.config.js"))


# Definition drift -------------------------------------------------------------------

MEMORY_CASES = [("300M", 314572800), ("1G", 1073741824), ("512K", 524288), (1000, 1000)]


@pytest.mark.parametrize(("value", "expected"), MEMORY_CASES)
def test_memory_bytes(value: object, expected: int) -> None:
    assert _pm2.memory_bytes(value) == expected


def test_definition_matches_recording() -> None:
    groups = running_groups()
    drift = {
        name: _pm2.definition_differences(app, groups[name])
        for name, app in declared_apps().items()
    }
    assert drift == {name: [] for name in drift}


DRIFT_CASES = [
    ("fingerprint", {"env": {"BOTFLEET_FINGERPRINT": "9999"}}, "fingerprint"),
    ("script", {"script": "/srv/botfleet/checkout/demo/other.js"}, "script"),
    ("interpreter", {"interpreter": "/usr/local/bin/node"}, "interpreter"),
    ("args", {"args": ["--guild", "43"]}, "args"),
    ("secret env", {"env": {"DISCORD_TOKEN": "rotated-token-value"}}, "env.DISCORD_TOKEN"),
    ("memory limit", {"max_memory_restart": "400M"}, "max_memory_restart"),
    ("min uptime", {"min_uptime": 9000}, "min_uptime"),
    ("cron", {"cron_restart": "0 4 * * *"}, "cron_restart"),
    ("cluster mode", {"exec_mode": "cluster"}, "exec_mode"),
    ("instances", {"instances": 2}, "instances"),
]


@pytest.mark.parametrize(
    ("case", "change", "field"), DRIFT_CASES, ids=[case[0] for case in DRIFT_CASES]
)
def test_definition_drift_detected(case: str, change: dict, field: str) -> None:
    app = declared_apps()["healthy"]
    definition = dict(app.definition)
    for key, value in change.items():
        definition[key] = {**definition[key], **value} if key == "env" else value
    changed = DeclaredApp(name="healthy", definition=definition)
    assert field in _pm2.definition_differences(changed, running_groups()["healthy"])


def test_definition_drift_hides_values() -> None:
    app = declared_apps()["healthy"]
    definition = {**app.definition, "env": {**app.env, "DISCORD_TOKEN": "rotated-token-value"}}
    drift = _pm2.definition_differences(
        DeclaredApp("healthy", definition), running_groups()["healthy"]
    )
    assert "rotated-token-value" not in json.dumps(drift)


# Daemon, dump, versions -------------------------------------------------------------


def test_daemon_state_without_pid_file(tmp_path: Path) -> None:
    assert _pm2.read_daemon_state(str(tmp_path)).running is False


def test_daemon_state_dead_pid(tmp_path: Path) -> None:
    (tmp_path / "pm2.pid").write_text("4194304\n")
    assert _pm2.read_daemon_state(str(tmp_path)).running is False


def test_daemon_state_version_from_title(tmp_path: Path) -> None:
    proc = tmp_path / "proc" / str(os.getpid())
    proc.mkdir(parents=True)
    (proc / "cmdline").write_bytes(b"PM2 v7.0.4: God Daemon (/home/bots/.pm2)" + b" " * 20)
    (tmp_path / "pm2.pid").write_text(str(os.getpid()))
    state = _pm2.read_daemon_state(str(tmp_path), proc_root=str(tmp_path / "proc"))
    assert state.version == "7.0.4"


def test_daemon_version_from_pm2_log(tmp_path: Path) -> None:
    (tmp_path / "pm2.log").write_text(
        "2026-12-04T20:11:28: PM2 log: PM2 version          : 6.0.14\n"
        "2026-12-04T20:11:31: PM2 log: PM2 version          : 7.0.4\n"
    )
    assert _pm2.daemon_version(str(tmp_path), 1, proc_root=str(tmp_path / "proc")) == "7.0.4"


def test_cli_version_from_package(tmp_path: Path) -> None:
    package = tmp_path / "lib" / "node_modules" / "pm2"
    (package / "bin").mkdir(parents=True)
    (package / "package.json").write_text('{"name": "pm2", "version": "7.0.4"}')
    (package / "bin" / "pm2").write_text("#!/usr/bin/env node\n")
    (tmp_path / "pm2").symlink_to(package / "bin" / "pm2")
    assert _pm2.cli_version(str(tmp_path / "pm2")) == "7.0.4"


def test_read_dump_recorded(tmp_path: Path) -> None:
    (tmp_path / "dump.pm2").write_text(fixture_text("dump_seven_apps.pm2"))
    assert _pm2.read_dump(str(tmp_path)).matches(declared_apps())


def test_read_dump_missing(tmp_path: Path) -> None:
    assert _pm2.read_dump(str(tmp_path)).exists is False


def test_read_dump_corrupt(tmp_path: Path) -> None:
    (tmp_path / "dump.pm2").write_text("[{")
    with pytest.raises(Pm2Error, match="Unable to read PM2 dump"):
        _pm2.read_dump(str(tmp_path))


def test_tail_file_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "bot-error.log"
    log.write_text("".join(f"line {number}\n" for number in range(40)))
    assert _pm2.tail_file(str(log), 2) == ["line 38", "line 39"]


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (
            {"script": "/srv/botfleet/checkout/bots/a/index.js"},
            "/srv/botfleet/checkout/bots/a/index.js",
        ),
        (
            {"script": "main.py", "cwd": "/srv/botfleet/checkout/bots/todoist bot"},
            "/srv/botfleet/checkout/bots/todoist bot/main.py",
        ),
        ({"script": "./lib/../main.py", "cwd": "/srv/b"}, "/srv/b/main.py"),
    ],
)
def test_declared_script_path_cases(definition, expected):
    assert _pm2.declared_script_path(definition) == expected
