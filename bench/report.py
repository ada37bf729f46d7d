"""Write the benchmark results (results.md, results.json, chart.png) from the recorded runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SCENARIO_TITLES = {
    "noop": "redeploy, nothing new",
    "code": "one bot's code changed",
    "deps": "one bot's dependencies changed",
}
CONTENDER_TITLES = {"ours": "ours (deploy.yml)", "plain": "plain script"}
COLORS = {"ours": "#2b6cb0", "plain": "#c05621"}


def spread(values: list[float], digits: int = 1) -> str:
    """Format the median and the range of `values` as "median (min-max)"."""
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def select(runs: list[dict], **fields: object) -> list[dict]:
    return [run for run in runs if all(run[key] == value for key, value in fields.items())]


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs) if runs else float("nan")


def table(runs: list[dict], sizes: list[int]) -> list[str]:
    lines = [
        "| Bots | Scenario | Contender | Wall s | Verify task s | Restarts | Bots down "
        "| Downtime bot-s | Max downtime of a bot s | SSH connections | Controller CPU s "
        "| Peak RSS MB | Failed runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        for scenario in SCENARIO_TITLES:
            for contender in CONTENDER_TITLES:
                group = select(runs, size=size, scenario=scenario, contender=contender)
                if not group:
                    continue
                ok = [run for run in group if run["rc"] == 0]

                def column(key: str, digits: int = 1, rows: list[dict] = ok) -> str:
                    return spread([run[key] for run in rows], digits)

                verify = [run["verify_s"] for run in ok if run.get("verify_s") is not None]
                verify_column = spread(verify) if verify else "-"
                lines.append(
                    f"| {size} | {SCENARIO_TITLES[scenario]} | {CONTENDER_TITLES[contender]} "
                    f"| {column('wall_s')} | {verify_column} | {column('restarts', 0)} "
                    f"| {column('bots_down', 0)} | {column('downtime_total_s')} "
                    f"| {column('downtime_max_s')} | {column('ssh_connections', 0)} "
                    f"| {column('cpu_s')} | {column('max_rss_mb', 0)} "
                    f"| {len(group) - len(ok)} of {len(group)} |"
                )
    return lines


def verdict(passed: bool) -> str:
    return "met" if passed else "NOT met"


def targets(runs: list[dict], sizes: list[int]) -> list[str]:
    """Check the performance targets of docs/performance.md against the medians."""
    ok = [run for run in runs if run["rc"] == 0]
    lines = []
    for size in sizes:
        ours = select(ok, size=size, scenario="noop", contender="ours")
        plain = select(ok, size=size, scenario="noop", contender="plain")
        if ours and plain:
            faster = median_of(ours, "wall_s") <= median_of(plain, "wall_s")
            undisturbed = all(run["restarts"] == 0 and run["downtime_total_s"] == 0 for run in ours)
            lines.append(
                f"- {size} bots, no-op no slower than the plain script: "
                f"{verdict(faster)} ({median_of(ours, 'wall_s'):.1f} s against "
                f"{median_of(plain, 'wall_s'):.1f} s); zero restarts and zero downtime in every "
                f"run: {verdict(undisturbed)}"
            )
        ours = select(ok, size=size, scenario="code", contender="ours")
        plain = select(ok, size=size, scenario="code", contender="plain")
        if ours and plain:
            exactly_one = all(run["restarts"] == 1 for run in ours)
            faster = median_of(ours, "wall_s") < median_of(plain, "wall_s")
            lines.append(
                f"- {size} bots, one-bot code change restarts exactly one bot: "
                f"{verdict(exactly_one)} (restarts per run: {[run['restarts'] for run in ours]}); "
                f"beats the plain script: {verdict(faster)} "
                f"({median_of(ours, 'wall_s'):.1f} s against {median_of(plain, 'wall_s'):.1f} s)"
            )
    if len(sizes) >= 2:
        small = select(ok, size=min(sizes), scenario="noop", contender="ours")
        large = select(ok, size=max(sizes), scenario="noop", contender="ours")
        if small and large:
            ratio = median_of(large, "wall_s") / median_of(small, "wall_s")
            lines.append(
                f"- Our no-op with {max(sizes)} bots at most 1.5x our no-op with {min(sizes)} "
                f"bots: {verdict(ratio <= 1.5)} ({ratio:.2f}x)"
            )
    ours = select(ok, contender="ours")
    if ours:
        counts = sorted({run["ssh_connections"] for run in ours})
        lines.append(
            f"- One SSH connection per run of our deploy: {verdict(counts == [1])} "
            f"(connections per run seen: {counts})"
        )
    return lines


def chart(runs: list[dict], sizes: list[int], path: Path, meta: dict) -> None:
    figure, axes = plt.subplots(2, len(sizes), figsize=(6 * len(sizes), 8), squeeze=False)
    width = 0.38
    for column, size in enumerate(sizes):
        for row, (key, label) in enumerate(
            (("wall_s", "wall time, s"), ("downtime_total_s", "bot downtime, bot-seconds"))
        ):
            axis = axes[row][column]
            for offset, contender in ((-width / 2, "ours"), (width / 2, "plain")):
                medians, lower, upper = [], [], []
                for scenario in SCENARIO_TITLES:
                    values = [
                        run[key]
                        for run in select(runs, size=size, scenario=scenario, contender=contender)
                        if run["rc"] == 0
                    ] or [0.0]
                    median = statistics.median(values)
                    medians.append(median)
                    lower.append(median - min(values))
                    upper.append(max(values) - median)
                positions = [index + offset for index in range(len(SCENARIO_TITLES))]
                axis.bar(
                    positions,
                    medians,
                    width,
                    yerr=[lower, upper],
                    capsize=4,
                    color=COLORS[contender],
                    label=CONTENDER_TITLES[contender],
                )
            axis.set_xticks(range(len(SCENARIO_TITLES)))
            axis.set_xticklabels(["nothing new", "code of\none bot", "dependencies\nof one bot"])
            axis.set_title(f"{size} bots: {label}")
            axis.set_ylabel(label)
            axis.legend()
    figure.suptitle(
        f"Median of {meta['runs']} runs, bars show min-max; deploy_settle {meta['settle_s']:g} s; "
        f"{meta['nproc']} CPUs, 1-min load {meta['load_at_start'][0]:.1f} at start"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(work: Path, results: Path) -> None:
    meta = json.loads((work / "meta.json").read_text(encoding="utf-8"))
    text = (work / "runs.jsonl").read_text(encoding="utf-8")
    runs = [json.loads(line) for line in text.splitlines() if line]
    sizes = sorted({run["size"] for run in runs})
    loads = [run["load_1min"] for run in runs]
    results.mkdir(parents=True, exist_ok=True)

    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (bench/bench.py). docs/performance.md explains the figures.",
        "",
        f"- Date: {meta['date_utc']}; runs per scenario and contender: {meta['runs']}",
        f"- Machine: {meta['nproc']} CPUs ({meta['cpu_model']}), {meta['memory_gib']} GiB memory",
        f"- 1-minute load average: {meta['load_at_start'][0]:.2f} at start, "
        f"{min(loads):.2f} to {max(loads):.2f} before the measured runs"
        + (f", {meta['load_at_end'][0]:.2f} at end" if "load_at_end" in meta else ""),
        f"- Controller: ansible-core {meta['ansible_core']}, Python {meta['controller_python']}",
        f"- Test host: {meta['host_os']} container, PM2 {meta['pm2']}, node {meta['node']}, "
        f"{meta['host_python']}",
        f"- Our deploy ran with deploy_settle {meta['settle_s']:g} s. The verify task column is "
        "the time of the task that checks every bot stays online, which waits only for bots "
        "started less than deploy_settle seconds ago",
        "",
        "Each cell is the median, with the minimum and maximum in brackets, of the runs that "
        "succeeded.",
        "",
        *table(runs, sizes),
        "",
        "## Targets",
        "",
        *targets(runs, sizes),
        "",
        "![Wall time and downtime](chart.png)",
        "",
    ]
    (results / "results.md").write_text("\n".join(lines), encoding="utf-8")
    (results / "results.json").write_text(
        json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n", encoding="utf-8"
    )
    chart(runs, sizes, results / "chart.png", meta)
