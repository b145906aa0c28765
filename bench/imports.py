"""Import times: the engine, the client, the agents, ``inference.py`` and each CLI command's
modules, against ``import gradio`` on the same machine.

Each figure is the cumulative time ``python -X importtime`` reports for the statement's
top-level modules, in a fresh interpreter, median of ``--repeat`` runs. Target: at most
0.25 x gradio for everything but ``serve`` (Gradio loads only when the web UI is built).

    uv run python bench/imports.py                  # prints the table, writes bench/results/imports.json
    uv run python bench/imports.py --repeat 3 --json /tmp/imports.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

from machine import machine  # bench/machine.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.25
REFERENCE = ("gradio", "import gradio")
# (what, statement): the modules each surface or CLI command imports when it runs.
SUBJECTS: tuple[tuple[str, str], ...] = (
    ("engine (environment)", "import metric_tracker_rl.environment"),
    ("client", "import metric_tracker_rl.client"),
    ("agents", "import metric_tracker_rl.agents"),
    ("inference.py", "import inference"),
    ("cli (module)", "import metric_tracker_rl.cli"),
    ("cli tasks", "import metric_tracker_rl.cli, metric_tracker_rl.tasks"),
    ("cli methods", "import metric_tracker_rl.cli, metric_tracker_rl.analysis"),
    ("cli eval", "import metric_tracker_rl.cli, metric_tracker_rl.evaluation, rich.progress"),
    ("cli export", "import metric_tracker_rl.cli, metric_tracker_rl.export"),
    ("cli mcp", "import metric_tracker_rl.cli, metric_tracker_rl.mcp.server"),
)
_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)$")


def import_seconds(statement: str) -> tuple[float, bool]:
    """Cumulative import time of the statement's top-level imports, and whether gradio loaded."""
    code = f"{statement}\nimport sys\nprint('gradio' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    total_us = 0
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if match and match.group(2) == " ":  # one space after the bar: a top-level import
            total_us += int(match.group(1))
    return total_us / 1e6, done.stdout.strip() == "True"


def measure(statement: str, repeat: int) -> dict[str, object]:
    runs = [import_seconds(statement) for _ in range(repeat)]
    return {"median_s": round(statistics.median(t for t, _ in runs), 4), "gradio_loaded": runs[0][1]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "imports.json"))
    args = parser.parse_args()
    reference = measure(REFERENCE[1], args.repeat)
    limit = TARGET_RATIO * float(reference["median_s"])  # type: ignore[arg-type]
    results = [{"name": REFERENCE[0], "statement": REFERENCE[1], **reference, "ratio": 1.0}]
    print(f"| import | median s | x gradio | target (<= {TARGET_RATIO}) | gradio loaded |")
    print("|---|---|---|---|---|")
    print(f"| {REFERENCE[0]} | {reference['median_s']:.3f} | 1.00 | | yes |")
    for name, statement in SUBJECTS:
        figures = measure(statement, args.repeat)
        ratio = float(figures["median_s"]) / float(reference["median_s"])  # type: ignore[arg-type]
        ok = float(figures["median_s"]) <= limit and not figures["gradio_loaded"]  # type: ignore[arg-type]
        results.append({"name": name, "statement": statement, **figures, "ratio": round(ratio, 3), "ok": ok})
        loaded = "yes" if figures["gradio_loaded"] else "no"
        print(f"| {name} | {figures['median_s']:.3f} | {ratio:.2f} | {'pass' if ok else 'miss'} | {loaded} |")
    report = {
        "benchmark": "imports",
        "machine": machine(("gradio", "openenv", "metric-tracker-rl")),
        "repeat": args.repeat,
        "target_ratio": TARGET_RATIO,
        "results": results,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
