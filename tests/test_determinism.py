"""Determinism (docs/data.md, Data): the same reset config gives byte-identical data, truth and
observations, whatever the wall clock, hash seed or process."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl import constants as C
from metric_tracker_rl.config import resolve_config
from metric_tracker_rl.families import SCENARIO_FAMILIES
from metric_tracker_rl.generator import generate

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_generate_twice_gives_identical_bytes_and_incidents():
    config = resolve_config(seed=42, scenario_family="mixed", difficulty="hard", anomaly_count=9)
    twin = resolve_config(seed=42, scenario_family="mixed", difficulty="hard", anomaly_count=9)
    assert config == twin and config is not twin
    a, b = generate(config), generate(twin)
    assert a.hourly.tobytes() == b.hourly.tobytes()
    assert a.incidents == b.incidents
    assert a.attempt == b.attempt


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    family=st.sampled_from(SCENARIO_FAMILIES),
    difficulty=st.sampled_from(C.DIFFICULTIES),
    count=st.integers(min_value=1, max_value=12),
)
def test_generation_is_a_pure_function_of_the_config(seed, family, difficulty, count):
    config = resolve_config(seed=seed, scenario_family=family, difficulty=difficulty, anomaly_count=count)
    first = generate(config)
    np.random.seed(seed % 2**32)  # global RNG state must not matter
    second = generate(
        resolve_config(seed=seed, scenario_family=family, difficulty=difficulty, anomaly_count=count)
    )
    assert first.hourly.tobytes() == second.hourly.tobytes()
    assert first.incidents == second.incidents


def test_wall_clock_does_not_matter_in_process():
    config = resolve_config(seed=9, difficulty="easy", anomaly_density="high")
    outputs = []
    for when in (dt.datetime(2031, 7, 4, 12, 0), dt.datetime(1999, 1, 1, 0, 0)):
        with time_machine.travel(when, tick=False):
            assert dt.date.today() == when.date()
            data = generate(config)
        outputs.append((data.hourly.tobytes(), data.incidents))
    assert outputs[0] == outputs[1]


def test_different_seeds_give_different_data():
    a = generate(resolve_config(seed=1, anomaly_count=3))
    b = generate(resolve_config(seed=2, anomaly_count=3))
    assert a.hourly.tobytes() != b.hourly.tobytes()


# One subprocess per (hash seed, clock): each prints a digest per item so that a
# mismatch names the item that differs.
CHILD = r"""
import datetime as dt, hashlib, json, sys, time
import time_machine

when = dt.datetime.fromisoformat(sys.argv[1]).replace(tzinfo=dt.timezone.utc)
with time_machine.travel(when, tick=False):
    from metric_tracker_rl import MetricTrackerRlEnvironment
    from metric_tracker_rl.episode import build_episode
    from metric_tracker_rl.tasks import EVAL_SPLIT, NAMED_TASKS, config_for

    def sha(data):
        return hashlib.sha256(data).hexdigest()

    digests = {"clock": dt.date.today().isoformat()}
    items = [(task_id, {"task_id": task_id}) for task_id in NAMED_TASKS]
    items += [(f"eval[{i}]", EVAL_SPLIT[i]) for i in (0, 25, 50, 71)]
    items += [("custom", {"seed": 123456789, "scenario_family": "mixed", "difficulty": "hard",
                          "anomaly_count": 11, "end_date": "2025-11-30"})]
    for name, reset in items:
        episode = build_episode(config_for(**reset))
        rows = [row.model_dump() for row in episode.expected_rows]
        env = MetricTrackerRlEnvironment()
        observation = env.reset(**reset)
        digests[name] = {
            "hourly": sha(episode.hourly.tobytes()),
            "expected_rows": sha(json.dumps(rows, sort_keys=True).encode()),
            "schedule": sha(json.dumps(episode.anomaly_schedule(), sort_keys=True).encode()),
            "reset_observation": sha(
                json.dumps(json.loads(observation.model_dump_json()), sort_keys=True).encode()
            ),
        }
print(json.dumps(digests, sort_keys=True))
"""


def test_same_digests_across_processes_hash_seeds_and_clocks():
    runs = {"2031-07-04T12:00:00": "1", "1999-01-01T00:30:00": "4242"}
    processes = []
    for when, hash_seed in runs.items():
        env = {k: v for k, v in os.environ.items() if k != "METRIC_TRACKER_DEBUG"}
        env["PYTHONHASHSEED"] = hash_seed
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD, when],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    first, second = results
    assert first.pop("clock") == "2031-07-04"
    assert second.pop("clock") == "1999-01-01"
    assert set(first) == set(second)
    differing = {name: first[name] for name in first if first[name] != second[name]}
    assert not differing, f"not byte-identical across processes: {sorted(differing)}"
