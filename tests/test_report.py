"""``metric-tracker report``: eval reports turned into the results page.

The reports are made as ``metric-tracker eval --json`` makes them (the evaluation module's
own functions: agents played over named tasks and procedural configs, one failed episode,
one report from before reports carried their run). Every figure is recomputed here from
the episodes, independently of the report module, and compared with the Markdown, the Hub
files and, in headless Chromium, with every cell of the HTML page.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from metric_tracker_rl.evaluation import (
    bootstrap_ci,
    config_label,
    failed_record,
    run_evaluation,
    run_metadata,
    summarise,
)
from metric_tracker_rl.families import SCENARIO_FAMILIES
from metric_tracker_rl.tasks import NAMED_TASKS, config_for

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PROCEDURAL = [
    {"seed": 11, "scenario_family": "funnel_break", "difficulty": "easy", "anomaly_density": "low"},
    {"seed": 12, "scenario_family": "hourly_traffic_mix_shift", "difficulty": "hard", "anomaly_count": 2},
    {"seed": 13, "scenario_family": "mixed", "difficulty": "medium", "anomaly_density": "high"},
    {"seed": 14, "scenario_family": "rate_drop_from_median", "difficulty": "hard", "anomaly_density": "low"},
]
CONFIGS = [{"task_id": task_id} for task_id in NAMED_TASKS] + PROCEDURAL
# The failed episode, as the failed-episodes table shows it (agent, task, error).
FAILED = [["random", config_label(CONFIGS[4]), "RuntimeError: the endpoint | went away"]]


def metric_tracker(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "metric_tracker_rl.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("report")
    run = run_metadata(
        tasks=list(NAMED_TASKS),
        split=None,
        configs_file="procedural.jsonl",
        max_steps=None,
        url=None,
        date="2026-03-31",
    )
    pair = {"reports": [run_evaluation(name, CONFIGS) | {"run": run} for name in ("solver", "explorer")]}
    random = run_evaluation("random", CONFIGS[:4])
    episodes = [*random["episodes"], failed_record(CONFIGS[4], RuntimeError("the endpoint | went away"))]
    budget = run_metadata(
        tasks=[], split=None, configs_file="x.jsonl", max_steps=9, url=None, date="2026-04-01"
    )
    failing = summarise("random", episodes) | {"run": budget}
    older = run_evaluation("explorer", CONFIGS[:2])  # no "run": written before reports had one
    files = {"pair.json": pair, "failing.json": failing, "older.json": older}
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    paths = [str(folder / name) for name in files]
    out = folder / "out"
    done = metric_tracker("report", *paths, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return {"paths": paths, "data": files, "out": out, "stdout": done.stdout, "stderr": done.stderr}


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every agent's run as the files hold it, with the figures recomputed from its episodes."""
    out = []
    for path, data in zip(results["paths"], results["data"].values(), strict=True):
        for report in data.get("reports", [data]):
            groups: dict[str, list[float]] = {}
            for episode in report["episodes"]:
                if episode["score"] is None:
                    continue
                config = config_for(**episode["config"])
                for group in ("all", config.difficulty, config.scenario_family):
                    groups.setdefault(group, []).append(episode["score"])
            texts = {group: text(scores) for group, scores in groups.items()}
            out.append({"path": path, "report": report, "texts": texts, "scores": groups})
    names = [row["report"]["agent"] for row in out]
    for row in out:
        agent = row["report"]["agent"]
        row["name"] = agent if names.count(agent) == 1 else f"{agent} ({Path(row['path']).stem})"
    return sorted(out, key=lambda row: -statistics.fmean(row["scores"]["all"]))


def text(scores: list[float]) -> str:
    mean = round(statistics.fmean(scores), 6)
    low, high = bootstrap_ci(scores)
    return f"{mean:.3f}" if low == high else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def expected_tables(results: dict[str, Any]) -> list[list[list[str]]]:
    """The three tables' rows (agent first), from the files alone."""
    expected = rows(results)
    difficulties = [d for d in ("easy", "medium", "hard") if any(d in r["texts"] for r in expected)]
    families = [f for f in SCENARIO_FAMILIES if any(f in r["texts"] for r in expected)]
    leaderboard, by_family, runs = [], [], []
    for row in expected:
        report, texts = row["report"], row["texts"]
        failed = sum(e["score"] is None for e in report["episodes"])
        leaderboard.append(
            [
                row["name"],
                *(texts.get(g, "") for g in ("all", *difficulties)),
                str(len(report["episodes"])),
                str(failed),
            ]
        )
        by_family.append([row["name"], *(texts.get(f, "") for f in families)])
        info = report.get("run") or {}
        task_set = info.get("task_set") or {}
        listed = ", ".join([*task_set.get("tasks", []), *filter(None, [task_set.get("configs")])])
        budget = f"{info['max_steps']} units" if info.get("max_steps") else ("default" if info else "—")
        runs.append(
            [row["name"], info.get("version", "—"), listed or "—", budget, info.get("date", "—"), row["path"]]
        )
    return [leaderboard, by_family, runs]


def markdown_rows(markdown: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| agent"):
            current.append([cell.strip().replace("\\|", "|") for cell in line.strip("|").split(" | ")])
        elif line.startswith("|---"):
            continue
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def test_the_markdown_holds_the_figures_of_the_episodes(results: dict[str, Any]) -> None:
    markdown = (results["out"] / "report.md").read_text(encoding="utf-8")
    assert results["stdout"] == markdown  # the command prints what it writes
    leaderboard, by_family, runs, failed = markdown_rows(markdown)
    assert [leaderboard, by_family, runs] == expected_tables(results)
    assert failed == FAILED
    for row in rows(results):  # the overall mean is the one eval reported
        report = row["report"]
        assert row["texts"]["all"].startswith(f"{report['mean_score']:.3f}")
        assert bootstrap_ci(row["scores"]["all"]) == report["mean_score_ci"]


def test_the_same_files_give_the_same_bytes(results: dict[str, Any], tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert metric_tracker("report", *results["paths"], "--out", str(again)).returncode == 0
    written = sorted(p.relative_to(results["out"]) for p in results["out"].rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in written:
        assert (again / name).read_bytes() == (results["out"] / name).read_bytes(), name


def test_the_hub_files_follow_the_eval_results_convention(results: dict[str, Any]) -> None:
    benchmark = yaml.safe_load((results["out"] / "eval.yaml").read_text(encoding="utf-8"))
    assert benchmark["name"] == "metric_tracker_rl" and benchmark["description"]
    assert benchmark["evaluation_framework"] == "metric-tracker"
    tasks = {task["id"]: task for task in benchmark["tasks"]}
    assert list(tasks) == ["all", "easy", "medium", "hard"]
    assert all(set(task) == {"id", "config", "split"} for task in tasks.values())
    files = sorted((results["out"] / ".eval_results").glob("*.yaml"))
    expected = {row["name"]: row for row in rows(results)}
    assert len(files) == len(expected)
    for path in files:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        (name,) = [n for n in expected if path.stem == n.replace(" (", "__").rstrip(")")]
        row = expected[name]
        assert [e["dataset"]["task_id"] for e in entries] == [t for t in tasks if t in row["scores"]]
        for entry in entries:
            assert entry["dataset"] == {"id": "metric_tracker_rl", "task_id": entry["dataset"]["task_id"]}
            scores = row["scores"][entry["dataset"]["task_id"]]
            assert entry["value"] == round(statistics.fmean(scores), 6)
            low, high = bootstrap_ci(scores)
            assert f"95% CI [{low:.3f}, {high:.3f}], {len(scores)} episodes" in entry["notes"]
            assert entry.get("date") == (row["report"].get("run") or {}).get("date")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{oops", "not JSON"),
        ('{"agent": "solver"}', "a report needs an agent and episodes"),
        ("[]", "not a report of metric-tracker eval --json"),
    ],
    ids=["missing", "not-json", "no-episodes", "list"],
)
def test_a_file_that_is_not_a_report_is_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "scores.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    done = metric_tracker("report", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("metric-tracker report: error:") and message in line


def test_the_page_shows_the_figures_of_the_files_in_chromium(results: dict[str, Any]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    page_url = (results["out"] / "report.html").as_uri()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(page_url)
            page.wait_for_load_state("networkidle")
            cells = "r => [...r.cells].map(c => c.innerText.trim())"
            rows_of = f"ts => ts.map(t => [...t.rows].slice(1).map({cells}))"
            tables = page.eval_on_selector_all("table", rows_of)
            headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.innerText)")
            page.screenshot(path=str(results["out"] / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requested == [page_url]  # self-contained: nothing else is loaded
    assert headings[-1] == "Failed episodes"
    leaderboard, by_family, runs, failed = tables
    assert [leaderboard, by_family, runs] == expected_tables(results)
    assert failed == FAILED
