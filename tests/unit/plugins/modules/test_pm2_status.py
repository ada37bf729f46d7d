from __future__ import annotations

import json
import os
import pwd
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.botfleet.pm2.plugins.module_utils import _pm2
from ansible_collections.botfleet.pm2.plugins.modules import pm2_status

FIXTURES = Path(__file__).parents[2] / "fixtures" / "pm2"
SECRET = "fake-secret-do-not-leak-123"
ECOSYSTEM = str(FIXTURES / "ecosystem.config.js")


class ModuleExit(Exception):
    def __init__(self, result: dict[str, Any], failed: bool):
        super().__init__(result.get("msg", ""))
        self.result = result
        self.failed = failed


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def processes(name: str) -> list[_pm2.Pm2Process]:
    return _pm2.parse_jlist(fixture_text(name))


def declared_fingerprints() -> dict[str, str | None]:
    return {app.name: app.fingerprint for app in _pm2.load_ecosystem(ECOSYSTEM)}


# Two samples recorded 7.5 s apart ------------------------------------------------------

EXPECTED_PROBLEMS = {
    "healthy": [],
    "pybot": [],
    "stopped": ["status is stopped"],
    "errored": ["status is errored"],
    "waiting": ["status is waiting restart"],
    "crashloop": [
        "status is waiting restart",
        "restarted 21 times in the 10 s window",
        "pid changed from 28664 to 29256",
    ],
    "crash5s": [
        "restarted 1 time in the 10 s window",
        "pid changed from 28152 to 29096",
    ],
}


@pytest.mark.parametrize(("name", "problems"), EXPECTED_PROBLEMS.items())
def test_evaluate_recorded_samples(name: str, problems: list[str]) -> None:
    result = pm2_status.evaluate(
        declared_fingerprints(),
        processes("jlist_mixed_first.json"),
        processes("jlist_mixed_second.json"),
        10,
    )
    assert result["unhealthy"].get(name, []) == problems


def test_evaluate_missing_app() -> None:
    declared = {**declared_fingerprints(), "weather": "1234567890abcdef"}
    result = pm2_status.evaluate(
        declared, processes("jlist_mixed_first.json"), processes("jlist_mixed_second.json"), 10
    )
    assert result["missing"] == ["weather"]


def test_evaluate_missing_reason() -> None:
    result = pm2_status.evaluate({"weather": None}, [], [], 10)
    assert result["unhealthy"] == {"weather": ["not in the PM2 process table"]}


def test_evaluate_undeclared_apps() -> None:
    result = pm2_status.evaluate(
        {"healthy": None},
        processes("jlist_mixed_first.json"),
        processes("jlist_mixed_second.json"),
        10,
    )
    assert result["undeclared"] == [
        "crash5s",
        "crashloop",
        "errored",
        "pybot",
        "stopped",
        "waiting",
    ]


def test_evaluate_wrong_fingerprint() -> None:
    result = pm2_status.evaluate(
        {"healthy": "aaaaaaaaaaaaaaaa9999"},
        processes("jlist_mixed_first.json"),
        processes("jlist_mixed_second.json"),
        10,
    )
    assert result["unhealthy"]["healthy"] == [
        "runs fingerprint aaaaaaaaaaaaaaaa1111 instead of aaaaaaaaaaaaaaaa9999"
    ]


def test_evaluate_results_hide_secret() -> None:
    result = pm2_status.evaluate(
        declared_fingerprints(),
        processes("jlist_mixed_first.json"),
        processes("jlist_mixed_second.json"),
        10,
    )
    assert SECRET not in json.dumps(result)


# Settle window --------------------------------------------------------------------

SETTLE_CASES = [
    ("longer than min_uptime", 5.5, {"a": 5000}, None),
    ("equal to min_uptime", 5.0, {"a": 5000}, "settle is 5 s but app a has min_uptime 5000 ms"),
    ("shorter than min_uptime", 2.0, {"a": 1000, "b": 3000}, "Set settle to more than 3 s"),
    ("no apps", 0.1, {}, None),
]


@pytest.mark.parametrize(
    ("case", "settle", "min_uptimes", "message"), SETTLE_CASES, ids=[c[0] for c in SETTLE_CASES]
)
def test_check_settle(case: str, settle: float, min_uptimes: dict, message: str | None) -> None:
    if message is None:
        pm2_status.check_settle(settle, min_uptimes)
    else:
        with pytest.raises(_pm2.Pm2Error, match=message):
            pm2_status.check_settle(settle, min_uptimes)


# Whole module with a fake pm2 ---------------------------------------------------------


@pytest.fixture
def pm2_home(tmp_path: Path) -> Path:
    home = tmp_path / "pm2"
    (home / "logs").mkdir(parents=True)
    return home


@pytest.fixture
def pm2_binary(tmp_path: Path) -> Path:
    binary = tmp_path / "bin" / "pm2"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 99\n")
    binary.chmod(0o755)
    return binary


def run_module(
    monkeypatch: pytest.MonkeyPatch,
    args: dict[str, Any],
    outputs: list[str],
    check_mode: bool = False,
) -> tuple[ModuleExit, list[list[str]]]:
    commands: list[list[str]] = []

    def run_command(self, argv, **kwargs):
        commands.append(argv)
        if "jlist" in argv:
            return 0, outputs.pop(0), ""
        return 1, "", "not available in unit tests"

    def exit_json(self, **result):
        raise ModuleExit(result, failed=False)

    def fail_json(self, msg, **result):
        raise ModuleExit({"msg": msg, **result}, failed=True)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(pm2_status.time, "sleep", lambda seconds: None)
    module_args = {"user": pwd.getpwuid(os.geteuid()).pw_name, "_ansible_check_mode": check_mode}
    with patch_module_args({**module_args, **args}), pytest.raises(ModuleExit) as raised:
        pm2_status.main()
    return raised.value, commands


def test_main_no_daemon_fails(monkeypatch, pm2_home, pm2_binary) -> None:
    args = {"ecosystem": ECOSYSTEM, "pm2_home": str(pm2_home), "pm2_path": str(pm2_binary)}
    outcome, _commands = run_module(monkeypatch, args, [])
    assert outcome.failed


def test_main_no_daemon_runs_no_pm2(monkeypatch, pm2_home, pm2_binary) -> None:
    args = {"ecosystem": ECOSYSTEM, "pm2_home": str(pm2_home), "pm2_path": str(pm2_binary)}
    _outcome, commands = run_module(monkeypatch, args, [])
    assert not [argv for argv in commands if str(pm2_binary) in argv]


def test_main_no_daemon_message(monkeypatch, pm2_home, pm2_binary) -> None:
    args = {"ecosystem": ECOSYSTEM, "pm2_home": str(pm2_home), "pm2_path": str(pm2_binary)}
    outcome, _commands = run_module(monkeypatch, args, [])
    assert "the PM2 daemon is not running" in outcome.result["msg"]


def test_main_no_daemon_check_mode_reports(monkeypatch, pm2_home, pm2_binary) -> None:
    args = {"ecosystem": ECOSYSTEM, "pm2_home": str(pm2_home), "pm2_path": str(pm2_binary)}
    outcome, _commands = run_module(monkeypatch, args, [], check_mode=True)
    assert (outcome.failed, outcome.result["daemon"]["running"]) == (False, False)


def test_main_short_settle_fails(monkeypatch, pm2_home, pm2_binary) -> None:
    (pm2_home / "pm2.pid").write_text(str(os.getpid()))
    args = {
        "ecosystem": ECOSYSTEM,
        "pm2_home": str(pm2_home),
        "pm2_path": str(pm2_binary),
        "settle": 2,
    }
    outcome, _commands = run_module(monkeypatch, args, [])
    assert "settle is 2 s but app healthy has min_uptime 5000 ms" in outcome.result["msg"]


def recorded_run(monkeypatch, pm2_home, pm2_binary, **extra) -> ModuleExit:
    (pm2_home / "pm2.pid").write_text(str(os.getpid()))
    (pm2_home / "dump.pm2").write_text(fixture_text("dump_seven_apps.pm2"))
    (pm2_home / "logs" / "crash5s-error.log").write_text(
        f"2026-12-04T20:11:38: starting\n2026-12-04T20:11:39: boom after 5s, token {SECRET}\n"
    )
    first = fixture_text("jlist_mixed_first.json").replace("/home/bots/.pm2", str(pm2_home))
    second = fixture_text("jlist_mixed_second.json").replace("/home/bots/.pm2", str(pm2_home))
    args = {
        "ecosystem": ECOSYSTEM,
        "pm2_home": str(pm2_home),
        "pm2_path": str(pm2_binary),
        **extra,
    }
    args = {key: value for key, value in args.items() if value is not None}
    monkeypatch.setattr(pm2_status, "_now_ms", lambda: FIRST_SAMPLE_MS)
    outcome, _commands = run_module(monkeypatch, args, [first, second])
    return outcome


# When jlist_mixed_first.json was recorded: just after crashloop's last start.
FIRST_SAMPLE_MS = 1796415096000


def test_settle_wait_tops_up_youngest_app() -> None:
    first = processes("jlist_mixed_first.json")
    wait = pm2_status.settle_wait(["healthy", "crash5s"], first, 10, FIRST_SAMPLE_MS)
    assert wait == pytest.approx(10 - (FIRST_SAMPLE_MS - 1796415093740) / 1000)


def test_settle_wait_none_for_old_apps() -> None:
    first = processes("jlist_mixed_first.json")
    later = FIRST_SAMPLE_MS + 60_000
    assert pm2_status.settle_wait(["healthy", "pybot", "crash5s"], first, 10, later) == 0


@pytest.mark.parametrize("name", ["stopped", "waiting", "absent-app"])
def test_settle_wait_full_for_app_not_online(name: str) -> None:
    first = processes("jlist_mixed_first.json")
    later = FIRST_SAMPLE_MS + 60_000
    assert pm2_status.settle_wait(["healthy", name], first, 10, later) == 10


def test_main_old_apps_read_once(monkeypatch, pm2_home, pm2_binary) -> None:
    (pm2_home / "pm2.pid").write_text(str(os.getpid()))
    first = fixture_text("jlist_mixed_first.json").replace("/home/bots/.pm2", str(pm2_home))
    monkeypatch.setattr(pm2_status, "_now_ms", lambda: FIRST_SAMPLE_MS + 60_000)
    args = {"names": ["healthy", "pybot"], "pm2_home": str(pm2_home), "pm2_path": str(pm2_binary)}

    outcome, commands = run_module(monkeypatch, args, [first])

    assert (outcome.failed, outcome.result["healthy"], outcome.result["waited"]) == (False, True, 0)
    assert len([argv for argv in commands if "jlist" in argv]) == 1


def test_main_recorded_samples_fail(monkeypatch, pm2_home, pm2_binary) -> None:
    assert recorded_run(monkeypatch, pm2_home, pm2_binary).failed


def test_main_message_names_app(monkeypatch, pm2_home, pm2_binary) -> None:
    message = recorded_run(monkeypatch, pm2_home, pm2_binary).result["msg"]
    assert "- crash5s: restarted 1 time in the 10 s window" in message


def test_main_message_has_error_log(monkeypatch, pm2_home, pm2_binary) -> None:
    message = recorded_run(monkeypatch, pm2_home, pm2_binary).result["msg"]
    assert "boom after 5s, token ********" in message


def test_main_result_hides_secret(monkeypatch, pm2_home, pm2_binary) -> None:
    outcome = recorded_run(monkeypatch, pm2_home, pm2_binary)
    assert SECRET not in json.dumps(outcome.result)


def test_main_dump_matches(monkeypatch, pm2_home, pm2_binary) -> None:
    outcome = recorded_run(monkeypatch, pm2_home, pm2_binary)
    assert outcome.result["dump"]["matches"] is True


def test_main_healthy_subset_passes(monkeypatch, pm2_home, pm2_binary) -> None:
    outcome = recorded_run(
        monkeypatch, pm2_home, pm2_binary, ecosystem=None, names=["healthy", "pybot"]
    )
    assert (outcome.failed, outcome.result["healthy"]) == (False, True)


def test_main_undeclared_fail(monkeypatch, pm2_home, pm2_binary) -> None:
    outcome = recorded_run(
        monkeypatch,
        pm2_home,
        pm2_binary,
        ecosystem=None,
        names=["healthy", "pybot"],
        undeclared="fail",
    )
    assert "undeclared apps run: crash5s, crashloop" in outcome.result["msg"]
