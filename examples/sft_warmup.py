"""SFT warm-up: teach a small instruct model the tool-calling protocol from the reference
solver's episodes, before GRPO (``examples/train_grpo.py``).

    uv run metric-tracker dataset data
    uv run --extra train python examples/sft_warmup.py --data data \
        --model Qwen/Qwen2.5-0.5B-Instruct --out runs/sft

The conversations (``data/sft``) are in TRL's tool-calling format; only the assistant turns
are trained (``assistant_only_loss``). ``sft_trainer`` builds the trainer from objects, so
the CPU smoke test drives the same code with a tiny model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def sft_trainer(model: Any, tokenizer: Any, dataset: Any, output_dir: str, **config: Any) -> Any:
    """An ``SFTTrainer`` on the tool-calling conversations, loss on the assistant turns only."""
    from trl import SFTConfig, SFTTrainer

    settings = {"report_to": [], "save_strategy": "no", "logging_steps": 10, **config}
    args = SFTConfig(output_dir=output_dir, assistant_only_loss=True, **settings)
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data", help="The directory `metric-tracker dataset` wrote.")
    parser.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct")
    parser.add_argument("--out", default="runs/sft")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=16384)
    args = parser.parse_args()

    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dataset = load_dataset("parquet", data_dir=str(Path(args.data) / "sft"))["train"]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype="auto")
    trainer = sft_trainer(
        model,
        tokenizer,
        dataset,
        args.out,
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        max_length=args.max_length,
        bf16=True,
    )
    trainer.train()
    trainer.save_model(args.out)
    tokenizer.save_pretrained(args.out)


if __name__ == "__main__":
    main()
