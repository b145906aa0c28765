"""Kept episodes: handles, limits, rebuilding from the record, and clients that keep no session.

In process, ``EpisodeStore`` runs on a fake clock. Over the wire, the reference solver plays
against the real server with handles only: one ``POST /reset`` and one ``POST /step`` per call
(a new connection each), and OpenEnv's MCP dialect with no session.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from typing import Any

import httpx
import pytest
from solver_calls import solver_calls, tool_call

from metric_tracker_rl.agents import SolverAgent
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.episodes import EpisodeLimitError, EpisodeRecord, EpisodeStore
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.tasks import NAMED_TASKS

pytestmark = pytest.mark.timeout(300)

TASK = "hard_mixed_multi"
HANDLE = re.compile(r"[A-Za-z0-9_-]{32}")
LIST_DATES = MetricTrackerRlAction(analysis_method="list_dates")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def store(max_episodes: int = 4, idle_timeout: float = 60.0) -> tuple[EpisodeStore, Clock]:
    clock = Clock()
    return EpisodeStore(MetricTrackerRlEnvironment, max_episodes, idle_timeout, clock), clock


def fresh(episodes: EpisodeStore) -> MetricTrackerRlEnvironment:
    """A new environment instance, as the server makes one for each plain HTTP request."""
    return MetricTrackerRlEnvironment(episodes=episodes)


def actions_taken(episodes: EpisodeStore, episode_id: str) -> int:
    state = episodes.state(episode_id)
    assert state is not None
    return state.step_count


# --- the store, in process -------------------------------------------------------------------


def test_a_kept_episode_answers_an_unguessable_handle_and_any_instance_reaches_it() -> None:
    episodes, _ = store()
    first = fresh(episodes).reset(task_id=TASK, keep_episode=True)
    handles = {first.episode_id, *(fresh(episodes).reset(keep_episode=True).episode_id for _ in range(3))}
    assert all(HANDLE.fullmatch(h) for h in handles) and len(handles) == 4
    assert (first.status, first.task_id, first.expected_row_count) == ("ready", TASK, None)  # hard hides it
    # Each call from a new instance, as one stateless HTTP request each.
    step = fresh(episodes).step(LIST_DATES.model_copy(update={"episode_id": first.episode_id}))
    assert (step.status, step.episode_id, step.budget["steps_used"]) == ("analysis", first.episode_id, 1)
    assert episodes.state(first.episode_id).task_id == TASK


def test_one_episode_cannot_be_reached_without_its_handle() -> None:
    episodes, _ = store()
    mine = fresh(episodes).reset(task_id=TASK, keep_episode=True).episode_id
    theirs = fresh(episodes).reset(task_id="easy_single_spike", keep_episode=True).episode_id
    for handle in (mine[:-1] + ("A" if mine[-1] != "A" else "B"), "", "x" * 64, theirs.upper()):
        answer = fresh(episodes).step({"analysis_method": "list_dates", "episode_id": handle})
        assert answer.status == "error" and "unknown or expired episode_id" in answer.message
        assert answer.task_id is None and answer.episode_id is None
    # No handle at all: a plain instance has no episode, whatever the store holds.
    lone = fresh(episodes).step(LIST_DATES)
    assert lone.status == "error" and "keep_episode" in lone.message
    assert actions_taken(episodes, mine) == actions_taken(episodes, theirs) == 0
    fresh(episodes).step(LIST_DATES.model_copy(update={"episode_id": mine}))
    assert (actions_taken(episodes, mine), actions_taken(episodes, theirs)) == (1, 0)


def test_an_idle_episode_expires_and_a_call_keeps_it_alive() -> None:
    episodes, clock = store(idle_timeout=60.0)
    handle = fresh(episodes).reset(keep_episode=True).episode_id
    for _ in range(3):
        clock.now += 50.0
        assert (
            fresh(episodes).step({"analysis_method": "list_dates", "episode_id": handle}).status == "analysis"
        )
    clock.now += 61.0
    expired = fresh(episodes).step({"analysis_method": "list_dates", "episode_id": handle})
    assert expired.status == "error" and "dropped after 60 s" in expired.message
    assert len(episodes) == 0 and episodes.state(handle) is None


def finish(episodes: EpisodeStore, handle: str) -> None:
    """Spend the episode's graded submissions on empty reports."""
    while not (answer := episodes.step(handle, {"classifications": []})).done:
        assert answer.status == "graded"


def test_a_full_store_refuses_a_new_episode_until_one_finishes_or_expires() -> None:
    episodes, clock = store(max_episodes=2, idle_timeout=60.0)
    first, second = (fresh(episodes).reset(keep_episode=True).episode_id for _ in range(2))
    with pytest.raises(EpisodeLimitError, match="at most 2 episodes and all are in play"):
        fresh(episodes).reset(keep_episode=True)
    # A finished episode gives its place (the least recently used first).
    clock.now = 1.0
    finish(episodes, first)
    clock.now = 2.0
    finish(episodes, second)
    third = fresh(episodes).reset(keep_episode=True).episode_id
    assert episodes.state(first) is None and episodes.state(second) is not None
    # An expired episode frees its place too.
    clock.now += 61.0
    fresh(episodes).reset(keep_episode=True)
    assert episodes.state(third) is None and len(episodes) == 1


def test_bad_keep_requests_are_config_errors_and_keep_nothing() -> None:
    episodes, _ = store()
    with pytest.raises(ConfigError, match="unknown task_id"):
        fresh(episodes).reset(task_id="nope", keep_episode=True)
    with pytest.raises(ConfigError, match="keep_episode must be true or false"):
        fresh(episodes).reset(keep_episode="yes")
    with pytest.raises(ConfigError, match="mints the episode_id"):
        fresh(episodes).reset(keep_episode=True, episode_id="mine")
    with pytest.raises(ConfigError, match="keeps none"):
        MetricTrackerRlEnvironment().reset(keep_episode=True)
    assert len(episodes) == 0
    plain = MetricTrackerRlEnvironment()
    plain.reset(task_id=TASK)
    refused = plain.step({"analysis_method": "list_dates", "episode_id": "abc"})
    assert refused.status == "error" and "keeps no episodes" in refused.message
    assert plain.state.step_count == 0


def test_the_instance_that_started_a_kept_episode_plays_it_without_the_handle() -> None:
    """The session-bound way: a session's calls without a handle go to the episode it started."""
    episodes, _ = store()
    session = fresh(episodes)
    handle = session.tools.call("start_episode", {"task_id": TASK}).structured()["episode_id"]
    assert HANDLE.fullmatch(handle)
    assert session.tools.call("list_dates", {}).observation.budget["steps_used"] == 1
    assert session.tools.call("list_dates", {"episode_id": handle}).observation.budget["steps_used"] == 2
    assert session.state.episode_id == handle and session.state.step_count == 2
    # A plain reset makes the instance's own episode the default again.
    session.reset(task_id="easy_single_spike")
    assert session.step(LIST_DATES).episode_id is None and actions_taken(episodes, handle) == 2


def test_an_episode_is_rebuilt_from_its_record_anywhere() -> None:
    """Reset arguments plus the actions taken (JSON) rebuild the same episode: what a worker
    or replica that lacks the environment would do."""
    episodes, _ = store()
    calls = solver_calls(TASK)
    handle = fresh(episodes).tools.call(*calls[0]).structured()["episode_id"]
    for name, arguments in calls[1:-1]:  # each from a new instance, the report held back
        assert not fresh(episodes).tools.call(name, {**arguments, "episode_id": handle}).is_error
    record = episodes.record(handle)
    assert record is not None and len(record.actions) == len(calls) - 2
    wire = json.loads(json.dumps(dataclasses.asdict(record)))  # it travels as JSON
    rebuilt = EpisodeRecord(**wire).replay(MetricTrackerRlEnvironment)
    assert rebuilt.state == episodes.state(handle)
    report = calls[-1][1]
    live = episodes.step(handle, report)
    assert live.reward == 1.0 and rebuilt.step(report) == live.model_copy(update={"episode_id": None})
    # Calls on a finished episode change nothing, and the record does not grow.
    for _ in range(3):
        assert episodes.step(handle, {"analysis_method": "list_dates"}).status == "finished"
    assert len(episodes.record(handle).actions) == len(calls) - 1


def test_stores_that_share_a_records_file_play_one_episode_in_turn(tmp_path) -> None:
    """Two stores on one file, as two workers: each call reaches either one, and each rebuilds
    or catches up the episode from the records; it ends exactly as if one store played it."""
    from metric_tracker_rl.mcp.sessions import McpSessions
    from metric_tracker_rl.records import Records

    clock = Clock()
    path = tmp_path / "records.sqlite"
    workers = [EpisodeStore(MetricTrackerRlEnvironment, 4, 60.0, clock, Records(path)) for _ in range(2)]
    calls = solver_calls(TASK)
    handle = fresh(workers[0]).tools.call(*calls[0]).structured()["episode_id"]
    alone, _ = store()
    lone = fresh(alone).tools.call(*calls[0]).structured()["episode_id"]
    for k, (name, arguments) in enumerate(calls[1:]):
        worker = workers[(k // 2) % 2]  # two calls on one, two on the other, ...
        shared = fresh(worker).tools.call(name, {**arguments, "episode_id": handle}).structured()
        single = fresh(alone).tools.call(name, {**arguments, "episode_id": lone}).structured()
        assert shared == {**single, "episode_id": handle}
    assert shared["reward"] == 1.0
    assert workers[0].state(handle) == workers[1].state(handle)
    assert workers[1].record(handle) == workers[0].record(handle)
    assert len(workers[0].record(handle).actions) == len(calls) - 1
    # A third process that never saw it rebuilds it from the file; expiry is the file's too.
    late = EpisodeStore(MetricTrackerRlEnvironment, 4, 60.0, clock, Records(path))
    assert late.state(handle) == workers[0].state(handle)
    clock.now += 61.0
    assert workers[1].state(handle) is None and len(workers[0]) == 0
    # MCP sessions too: opened by one, used and ended through another.
    sessions = [McpSessions(Records(path), 2, 60.0, clock) for _ in range(2)]
    opened = [sessions[0].open(), sessions[0].open()]
    assert None not in opened and sessions[1].open() is None  # two at most, counted together
    sessions[1].follow(opened[0], handle)
    assert sessions[0].episode(opened[0]) == handle and sessions[0].episode(opened[1]) is None
    sessions[1].close(opened[0])
    assert not sessions[0].use(opened[0]) and sessions[0].use(opened[1])
    clock.now += 61.0
    assert not sessions[1].use(opened[1]) and len(sessions[0]) == 0


# --- over the wire: stateless clients ---------------------------------------------------------


def observation(payload: dict[str, Any]) -> MetricTrackerRlObservation:
    """An observation from an HTTP /reset or /step answer."""
    return MetricTrackerRlObservation.model_validate(
        {**payload["observation"], "reward": payload["reward"], "done": payload["done"]}
    )


class StatelessHttp:
    """An agent's handle that keeps no connection: one ``POST`` per call, a new connection
    each, the episode's handle in every action."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.episode_id: str | None = None
        self.handles: set[str | None] = set()

    def reset(self, **config: Any) -> MetricTrackerRlObservation:
        reply = httpx.post(f"{self.url}/reset", json={**config, "keep_episode": True}, timeout=60)
        assert reply.status_code == 200, reply.text[:300]
        first = observation(reply.json())
        self.episode_id = first.episode_id
        return first

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        body = action.model_copy(update={"episode_id": self.episode_id}).model_dump(exclude_defaults=True)
        reply = httpx.post(f"{self.url}/step", json={"action": body}, timeout=60)
        assert reply.status_code == 200, reply.text[:300]
        answer = observation(reply.json())
        self.handles.add(answer.episode_id)
        return answer


def test_a_stateless_http_client_plays_an_episode_to_1_with_handles_only(server_url: str) -> None:
    client = StatelessHttp(server_url)
    final = SolverAgent().play(client, {"task_id": TASK})
    rows = NAMED_TASKS[TASK].anomaly_rows
    assert (final.status, final.reward, final.done, final.correct_row_count) == ("graded", 1.0, True, rows)
    assert HANDLE.fullmatch(client.episode_id or "") and client.handles == {client.episode_id}
    # The episode is over, and stays so for whoever has the handle.
    after = client.step(LIST_DATES)
    assert (after.status, after.reward, after.done) == ("finished", 1.0, True)
    # Without the handle a /step still has no episode.
    lone = observation(
        httpx.post(f"{server_url}/step", json={"action": {"analysis_method": "list_dates"}}).json()
    )
    assert lone.status == "error" and "keep_episode" in lone.message


def test_http_handles_are_checked(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=60) as http:
        first, second = (
            observation(http.post("/reset", json={"task_id": TASK, "keep_episode": True}).json()).episode_id
            for _ in range(2)
        )
        step = {"analysis_method": "list_dates", "episode_id": first}
        assert observation(http.post("/step", json={"action": step}).json()).budget["steps_used"] == 1
        other = observation(http.post("/step", json={"action": {**step, "episode_id": second}}).json())
        assert other.budget["steps_used"] == 1  # its own first call: the other episode's is not counted
        forged = observation(http.post("/step", json={"action": {**step, "episode_id": "A" * 32}}).json())
        assert forged.status == "error" and "unknown or expired episode_id" in forged.message
        for body, text in (
            ({"keep_episode": "yes"}, "keep_episode must be true or false"),
            ({"keep_episode": True, "episode_id": "mine"}, "mints the episode_id"),
            ({"keep_episode": True, "task_id": "nope"}, "unknown task_id"),
        ):
            reply = http.post("/reset", json=body)
            assert reply.status_code == 422 and text in reply.text
        too_long = http.post("/step", json={"action": {**step, "episode_id": "x" * 65}})
        assert too_long.status_code == 422 and "episode_id" in too_long.text


def test_kept_episodes_are_capped_with_a_clear_503(small_server_url: str) -> None:
    """The small server keeps two sessions, and so two kept episodes, at most."""
    with httpx.Client(base_url=small_server_url, timeout=60) as http:
        kept = [http.post("/reset", json={"keep_episode": True}) for _ in range(2)]
        assert [r.status_code for r in kept] == [200, 200]
        full = http.post("/reset", json={"keep_episode": True})
        assert full.status_code == 503 and "at most 2 episodes" in full.json()["detail"]
        assert http.post("/reset", json={}).status_code == 200  # a plain reset keeps nothing
        handle = kept[0].json()["observation"]["episode_id"]
        while not http.post("/step", json={"action": {"episode_id": handle}}).json()["done"]:
            pass  # empty reports until the submissions are spent
        assert http.post("/reset", json={"keep_episode": True}).status_code == 200


def test_an_idle_kept_episode_expires_over_the_wire(limited_server_url: str) -> None:
    """The limited server drops what is idle for a second."""
    with httpx.Client(base_url=limited_server_url, timeout=60) as http:
        handle = http.post("/reset", json={"keep_episode": True}).json()["observation"]["episode_id"]
        time.sleep(1.5)
        reply = http.post("/step", json={"action": {"analysis_method": "list_dates", "episode_id": handle}})
        assert "unknown or expired episode_id" in reply.json()["observation"]["message"]


class StatelessDialect:
    """An agent's handle over OpenEnv's MCP dialect with no session: one ``tools/call`` per
    request, the handle as the tools' ``episode_id`` argument."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.episode_id: str | None = None

    def call(self, name: str, arguments: dict[str, Any]) -> MetricTrackerRlObservation:
        message = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        reply = httpx.post(f"{self.url}/mcp", json=message, timeout=60)
        assert reply.status_code == 200 and "mcp-session-id" not in reply.headers
        return MetricTrackerRlObservation.model_validate(reply.json()["result"])

    def reset(self, **config: Any) -> MetricTrackerRlObservation:
        first = self.call("start_episode", config)
        self.episode_id = first.episode_id
        return first

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        name, arguments = tool_call(action)
        return self.call(name, {**arguments, "episode_id": self.episode_id})


def test_openenv_dialect_without_a_session_plays_an_episode_to_1_with_handles(server_url: str) -> None:
    client = StatelessDialect(server_url)
    final = SolverAgent().play(client, {"task_id": TASK})
    assert (final.status, final.reward, final.done, final.episode_id) == (
        "graded",
        1.0,
        True,
        client.episode_id,
    )
    assert HANDLE.fullmatch(client.episode_id or "")
    lone = client.call("list_dates", {})
    assert lone.status == "error" and "No episode" in lone.message


def test_a_handle_from_the_dialect_plays_on_over_plain_http(server_url: str) -> None:
    """One store behind every route: start over MCP, go on with POST /step."""
    handle = StatelessDialect(server_url).reset(task_id=TASK).episode_id
    step = {"analysis_method": "list_dates", "episode_id": handle}
    answer = observation(httpx.post(f"{server_url}/step", json={"action": step}, timeout=60).json())
    assert (answer.status, answer.task_id, answer.budget["steps_used"]) == ("analysis", TASK, 1)
