"""Scaling out on one machine: ``metric-tracker serve --workers N``, and clients that spread
episodes over several servers and move an episode whose server dies.

Real server processes on loopback (``servers.Served``), the official MCP SDK client
(``drive.py``) and OpenEnv's WebSocket client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Served
from solver_calls import solver_calls
from test_episodes import StatelessHttp
from test_mcp import TASK, call, drive, tool_result

from metric_tracker_rl.agents import SolverAgent
from metric_tracker_rl.client import MetricTrackerRlEnv, ServerPool
from metric_tracker_rl.integrations.dataset import solver_conversation
from metric_tracker_rl.integrations.trl import MetricTrackerToolEnv
from metric_tracker_rl.mcp.server import EPISODE_URI
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.tasks import NAMED_TASKS

pytestmark = pytest.mark.timeout(300)

SESSIONS = 512


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``metric-tracker serve --workers 2`` with its default limits."""
    served = Served(tmp_path_factory.mktemp("workers") / "serve.log", "--workers", "2").launch().wait()
    try:
        yield served
    finally:
        served.stop()


# --- the pool, without servers ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_pool_takes_servers_in_turn_and_passes_over_one_that_stopped_answering() -> None:
    clock = Clock()
    pool = ServerPool(["http://a", "http://b", "http://c", "http://a"], retry_after_s=5.0, clock=clock)
    assert pool.urls == ["http://a", "http://b", "http://c"]  # once each
    assert [pool.next_url() for _ in range(6)] == ["http://a", "http://b", "http://c"] * 2
    pool.mark_down("http://b")
    assert [pool.next_url() for _ in range(4)] == ["http://a", "http://c", "http://c", "http://a"]
    assert pool.next_url(avoid="http://a") == "http://c"
    clock.now = 5.0  # back in turn
    assert {pool.next_url() for _ in range(3)} == {"http://a", "http://b", "http://c"}
    for url in pool.urls:
        pool.mark_down(url)
    assert pool.next_url(avoid="http://a") in ("http://b", "http://c")  # none answers: try anyway
    with pytest.raises(ValueError, match="at least one"):
        ServerPool([])


def test_trl_urls_must_be_a_list() -> None:
    with pytest.raises(ValueError, match="not both"):
        MetricTrackerToolEnv("http://a", urls=["http://b"])
    with pytest.raises(ValueError, match="non-empty list"):
        MetricTrackerToolEnv(urls="http://a")


# --- serve --workers 2 ------------------------------------------------------------------------------


def test_two_workers_hold_512_concurrent_websocket_sessions_without_an_error(two_workers: Served) -> None:
    """512 sessions open at once, each with its own episode; every one then steps while all
    are still open."""

    async def hold() -> list[Any]:
        clients = [MetricTrackerRlEnv(base_url=two_workers.url) for _ in range(SESSIONS)]

        async def start(i: int, client: MetricTrackerRlEnv) -> Any:
            await client.connect()
            return (await client.reset(seed=i, difficulty=("easy", "medium", "hard")[i % 3])).observation

        async def list_dates(client: MetricTrackerRlEnv) -> Any:
            return (await client.step(MetricTrackerRlAction(analysis_method="list_dates"))).observation

        try:
            firsts = await asyncio.gather(
                *(start(i, c) for i, c in enumerate(clients)), return_exceptions=True
            )
            steps = await asyncio.gather(*(list_dates(c) for c in clients), return_exceptions=True)
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        return [*firsts, *steps]

    answers = asyncio.run(hold())
    errors = [a for a in answers if isinstance(a, BaseException)]
    assert errors == [], f"{len(errors)} errors, the first: {errors[:1]}"
    firsts, steps = answers[:SESSIONS], answers[SESSIONS:]
    assert {a.status for a in firsts} == {"ready"} and {a.status for a in steps} == {"analysis"}
    assert [a.config["seed"] for a in firsts] == list(range(SESSIONS))
    assert {a.budget["steps_used"] for a in steps} == {1}


def test_an_mcp_session_plays_on_whichever_worker_each_request_reaches(two_workers: Served) -> None:
    """Every request on a new connection, so consecutive requests of the session reach either
    worker: the session and its episode live in the workers' shared records."""
    plan = [
        call("start_episode", task_id=TASK),
        *(call(name, **arguments) for name, arguments in solver_calls(TASK)[1:]),
        {"op": "read_resource", "uri": EPISODE_URI},
    ]
    (session,) = drive(
        {
            "transport": "http",
            "url": f"{two_workers.url}/mcp",
            "api": "session",
            "fresh_connections": True,
            "sessions": [plan],
        }
    )["sessions"]
    results = session["results"]
    assert all("ok" in r for r in results), [r for r in results if "ok" not in r]
    final = tool_result(results[-2], "submit_report")
    assert (final["status"], final["reward"], final["correct_row_count"]) == (
        "graded",
        1.0,
        NAMED_TASKS[TASK].anomaly_rows,
    )
    assert json.loads(results[-1]["ok"]["contents"][0]["text"])["last_score"] == 1.0


def test_a_kept_episode_plays_over_plain_http_on_either_worker(two_workers: Served) -> None:
    client = StatelessHttp(two_workers.url)  # one connection per request
    final = SolverAgent().play(client, {"task_id": TASK})
    assert (final.reward, final.done) == (1.0, True) and client.handles == {client.episode_id}


def test_several_workers_serve_no_web_debugger(tmp_path: Path) -> None:
    served = Served(tmp_path / "serve.log", "--workers", "2", "--web").launch()
    assert served.process is not None
    assert served.process.wait(timeout=60) == 2
    assert "the web debugger keeps its state in one process" in served.text()


# --- clients over several servers ---------------------------------------------------------------


def test_trl_environments_take_the_servers_in_turn_and_play_alike(
    two_workers: Served, server_url: str
) -> None:
    messages, _ = solver_conversation({"task_id": "medium_mixed_pair"})
    urls = [two_workers.url, server_url]
    environments = [MetricTrackerToolEnv(urls=urls) for _ in range(4)]
    try:
        for environment in environments:
            environment.reset(task_id="medium_mixed_pair")
        assert sorted(e._episode.url for e in environments) == sorted(urls * 2)
        for environment in environments[:2]:
            for turn, answer in zip(messages, messages[1:], strict=False):
                for tool in turn.get("tool_calls") or []:
                    arguments = tool["function"]["arguments"]
                    arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
                    assert getattr(environment, tool["function"]["name"])(**arguments) == answer["content"]
            assert environment.get_reward() == 1.0
    finally:
        for environment in environments:
            environment._close()


class DiesMidway:
    """The solver, with the first server killed after its sixth step."""

    def __init__(self, env: Any, doomed: Served) -> None:
        self.env, self.doomed, self.steps = env, doomed, 0

    def reset(self, **config: Any) -> Any:
        return self.env.reset(**config)

    def step(self, action: MetricTrackerRlAction) -> Any:
        self.steps += 1
        if self.steps == 7:
            self.doomed.kill()
        return self.env.step(action)


def test_an_episode_whose_server_dies_is_replayed_on_another_and_ends_the_same(
    tmp_path: Path, two_workers: Served
) -> None:
    doomed = Served(tmp_path / "doomed.log", "--no-web").launch().wait()
    try:
        pool = ServerPool([doomed.url, two_workers.url])
        with pool.episode() as env:
            final = SolverAgent().play(DiesMidway(env, doomed), {"task_id": TASK})
            assert env.moves == 1 and env.url == two_workers.url
        assert (final.reward, final.done, final.correct_row_count) == (
            1.0,
            True,
            NAMED_TASKS[TASK].anomaly_rows,
        )
        # The next episodes go to the server that answers; a bad action is an answer, not a failure.
        with pool.episode() as env:
            assert env.reset(task_id="easy_single_spike").status == "ready" and env.url == two_workers.url
            error = env.step(MetricTrackerRlAction(analysis_method="nope"))
            assert error.status == "error" and error.budget and env.moves == 0
    finally:
        doomed.stop()
