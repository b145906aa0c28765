"""Command line: ``metric-tracker <command>``.

Each subcommand is a small function on the shared ``app``. Module import stays cheap
(no OpenEnv, no episode generation): commands import what they need when they run.
``run`` is the entry point: a mistake (a bad option, a missing file, a server that is
not there) ends with one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from metric_tracker_rl import constants as C

app = typer.Typer(
    name="metric-tracker",
    help="metric_tracker_rl: investigate synthetic product-funnel metrics, submit a graded anomaly report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """metric_tracker_rl command line."""


PROG = "metric-tracker"
USAGE_ERROR = 2  # the exit code of a mistake in how the command was called


class CliError(Exception):
    """A mistake the user can fix (a path, a URL, a value): one line, exit code 2."""


def run(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit code. Mistakes are one line on stderr."""
    try:
        code = app(args=argv, prog_name=PROG, standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        typer.echo(f"{PROG}: aborted", err=True)
        return 1
    except KeyboardInterrupt:
        typer.echo(f"{PROG}: interrupted", err=True)
        return 130
    except typer.TyperException as err:
        message = err.format_message()
        if type(err).__name__ == "NoArgsIsHelpError":  # no command: the help is the answer
            typer.echo(message)
            return USAGE_ERROR
        return _fail(message, getattr(getattr(err, "ctx", None), "command_path", PROG))
    except (CliError, OSError) as err:
        return _fail(str(err), _command_path(sys.argv[1:] if argv is None else argv))
    return code if isinstance(code, int) else 0  # a command's typer.Exit comes back as its code


def _command_path(argv: list[str]) -> str:
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    return f"{PROG} {command}" if command in {c.name for c in app.registered_commands} else PROG


def _fail(message: str, command: str) -> int:
    line = " ".join(message.split())
    typer.echo(f"{command}: error: {line} (see '{command} --help')", err=True)
    return USAGE_ERROR


def entry_point() -> None:
    """The ``metric-tracker`` script."""
    sys.exit(run())


# --- tasks -----------------------------------------------------------------------------


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
    named.add_column("anomaly rows", justify="right")
    named.add_column("description")
    for task in catalog["named_tasks"]:
        named.add_row(task["task_id"], task["difficulty"], str(task["anomaly_rows"]), task["description"])
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


# --- eval ------------------------------------------------------------------------------


def _load_jsonl(path: str) -> list[dict[str, Any]]:
    configs = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"--configs: no such file {path!r}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"--configs: cannot read {path!r} ({err})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            config = json.loads(line)
        except json.JSONDecodeError as err:
            raise CliError(f"--configs: {path}:{number}: not JSON ({err.msg})") from None
        if not isinstance(config, dict):
            raise CliError(f"--configs: {path}:{number}: each line must be a JSON object (a reset config)")
        problem = _reset_config_problem(config)
        if problem:
            raise CliError(f"--configs: {path}:{number}: {problem}")
        configs.append(config)
    return configs


def _reset_config_problem(config: dict[str, Any]) -> str | None:
    """What is wrong with a reset config, found before any episode is played."""
    from metric_tracker_rl.arguments import check_reset_arguments
    from metric_tracker_rl.config import ConfigError
    from metric_tracker_rl.tasks import config_for

    try:
        check_reset_arguments(set(config) - {"episode_id"})
        config_for(**{k: v for k, v in config.items() if k != "episode_id"})
    except ConfigError as err:
        return str(err)
    return None


def eval_configs(
    task: list[str], split: str | None, configs_file: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The configs to play and their per_task labels (named tasks by default)."""
    from metric_tracker_rl.tasks import EVAL_SPLIT, NAMED_TASKS

    configs: list[dict[str, Any]] = []
    labels: list[str] = []
    for task_id in task:
        if task_id not in NAMED_TASKS:
            raise typer.BadParameter(f"unknown task {task_id!r}; expected one of {list(NAMED_TASKS)}")
        configs.append({"task_id": task_id})
        labels.append(task_id)
    if split is not None:
        if split != "eval":
            raise typer.BadParameter(f"unknown split {split!r}; the only split is 'eval'")
        configs.extend(dict(c) for c in EVAL_SPLIT)
        labels.extend(["eval_split"] * len(EVAL_SPLIT))
    if configs_file is not None:
        loaded = _load_jsonl(configs_file)
        configs.extend(loaded)
        labels.extend([configs_file] * len(loaded))
    if not configs:
        configs = [{"task_id": task_id} for task_id in NAMED_TASKS]
        labels = list(NAMED_TASKS)
    return configs, labels


@app.command("eval")
def evaluate(
    agent: Annotated[list[str], typer.Option("--agent", help="Agent to run (repeat for several).")],
    task: Annotated[list[str] | None, typer.Option("--task", help="A named task (repeatable).")] = None,
    split: Annotated[str | None, typer.Option("--split", help="'eval': the fixed evaluation split.")] = None,
    configs_file: Annotated[
        str | None, typer.Option("--configs", help="JSONL file, one reset config per line.")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="Play against a server, not in process.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Episodes in parallel.")] = 1,
    max_steps: Annotated[
        int | None,
        typer.Option("--max-steps", min=1, help="Step budget in units (default: set by each episode)."),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Write the report(s) here; finished episodes go to PATH.partial.jsonl."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip the episodes PATH.partial.jsonl holds (needs --json).")
    ] = False,
) -> None:
    """Play agents over tasks / the evaluation split / a config file; print a markdown score table.

    A failed episode (the model's endpoint after its retries, a dropped server connection) is
    recorded with its error and the run goes on; the exit code is 1 if any episode failed."""
    from rich.progress import Progress

    from metric_tracker_rl.agents import AGENTS
    from metric_tracker_rl.evaluation import Journal, markdown_table, run_date, run_evaluation, run_metadata
    from metric_tracker_rl.tasks import NAMED_TASKS

    unknown = [name for name in agent if name not in AGENTS]
    if unknown:
        raise typer.BadParameter(f"unknown agent(s) {unknown}; available: {sorted(AGENTS)}")
    if max_steps is not None and url is not None:
        raise typer.BadParameter(
            "--max-steps applies in process; a server's budget is set where it is served "
            "(metric-tracker serve --max-steps)",
            param_hint="--max-steps",
        )
    if resume and json_out is None:
        raise typer.BadParameter("--resume needs --json PATH (its PATH.partial.jsonl)", param_hint="--resume")
    configs, labels = eval_configs(task or [], split, configs_file)
    report_path = _report_path(json_out) if json_out is not None else None
    if url is not None:
        _check_server(url)
    journal = Journal(f"{report_path}.partial.jsonl", resume=resume) if report_path is not None else None
    run = run_metadata(
        tasks=list(task or ([] if split or configs_file else NAMED_TASKS)),
        split=split,
        configs_file=configs_file,
        max_steps=max_steps,
        url=url,
        date=journal.date if journal is not None else run_date(),
    )
    reports = []
    try:
        with Progress(transient=True) as progress:
            for name in agent:
                bar = progress.add_task(f"{name}", total=len(configs))
                report = run_evaluation(
                    name,
                    configs,
                    labels=labels,
                    url=url,
                    workers=workers,
                    max_steps=max_steps,
                    on_episode=lambda _record, bar=bar: progress.advance(bar),
                    journal=journal,
                )
                reports.append(report | {"run": run})
    finally:
        if journal is not None:
            journal.close()
    typer.echo(markdown_table(reports))
    if report_path is not None:
        payload: Any = reports[0] if len(reports) == 1 else {"reports": reports}
        report_path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    failed = sum(r["failed_episodes"] for r in reports)
    if failed:
        played = sum(len(r["episodes"]) for r in reports)
        where = "run with --json to keep their errors"
        if report_path is not None:
            where = f"their errors are in {report_path}; --resume plays them again"
        typer.echo(f"{PROG} eval: {failed} of {played} episodes failed ({where})", err=True)
        raise typer.Exit(1)


def _report_path(json_out: str) -> Path:
    """The report's path, its folder created; a folder or an unwritable place is a mistake."""
    path = Path(json_out)
    if path.is_dir():
        raise CliError(f"--json: {json_out!r} is a folder; give a file path, e.g. {path / 'scores.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"--json: cannot create the folder of {json_out!r} ({err.strerror})") from None
    return path


def _check_server(url: str) -> None:
    """A server that is not there is a mistake, found before any episode is played."""
    import httpx

    try:
        reply = httpx.get(f"{url.rstrip('/')}/health", timeout=10.0)
    except httpx.HTTPError as err:
        raise CliError(
            f"--url: no server answers at {url} ({type(err).__name__}); start one with `metric-tracker serve`"
        ) from None
    if reply.status_code != 200:
        raise CliError(f"--url: {url}/health answered HTTP {reply.status_code}, not a healthy server")


# --- report ----------------------------------------------------------------------------


@app.command("report")
def report(
    results: Annotated[list[str], typer.Argument(help="Reports written by metric-tracker eval --json.")],
    out_dir: Annotated[str, typer.Option("--out", help="Directory to write into (created if missing).")],
    hub_dataset: Annotated[
        str | None,
        typer.Option("--hub-dataset", help="The benchmark's Hub dataset id in eval.yaml's results."),
    ] = None,
) -> None:
    """Write the results page: an HTML leaderboard, its Markdown (printed too), and eval.yaml
    with .eval_results/ in Hugging Face's eval-results convention."""
    from metric_tracker_rl.report import HUB_DATASET, ReportError, markdown, write_report

    try:
        built, written = write_report(results, out_dir, hub_dataset or HUB_DATASET)
    except ReportError as err:
        raise CliError(str(err)) from None
    typer.echo(markdown(built), nl=False)
    typer.echo(f"Wrote {', '.join(str(path) for path in written)}", err=True)


# --- export ----------------------------------------------------------------------------


@app.command("export")
def export(
    out_dir: Annotated[str, typer.Argument(help="Directory to write into (created if missing).")],
    task: Annotated[
        str | None, typer.Option("--task", help="A named task (other options override it).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Episode seed (default 0).")] = None,
    scenario_family: Annotated[
        str | None, typer.Option("--scenario-family", help="'mixed' (default) or one anomaly family.")
    ] = None,
    difficulty: Annotated[str | None, typer.Option("--difficulty", help="easy | medium | hard.")] = None,
    anomaly_density: Annotated[
        str | None, typer.Option("--anomaly-density", help="low | medium | high.")
    ] = None,
    anomaly_count: Annotated[int | None, typer.Option("--anomaly-count", help="Number of anomalies.")] = None,
    end_date: Annotated[
        str | None, typer.Option("--end-date", help="Last day of the window, YYYY-MM-DD.")
    ] = None,
    file_format: Annotated[str, typer.Option("--format", help="csv | parquet.")] = "csv",
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Also write the hidden truth (expected rows, anomaly schedule)."),
    ] = False,
) -> None:
    """Write an episode's daily and hourly tables (CSV or Parquet) and a manifest for offline analysis."""
    from metric_tracker_rl.config import ConfigError
    from metric_tracker_rl.export import FORMATS, ExportError, export_config
    from metric_tracker_rl.tasks import config_for

    if file_format not in FORMATS:
        raise typer.BadParameter(
            f"unknown format {file_format!r}; expected one of {list(FORMATS)}", param_hint="--format"
        )
    try:
        config = config_for(
            task,
            seed=seed,
            scenario_family=scenario_family,
            difficulty=difficulty,
            anomaly_density=anomaly_density,
            anomaly_count=anomaly_count,
            end_date=end_date,
        )
    except ConfigError as err:
        raise typer.BadParameter(str(err)) from None
    try:
        manifest = export_config(config, out_dir, fmt=file_format, debug=debug)
    except ExportError as err:
        raise typer.BadParameter(str(err), param_hint="OUT_DIR") from None
    typer.echo(f"Exported to {out_dir}:")
    for entry in manifest["files"]:
        size = f"{entry['rows']} rows" if "rows" in entry else f"{entry['items']} items"
        typer.echo(f"  {entry['name']}  ({size})")
    typer.echo("  manifest.json")
    if debug:
        typer.echo("debug: expected_rows and anomaly_schedule hold the hidden truth; keep them from agents.")


# --- dataset ---------------------------------------------------------------------------


@app.command("dataset")
def dataset(
    out_dir: Annotated[str, typer.Argument(help="Directory to write into (created if missing).")],
    per_cell: Annotated[
        int,
        typer.Option(
            "--per-cell", min=1, help="Training configs per scenario family x difficulty x anomaly density."
        ),
    ] = C.DATASET_PER_CELL,
) -> None:
    """Write Hugging Face datasets (Parquet, with a card): prompts/ for GRPO, sft/ for SFT warm-up."""
    from metric_tracker_rl.integrations.dataset import DatasetError, write_dataset

    try:
        summary = write_dataset(out_dir, per_cell=per_cell)
    except DatasetError as err:
        raise typer.BadParameter(str(err), param_hint="OUT_DIR") from None
    typer.echo(f"Wrote {out_dir}:")
    for name, entry in summary["files"].items():
        typer.echo(f"  {name}.parquet  ({entry['rows']} rows, {entry['bytes']} bytes)")
    typer.echo("  README.md  (the dataset card)")
    dropped = summary["sft_episodes_below_1"]
    if dropped:
        typer.echo(f"  ({dropped} solver episode{'s' if dropped != 1 else ''} below 1.0 left out of sft)")


# --- serve -----------------------------------------------------------------------------

WEB_ENV_VAR = "ENABLE_WEB_INTERFACE"


@app.command("serve")
def serve(
    host: str = typer.Option("0.0.0.0", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    max_sessions: int = typer.Option(
        None, "--max-sessions", min=1, help="Concurrent sessions, WebSocket and MCP each (default 256)."
    ),
    mcp_idle_timeout: float = typer.Option(
        None,
        "--mcp-idle-timeout",
        min=0.001,
        help="Seconds before an idle MCP session closes (default 1800).",
    ),
    max_steps: int = typer.Option(
        None, "--max-steps", min=1, help="Step budget of every episode (default: set by each episode)."
    ),
    web: bool | None = typer.Option(
        None,
        "--web/--no-web",
        help="Mount the web debugger at /web (default: on, unless ENABLE_WEB_INTERFACE says otherwise).",
        show_default=False,
    ),
) -> None:
    """Run the OpenEnv server (HTTP, WebSocket, MCP) and the web debugger at /web."""
    import os

    from metric_tracker_rl.serving import run

    # OpenEnv mounts /web only when ENABLE_WEB_INTERFACE is set; an explicit flag wins.
    if web is None:
        os.environ.setdefault(WEB_ENV_VAR, "1")
    else:
        os.environ[WEB_ENV_VAR] = "1" if web else "0"
    run(
        host=host,
        port=port,
        max_sessions=max_sessions,
        max_steps=max_steps,
        mcp_idle_timeout=mcp_idle_timeout,
    )


@app.command("mcp")
def mcp() -> None:
    """Serve the benchmark to an MCP host over stdio: one episode session for the process's life."""
    from metric_tracker_rl.mcp.server import run_stdio

    run_stdio()


if __name__ == "__main__":
    entry_point()
