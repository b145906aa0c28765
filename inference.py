"""LLM inference baseline: play the named tasks with any OpenAI-compatible model.

    cp .env.inference.example .env.inference    # fill in API_BASE_URL, MODEL_NAME, HF_TOKEN
    uv run python inference.py

Configuration comes from the environment, completed by ``.env.inference`` (KEY=VALUE
lines; variables already set win): API_BASE_URL, MODEL_NAME, HF_TOKEN or OPENAI_API_KEY,
and optionally ENV_URL to play against a running server instead of in process.

stdout carries only the evaluation lines, per task:
    [START] task=<id> env=metric_tracker_rl model=<model>
    [STEP] step=<n> action=<short> reward=<0.00> done=<true|false> error=<msg|null>   (per env step)
    [END] success=<true|false> steps=<n> score=<0.00> rewards=<r1,r2,...>
    <task_id> score: <0.0000>
and finally ``average score: <0.0000> (<n> tasks)``. success=true when the episode's
graded score is at least SUCCESS_SCORE (0.5). Logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
from pathlib import Path

from metric_tracker_rl.agents.base import ClientHandle
from metric_tracker_rl.agents.llm import (
    DEFAULT_MAX_ROUNDS,
    LLMAgent,
    LLMConfigError,
    StepEvent,
    settings_from_env,
)
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.models import MetricTrackerRlObservation

BENCHMARK = "metric_tracker_rl"
TASK_IDS = ("easy_single_spike", "medium_mixed_pair", "hard_mixed_multi")
SUCCESS_SCORE = 0.5  # an episode counts as a success from this graded score on
ENV_FILE = Path(__file__).resolve().parent / ".env.inference"
ENV_URL_VAR = "ENV_URL"
MAX_ERROR_CHARS = 200

logger = logging.getLogger("inference")


def load_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines (``export`` prefix, quotes, ``#`` comments allowed) into
    ``os.environ`` without overriding variables that are already set; return what was read."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.isidentifier():
            logger.warning("%s:%d: not a KEY=VALUE line, ignored", path, number)
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
        if not os.environ.get(key):
            os.environ[key] = value
    return values


def step_line(event: StepEvent) -> str:
    error = " ".join(event.error.split())[:MAX_ERROR_CHARS] if event.error else "null"
    return (
        f"[STEP] step={event.step} action={event.action} reward={event.reward:.2f} "
        f"done={str(event.done).lower()} error={error}"
    )


def end_line(success: bool, steps: int, score: float, rewards: list[float]) -> str:
    shown = ",".join(f"{r:.2f}" for r in rewards)
    return f"[END] success={str(success).lower()} steps={steps} score={score:.2f} rewards={shown}"


def play(agent: LLMAgent, task_id: str, env_url: str | None) -> MetricTrackerRlObservation:
    """One episode, in process or over a WebSocket session with the server at ``env_url``."""
    config = {"task_id": task_id}
    if env_url is None:
        return agent.play(MetricTrackerRlEnvironment(), config)
    from metric_tracker_rl.client import MetricTrackerRlEnv

    with MetricTrackerRlEnv(base_url=env_url).sync() as client:
        return agent.play(ClientHandle(client), config)


def run_task(task_id: str, settings: dict[str, str], env_url: str | None, max_rounds: int) -> float | None:
    """Play one task and print its lines; the score, or None when the episode crashed."""
    print(f"[START] task={task_id} env={BENCHMARK} model={settings['model']}", flush=True)
    rewards: list[float] = []

    def on_step(event: StepEvent) -> None:
        rewards.append(event.reward)
        print(step_line(event), flush=True)

    score: float | None = None
    try:
        agent = LLMAgent(**settings, max_rounds=max_rounds, on_step=on_step)
        final = play(agent, task_id, env_url)
        score = float(final.reward or 0.0)
    except Exception:  # one broken episode must not hide the other tasks' lines
        logger.exception("task %s failed", task_id)
    shown = score or 0.0
    print(end_line(shown >= SUCCESS_SCORE, len(rewards), shown, rewards), flush=True)
    print(f"{task_id} score: {shown:.4f}", flush=True)
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Play the named tasks with an OpenAI-compatible model.")
    parser.add_argument(
        "--env-file", type=Path, default=ENV_FILE, help="KEY=VALUE file (default: %(default)s)"
    )
    parser.add_argument("--task", action="append", choices=TASK_IDS, help="a task to play (repeatable)")
    parser.add_argument("--max-rounds", type=int, default=DEFAULT_MAX_ROUNDS, help="model requests per task")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpx2", "websockets"):  # one line per request; openai logs retries
        logging.getLogger(noisy).setLevel(logging.WARNING)

    if args.env_file.is_file():
        loaded = load_env_file(args.env_file)
        logger.info("read %d settings from %s", len(loaded), args.env_file)
    try:
        settings = settings_from_env()
    except LLMConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    env_url = os.environ.get(ENV_URL_VAR, "").strip() or None
    logger.info(
        "model %s at %s; environment %s", settings["model"], settings["base_url"], env_url or "in process"
    )

    scores: list[float | None] = [
        run_task(task_id, settings, env_url, args.max_rounds) for task_id in args.task or TASK_IDS
    ]
    average = statistics.fmean(s or 0.0 for s in scores)
    print(f"average score: {average:.4f} ({len(scores)} tasks)", flush=True)
    return 1 if any(s is None for s in scores) else 0


if __name__ == "__main__":
    sys.exit(main())
