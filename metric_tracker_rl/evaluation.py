"""Run an agent over a set of reset configs and summarise the scores.

In process (each worker owns an environment) or against a server URL (each worker owns
a WebSocket session). Results keep the order of the configs, so a run is deterministic
for every agent that is.
"""

from __future__ import annotations

import multiprocessing
import statistics
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from metric_tracker_rl.agents import AGENTS, ClientHandle
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.models import MetricTrackerRlObservation


def config_label(config: dict[str, Any]) -> str:
    """How an episode is grouped in ``per_task``: its task id, or family:difficulty."""
    if config.get("task_id"):
        return str(config["task_id"])
    return f"{config.get('scenario_family', 'mixed')}:{config.get('difficulty', 'medium')}"


def episode_record(config: dict[str, Any], final: MetricTrackerRlObservation) -> dict[str, Any]:
    return {
        "config": config,
        "label": config_label(config),
        "score": float(final.reward or 0.0),
        "steps": final.budget.get("steps_used", 0),
        "submissions": final.budget.get("submissions_used", 0),
        "reward_breakdown": final.reward_breakdown,
    }


BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20_260_331  # fixed: the same scores always give the same interval
CONFIDENCE = 0.95


def bootstrap_ci(scores: Sequence[float]) -> list[float]:
    """95 % percentile-bootstrap confidence interval of the mean (deterministic)."""
    if not scores:
        return [0.0, 0.0]
    values = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))].mean(axis=1)
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return [round(float(low), 6), round(float(high), 6)]


def _play_in_process(agent_name: str, config: dict[str, Any], max_steps: int | None = None) -> dict[str, Any]:
    final = AGENTS[agent_name]().play(MetricTrackerRlEnvironment(max_steps=max_steps), dict(config))
    return episode_record(config, final)


def _play_remote(agent_name: str, url: str, config: dict[str, Any]) -> dict[str, Any]:
    from metric_tracker_rl.client import MetricTrackerRlEnv

    with MetricTrackerRlEnv(base_url=url).sync() as client:
        final = AGENTS[agent_name]().play(ClientHandle(client), dict(config))
    return episode_record(config, final)


def run_evaluation(
    agent_name: str,
    configs: list[dict[str, Any]],
    *,
    labels: list[str] | None = None,
    url: str | None = None,
    workers: int = 1,
    max_steps: int | None = None,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Play every config once; return the report (``agent``, ``episodes``, ``mean_score``,
    ``mean_score_ci``, ``per_task``, ``per_task_ci``).

    ``labels`` (one per config) name the groups of ``per_task``; by default a config's
    task id, or family:difficulty. ``max_steps`` replaces the default step budget (in
    process only: a server's budget is its operator's).
    """
    if agent_name not in AGENTS:
        raise ValueError(f"unknown agent {agent_name!r}; available: {sorted(AGENTS)}")
    if max_steps is not None and url is not None:
        raise ValueError("max_steps applies in process; a server's budget is set where it is served")
    episodes = list(_episodes(agent_name, configs, url, workers, max_steps, on_episode))
    if labels is not None:
        for episode, label in zip(episodes, labels, strict=True):
            episode["label"] = label
    return summarise(agent_name, episodes)


def _episodes(
    agent_name: str,
    configs: list[dict[str, Any]],
    url: str | None,
    workers: int,
    max_steps: int | None,
    on_episode: Callable[[dict[str, Any]], None] | None,
) -> Iterable[dict[str, Any]]:
    def play(config: dict[str, Any]) -> Any:
        if url is not None:
            return pool.submit(_play_remote, agent_name, url, config)
        return pool.submit(partial(_play_in_process, max_steps=max_steps), agent_name, config)

    pool: Executor
    if workers <= 1:
        pool = ThreadPoolExecutor(max_workers=1)
    elif url is not None:
        pool = ThreadPoolExecutor(max_workers=workers)
    else:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    with pool:
        futures = [play(config) for config in configs]
        for future in futures:
            record = future.result()
            if on_episode is not None:
                on_episode(record)
            yield record


def summarise(agent_name: str, episodes: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[float]] = {}
    for episode in episodes:
        groups.setdefault(episode["label"], []).append(episode["score"])
    scores = [e["score"] for e in episodes]
    return {
        "agent": agent_name,
        "episodes": episodes,
        "mean_score": round(statistics.fmean(scores), 6) if episodes else 0.0,
        "mean_score_ci": bootstrap_ci(scores),
        "per_task": {label: round(statistics.fmean(group), 6) for label, group in groups.items()},
        "per_task_ci": {label: bootstrap_ci(group) for label, group in groups.items()},
    }


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """Agents as rows, task groups as columns, plus the mean over all episodes; every mean
    with its 95 % bootstrap confidence interval."""
    labels = list(dict.fromkeys(label for r in reports for label in r["per_task"]))
    lines = [
        "| agent | " + " | ".join(labels) + " | mean |",
        "|---|" + "---|" * (len(labels) + 1),
    ]
    for report in reports:
        means, intervals = report["per_task"], report["per_task_ci"]
        cells = [_with_ci(means[label], intervals[label]) if label in means else "" for label in labels]
        mean = _with_ci(report["mean_score"], report["mean_score_ci"])
        lines.append(f"| {report['agent']} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def _with_ci(mean: float, ci: Sequence[float]) -> str:
    if ci[0] == ci[1]:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
