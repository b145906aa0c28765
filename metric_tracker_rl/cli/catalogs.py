"""``metric-tracker tasks`` and ``metric-tracker methods``: what there is to play and to call."""

from __future__ import annotations

import json
from typing import Any

import typer

from metric_tracker_rl.cli.common import command_group

app = command_group()


def tasks_catalog() -> dict[str, Any]:
    """The named tasks and a summary of the evaluation split, as plain JSON-ready data."""
    from metric_tracker_rl.tasks import EVAL_SEED_BASE, EVAL_SPLIT, NAMED_TASKS

    named = [task.describe() for task in NAMED_TASKS.values()]
    seeds = [config["seed"] for config in EVAL_SPLIT]
    split = {
        "count": len(EVAL_SPLIT),
        "seed_min": min(seeds),
        "seed_max": max(seeds),
        "scenario_families": _ordered_unique(c["scenario_family"] for c in EVAL_SPLIT),
        "difficulties": _ordered_unique(c["difficulty"] for c in EVAL_SPLIT),
        "anomaly_densities": _ordered_unique(c["anomaly_density"] for c in EVAL_SPLIT),
        "configs": [dict(config) for config in EVAL_SPLIT],
    }
    return {
        "named_tasks": named,
        "evaluation_split": split,
        "training_seeds": {"below": EVAL_SEED_BASE},
    }


def _ordered_unique(values: Any) -> list[Any]:
    return list(dict.fromkeys(values))


@app.command("tasks")
def tasks(
    as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON (sorted keys)."),
) -> None:
    """List the named tasks and the evaluation split."""
    catalog = tasks_catalog()
    if as_json:
        typer.echo(json.dumps(catalog, indent=2, sort_keys=True))
        return
    _print_tasks_tables(catalog)


def _print_tasks_tables(catalog: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    named = Table(title="Named tasks", title_justify="left")
    named.add_column("task_id", style="bold", no_wrap=True)
    named.add_column("difficulty", no_wrap=True)
    named.add_column("anomalies", justify="right")
    named.add_column("rows", justify="right")
    named.add_column("description")
    for task in catalog["named_tasks"]:
        rows = "not given" if task["anomaly_rows"] is None else str(task["anomaly_rows"])
        named.add_row(task["task_id"], task["difficulty"], str(task["anomalies"]), rows, task["description"])
    console.print(named)

    split = catalog["evaluation_split"]
    summary = Table(title="Evaluation split", title_justify="left", show_header=False)
    summary.add_column("field", style="bold", no_wrap=True)
    summary.add_column("value")
    summary.add_row("configs", str(split["count"]))
    summary.add_row("seeds", f"{split['seed_min']} .. {split['seed_max']}")
    summary.add_row("scenario families", ", ".join(split["scenario_families"]))
    summary.add_row("difficulties", ", ".join(split["difficulties"]))
    summary.add_row("anomaly densities", ", ".join(split["anomaly_densities"]))
    summary.add_row("training seeds", f"below {catalog['training_seeds']['below']}")
    console.print(summary)
    console.print("Full list of configs: metric-tracker tasks --json", style="dim")


# --- methods ---------------------------------------------------------------------------


def methods_catalog() -> list[dict[str, Any]]:
    """Every analysis method from the registry: name, kind, arguments, description."""
    from metric_tracker_rl.analysis import available_methods

    return available_methods()


def argument_list(schema: dict[str, Any]) -> list[str]:
    """Arguments of a method: required names bare, optional ones ``name=default`` or ``name?``."""
    required = set(schema.get("required", []))
    parts = []
    for name, prop in schema.get("properties", {}).items():
        if name in required:
            parts.append(name)
        elif prop.get("default") is not None:
            parts.append(f"{name}={prop['default']}")
        else:
            parts.append(f"{name}?")
    return parts


def methods_markdown(methods: list[dict[str, Any]]) -> str:
    """The methods as a Markdown table (the README's table is this output)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| method | kind | cost | arguments | description |", "|---|---|---|---|---|"]
    for m in methods:
        shown = ", ".join(f"`{a}`" for a in argument_list(m["arguments"])) or "none"
        lines.append(
            f"| `{m['name']}` | {m['kind']} | {cost_label(m)} | {cell(shown)} | {cell(m['description'])} |"
        )
    return "\n".join(lines)


def cost_label(method: dict[str, Any]) -> str:
    """A method's price in budget units: ``3``, or ``1 + 2/row`` for methods priced per row."""
    if method.get("cost_per_row"):
        return f"{method['cost']} + {method['cost_per_row']}/row"
    return str(method["cost"])


@app.command("methods")
def methods(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON (with argument schemas)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table."),
) -> None:
    """List the read-only analysis methods agents can call."""
    catalog = methods_catalog()
    if as_json:
        typer.echo(json.dumps(catalog, indent=2, sort_keys=True))
        return
    if markdown:
        typer.echo(methods_markdown(catalog))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    console = Console()
    console.print("[bold]Analysis methods[/]", f"({len(catalog)})")
    for m in catalog:
        arguments = ", ".join(argument_list(m["arguments"])) or "no arguments"
        console.print(
            f"[bold]{escape(m['name'])}[/]  [cyan]{escape(m['kind'])}[/]  cost {escape(cost_label(m))}  "
            f"({escape(arguments)})",
            highlight=False,
        )
        console.print(Padding(Text(m["description"], style="dim"), (0, 0, 0, 4)))
