"""Benchmark our deploy (playbooks/deploy.yml) against the plain SSH deploy script.

Usage: python bench/bench.py [all|up|measure|report|down]

- up: start the test host container, provision it once, publish a 2-bot and a 30-bot repository
  on it and deploy each once with both contenders (not measured).
- measure: for each repository size and for BENCH_RUNS runs, measure a redeploy with nothing new,
  a change to one bot's code and a change to one bot's dependencies, interleaving our deploy (A)
  and the plain script (B). Each run is appended to bench/work/runs.jsonl.
- report: write bench/results/results.md, results.json and chart.png from bench/work/runs.jsonl.
- down: remove the container and bench/work/.
- all (the default): up, measure, report, then down unless BENCH_KEEP=1.

Settings come from the environment: BENCH_RUNS (runs per scenario, default 5), BENCH_SETTLE
(deploy_settle of our deploy in seconds, default 10 as in the role) and BENCH_SIZES (bot counts,
default "2 30").
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WORK = BENCH / "work"
RESULTS = BENCH / "results"
RUNS_FILE = WORK / "runs.jsonl"
META_FILE = WORK / "meta.json"

CONTAINER = "botfleet-bench"
IMAGE = "botfleet-test:debian12"
PORT = 2223
PM2 = "/usr/local/bin/pm2"
SAMPLER = "/usr/local/lib/botfleet-bench-sampler.py"
SAMPLE_TAIL_SECONDS = 2.0
ONLINE_TIMEOUT_SECONDS = 90

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SETTLE = float(os.environ.get("BENCH_SETTLE", "10"))
SIZES = [int(size) for size in os.environ.get("BENCH_SIZES", "2 30").split()]
SCENARIOS = ("noop", "code", "deps")
CONTENDERS = ("ours", "plain")
KEY = WORK / "id_ed25519"
SSH_OPTIONS = [
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
]  # fmt: skip


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    kwargs.setdefault("text", True)
    return subprocess.run(command, **kwargs)


def host(*command: str, user: str | None = None, check: bool = True) -> str:
    """Run a command in the test host container, as root or as `user`, and return its stdout."""
    prefix = ["runuser", "-u", user, "--", "env", f"HOME=/home/{user}"] if user else []
    result = run(["docker", "exec", CONTAINER, *prefix, *command], capture_output=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"Command on the test host failed with rc {result.returncode}: {' '.join(command)}\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result.stdout


def bots_shell(script: str) -> str:
    return host("bash", "-euo", "pipefail", "-c", script, user="bots")


def pm2(*args: str, check: bool = True) -> str:
    return host(PM2, *args, user="bots", check=check)


# Host setup --------------------------------------------------------------------------------


def start_container() -> None:
    run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    run(
        ["docker", "run", "-d", "--name", CONTAINER, "--hostname", CONTAINER,
         "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined", "--cgroupns", "host",
         "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
         "-p", f"127.0.0.1:{PORT}:22", IMAGE, "/lib/systemd/systemd"],
        capture_output=True,
    )  # fmt: skip
    for _ in range(60):
        state = run(["docker", "exec", CONTAINER, "systemctl", "is-system-running"],
                    capture_output=True, check=False).stdout.strip()  # fmt: skip
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    # VERBOSE makes sshd log every connection, and each authenticated one logs "Accepted publickey".
    host("sh", "-c", "echo 'LogLevel VERBOSE' > /etc/ssh/sshd_config.d/bench.conf")
    host("systemctl", "restart", "ssh")


def authorize_key() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    if not KEY.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", CONTAINER, "-f", str(KEY)])
    host("install", "-d", "-m", "0700", "/root/.ssh")
    run(["docker", "cp", f"{KEY}.pub", f"{CONTAINER}:/root/.ssh/authorized_keys"])
    host("chown", "root:root", "/root/.ssh/authorized_keys")
    host("chmod", "0600", "/root/.ssh/authorized_keys")
    for _ in range(60):
        if run(ssh_command("true"), capture_output=True, check=False).returncode == 0:
            return
        time.sleep(1)
    raise RuntimeError(f"SSH to 127.0.0.1:{PORT} timed out after 60 s: see docker logs {CONTAINER}")


def ssh_command(*remote: str) -> list[str]:
    return ["ssh", "-p", str(PORT), "-i", str(KEY), *SSH_OPTIONS, "root@127.0.0.1", *remote]


def write_inventory(size: int) -> Path:
    folder = WORK / f"inventory-{size}"
    group_vars = folder / "group_vars" / "bot_hosts"
    group_vars.mkdir(parents=True, exist_ok=True)
    (folder / "hosts.yml").write_text(
        "---\nbot_hosts:\n  hosts:\n    bench:\n"
        "      ansible_host: 127.0.0.1\n"
        f"      ansible_port: {PORT}\n"
        "      ansible_user: root\n"
        f"      ansible_ssh_private_key_file: {KEY}\n"
        "      ansible_ssh_common_args: >-\n"
        "        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n",
        encoding="utf-8",
    )
    (group_vars / "settings.yml").write_text(
        "---\n"
        f"botfleet_repo: /srv/git/bench-{size}.git\n"
        "botfleet_version: main\n"
        f"botfleet_root: /srv/botfleet-{size}\n"
        f"deploy_settle: {SETTLE:g}\n",
        encoding="utf-8",
    )
    shutil.copy(WORK / f"bots-{size}" / "bots.yml", group_vars / "bots.yml")
    return folder / "hosts.yml"


def publish_repository(size: int) -> None:
    """Make /srv/git/bench-N.git on the host, with package-lock.json files made there by npm."""
    out = WORK / f"bots-{size}"
    work = f"/srv/git/bench-{size}-work"
    host("install", "-d", "-o", "bots", "-g", "bots", "/srv/git")
    host("rm", "-rf", work, f"/srv/git/bench-{size}.git")
    run(["docker", "cp", f"{out}/repo", f"{CONTAINER}:{work}"])
    host("chown", "-R", "bots:bots", work)
    bots_shell(
        f"cd {work}\n"
        "for bot in bots/*/; do\n"
        '  [ -f "$bot/package.json" ] || continue\n'
        '  (cd "$bot" && npm install --package-lock-only --no-audit --no-fund --loglevel=error)\n'
        "done\n"
        "git init -q -b main\n"
        "git config user.email bench@botfleet.invalid\n"
        "git config user.name 'botfleet bench'\n"
        "git add -A\n"
        "git commit -q -m 'Add the benchmark bots'\n"
        f"git init -q --bare -b main /srv/git/bench-{size}.git\n"
        f"git remote add origin /srv/git/bench-{size}.git\n"
        "git push -q origin main\n"
    )


def plain_ecosystem(size: int) -> str:
    """Build the ecosystem file that a user would write by hand for the plain script's bots."""
    bots = json.loads((WORK / f"bots-{size}" / "plain.json").read_text(encoding="utf-8"))
    root = f"/srv/plain-{size}"
    apps = []
    for bot in bots:
        app = {
            "name": f"plain-{bot['name']}",
            "script": bot["script"],
            "cwd": f"{root}/checkout/{bot['path']}",
            "env": {"BOTFLEET_BOT": bot["name"]},
        }
        if bot["runtime"] == "python":
            app["interpreter"] = f"{root}/venvs/{bot['name']}/bin/python"
        apps.append(app)
    return f"module.exports = {json.dumps({'apps': apps}, indent=2)};\n"


def prepare_plain(size: int) -> None:
    root = f"/srv/plain-{size}"
    host("rm", "-rf", root)
    host("install", "-d", "-o", "bots", "-g", "bots", root, f"{root}/venvs")
    bots_shell(f"git clone -q /srv/git/bench-{size}.git {root}/checkout")
    ecosystem = WORK / f"plain-{size}.config.js"
    ecosystem.write_text(plain_ecosystem(size), encoding="utf-8")
    run(["docker", "cp", str(ecosystem), f"{CONTAINER}:{root}/ecosystem.config.js"])
    host("chown", "bots:bots", f"{root}/ecosystem.config.js")


def up() -> None:
    if shutil.which("ssh") is None:
        raise RuntimeError("The ssh client is missing: apt-get install openssh-client")
    run([str(ROOT / "tests" / "scripts" / "ensure-docker.sh")])
    run([str(ROOT / "tests" / "images" / "build.sh"), "bookworm"])
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    log(f"starting the test host {CONTAINER} (SSH on 127.0.0.1:{PORT})")
    start_container()
    authorize_key()
    run(["docker", "cp", str(BENCH / "sampler.py"), f"{CONTAINER}:{SAMPLER}"])

    for size in SIZES:
        run([sys.executable, str(BENCH / "make_bots_repo.py"), "--count", str(size),
             "--out", str(WORK / f"bots-{size}")])  # fmt: skip
        write_inventory(size)
    log("provisioning once with playbooks/provision.yml")
    run(["ansible-playbook", "-i", str(WORK / f"inventory-{SIZES[0]}" / "hosts.yml"),
         str(ROOT / "playbooks" / "provision.yml")], stdout=subprocess.DEVNULL)  # fmt: skip

    for size in SIZES:
        log(f"publishing the {size}-bot repository and deploying it once with each contender")
        publish_repository(size)
        prepare_plain(size)
        for contender in CONTENDERS:
            result = deploy(contender, size, WORK / "logs" / f"first-{contender}-{size}.log")
            if result.returncode != 0:
                raise RuntimeError(f"The first {contender} deploy of {size} bots failed: see "
                                   f"{WORK / 'logs'}")  # fmt: skip
    pm2("delete", "all", check=False)
    write_meta()


def down() -> None:
    run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    shutil.rmtree(WORK, ignore_errors=True)
    log(f"removed the container {CONTAINER} and {WORK}")


# One measured deploy -----------------------------------------------------------------------


@dataclass
class DeployResult:
    returncode: int
    wall: float
    cpu: float
    max_rss_mb: float


def deploy(contender: str, size: int, log_file: Path) -> DeployResult:
    """Run one deploy and return its wall time and the CPU time and peak RSS of its processes."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-cp-") as control_dir:
        if contender == "ours":
            # A fresh ControlPath folder per run, so a master left by the previous run is not
            # reused and the run opens (and counts) its own connection.
            env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = control_dir
            # Adds the seconds of each task to the run's log, for finding where the time goes.
            env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
            command = ["ansible-playbook", "-i", str(WORK / f"inventory-{size}" / "hosts.yml"),
                       str(ROOT / "playbooks" / "deploy.yml")]  # fmt: skip
            stdin = subprocess.DEVNULL
        else:
            command = ssh_command(f"sudo -iu bots bash -s -- /srv/plain-{size}")
            stdin = open(BENCH / "plain_deploy.sh", "rb")  # noqa: SIM115
        with open(log_file, "wb") as output:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdin=stdin, stdout=output,
                                       stderr=subprocess.STDOUT, env=env)  # fmt: skip
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if stdin is not subprocess.DEVNULL:
            stdin.close()
        for socket in Path(control_dir).iterdir():
            run(["ssh", "-O", "exit", "-S", str(socket), "bench"], capture_output=True,
                check=False)  # fmt: skip
    return DeployResult(
        returncode=process.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        # On Linux, ru_maxrss of a waited child tree is the peak of its largest process, in KiB.
        max_rss_mb=usage.ru_maxrss / 1024,
    )


def jlist() -> dict[str, dict]:
    lines = [line for line in pm2("jlist").splitlines() if line.startswith("[")]
    processes = json.loads(lines[-1]) if lines else []
    return {
        process["name"]: {
            "pid": process.get("pid"),
            "uptime": process["pm2_env"].get("pm_uptime"),
            "status": process["pm2_env"].get("status"),
        }
        for process in processes
    }


def app_names(contender: str, size: int) -> list[str]:
    bots = json.loads((WORK / f"bots-{size}" / "plain.json").read_text(encoding="utf-8"))
    prefix = "plain-" if contender == "plain" else ""
    return [f"{prefix}{bot['name']}" for bot in bots]


def ecosystem_path(contender: str, size: int) -> str:
    root = f"/srv/plain-{size}" if contender == "plain" else f"/srv/botfleet-{size}"
    return f"{root}/ecosystem.config.js"


def give_pm2_to(contender: str, size: int) -> None:
    """Run only this contender's bots in PM2: delete the others, start its own if missing."""
    own = app_names(contender, size)
    running = jlist()
    for name in sorted(set(running) - set(own)):
        pm2("delete", name)
    if not set(own) <= set(running):
        for name in sorted(set(own) & set(running)):
            pm2("delete", name)
        pm2("start", ecosystem_path(contender, size))
    deadline = time.monotonic() + ONLINE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        apps = jlist()
        if all(apps.get(name, {}).get("status") == "online" for name in own):
            return
        time.sleep(1)
    raise RuntimeError(
        f"The {contender} bots did not come online within {ONLINE_TIMEOUT_SECONDS} s: "
        f"see {PM2} list on {CONTAINER}"
    )


def wait_until_settled(names: list[str]) -> None:
    """Wait until every app has run for deploy_settle seconds, as bots on a server usually have.

    give_pm2_to may have just started them. Our verify step waits only for bots younger than
    deploy_settle, so measuring right after that start would time a wait that a redeploy on a
    server, where the bots have been running, does not have. Both contenders get the same wait.
    """
    deadline = time.monotonic() + ONLINE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        apps = jlist()
        starts = [apps.get(name, {}).get("uptime") or 0 for name in names]
        youngest_s = time.time() - max(starts) / 1000
        if youngest_s > SETTLE + 1:
            return
        time.sleep(min(SETTLE + 1 - youngest_s, 5))
    raise RuntimeError(f"The bots did not stay up for {SETTLE:g} s: see {PM2} list on {CONTAINER}")


def ssh_logins() -> int:
    journal = host("journalctl", "-u", "ssh", "--no-pager", "-o", "cat")
    return sum("Accepted publickey" in line for line in journal.splitlines())


def downtime(samples: list[dict], names: list[str]) -> dict[str, float]:
    """Add up, per app, the time from each sample that shows it not online to the next sample."""
    readable = [sample for sample in samples if sample["apps"] is not None]
    seconds = dict.fromkeys(names, 0.0)
    for sample, following in itertools.pairwise(readable):
        for name in names:
            if sample["apps"].get(name) != "online":
                seconds[name] += following["t"] - sample["t"]
    return seconds


def process_changed(before: dict | None, after: dict | None) -> bool:
    """Return whether an app was started fresh: it came, went, or got a new pid or start time."""
    if before is None or after is None:
        return True
    return (before["pid"], before["uptime"]) != (after["pid"], after["uptime"])


VERIFY_TASK = "Check that every bot is online and stays online"


def verify_seconds(log_file: Path) -> float | None:
    """Return the seconds profile_tasks gave the verify task in our deploy's log."""
    total = None
    for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if VERIFY_TASK in line and line.rstrip().endswith("s") and "-" in line:
            try:
                seconds = float(line.rstrip()[:-1].rsplit(None, 1)[-1])
            except ValueError:
                continue
            total = (total or 0.0) + seconds
    return total


def measure_one(contender: str, size: int, scenario: str, index: int) -> dict:
    give_pm2_to(contender, size)
    names = app_names(contender, size)
    wait_until_settled(names)
    before = jlist()
    logins = ssh_logins()
    load = os.getloadavg()[0]

    samples_file = f"/tmp/samples-{contender}-{size}-{scenario}-{index}.jsonl"
    stop_file = f"{samples_file}.stop"
    sampler = subprocess.Popen(
        ["docker", "exec", CONTAINER, "runuser", "-u", "bots", "--", "env", "HOME=/home/bots",
         "python3", SAMPLER, samples_file, stop_file]
    )  # fmt: skip
    time.sleep(1.0)
    log_file = WORK / "logs" / f"{contender}-{size}-{scenario}-{index}.log"
    result = deploy(contender, size, log_file)
    time.sleep(SAMPLE_TAIL_SECONDS)
    host("touch", stop_file)
    sampler.wait(timeout=60)
    samples = [json.loads(line) for line in host("cat", samples_file).splitlines() if line]
    host("rm", "-f", samples_file, stop_file)

    after = jlist()
    restarted = [name for name in names if process_changed(before.get(name), after.get(name))]
    down_seconds = downtime(samples, names)
    record = {
        "contender": contender,
        "size": size,
        "scenario": scenario,
        "run": index,
        "rc": result.returncode,
        "wall_s": round(result.wall, 3),
        "cpu_s": round(result.cpu, 3),
        "max_rss_mb": round(result.max_rss_mb, 1),
        "ssh_connections": ssh_logins() - logins,
        "restarts": len(restarted),
        "restarted": restarted,
        "downtime_total_s": round(sum(down_seconds.values()), 2),
        "downtime_max_s": round(max(down_seconds.values()), 2),
        "bots_down": sum(1 for value in down_seconds.values() if value > 0),
        "samples": len(samples),
        "sample_period_s": round(
            (samples[-1]["t"] - samples[0]["t"]) / max(1, len(samples) - 1), 3
        ) if samples else None,
        "load_1min": round(load, 2),
        "settle_s": SETTLE if contender == "ours" else 0,
        "verify_s": verify_seconds(log_file) if contender == "ours" else None,
    }  # fmt: skip
    with open(RUNS_FILE, "a", encoding="utf-8") as runs:
        runs.write(json.dumps(record) + "\n")
    log(
        f"{contender:5} {size:2} bots {scenario:4} run {index}: {result.wall:6.1f} s, "
        f"rc {result.returncode}, {len(restarted)} restarts, "
        f"{record['downtime_total_s']} bot-s down, {record['ssh_connections']} SSH"
    )
    return record


def commit_change(size: int, scenario: str, index: int) -> None:
    """Push a commit that changes one bot's code or one bot's dependencies."""
    work = f"/srv/git/bench-{size}-work"
    if scenario == "code":
        change = f"echo '// change {index}' >> bots/node-bot-01/index.js"
    else:
        change = (
            "sed -i -e 's/six==1.16.0/six==NEXT/' -e 's/six==1.17.0/six==1.16.0/' "
            "-e 's/six==NEXT/six==1.17.0/' bots/python-bot-02/requirements.txt"
        )
    bots_shell(
        f"cd {work}\n{change}\n"
        f"git commit -q -am 'Change {scenario}, run {index}'\n"
        "git push -q origin main\n"
    )


def measure() -> None:
    RUNS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RUNS_FILE.unlink(missing_ok=True)
    write_meta()
    for size in SIZES:
        # Written again so that the deploy_settle of the runs is the BENCH_SETTLE of this call.
        write_inventory(size)
        pm2("delete", "all", check=False)
        for index in range(1, RUNS + 1):
            for scenario in SCENARIOS:
                if scenario != "noop":
                    commit_change(size, scenario, index)
                for contender in CONTENDERS:
                    measure_one(contender, size, scenario, index)
        pm2("delete", "all", check=False)
    meta = json.loads(META_FILE.read_text(encoding="utf-8"))
    meta["load_at_end"] = list(os.getloadavg())
    META_FILE.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


# Machine and versions ----------------------------------------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def write_meta() -> None:
    meta = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "runs": RUNS,
        "settle_s": SETTLE,
        "sizes": SIZES,
        "nproc": os.cpu_count(),
        "memory_gib": memory_gib(),
        "cpu_model": cpu_model(),
        "load_at_start": list(os.getloadavg()),
        "ansible_core": metadata.version("ansible-core"),
        "controller_python": platform.python_version(),
        "pm2": pm2("--version").strip().splitlines()[-1],
        "node": host("node", "--version").strip(),
        "host_python": host("python3", "--version").strip(),
        "host_os": host("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME").strip(),
    }
    META_FILE.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    action = sys.argv[1] if len(sys.argv) > 1 else "all"
    if action == "up":
        up()
    elif action == "measure":
        measure()
    elif action == "report":
        import report

        report.write(WORK, RESULTS)
    elif action == "down":
        down()
    elif action == "all":
        try:
            up()
            measure()
            import report

            report.write(WORK, RESULTS)
        finally:
            if os.environ.get("BENCH_KEEP") != "1":
                down()
    else:
        sys.exit(f"Unknown action {action!r}: use all, up, measure, report or down")


if __name__ == "__main__":
    main()
