"""metric_tracker_rl as an Inspect AI task: any model provider plays the benchmark's episodes.

    inspect eval metric_tracker_rl/integrations/inspect_task.py --model openai/gpt-4o-mini
    inspect eval metric_tracker_rl/integrations/inspect_task.py -T split=named --model mockllm/model

Samples are the evaluation split's configs (``-T split=eval``, the default) or the named
tasks (``-T split=named``). The solver starts each sample's episode in process, gives the
model the system prompt, the episode's briefing and the tools of the one catalog (the
analysis methods and ``submit_report``, with the same JSON schemas as the MCP tools and the
OpenAI agent's functions), and lets it call them until it stops; every result is what the
OpenAI agent's model gets back (``agents.turns.ToolTurns``). The scorer is the episode's
reward: the graded score of the counted submission, 0 if the model never submitted.
OpenEnv's ``InspectAIHarness`` runs this file as it is.
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import ToolDef, ToolParams

from metric_tracker_rl.agents.llm import DEFAULT_MAX_ROUNDS
from metric_tracker_rl.agents.turns import DEFAULT_MAX_RESULT_CHARS, SYSTEM_PROMPT, ToolTurns
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.evaluation import config_label
from metric_tracker_rl.tasks import TASK_SPLITS
from metric_tracker_rl.tools import Tool, episode_tools

OUTCOME = "metric_tracker_rl"  # the store key of an episode's outcome


def samples(split: str) -> list[Sample]:
    """One sample per config of a Task API split, its input the episode's briefing."""
    if split not in TASK_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(TASK_SPLITS)}")
    out = []
    env = MetricTrackerRlEnvironment()
    for index, config in enumerate(TASK_SPLITS[split]):
        briefing = ToolTurns(env, env.reset(**config)).briefing()
        metadata = {"config": dict(config), "label": config_label(config)}
        out.append(Sample(input=briefing, id=f"{split}-{index:03d}", metadata=metadata))
    return out


def _tool(turns: ToolTurns, spec: Tool) -> Any:
    async def run(**kwargs: Any) -> str:
        return turns.answer(spec.name, kwargs)  # null is the default (the argument models say so)

    parameters = ToolParams.model_validate(spec.input_schema)
    return ToolDef(run, name=spec.name, description=spec.description, parameters=parameters).as_tool()


@solver
def investigate(max_result_chars: int = DEFAULT_MAX_RESULT_CHARS) -> Solver:
    """Start the sample's episode and let the model call the tools until it stops."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        env = MetricTrackerRlEnvironment()
        turns = ToolTurns(env, env.reset(**state.metadata["config"]), max_result_chars=max_result_chars)
        state.messages = [ChatMessageSystem(content=SYSTEM_PROMPT), ChatMessageUser(content=turns.briefing())]
        state.tools = [_tool(turns, spec) for spec in episode_tools()]
        try:
            state = await generate(state, tool_calls="loop")
        finally:
            final = turns.final()
            state.store.set(
                OUTCOME,
                {
                    "reward": turns.reward(),
                    "graded": turns.graded is not None,
                    "steps": turns.steps,
                    "message": final.message,
                    "reward_breakdown": dict(final.reward_breakdown) if turns.graded is not None else {},
                },
            )
        return state

    return solve


@scorer(metrics=[mean(), stderr()])
def episode_reward() -> Scorer:
    """The episode's reward (0 if nothing was graded)."""

    async def score(state: TaskState, target: Target) -> Score:
        outcome = state.store.get(OUTCOME) or {"reward": 0.0, "graded": False, "message": "not played"}
        explanation = outcome["message"] if outcome["graded"] else "no graded submission"
        return Score(value=outcome["reward"], explanation=explanation, metadata=outcome)

    return score


@task
def metric_tracker(split: str = "eval", max_rounds: int = DEFAULT_MAX_ROUNDS) -> Task:
    """The episodes of a Task API split (``eval`` or ``named``), scored by their reward."""
    return Task(
        dataset=MemoryDataset(samples(split), name=f"metric_tracker_rl-{split}"),
        solver=investigate(),
        scorer=episode_reward(),
        # A round is the model's turn and its tool results; the system and user messages come first.
        message_limit=2 + 2 * max_rounds,
        # The tool turns already fit every result whole (DEFAULT_MAX_RESULT_CHARS); Inspect's own
        # cut (16 KiB by default, in bytes) must not shorten one again.
        config=GenerateConfig(max_tool_output=4 * DEFAULT_MAX_RESULT_CHARS),
    )
