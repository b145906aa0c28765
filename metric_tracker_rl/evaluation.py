"""Run an agent over a set of reset configs and summarise the scores.

In process (each worker owns an environment) or against a server URL (each worker owns
a WebSocket session). Results keep the order of the configs, so a run is deterministic
for every agent that is.
"""

from __future__ import annotations

import multiprocessing
import statistics
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

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


def _play_in_process(agent_name: str, config: dict[str, Any]) -> dict[str, Any]:
    final = AGENTS[agent_name]().play(MetricTrackerRlEnvironment(), dict(config))
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
    on_episode: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Play every config once; return the report (``agent``, ``episodes``, ``mean_score``, ``per_task``).

    ``labels`` (one per config) name the groups of ``per_task``; by default a config's
    task id, or family:difficulty.
    """
    if agent_name not in AGENTS:
        raise ValueError(f"unknown agent {agent_name!r}; available: {sorted(AGENTS)}")
    episodes = list(_episodes(agent_name, configs, url, workers, on_episode))
    if labels is not None:
        for episode, label in zip(episodes, labels, strict=True):
            episode["label"] = label
    return summarise(agent_name, episodes)


def _episodes(
    agent_name: str,
    configs: list[dict[str, Any]],
    url: str | None,
    workers: int,
    on_episode: Callable[[dict[str, Any]], None] | None,
) -> Iterable[dict[str, Any]]:
    def play(config: dict[str, Any]) -> Any:
        if url is not None:
            return pool.submit(_play_remote, agent_name, url, config)
        return pool.submit(_play_in_process, agent_name, config)

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
    return {
        "agent": agent_name,
        "episodes": episodes,
        "mean_score": round(statistics.fmean(e["score"] for e in episodes), 6) if episodes else 0.0,
        "per_task": {label: round(statistics.fmean(scores), 6) for label, scores in groups.items()},
    }


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """Agents as rows, task groups as columns, plus the mean over all episodes."""
    labels = list(dict.fromkeys(label for r in reports for label in r["per_task"]))
    lines = [
        "| agent | " + " | ".join(labels) + " | mean |",
        "|---|" + "---|" * (len(labels) + 1),
    ]
    for report in reports:
        cells = [
            f"{report['per_task'][label]:.4f}" if label in report["per_task"] else "" for label in labels
        ]
        lines.append(f"| {report['agent']} | " + " | ".join(cells) + f" | {report['mean_score']:.4f} |")
    return "\n".join(lines)
