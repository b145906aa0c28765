"""The oracle of openenv.yaml (``capabilities.oracle``, form ``script``): the reference solver.

Plays ``SolverAgent`` (public analysis methods only) on every episode of a set and checks
that each one reaches the declared maximum reward within ``oracle_tolerance``.

    uv run python scripts/oracle.py                                  # in process, all 75 episodes
    uv run python scripts/oracle.py --url http://127.0.0.1:8000      # against a running server
    uv run python scripts/oracle.py --episodes named

Prints one JSON line per episode and a summary line; exits 1 if any episode falls short.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from validation_common import episode_set, open_target, reward_contract

from metric_tracker_rl.agents import AGENTS


def run_oracle(url: str | None = None, episodes: str = "all") -> dict[str, Any]:
    """Play the solver on every episode of the set; return the per-episode results and a verdict."""
    contract = reward_contract()
    results = []
    with open_target(url) as env:
        for label, config in episode_set(episodes):
            final = AGENTS["solver"]().play(env, config)
            results.append(
                {
                    "episode": label,
                    "reward": final.reward,
                    "done": final.done,
                    "steps": final.budget.get("steps_used"),
                }
            )
    rewards = [r["reward"] if r["reward"] is not None else contract.low for r in results]
    return {
        "episodes": results,
        "summary": {
            "count": len(results),
            "min_reward": min(rewards),
            "required": contract.oracle_minimum,
            "passed": min(rewards) >= contract.oracle_minimum,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Base URL of a running server (default: play in process).")
    parser.add_argument("--episodes", default="all", choices=["named", "eval", "all", "canary"])
    args = parser.parse_args(argv)
    report = run_oracle(args.url, args.episodes)
    for row in report["episodes"]:
        print(json.dumps(row))
    print(json.dumps(report["summary"]))
    return 0 if report["summary"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
