"""The benchmark as a verifiers (v1) environment: taskset, task, environment, entry point.

Tasks are the server's: a split its Task API publishes (``named``, ``eval``), or ``train``,
an endless stream of procedural configs over every scenario family, difficulty and density
that the server's ``start_episode`` accepts, with seeds from ``train_seed`` (training seeds
stay below the evaluation split's). Each task's prompt is the server's briefing for it (a
reset's instruction, expected row count and budget). A rollout plays one episode on one
server of the pool (round robin, skipping servers that do not answer), through the tool
server of ``toolset.py``; its reward is the grader's score, its metrics the grader's parts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

import verifiers.v1 as vf
from pydantic import Field, field_validator

from metric_tracker_verifiers import remote
from metric_tracker_verifiers.episode import EpisodeData, EpisodeState
from metric_tracker_verifiers.toolset import EpisodeToolset

TASKSET_ID = "metric-tracker-verifiers"  # this package, as verifiers and prime-rl name it
TRAIN_SPLIT = "train"
DEFAULT_URL = "http://localhost:8000"
DEFAULT_TRAIN_SEED = 10_000  # the training datasets' first seed (metric-tracker dataset)

SYSTEM_PROMPT = (
    "You are a careful product-analytics investigator. The episode below has started: its data "
    "is visible only through the analysis tools, each of which spends budget units (the cost is "
    "in its description). Look where the evidence points, confirm every anomaly with its "
    "family's detection method, then call submit_report with the confirmed rows, values copied "
    "exactly. Extra rows cost points; you may resubmit while submissions remain."
)


def briefing(observation: dict[str, Any]) -> str:
    """The first user message: the server's instruction and the episode's public facts."""
    facts = {
        key: observation.get(key)
        for key in ("task_id", "config", "expected_row_count", "budget", "conversion_metric_definitions")
    }
    return (
        f"{observation['instruction']}\n\nEpisode: {json.dumps(facts, separators=(',', ':'))}\n\n"
        "Begin with task_overview."
    )


_next_server = itertools.count()  # round robin over a task's servers, one turn per rollout


def pick_server(urls: Sequence[str]) -> str:
    """The next server of the pool that answers its health check."""
    start = next(_next_server)
    for offset in range(len(urls)):
        url = urls[(start + offset) % len(urls)]
        if remote.healthy(url):
            return url
    raise remote.ServerError(f"no metric_tracker_rl server answers at {list(urls)}")


class MetricTrackerTaskConfig(vf.TaskConfig):
    tools: vf.ToolsetConfig = vf.ToolsetConfig()


class MetricTrackerTask(vf.Task[EpisodeData, EpisodeState, MetricTrackerTaskConfig]):
    @property
    def key(self) -> str:
        return str(self.data.id)  # the task's id on the server, whatever servers play it

    @classmethod
    def toolsets(cls, config: MetricTrackerTaskConfig) -> list[vf.Toolset]:
        return [EpisodeToolset(config.tools)]  # one per rollout: one episode each

    async def setup(self, trace: vf.Trace) -> None:
        url = await asyncio.to_thread(pick_server, self.data.base_urls)
        trace.state.server_url = url
        trace.info["server_url"] = url  # which replica played the rollout, kept on the trace

    @vf.stop
    async def episode_over(self, trace: vf.Trace) -> bool:
        return trace.state.done or trace.state.error is not None

    @vf.reward
    async def episode_reward(self, trace: vf.Trace) -> float:
        """The grader's score of the last graded submission; 0 if nothing was graded."""
        if trace.state.error is not None:
            raise remote.ServerError(trace.state.error)  # not the model's score: the rollout failed
        return float(trace.state.reward or 0.0)

    @vf.metric
    async def grader(self, trace: vf.Trace) -> dict[str, float]:
        """Every numeric part of the grader's breakdown, and the budget the episode used."""
        parts = {
            key: float(value)
            for key, value in trace.state.reward_breakdown.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        budget = trace.state.budget
        parts["steps_used"] = float(budget.get("steps_used", 0))
        parts["submissions_used"] = float(budget.get("submissions_used", 0))
        parts["tool_calls"] = float(trace.state.tool_calls)
        return parts


class MetricTrackerConfig(vf.TasksetConfig):
    base_url: list[str] = Field(default_factory=lambda: [DEFAULT_URL])
    """The metric_tracker_rl server (``metric-tracker serve``), or a pool of replicas: a list,
    or one string with the URLs separated by commas."""
    split: str = "eval"
    """``named`` (3 tasks), ``eval`` (72 configs) or ``train`` (endless procedural configs)."""
    difficulty: str | None = None
    """Only the tasks of this difficulty (one that ``start_episode`` accepts)."""
    train_seed: int = Field(DEFAULT_TRAIN_SEED, ge=0)
    """The first seed of the ``train`` split."""
    task: MetricTrackerTaskConfig = MetricTrackerTaskConfig()

    @field_validator("base_url", mode="before")
    @classmethod
    def _pool(cls, value: Any) -> Any:
        listed = [value] if isinstance(value, str) else value
        if isinstance(listed, list) and all(isinstance(item, str) for item in listed):
            listed = [url for item in listed for url in item.split(",")]
        return remote.server_urls(listed)


class MetricTrackerTaskset(vf.Taskset[MetricTrackerTask, MetricTrackerConfig]):
    @property
    def INFINITE(self) -> bool:  # noqa: N802 (verifiers' name)
        return self.config.split == TRAIN_SPLIT

    def load(self) -> Iterator[MetricTrackerTask]:
        urls = self.config.base_url  # cleaned by the config's validator
        url = next((url for url in urls if remote.healthy(url)), urls[0])  # tasks are the same on each
        wanted = self.config.difficulty
        schema = None if wanted is None else _start_schema(url)
        if schema is not None and wanted not in (choices := _choices(schema, "difficulty")):
            raise ValueError(f"unknown difficulty {wanted!r}; expected one of {choices}")
        for spec in self._specs(url, schema):
            if wanted is not None and spec["reset"].get("difficulty", wanted) != wanted:
                continue  # no need to ask the server
            observation = remote.first_observation(url, spec["reset"])
            config = observation["config"]
            if wanted not in (None, config["difficulty"]):
                continue
            data = EpisodeData(
                id=spec["id"],
                name=spec["id"],
                prompt=briefing(observation),
                system_prompt=SYSTEM_PROMPT,
                reset=spec["reset"],
                base_urls=urls,
                difficulty=config["difficulty"],
                scenario_family=config["scenario_family"],
            )
            yield MetricTrackerTask(data, self.config.task)

    def _specs(self, url: str, schema: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """The split's tasks as the Task API gives them: ``{"id", "reset"}`` (``schema``:
        ``start_episode``'s, if already fetched)."""
        split = self.config.split
        if split == TRAIN_SPLIT:
            yield from self._train_specs(url, schema)
            return
        published = remote.split_names(url)
        if split not in published:
            raise ValueError(f"unknown split {split!r}; expected one of {[*published, TRAIN_SPLIT]}")
        yield from remote.split_tasks(url, split)

    def _train_specs(self, url: str, schema: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every (scenario family, difficulty, density) that ``start_episode`` accepts, in turn,
        each with the next seed (``schema``: its input schema, fetched here if not given)."""
        if schema is None:
            schema = _start_schema(url)
        choices = [_choices(schema, name) for name in ("scenario_family", "difficulty")]
        densities = _choices(schema, "anomaly_density")
        cells = [
            cell
            for cell in itertools.product(*choices, densities)
            if self.config.difficulty in (None, cell[1])
        ]
        for number in itertools.count():
            family, difficulty, density = cells[number % len(cells)]
            seed = self.config.train_seed + number
            reset = {"seed": seed, "scenario_family": family, "difficulty": difficulty}
            yield {"id": f"{TRAIN_SPLIT}-{seed}", "reset": reset | {"anomaly_density": density}}


def _start_schema(url: str) -> dict[str, Any]:
    """The input schema of the server's ``start_episode``: every reset argument it accepts."""
    return next(t for t in remote.tool_catalog(url) if t["name"] == remote.START_EPISODE)["inputSchema"]


def _choices(schema: dict[str, Any], argument: str) -> list[str]:
    """The values an argument's schema enumerates (in its nullable ``anyOf`` form or plain)."""
    node = schema["properties"][argument]
    for option in [node, *node.get("anyOf", [])]:
        if "enum" in option:
            return list(option["enum"])
    raise remote.ServerError(f"start_episode's {argument} lists no values")


class MetricTrackerEnvConfig(vf.EnvConfig):
    # The harness is a plain tool-calling chat program (no shell), run as a local process: the
    # only tools are the episode's. Override with --env.agent.harness.* / --env.agent.runtime.*.
    agent: vf.AgentConfig = vf.AgentConfig(harness={"id": "null"}, runtime={"type": "subprocess"})


class MetricTrackerEnv(vf.Env[MetricTrackerEnvConfig]):
    """One agent plays one episode per rollout."""

    async def run(self, task: vf.Task, agents: vf.Agents) -> None:
        await agents.agent.run(task)


def load_environment(
    base_url: str | Sequence[str] = DEFAULT_URL,
    split: str = "eval",
    difficulty: str | None = None,
    max_steps: int | None = None,
    **taskset: Any,
) -> MetricTrackerEnv:
    """The environment over a running server (or a pool of them, round robin per rollout).

    ``split``: ``named``, ``eval`` or ``train``; ``difficulty``: only its tasks; ``max_steps``:
    the most model turns a rollout may take (the episode's own budget, in units, is the
    server's). Other keyword arguments are taskset settings (``train_seed``)."""
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    urls = remote.server_urls(base_url)
    config = MetricTrackerEnvConfig(
        taskset={"id": TASKSET_ID, "base_url": urls, "split": split, "difficulty": difficulty, **taskset},
        agent={"max_turns": max_steps},
    )
    return vf.load_environment(config)
