"""What every command group shares: the program's name, the exit code of a mistake, the
error a command raises for one, and how a group's ``typer.Typer`` is made."""

from __future__ import annotations

import typer

PROG = "metric-tracker"
USAGE_ERROR = 2  # the exit code of a mistake in how the command was called
INTERRUPTED = 130  # the exit code after Ctrl-C (128 + SIGINT), as shells report it


class CliError(Exception):
    """A mistake the user can fix (a path, a URL, a value): one line, exit code 2."""


class Interrupted(Exception):
    """Ctrl-C, after the command stopped its work: one line saying how to go on, exit code 130."""


def command_group() -> typer.Typer:
    """A group's commands, merged into the root ``app`` (``app.add_typer`` without a name)."""
    return typer.Typer(add_completion=False, pretty_exceptions_enable=False)
