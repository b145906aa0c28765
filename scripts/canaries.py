"""Replay the shipped canary trajectories (``capabilities.canaries`` of openenv.yaml).

Each trajectory of ``validation/canaries/*.jsonl`` is replayed action by action, in
process or against a running server. A canary passes when every step gets the recorded
status, reward and done flag again (the reward is replayable) and its final reward stays
at least ``floor_margin`` below the maximum (trivial play earns nothing).

    uv run python scripts/canaries.py
    uv run python scripts/canaries.py --url http://127.0.0.1:8000

Prints one JSON line per trajectory and a summary line; exits 1 if any canary fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from validation_common import CANARY_DIR, open_target, reward_contract

from metric_tracker_rl.models import MetricTrackerRlAction


def load_canaries(directory: Path = CANARY_DIR) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        records.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return records


def replay(env: Any, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Replay one trajectory; return what each step got (same shape as the recording)."""
    env.reset(**record["reset"])
    outcomes = []
    for step in record["steps"]:
        observation = env.step(MetricTrackerRlAction.model_validate(step["action"]))
        outcomes.append(
            {
                "action": step["action"],
                "status": observation.status,
                "reward": observation.reward,
                "done": observation.done,
            }
        )
    return outcomes


def run_canaries(url: str | None = None, directory: Path = CANARY_DIR) -> dict[str, Any]:
    contract = reward_contract()
    records = load_canaries(directory)
    results = []
    with open_target(url) as env:
        for record in records:
            outcomes = replay(env, record)
            final = outcomes[-1]["reward"] if outcomes else None
            problems = []
            if outcomes != record["steps"]:
                problems.append("replay differs from the recording")
            if final is None or final > contract.canary_ceiling:
                problems.append(f"final reward {final} above the canary ceiling {contract.canary_ceiling}")
            results.append(
                {
                    "agent": record["agent"],
                    "episode": record["episode"],
                    "reward": final,
                    "problems": problems,
                }
            )
    return {
        "canaries": results,
        "summary": {
            "count": len(results),
            "max_reward": max((r["reward"] or 0.0 for r in results), default=None),
            "ceiling": contract.canary_ceiling,
            "passed": bool(results) and not any(r["problems"] for r in results),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Base URL of a running server (default: replay in process).")
    args = parser.parse_args(argv)
    report = run_canaries(args.url)
    for row in report["canaries"]:
        print(json.dumps(row))
    print(json.dumps(report["summary"]))
    return 0 if report["summary"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
