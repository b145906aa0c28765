"""The results page: ``metric-tracker eval --json`` files turned into a leaderboard.

``build_report(paths)`` reads one or more reports (one agent's, or ``{"reports": [...]}``)
and computes, from their episodes, every agent's mean score with its 95 % bootstrap
interval (``evaluation.bootstrap_ci``, deterministic) over all episodes, per difficulty and
per scenario family; failed episodes are counted and listed with their error.
``write_report`` writes it as a self-contained HTML page (inline CSS, nothing fetched),
as Markdown, and in Hugging Face's eval-results convention (see ``hub_files``). The same
files always give the same bytes: nothing here reads the clock; each run's date is the one
its report recorded.
"""

from __future__ import annotations

import html
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from metric_tracker_rl import constants as C
from metric_tracker_rl.evaluation import bootstrap_ci, with_ci
from metric_tracker_rl.families import SCENARIO_FAMILIES

ALL = "all"
MISSING = "—"
HUB_DATASET = "metric_tracker_rl"  # where the benchmark would live on the Hub (--hub-dataset)


class ReportError(ValueError):
    """A results file that cannot be read as an eval report, named with what is wrong."""


@dataclass(frozen=True)
class Score:
    """A group's mean with its 95 % bootstrap interval, over its ``n`` scored episodes."""

    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, scores: Sequence[float]) -> Score:
        low, high = bootstrap_ci(scores)
        return cls(round(statistics.fmean(scores), 6), low, high, len(scores))

    def text(self) -> str:
        return with_ci(self.mean, [self.low, self.high])


@dataclass(frozen=True)
class Run:
    """One agent's run, as one report of an eval file holds it."""

    name: str  # the row's label: the agent, and its file when an agent appears twice
    agent: str
    source: str
    episodes: list[dict[str, Any]]
    info: dict[str, Any]  # the report's "run": version, task set, budget, server, date
    scores: dict[str, Score] = field(default_factory=dict)  # "all", difficulties, families

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [episode for episode in self.episodes if episode.get("score") is None]

    def describe(self) -> dict[str, str]:
        """Version, task set, budget, date, source: as the tables show them."""
        info = self.info
        task_set = info.get("task_set") or {}
        parts = list(task_set.get("tasks") or [])
        if task_set.get("split"):
            parts.append(f"{task_set['split']} split")
        if task_set.get("configs"):
            parts.append(str(task_set["configs"]))
        if info.get("max_steps"):
            budget = f"{info['max_steps']} units"
        elif info.get("url"):
            servers = info["url"] if isinstance(info["url"], list) else [info["url"]]
            budget = f"the server's ({', '.join(map(str, servers))})"
        else:
            budget = "default" if info else MISSING
        return {
            "version": str(info.get("version") or MISSING),
            "task set": ", ".join(parts) or MISSING,
            "budget": budget,
            "date": str(info.get("date") or MISSING),
            "file": self.source,
        }


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every agent report of the files, in order; an agent that appears more than once is
    named with its file."""
    loaded: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        for report in _reports(Path(path)):
            loaded.append((str(path), report))
    agents = [report["agent"] for _, report in loaded]
    runs = []
    for source, report in loaded:
        agent = str(report["agent"])
        name = agent if agents.count(agent) == 1 else f"{agent} ({Path(source).stem})"
        runs.append(Run(name, agent, source, report["episodes"], report.get("run") or {}))
    return runs


def _reports(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"no such file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ReportError(f"cannot read {str(path)!r} ({err})") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not JSON ({err.msg}, line {err.lineno})") from None
    reports = data.get("reports", [data]) if isinstance(data, dict) else None
    if not isinstance(reports, list) or not reports:
        raise ReportError(f"{path}: not a report of metric-tracker eval --json")
    for report in reports:
        if not (
            isinstance(report, dict)
            and isinstance(report.get("agent"), str)
            and isinstance(report.get("episodes"), list)
            and all(isinstance(e, dict) and isinstance(e.get("config"), dict) for e in report["episodes"])
        ):
            raise ReportError(f"{path}: a report needs an agent and episodes (metric-tracker eval --json)")
    return reports


@cache
def _resolved(config: str) -> tuple[str, str]:
    """An episode config's (difficulty, scenario family), as a reset resolves it."""
    from metric_tracker_rl.arguments import OPENENV_RESET_ARGUMENTS
    from metric_tracker_rl.config import ConfigError
    from metric_tracker_rl.tasks import config_for

    arguments = {k: v for k, v in json.loads(config).items() if k not in OPENENV_RESET_ARGUMENTS}
    try:
        resolved = config_for(**arguments)
    except (ConfigError, TypeError):
        return MISSING, MISSING
    return resolved.difficulty, resolved.scenario_family


def episode_groups(episode: dict[str, Any]) -> tuple[str, str]:
    """The (difficulty, scenario family) an episode counts towards."""
    return _resolved(json.dumps(episode["config"], sort_keys=True))


def scored(runs: list[Run]) -> list[Run]:
    """The runs with their scores, best overall mean first (ties keep the files' order)."""
    out = []
    for run in runs:
        groups: dict[str, list[float]] = {}
        for episode in run.episodes:
            if episode.get("score") is None:
                continue
            difficulty, family = episode_groups(episode)
            for group in (ALL, difficulty, family):
                groups.setdefault(group, []).append(float(episode["score"]))
        scores = {group: Score.of(values) for group, values in groups.items()}
        out.append(Run(run.name, run.agent, run.source, run.episodes, run.info, scores))
    return sorted(out, key=lambda run: -run.scores[ALL].mean if ALL in run.scores else 1.0)


@dataclass(frozen=True)
class Report:
    runs: list[Run]
    difficulties: list[str]
    families: list[str]


def build_report(paths: Iterable[str | Path]) -> Report:
    runs = scored(load_runs(paths))
    present = {group for run in runs for group in run.scores}
    return Report(
        runs,
        [d for d in (*C.DIFFICULTIES, MISSING) if d in present],
        [f for f in (*SCENARIO_FAMILIES, MISSING) if f in present],
    )


# --- tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    groups: list[str | None]  # each column's score group (after the agent), None for text
    rows: list[list[str]]  # the cells' text, the agent first


def tables(report: Report) -> list[Table]:
    """Every table the page and the Markdown show."""
    difficulty_groups = [ALL, *report.difficulties]
    leaderboard = Table(
        "Mean score by difficulty (95 % bootstrap interval)",
        ["agent", "mean", *report.difficulties, "episodes", "failed"],
        [*difficulty_groups, None, None],
        [
            [run.name, *_texts(run, difficulty_groups), str(len(run.episodes)), str(len(run.failed))]
            for run in report.runs
        ],
    )
    families = Table(
        "Mean score by scenario family",
        ["agent", *report.families],
        list(report.families),
        [[run.name, *_texts(run, report.families)] for run in report.runs],
    )
    columns = ["version", "task set", "budget", "date", "file"]
    runs = Table(
        "Runs",
        ["agent", *columns],
        [None] * len(columns),
        [[run.name, *(run.describe()[c] for c in columns)] for run in report.runs],
    )
    return [leaderboard, families, runs]


def _texts(run: Run, groups: Iterable[str]) -> list[str]:
    return [run.scores[g].text() if g in run.scores else "" for g in groups]


def failures(report: Report) -> list[list[str]]:
    """agent, task, error of every failed episode."""
    return [
        [run.name, str(episode.get("label") or json.dumps(episode["config"])), str(episode.get("error", ""))]
        for run in report.runs
        for episode in run.failed
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(report: Report) -> str:
    out = ["# metric_tracker_rl results", ""]
    for table in tables(report):
        out += [f"## {table.title}", "", "| " + " | ".join(table.header) + " |"]
        out.append("|" + "---|" * len(table.header))
        out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
        out.append("")
    failed = failures(report)
    out += ["## Failed episodes", ""]
    if failed:
        out += ["| agent | task | error |", "|---|---|---|"]
        out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in failed]
    else:
        out.append(NO_FAILURES)
    return "\n".join(out) + "\n"


NO_FAILURES = "None: every episode was played to its end."
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem;
  color: #1f2328; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border-bottom: 1px solid #d0d7de; padding: .35rem .7rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.mean { font-weight: 600; } .ci { color: #59636e; font-size: .9em; }
.bar { display: block; height: 4px; background: #d0d7de; margin-top: 3px; }
.bar span { display: block; height: 4px; background: #0969da; }
td.error { font-family: ui-monospace, monospace; font-size: .85em; }
p.note { color: #59636e; }
"""


def _html_cell(text: str, score: Score | None, numeric: bool) -> str:
    if score is None:
        return f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"
    interval = ""
    if score.low != score.high:
        interval = f' <span class="ci">[{score.low:.3f}, {score.high:.3f}]</span>'
    width = f"{max(0.0, min(1.0, score.mean)) * 100:.1f}%"
    return (
        f'<td class="num" title="{score.n} episodes"><span class="mean">{score.mean:.3f}</span>{interval}'
        f'<span class="bar"><span style="width:{width}"></span></span></td>'
    )


def page(report: Report) -> str:
    """The HTML page: self-contained, no script, nothing loaded from elsewhere."""
    sections = []
    for table in tables(report):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
        body = []
        for run, row in zip(report.runs, table.rows, strict=True):
            cells = [f"<th>{html.escape(row[0])}</th>"]
            for column, group, text in zip(table.header[1:], table.groups, row[1:], strict=True):
                score = run.scores.get(group) if group is not None else None
                cells.append(_html_cell(text, score, column in ("episodes", "failed")))
            body.append("<tr>" + "".join(cells) + "</tr>")
        sections.append(f"<h2>{html.escape(table.title)}</h2><table><tr>{head}</tr>{''.join(body)}</table>")
    failed = failures(report)
    if failed:
        rows_html = "".join(
            f"<tr><th>{html.escape(agent)}</th><td>{html.escape(task)}</td>"
            f'<td class="error">{html.escape(error)}</td></tr>'
            for agent, task, error in failed
        )
        sections.append(
            "<h2>Failed episodes</h2><table><tr><th>agent</th><th>task</th><th>error</th></tr>"
            f"{rows_html}</table>"
        )
    else:
        sections.append(f'<h2>Failed episodes</h2><p class="note">{NO_FAILURES}</p>')
    note = (
        "Means over the episodes played to their end; the interval is a 95 % percentile bootstrap of the "
        "mean (10,000 resamples, fixed seed). Difficulty and scenario family are those of each episode's "
        "config."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>metric_tracker_rl results</title><style>{STYLE}</style></head><body>"
        f'<h1>metric_tracker_rl results</h1><p class="note">{html.escape(note)}</p>'
        + "".join(sections)
        + "</body></html>\n"
    )


# --- Hugging Face eval results -------------------------------------------------------------------


def hub_files(report: Report, dataset_id: str = HUB_DATASET) -> dict[str, str]:
    """The report in Hugging Face's eval-results convention, the one of
    https://huggingface.co/docs/hub/eval-results (hub-docs: docs/hub/eval-results.md and
    eval_results.yaml), not the older model-index card metadata: ``eval.yaml``, the benchmark's
    definition ("Registering a Benchmark": name, description, evaluation_framework, tasks with
    id, config and split), one task per group of episodes (all, each difficulty); and
    ``.eval_results/<agent>.yaml`` per agent, one result per task (dataset id and task_id,
    value: the mean score, date: the run's), with the interval, episodes, budget and version
    as notes."""
    groups = [ALL, *(d for d in report.difficulties if d != MISSING)]
    benchmark = {
        "name": "metric_tracker_rl",
        "description": (
            "Investigate four weeks of synthetic product-funnel metrics through priced analysis tools "
            "and submit an anomaly report, graded against hidden seeded truth with a score in [0, 1]."
        ),
        "evaluation_framework": "metric-tracker",
        "tasks": [{"id": group, "config": "default", "split": "test"} for group in groups],
    }
    files = {"eval.yaml": _yaml(benchmark)}
    for run in report.runs:
        described = run.describe()
        results = []
        for group in groups:
            if group not in run.scores:
                continue
            score = run.scores[group]
            entry: dict[str, Any] = {"dataset": {"id": dataset_id, "task_id": group}, "value": score.mean}
            if run.info.get("date"):
                entry["date"] = run.info["date"]
            entry["notes"] = (
                f"95% CI [{score.low:.3f}, {score.high:.3f}], {score.n} episodes; "
                f"task set {described['task set']}; budget {described['budget']}; "
                f"metric_tracker_rl {described['version']}"
            )
            results.append(entry)
        files[f".eval_results/{_file_name(run.name)}.yaml"] = _yaml(results)
    return files


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_") or "agent"


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def write_report(
    paths: Iterable[str | Path], out_dir: str | Path, dataset_id: str = HUB_DATASET
) -> tuple[Report, list[Path]]:
    """Write report.html, report.md, eval.yaml and .eval_results/ into ``out_dir``."""
    report = build_report(paths)
    out = Path(out_dir)
    files = {"report.html": page(report), "report.md": markdown(report), **hub_files(report, dataset_id)}
    written = []
    for name, text in files.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return report, written
