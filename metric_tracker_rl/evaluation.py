"""Run an agent over a set of reset configs and summarise the scores.

In process (each worker owns an environment) or against servers (each worker owns a
WebSocket session; with several URLs, episodes go to each server in turn, and an episode
whose server stops answering is replayed on another: ``client.ServerPool``). Results keep
the order of the configs, so a run is deterministic for every agent that is. An episode
that fails (the LLM endpoint after its retries, no server left to play it) is recorded
with its error and the run goes on; a journal
(``Journal``) keeps every finished episode on disk as it finishes, so an interrupted run
can resume where it stopped. An interrupt (``KeyboardInterrupt``) stops the episodes in
flight at once, without waiting for them: they are not journalled, and a resumed run plays
them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import signal
import statistics
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from metric_tracker_rl.agents import AGENTS
from metric_tracker_rl.client import ServerPool
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.models import MetricTrackerRlObservation

MAX_ERROR_CHARS = 500


def config_label(config: dict[str, Any]) -> str:
    """How an episode is grouped in ``per_task``: its task id, or family:difficulty."""
    if config.get("task_id"):
        return str(config["task_id"])
    return f"{config.get('scenario_family', 'mixed')}:{config.get('difficulty', 'medium')}"


def episode_record(config: dict[str, Any], final: MetricTrackerRlObservation) -> dict[str, Any]:
    return _plain(
        {
            "config": config,
            "label": config_label(config),
            "score": float(final.reward or 0.0),
            "steps": final.budget.get("steps_used", 0),
            "submissions": final.budget.get("submissions_used", 0),
            "reward_breakdown": final.reward_breakdown,
        }
    )


def failed_record(config: dict[str, Any], error: BaseException) -> dict[str, Any]:
    """An episode that could not be played to its end: no score, the error instead."""
    message = " ".join(f"{type(error).__name__}: {error}".split())[:MAX_ERROR_CHARS]
    return _plain({"config": config, "label": config_label(config), "score": None, "error": message})


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """The record as JSON gives it back, so a resumed run reports exactly the same bytes."""
    return json.loads(json.dumps(record, sort_keys=True, allow_nan=False))


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


def _play_in_process(agent_name: str, max_steps: int | None, config: dict[str, Any]) -> dict[str, Any]:
    try:
        final = AGENTS[agent_name]().play(MetricTrackerRlEnvironment(max_steps=max_steps), dict(config))
    except Exception as err:  # one failed episode is recorded, the run goes on
        return failed_record(config, err)
    return episode_record(config, final)


def _play_remote(agent_name: str, pool: ServerPool, config: dict[str, Any]) -> dict[str, Any]:
    """One episode on the pool's next server; a record that moved says how many times."""
    try:
        with pool.episode() as env:
            final = AGENTS[agent_name]().play(env, dict(config))
            moves = env.moves
    except Exception as err:  # no server left, an endpoint that gave up, ...
        return failed_record(config, err)
    record = episode_record(config, final)
    return record | {"moved": moves} if moves else record


def run_date() -> str:
    """Today (UTC) as an ISO date: when a run is recorded as played. Metadata of a report,
    never an input to an episode or a score."""
    return dt.datetime.now(dt.UTC).date().isoformat()


def run_metadata(
    *,
    tasks: list[str],
    split: str | None,
    configs_file: str | None,
    max_steps: int | None,
    url: str | list[str] | None,
    date: str,
) -> dict[str, Any]:
    """How a report's scores were obtained: the package version, the task set, the step
    budget (None: each episode's default, or the server's with ``url``), the server (or the
    list of servers), the date."""
    from metric_tracker_rl import __version__

    return {
        "version": __version__,
        "task_set": {"tasks": tasks, "split": split, "configs": configs_file},
        "max_steps": max_steps,
        "url": url,
        "date": date,
    }


class Journal:
    """Finished episodes, one JSON line each, appended as they finish (``PATH.partial.jsonl``
    beside a report at PATH), after a first line with the run's date. ``resume=True`` keeps
    the lines already there, and the run skips the episodes they hold and keeps their date;
    otherwise the journal starts empty, dated today. A failed episode is written too, but a
    resumed run plays it again."""

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: dict[str, dict[str, Any]] = {}
        self.date = run_date()
        if resume and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    if "run" in entry:
                        self.date = str(entry["run"]["date"])
                        continue
                    key, record = entry["key"], entry["record"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by the interruption
                if record.get("score") is not None:
                    self.done[key] = record
        else:
            self.path.write_text(json.dumps({"run": {"date": self.date}}) + "\n", encoding="utf-8")
        self._handle = self.path.open("a", encoding="utf-8")

    @staticmethod
    def key(
        agent_name: str,
        index: int,
        config: dict[str, Any],
        max_steps: int | None,
        url: str | list[str] | None,
    ) -> str:
        """An episode's key: the same for the same episode of the same run, whichever of the
        run's servers played it."""
        servers = sorted(set(url)) if isinstance(url, list) else url
        return json.dumps([agent_name, index, config, max_steps, servers], sort_keys=True)

    def append(self, key: str, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps({"key": key, "record": record}, sort_keys=True) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def run_evaluation(
    agent_name: str,
    configs: list[dict[str, Any]],
    *,
    labels: list[str] | None = None,
    url: str | list[str] | None = None,
    workers: int = 1,
    max_steps: int | None = None,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    journal: Journal | None = None,
) -> dict[str, Any]:
    """Play every config once; return the report (``agent``, ``episodes``, ``mean_score``,
    ``mean_score_ci``, ``per_task``, ``per_task_ci``, ``failed_episodes``, ``moved_episodes``).

    ``url``: a server, or a list of servers to spread the episodes over (None: in process).

    ``labels`` (one per config) name the groups of ``per_task``; by default a config's
    task id, or family:difficulty. ``max_steps`` replaces the default step budget (in
    process only: a server's budget is its operator's). With a ``journal``, episodes it
    already holds are not played again and every new one is written to it as it finishes.
    """
    if agent_name not in AGENTS:
        raise ValueError(f"unknown agent {agent_name!r}; available: {sorted(AGENTS)}")
    if max_steps is not None and url is not None:
        raise ValueError("max_steps applies in process; a server's budget is set where it is served")
    keys = [Journal.key(agent_name, i, _plain(c), max_steps, url) for i, c in enumerate(configs)]
    known = journal.done if journal is not None else {}
    todo = [i for i, key in enumerate(keys) if key not in known]
    records: dict[int, dict[str, Any]] = {i: known[key] for i, key in enumerate(keys) if key in known}
    for index in sorted(records):
        if on_episode is not None:
            on_episode(records[index])
    with contextlib.closing(
        _episodes(agent_name, [configs[i] for i in todo], url, workers, max_steps)
    ) as played:
        for index, record in zip(todo, played, strict=True):
            if journal is not None:
                journal.append(keys[index], record)
            records[index] = record
            if on_episode is not None:
                on_episode(record)
    episodes = [records[i] for i in range(len(configs))]
    if labels is not None:
        for episode, label in zip(episodes, labels, strict=True):
            episode["label"] = label
    return summarise(agent_name, episodes)


def _episodes(
    agent_name: str,
    configs: list[dict[str, Any]],
    url: str | list[str] | None,
    workers: int,
    max_steps: int | None,
) -> Iterator[dict[str, Any]]:
    """The episodes' records in the order of the configs. One worker plays in this thread, so
    that an interrupt stops its episode where it is; several play in processes (in process)
    or daemon threads (on servers), which an interrupt stops or leaves without waiting."""
    if url is not None:
        play: Callable[[dict[str, Any]], dict[str, Any]] = partial(_play_remote, agent_name, ServerPool(url))
    else:
        play = partial(_play_in_process, agent_name, max_steps)
    if workers <= 1 or len(configs) <= 1:
        yield from map(play, configs)
    elif url is not None:
        yield from _in_daemon_threads(play, configs, workers)
    else:
        yield from _in_processes(play, configs, workers)


def _in_processes(
    play: Callable[[dict[str, Any]], dict[str, Any]], configs: list[dict[str, Any]], workers: int
) -> Iterator[dict[str, Any]]:
    pool = multiprocessing.get_context("fork").Pool(
        min(workers, len(configs)), initializer=_ignore_interrupts
    )
    try:
        yield from pool.imap(play, configs)
        pool.close()
    finally:
        pool.terminate()  # after an interrupt: the episodes in flight stop here
        pool.join()


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C (sent to the whole process group) to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _in_daemon_threads(
    play: Callable[[dict[str, Any]], dict[str, Any]], configs: list[dict[str, Any]], workers: int
) -> Iterator[dict[str, Any]]:
    """Threads that a finishing interpreter does not wait for (an interrupted run exits at
    once; their sessions close with the process)."""
    done: dict[int, dict[str, Any]] = {}
    ready = threading.Condition()
    pending = iter(range(len(configs)))
    stopped = threading.Event()

    def work() -> None:
        while not stopped.is_set():
            with ready:
                index = next(pending, None)
            if index is None:
                return
            record = play(configs[index])
            with ready:
                done[index] = record
                ready.notify_all()

    for _ in range(min(workers, len(configs))):
        threading.Thread(target=work, name="metric-tracker-eval", daemon=True).start()
    try:
        for index in range(len(configs)):
            with ready:
                while index not in done:
                    ready.wait(timeout=0.5)
                record = done.pop(index)
            yield record
    finally:
        stopped.set()


def summarise(agent_name: str, episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Means and intervals over the episodes that were played to the end; failed ones are
    listed with their error and counted in ``failed_episodes``; ``moved_episodes`` counts
    those replayed on another server after theirs stopped answering."""
    groups: dict[str, list[float]] = {}
    for episode in episodes:
        if episode["score"] is not None:
            groups.setdefault(episode["label"], []).append(episode["score"])
    scores = [e["score"] for e in episodes if e["score"] is not None]
    return {
        "agent": agent_name,
        "episodes": episodes,
        "failed_episodes": len(episodes) - len(scores),
        "moved_episodes": sum(1 for episode in episodes if episode.get("moved")),
        "mean_score": round(statistics.fmean(scores), 6) if scores else 0.0,
        "mean_score_ci": bootstrap_ci(scores),
        "per_task": {label: round(statistics.fmean(group), 6) for label, group in groups.items()},
        "per_task_ci": {label: bootstrap_ci(group) for label, group in groups.items()},
    }


NOT_PLAYED = "n/a"  # a group (or a whole report) without an episode played to its end


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """Agents as rows, task groups as columns, then the mean over all episodes played to the
    end (each mean with its 95 % bootstrap confidence interval), how many episodes the row
    covers and how many of them failed."""
    labels = list(dict.fromkeys(e["label"] for r in reports for e in r["episodes"]))
    columns = ["agent", *labels, "mean", "episodes", "failed"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for report in reports:
        means, intervals = report["per_task"], report["per_task_ci"]
        cells = [
            with_ci(means[label], intervals[label]) if label in means else NOT_PLAYED for label in labels
        ]
        played = len(report["episodes"]) - report["failed_episodes"]
        mean = with_ci(report["mean_score"], report["mean_score_ci"]) if played else NOT_PLAYED
        row = [report["agent"], *cells, mean, str(len(report["episodes"])), str(report["failed_episodes"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def with_ci(mean: float, ci: Sequence[float]) -> str:
    """``0.523 [0.461, 0.585]``; the mean alone when the interval is a point."""
    if ci[0] == ci[1]:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
