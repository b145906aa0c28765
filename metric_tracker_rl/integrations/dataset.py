"""Hugging Face datasets for training: prompts for GRPO, the solver's episodes for SFT.

``write_dataset(out_dir)`` writes Parquet that ``datasets.load_dataset("parquet",
data_dir=...)`` reads, with a dataset card (``README.md``) that names both configs:

- ``prompts/train.parquet``: training configs, seeds from ``TRAIN_SEED_BASE`` (below the
  evaluation seeds, apart from the named tasks' and the validity audit's), ``per_cell``
  of every scenario family x difficulty x anomaly density; ``prompts/test.parquet``: the
  evaluation split. Each row has a conversational ``prompt`` (the system prompt and a
  user message that ``MetricTrackerToolEnv.reset`` completes with the episode's briefing)
  and the reset arguments as columns.
- ``sft/train.parquet``: the reference solver's episodes on the training configs as
  tool-calling conversations in TRL's format: ``messages`` (assistant ``tool_calls`` whose
  arguments are JSON objects, ``tool`` results exactly as the environment returns them) and
  ``tools`` (the tool schemas as TRL renders the environment's methods), only episodes that
  scored 1.0. The solver acts on the results as the conversation shows them (a long result
  is cut, as for any model), so every call follows from what is in the context.

Same arguments, same bytes: rows in config order, fixed Parquet writer settings, no dates.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from metric_tracker_rl import constants as C
from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.solver import SolverAgent
from metric_tracker_rl.agents.turns import SYSTEM_PROMPT, ToolTurns, json_text
from metric_tracker_rl.evaluation import config_label
from metric_tracker_rl.export import PARQUET_OPTIONS
from metric_tracker_rl.integrations.trl import trl_tool_schemas
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.tasks import CELLS, EVAL_SEED_BASE, EVAL_SPLIT
from metric_tracker_rl.tools import SUBMIT_REPORT

TRAIN_SEED_BASE = 10_000  # above the named tasks' seeds, below the validity audit's (900_000)
USER_PROMPT = "Investigate this episode with the analysis tools, then submit the anomaly report."
CONFIG_COLUMNS = ("seed", "scenario_family", "difficulty", "anomaly_density")
CARD_NAME = "README.md"


class DatasetError(ValueError):
    """The dataset cannot be written as asked."""


def train_configs(per_cell: int = C.DATASET_PER_CELL) -> list[dict[str, Any]]:
    """``per_cell`` configs of every family x difficulty x density, seeds counting up."""
    if per_cell < 1:
        raise DatasetError(f"per_cell must be at least 1, got {per_cell}")
    configs = [
        {"seed": TRAIN_SEED_BASE + i, "scenario_family": f, "difficulty": d, "anomaly_density": n}
        for i, (_, (f, d, n)) in enumerate(itertools.product(range(per_cell), CELLS))
    ]
    assert configs[-1]["seed"] < EVAL_SEED_BASE
    return configs


def prompt_messages() -> list[dict[str, str]]:
    """The conversational prompt of every row; the environment's reset appends the briefing."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_PROMPT}]


def prompt_row(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": prompt_messages(),
        **{k: config[k] for k in CONFIG_COLUMNS},
        "label": config_label(config),
    }


# --- the solver's episodes as conversations ------------------------------------------------------


class _Transcript:
    """An ``EnvHandle`` that plays each of the solver's steps as a tool call and writes the turns."""

    def __init__(self, env: EnvHandle) -> None:
        self.env = env
        self.turns: ToolTurns | None = None
        self.messages: list[dict[str, Any]] = []

    def reset(self, **config: Any) -> MetricTrackerRlObservation:
        first = self.env.reset(**config)
        self.turns = ToolTurns(self.env, first)
        user = f"{USER_PROMPT}\n\n{self.turns.briefing()}"
        self.messages = [_message("system", SYSTEM_PROMPT), _message("user", user)]
        return first

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        assert self.turns is not None
        if action.analysis_method is not None:
            name, arguments = action.analysis_method, dict(action.analysis_args)
        else:
            name = SUBMIT_REPORT
            arguments = {"classifications": [dict(row) for row in action.classifications]}
            if action.payload_generators:
                arguments["payload_generators"] = [dict(spec) for spec in action.payload_generators]
        steps = self.turns.steps
        content = self.turns.answer(name, arguments)
        if self.turns.steps != steps + 1:
            raise RuntimeError(f"the tool call {name} was not run: {content}")
        call = {"type": "function", "function": {"name": name, "arguments": json_text(arguments)}}
        self.messages.append(_message("assistant", "", tool_calls=[call]))
        self.messages.append(_message("tool", content, name=name))
        return _as_shown(self.turns.last, content)


def _as_shown(obs: MetricTrackerRlObservation, content: str) -> MetricTrackerRlObservation:
    """The observation with the result the conversation shows (a long one is cut), so that the
    solver acts only on what the model would see."""
    shown = json.loads(content)
    if obs.analysis_result is None or "result" not in shown:
        return obs
    return obs.model_copy(update={"analysis_result": {**obs.analysis_result, "result": shown["result"]}})


def _message(
    role: str, content: str, *, tool_calls: list[dict[str, Any]] | None = None, name: str | None = None
):
    return {"role": role, "content": content, "tool_calls": tool_calls, "name": name}


def closing_words(final: MetricTrackerRlObservation) -> str:
    """The assistant's last turn after a graded submission."""
    return (
        f"The report is submitted: {final.correct_row_count} of "
        f"{final.reward_breakdown.get('expected_rows', final.expected_row_count)} rows right, "
        f"score {final.reward}."
    )


def solver_conversation(config: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """The reference solver's episode as a tool-calling conversation, and its score."""
    from metric_tracker_rl.environment import MetricTrackerRlEnvironment

    transcript = _Transcript(MetricTrackerRlEnvironment())
    final = SolverAgent().play(transcript, dict(config))
    assert transcript.turns is not None
    transcript.messages.append(_message("assistant", closing_words(final)))
    return transcript.messages, transcript.turns.reward()


def sft_row(config: dict[str, Any], messages: list[dict[str, Any]], tools_text: str) -> dict[str, Any]:
    return {"messages": messages, "tools": tools_text, **{k: config[k] for k in CONFIG_COLUMNS}}


# --- Parquet ---------------------------------------------------------------------------------


def _message_type(json_type: pa.DataType) -> pa.DataType:
    call = pa.struct([("name", pa.string()), ("arguments", json_type)])
    return pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.string()),
            ("tool_calls", pa.list_(pa.struct([("type", pa.string()), ("function", call)]))),
            ("name", pa.string()),
        ]
    )


_CONFIG_FIELDS = [
    ("seed", pa.int64()),
    ("scenario_family", pa.string()),
    ("difficulty", pa.string()),
    ("anomaly_density", pa.string()),
]
PROMPTS_SCHEMA = pa.schema(
    [
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        *_CONFIG_FIELDS,
        ("label", pa.string()),
    ]
)
# Tool-call arguments and the tool schemas differ from row to row: Arrow's JSON type keeps
# each as written (``datasets`` reads them back as objects, with no keys of other rows).
_JSON = pa.json_(pa.string())
SFT_SCHEMA = pa.schema([("messages", pa.list_(_message_type(_JSON))), ("tools", _JSON), *_CONFIG_FIELDS])
_SFT_TEXT_SCHEMA = pa.schema(
    [("messages", pa.list_(_message_type(pa.string()))), ("tools", pa.string()), *_CONFIG_FIELDS]
)


def _write(
    rows: list[dict[str, Any]], schema: pa.Schema, path: Path, text_schema: pa.Schema | None = None
) -> dict[str, Any]:
    """Write rows as Parquet (built with ``text_schema``, JSON held as text, when given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=text_schema or schema).cast(schema)
    pq.write_table(table, path, **PARQUET_OPTIONS)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"path": path.as_posix(), "rows": len(rows), "bytes": path.stat().st_size, "sha256": digest}


def write_dataset(out_dir: str | Path, *, per_cell: int = C.DATASET_PER_CELL) -> dict[str, Any]:
    """Write ``prompts/`` and ``sft/`` under ``out_dir`` and the card; return what was written."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} is a file, not a directory")
    try:
        return _write_dataset(out, per_cell)
    except OSError as err:  # a folder that cannot be made or written: said in one line
        raise DatasetError(f"cannot write the dataset to {str(out)!r} ({err.strerror or err})") from None


def _write_dataset(out: Path, per_cell: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)  # before the episodes are played, not after
    train = train_configs(per_cell)
    written = {
        "prompts/train": _write(
            [prompt_row(c) for c in train], PROMPTS_SCHEMA, out / "prompts" / "train.parquet"
        ),
        "prompts/test": _write(
            [prompt_row(c) for c in EVAL_SPLIT], PROMPTS_SCHEMA, out / "prompts" / "test.parquet"
        ),
    }
    tools_text = json.dumps(trl_tool_schemas(), ensure_ascii=False)
    sft_rows, dropped = [], 0
    for config in train:
        messages, score = solver_conversation(config)
        if score == 1.0:
            sft_rows.append(sft_row(config, messages, tools_text))
        else:
            dropped += 1
    written["sft/train"] = _write(sft_rows, SFT_SCHEMA, out / "sft" / "train.parquet", _SFT_TEXT_SCHEMA)
    summary = {"per_cell": per_cell, "files": written, "sft_episodes_below_1": dropped}
    (out / CARD_NAME).write_text(dataset_card(summary), encoding="utf-8")
    return summary


def dataset_card(summary: dict[str, Any]) -> str:
    files = summary["files"]
    rows = {name: entry["rows"] for name, entry in files.items()}
    return f"""---
license: bsd-3-clause
task_categories:
- reinforcement-learning
tags:
- openenv
- tool-calling
- data-analysis
configs:
- config_name: prompts
  data_files:
  - split: train
    path: prompts/train.parquet
  - split: test
    path: prompts/test.parquet
- config_name: sft
  data_files:
  - split: train
    path: sft/train.parquet
---

# metric_tracker_rl training data

Episodes of metric_tracker_rl: four weeks of synthetic product-funnel metrics with hidden,
seeded anomalies, investigated through analysis tools and reported as graded rows.
Written by `metric-tracker dataset` ({summary["per_cell"]} training configs per scenario
family x difficulty x anomaly density); the same command writes the same bytes.

## prompts

For GRPO with `GRPOTrainer(environment_factory=MetricTrackerToolEnv)`
(`from metric_tracker_rl.integrations.trl import MetricTrackerToolEnv`): `reset(**row)`
starts the row's episode and appends its briefing to the prompt.

| split | rows | seeds |
|---|---|---|
| train | {rows["prompts/train"]} | {TRAIN_SEED_BASE} upward |
| test | {rows["prompts/test"]} | the evaluation split, {EVAL_SEED_BASE} upward |

Columns: `prompt` (system and user messages), `seed`, `scenario_family`, `difficulty`,
`anomaly_density`, `label`.

## sft

The reference solver's episodes on the training configs, as tool-calling conversations in
TRL's format, for `SFTTrainer` with `SFTConfig(assistant_only_loss=True)`: {rows["sft/train"]}
conversations, each scored 1.0. Columns: `messages` (system, user, then assistant turns
with `tool_calls`, whose `arguments` are JSON text, and `tool` results as the environment
returns them; the last assistant turn closes the episode), `tools` (the tool schemas as
JSON text, as TRL renders the environment's methods), and the config columns.

```python
from datasets import load_dataset

prompts = load_dataset("parquet", data_dir="prompts")
sft = load_dataset("parquet", data_dir="sft")
```
"""
