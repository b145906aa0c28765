"""GRPO with the benchmark as TRL's ``environment_factory``: each rollout plays one episode
through the tools, and the episode's graded score is the reward.

    uv run metric-tracker dataset data
    uv run --extra train python examples/train_grpo.py --data data --model runs/sft --out runs/grpo

``MetricTrackerToolEnv`` runs the episodes in process; ``--server-url`` plays them on a
running server instead. The rubric's components and penalties are logged next to the
reward (``rewards/<name>/mean``, weight 0). ``grpo_trainer`` builds the trainer from
objects, so the CPU smoke test drives the same code with a tiny model.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from metric_tracker_rl.integrations.trl import MetricTrackerToolEnv, rubric_reward_functions


def grpo_trainer(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    output_dir: str,
    environment_factory: Any = MetricTrackerToolEnv,
    **config: Any,
) -> Any:
    """A ``GRPOTrainer`` whose reward is the environment's ``get_reward()``, with the rubric logged."""
    from trl import GRPOConfig, GRPOTrainer

    rubric = rubric_reward_functions()
    settings = {"report_to": [], "save_strategy": "no", "logging_steps": 1, **config}
    args = GRPOConfig(output_dir=output_dir, reward_weights=[0.0] * len(rubric), **settings)
    return GRPOTrainer(
        model=model,
        reward_funcs=rubric,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        environment_factory=environment_factory,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data", help="The directory `metric-tracker dataset` wrote.")
    parser.add_argument("--model", default="runs/sft", help="The SFT warm-up's output, or a hub model.")
    parser.add_argument("--out", default="runs/grpo")
    parser.add_argument("--server-url", default=None, help="Play the episodes on this server.")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-completion-length", type=int, default=16384)
    parser.add_argument("--max-tool-calling-iterations", type=int, default=30)
    parser.add_argument("--use-vllm", action="store_true", help="Generate with vLLM (colocated).")
    args = parser.parse_args()

    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dataset = load_dataset("parquet", data_dir=str(Path(args.data) / "prompts"))["train"]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype="auto")
    factory: Any = MetricTrackerToolEnv
    if args.server_url:
        factory = functools.partial(MetricTrackerToolEnv, args.server_url)
    trainer = grpo_trainer(
        model,
        tokenizer,
        dataset,
        args.out,
        environment_factory=factory,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        num_generations=args.num_generations,
        per_device_train_batch_size=args.batch_size,
        max_completion_length=args.max_completion_length,
        max_tool_calling_iterations=args.max_tool_calling_iterations,
        use_vllm=args.use_vllm,
        vllm_mode="colocate",
        bf16=True,
    )
    trainer.train()
    trainer.save_model(args.out)


if __name__ == "__main__":
    main()
