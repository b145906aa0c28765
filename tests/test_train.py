"""Training with TRL on CPU: the tool schemas TRL renders, the datasets as `datasets` reads
them, and a smoke run (SFT warm-up on the solver's conversations, then GRPO with the
environment factory) of a tiny model and tokenizer built here, as the hub is out of reach."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
from pathlib import Path
from typing import Any

import pytest
from extras import need

need("trl", "train")
datasets = need("datasets", "train")
torch = need("torch", "train")

from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM  # noqa: E402
from transformers.utils import get_json_schema  # noqa: E402
from trl.chat_template_utils import qwen2_5_chat_template  # noqa: E402

from metric_tracker_rl.agents.llm import agent_tools  # noqa: E402
from metric_tracker_rl.integrations.dataset import write_dataset  # noqa: E402
from metric_tracker_rl.integrations.trl import MetricTrackerToolEnv, trl_tool_schemas  # noqa: E402
from metric_tracker_rl.tools import episode_tools  # noqa: E402

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def _strict_shape(prop: dict[str, Any]) -> dict[str, Any]:
    """A strict (MCP/OpenAI) property as (types, nullable, enum, description, items)."""
    options = prop.get("anyOf", [prop])
    kept = [o for o in options if o.get("type") != "null"]
    (one,) = kept
    shape = {"type": one["type"], "nullable": len(kept) < len(options), "enum": one.get("enum")}
    if one["type"] == "array":
        shape["items"] = _strict_shape(one["items"])
    return shape


def _trl_shape(prop: dict[str, Any]) -> dict[str, Any]:
    shape = {"type": prop["type"], "nullable": prop.get("nullable", False), "enum": prop.get("enum")}
    if prop["type"] == "array":
        shape["items"] = _trl_shape(prop["items"])
    return shape


def test_trl_renders_the_tools_of_the_mcp_catalog_and_the_openai_agent() -> None:
    env = MetricTrackerToolEnv()
    openai_tools = {t["function"]["name"]: t["function"] for t in agent_tools()}
    catalog = {t.name: t for t in episode_tools()}
    assert set(openai_tools) == set(catalog)
    for schema in trl_tool_schemas():
        name = schema["function"]["name"]
        rendered = get_json_schema(getattr(env, name))  # what TRL puts in the prompt
        assert rendered == schema
        function, strict = rendered["function"], openai_tools[name]
        assert function["description"] == strict["description"] == catalog[name].description
        properties = strict["parameters"]["properties"]
        assert list(function["parameters"]["properties"]) == sorted(
            properties, key=lambda n: _strict_shape(properties[n])["nullable"]
        )
        required = [n for n in properties if not _strict_shape(properties[n])["nullable"]]
        assert function["parameters"].get("required", []) == required
        for arg, prop in function["parameters"]["properties"].items():
            assert prop["description"] == properties[arg]["description"]
            assert _trl_shape(prop) == _strict_shape(properties[arg]), (name, arg)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    write_dataset(out, per_cell=1)
    return out


def test_datasets_reads_prompts_and_sft_with_their_card(data: Path) -> None:
    prompts = datasets.load_dataset("parquet", data_dir=str(data / "prompts"))
    sft = datasets.load_dataset("parquet", data_dir=str(data / "sft"))
    assert set(prompts) == {"train", "test"} and prompts["test"].num_rows == 72
    row = sft["train"][0]
    assert set(row) >= {"messages", "tools"}
    call = row["messages"][2]["tool_calls"][0]["function"]
    assert isinstance(call["arguments"], dict)  # an object, with no other row's keys
    assert row["tools"] == trl_tool_schemas()
    by_card = datasets.load_dataset(str(data), "sft")
    assert by_card["train"].num_rows == sft["train"].num_rows


def _example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_tokenizer(sft: Any) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the SFT conversations, with Qwen2.5's chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    def texts() -> Any:
        for row in sft:
            yield json.dumps(row["tools"])
            for message in row["messages"]:
                yield message["content"] or ""
                for call in message["tool_calls"] or []:
                    yield json.dumps(call["function"])
        yield qwen2_5_chat_template

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=8192,
        max_token_length=64,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts(), trainer)
    tokenizer.add_tokens(["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left"
    )
    fast.chat_template = qwen2_5_chat_template
    return fast


class CountingEnv(MetricTrackerToolEnv):
    """The environment, counting what TRL does with it."""

    instances: list[CountingEnv] = []

    def __init__(self) -> None:
        super().__init__()
        CountingEnv.instances.append(self)
        self.executed: list[tuple[str, str]] = []
        self.rewards: list[float] = []

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        result = super()._call(name, arguments)
        self.executed.append((name, result))
        return result

    def get_reward(self) -> float:
        reward = super().get_reward()
        self.rewards.append(reward)
        return reward


def test_sft_warm_up_then_grpo_with_the_environment_factory(data: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    sft = datasets.load_dataset("parquet", data_dir=str(data / "sft"))["train"].select(range(8))
    prompts = datasets.load_dataset("parquet", data_dir=str(data / "prompts"))["train"].select(range(4))
    tokenizer = tiny_tokenizer(sft)
    prompt_tokens = max(
        len(
            tokenizer.apply_chat_template(
                row["messages"][:2], tools=row["tools"], add_generation_prompt=True, return_dict=True
            )["input_ids"]
        )
        for row in sft
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    common = {"use_cpu": True, "seed": 0, "dataloader_num_workers": 0}
    # Each conversation cut after its first tool call: the steps go to the calling protocol.
    sft_trainer = _example("sft_warmup").sft_trainer(
        model,
        tokenizer,
        sft,
        str(tmp_path / "sft"),
        max_steps=100,
        learning_rate=5e-3,
        per_device_train_batch_size=1,
        max_length=prompt_tokens + 16,
        **common,
    )
    sft_trainer.train()
    assert sft_trainer.state.log_history[-1]["train_loss"] < 2.0

    CountingEnv.instances.clear()
    grpo = _example("train_grpo").grpo_trainer(
        sft_trainer.model,
        tokenizer,
        prompts,
        str(tmp_path / "grpo"),
        environment_factory=CountingEnv,
        max_steps=2,
        num_generations=2,
        per_device_train_batch_size=2,
        max_completion_length=96,
        max_tool_calling_iterations=2,
        temperature=0.7,
        **common,
    )
    grpo.train()
    rollouts = 2 * 2  # steps x (batch of 2: one prompt, two generations)
    played = [env for env in CountingEnv.instances if env.resets]
    assert sum(env.resets for env in played) == rollouts
    assert all(len(env.rewards) == env.resets for env in played)  # one get_reward() per rollout
    logged = [entry for entry in grpo.state.log_history if "rewards/CountingEnv/mean" in entry]
    assert len(logged) == 2
    rewards = [r for env in played for r in env.rewards]
    assert sum(e["rewards/CountingEnv/mean"] for e in logged) == pytest.approx(sum(rewards) / 2)
    assert all("rewards/recall/mean" in entry for entry in logged)  # the rubric, logged
    executed = [result for env in played for _, result in env.executed]
    assert any("result" in json.loads(result) for result in executed), executed
    assert inspect.signature(CountingEnv.rows_for_date).parameters["date"].annotation is str
