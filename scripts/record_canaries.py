"""Record the shipped trajectories that ``openenv validate`` reads (deterministic, in process).

* ``validation/canaries/<agent>.jsonl``: the trivial agents (empty, mass, random) on the
  canary episode set, one trajectory per line: reset config, every action with the
  status/reward/done it got, and the final reward. ``capabilities.canaries`` points here.
* ``validation/runtime.json``: the runtime probe plan of ``validation.execution``: one reset
  (seed + options + episode_id) and the actions replayed on one WebSocket session: an
  unknown method (an error observation must stay well-formed), then the reference
  solver's actions for that episode.

    uv run python scripts/record_canaries.py           # rewrite the files
    uv run python scripts/record_canaries.py --check   # exit 1 if the shipped files are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from validation_common import CANARY_DIR, PROBE_PLAN, ROOT, RecordingHandle, episode_set, open_target

from metric_tracker_rl.agents import AGENTS

CANARY_AGENTS = ("empty", "mass", "random")

PROBE_EPISODE_ID = "metric-tracker-validation-probe"
PROBE_SEED = 7  # a training seed (below EVAL_SEED_BASE): the plan reveals no evaluation answer
PROBE_OPTIONS = {"scenario_family": "mixed", "difficulty": "hard", "anomaly_density": "medium"}
PROBE_ERROR_ACTION = {"analysis_method": "no_such_method"}


def record_trajectory(agent: str, config: dict[str, Any]) -> dict[str, Any]:
    """Play one agent on one episode in process and return its trajectory record."""
    with open_target(None) as env:
        recorder = RecordingHandle(env)
        final = AGENTS[agent]().play(recorder, config)
    return {"reset": recorder.reset_config, "steps": recorder.steps, "final_reward": final.reward}


def canary_lines(agent: str) -> list[str]:
    lines = []
    for label, config in episode_set("canary"):
        record = {"agent": agent, "episode": label, **record_trajectory(agent, config)}
        lines.append(json.dumps(record))
    return lines


def probe_plan() -> dict[str, Any]:
    solver = record_trajectory("solver", {"seed": PROBE_SEED, **PROBE_OPTIONS})
    if solver["final_reward"] != 1.0:
        raise RuntimeError(f"the solver scored {solver['final_reward']} on the probe episode")
    return {
        "plan_schema_version": "1",
        "reset": {"episode_id": PROBE_EPISODE_ID, "seed": PROBE_SEED, "options": PROBE_OPTIONS},
        "actions": [PROBE_ERROR_ACTION, *(step["action"] for step in solver["steps"])],
    }


def expected_files() -> dict[Path, str]:
    """Every shipped file and the exact text it should hold."""
    files = {CANARY_DIR / f"{agent}.jsonl": "\n".join(canary_lines(agent)) + "\n" for agent in CANARY_AGENTS}
    files[PROBE_PLAN] = json.dumps(probe_plan(), indent=2) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Compare instead of writing.")
    args = parser.parse_args(argv)
    files = expected_files()
    if args.check:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"stale: {path} (run scripts/record_canaries.py)", file=sys.stderr)
        if not stale:
            print(f"current: {len(files)} files ({', '.join(str(p.relative_to(ROOT)) for p in files)})")
        return 1 if stale else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
