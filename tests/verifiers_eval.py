"""The verifiers integration (integrations/verifiers), driven in its own environment as a
trainer's process would: ``load_environment`` first, then the ``vf-eval`` entry point.

    uv run --project integrations/verifiers python tests/verifiers_eval.py < plan.json

The plan: ``pool`` (server URLs), ``model_url`` and ``api_key_var`` (an OpenAI-compatible
endpoint and the variable holding its key), ``rollouts`` (per task), ``output_dir`` (where
vf-eval writes its run) and ``facts`` (where this writes what ``load_environment`` gave).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from metric_tracker_verifiers import load_environment
from verifiers.v1.cli.eval.main import main as vf_eval

MAX_STEPS = 40


def tasks(split: str, pool: list[str], **options: Any) -> list[dict[str, Any]]:
    env = load_environment(base_url=pool, split=split, **options)
    return [task.data.model_dump(mode="json") | {"key": task.key} for task in env.taskset]


def error(**options: Any) -> str:
    try:
        tasks(**options)
    except ValueError as err:
        return str(err)
    return "no error"


def main() -> None:
    plan = json.load(sys.stdin)
    pool = plan["pool"]
    env = load_environment(base_url=pool, split="named", max_steps=MAX_STEPS)
    train = load_environment(base_url=pool[0], split="train", difficulty="medium").taskset
    facts = {
        "environment": type(env).__name__,
        "harness": env.config.agent.harness.id,
        "runtime": env.config.agent.runtime.type,
        "max_turns": env.config.agent.max_turns,
        "named": tasks("named", pool),
        "eval_hard": tasks("eval", pool[:1], difficulty="hard"),
        "train_bounded": train.bounded,
        "train": [task.data.reset for task in train.take(4)],
        "unknown_split": error(split="test", pool=pool[:1]),
        "unknown_difficulty": error(split="named", pool=pool[:1], difficulty="extreme"),
        "no_server": error(split="named", pool=[]),
    }
    Path(plan["facts"]).write_text(json.dumps(facts), encoding="utf-8")
    vf_eval(
        [
            "metric-tracker-verifiers",
            "--env.taskset.base-url",
            ",".join(pool),
            "--env.taskset.split",
            "named",
            "--env.agent.max-turns",
            str(MAX_STEPS),
            "--model",
            "fake-model",
            "--client.base-url",
            plan["model_url"],
            "--client.api-key-var",
            plan["api_key_var"],
            "--num-rollouts",
            str(plan["rollouts"]),
            "--output-dir",
            plan["output_dir"],
            "--run.dir",
            "run",
            "--no-push",
            "--no-rich",
        ]
    )


if __name__ == "__main__":
    main()
