"""``metric-tracker eval``: agents over named tasks, the evaluation split or a config file,
a markdown score table, a report and a journal that ``--resume`` continues."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from metric_tracker_rl.cli.common import PROG, CliError, Interrupted, command_group

app = command_group()


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
    from metric_tracker_rl.arguments import OPENENV_RESET_ARGUMENTS, check_reset_arguments
    from metric_tracker_rl.config import ConfigError
    from metric_tracker_rl.tasks import config_for

    try:
        check_reset_arguments(config, openenv=True)
        config_for(**{k: v for k, v in config.items() if k not in OPENENV_RESET_ARGUMENTS})
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
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help="Play against a server, not in process (repeat for several: episodes go to each in "
            "turn, and move to another when theirs stops answering).",
        ),
    ] = None,
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
    recorded with its error and the run goes on; the exit code is 1 if any episode failed.
    Ctrl-C stops the episodes in flight and exits with 130; --resume plays what is missing."""
    from rich.console import Console
    from rich.progress import Progress

    from metric_tracker_rl.agents import AGENTS
    from metric_tracker_rl.evaluation import Journal, markdown_table, run_date, run_evaluation, run_metadata
    from metric_tracker_rl.tasks import NAMED_TASKS

    unknown = [name for name in agent if name not in AGENTS]
    if unknown:
        raise typer.BadParameter(f"unknown agent(s) {unknown}; available: {sorted(AGENTS)}")
    _check_endpoints(agent, AGENTS)
    servers = list(dict.fromkeys(url or []))
    if max_steps is not None and servers:
        raise typer.BadParameter(
            "--max-steps applies in process; a server's budget is set where it is served "
            "(metric-tracker serve --max-steps)",
            param_hint="--max-steps",
        )
    if resume and json_out is None:
        raise typer.BadParameter("--resume needs --json PATH (its PATH.partial.jsonl)", param_hint="--resume")
    configs, labels = eval_configs(task or [], split, configs_file)
    report_path = _report_path(json_out) if json_out is not None else None
    if servers:
        _check_servers(servers)
    where: str | list[str] | None = (servers[0] if len(servers) == 1 else servers) or None
    journal = Journal(f"{report_path}.partial.jsonl", resume=resume) if report_path is not None else None
    run = run_metadata(
        tasks=list(task or ([] if split or configs_file else NAMED_TASKS)),
        split=split,
        configs_file=configs_file,
        max_steps=max_steps,
        url=where,
        date=journal.date if journal is not None else run_date(),
    )
    reports = []
    try:
        with _interruption_named(journal), Progress(transient=True, console=Console(stderr=True)) as progress:
            for name in agent:
                bar = progress.add_task(f"{name}", total=len(configs))
                report = run_evaluation(
                    name,
                    configs,
                    labels=labels,
                    url=where,
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
    moved = sum(r["moved_episodes"] for r in reports)
    if moved:
        typer.echo(
            f"{PROG} eval: {moved} episodes moved to another server when theirs stopped answering "
            "(replayed from their reset config and actions: the same results)",
            err=True,
        )
    failed = sum(r["failed_episodes"] for r in reports)
    if failed:
        played = sum(len(r["episodes"]) for r in reports)
        where = "run with --json to keep their errors"
        if report_path is not None:
            where = f"their errors are in {report_path}; --resume plays them again"
        typer.echo(f"{PROG} eval: {failed} of {played} episodes failed ({where})", err=True)
        raise typer.Exit(1)


def _check_endpoints(names: list[str], agents: dict[str, Any]) -> None:
    """An agent that needs a model endpoint, without its variables, is a mistake found before
    any episode is played."""
    from metric_tracker_rl.agents.llm import missing_settings

    needing = [name for name in dict.fromkeys(names) if getattr(agents[name], "requires_endpoint", False)]
    missing = missing_settings() if needing else []
    if missing:
        raise CliError(
            f"--agent {needing[0]} needs {', '.join(missing)} in the environment "
            "(for example: set -a; source .env.inference; set +a)"
        )


@contextlib.contextmanager
def _interruption_named(journal: Any) -> Iterator[None]:
    """Ctrl-C: the episodes in flight stop (they are not journalled), one line says how to go
    on, and the exit code is 130."""
    try:
        yield
    except KeyboardInterrupt:
        how = "nothing was kept; with --json PATH, finished episodes are kept and --resume plays the rest"
        if journal is not None:
            how = f"finished episodes are in {journal.path}; the same command with --resume plays the rest"
        raise Interrupted(f"{PROG} eval: interrupted; {how}") from None


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


def _check_servers(urls: list[str]) -> None:
    """A server that is not there is a mistake, found before any episode is played. Of several,
    those that do not answer are named on stderr and the others play (a resumed run after a
    server died goes on); none answering is a mistake."""
    problems = [problem for problem in map(_server_problem, urls) if problem is not None]
    if len(problems) == len(urls):
        raise CliError("; ".join(problems))
    for problem in problems:
        typer.echo(f"{PROG} eval: {problem}; the other servers play its episodes", err=True)


def _server_problem(url: str) -> str | None:
    import httpx

    try:
        reply = httpx.get(f"{url.rstrip('/')}/health", timeout=10.0)
    except httpx.HTTPError as err:
        return (
            f"--url: no server answers at {url} ({type(err).__name__}); start one with `metric-tracker serve`"
        )
    if reply.status_code != 200:
        return f"--url: {url}/health answered HTTP {reply.status_code}, not a healthy server"
    return None
