"""Command line: ``metric-tracker <command>``.

One module per command group, each with a small ``typer.Typer`` that the root ``app`` merges
(typer's layout for larger apps): ``catalogs`` (tasks, methods), ``evaluate`` (eval),
``report`` (report), ``data`` (export, dataset), ``serve`` (serve, mcp). Module import stays
cheap (no OpenEnv, no episode generation): commands import what they need when they run. ``run`` is the entry
point: a mistake (a bad option, a missing file, a server that is not there) ends with one
line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from metric_tracker_rl.cli import catalogs, data, evaluate, report, serve
from metric_tracker_rl.cli.common import INTERRUPTED, PROG, USAGE_ERROR, CliError, Interrupted

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


for _group in (catalogs, evaluate, report, data, serve):
    app.add_typer(_group.app)


def command_names() -> list[str]:
    """The commands, in the order ``--help`` lists them."""
    return [
        command.name
        for group in app.registered_groups
        for command in group.typer_instance.registered_commands
    ]


def run(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit code. Mistakes are one line on stderr."""
    try:
        code = app(args=argv, prog_name=PROG, standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        typer.echo(f"{PROG}: aborted", err=True)
        return 1
    except Interrupted as stopped:  # the command stopped its work and says how to go on
        typer.echo(str(stopped), err=True)
        return INTERRUPTED
    except typer.TyperException as err:
        message = err.format_message()
        if type(err).__name__ == "NoArgsIsHelpError":  # no command: the help is the answer
            typer.echo(message)
            return USAGE_ERROR
        return _fail(message, getattr(getattr(err, "ctx", None), "command_path", PROG))
    except (CliError, OSError) as err:
        return _fail(str(err), _command_path(sys.argv[1:] if argv is None else argv))
    if code == INTERRUPTED:  # typer's answer to Ctrl-C anywhere else
        typer.echo(f"{PROG}: interrupted", err=True)
    return code if isinstance(code, int) else 0  # a command's typer.Exit comes back as its code


def _command_path(argv: list[str]) -> str:
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    return f"{PROG} {command}" if command in command_names() else PROG


def _fail(message: str, command: str) -> int:
    line = " ".join(message.split())
    typer.echo(f"{command}: error: {line} (see '{command} --help')", err=True)
    return USAGE_ERROR


def entry_point() -> None:
    """The ``metric-tracker`` script."""
    sys.exit(run())


__all__ = ["CliError", "app", "command_names", "entry_point", "run"]
