"""``metric-tracker report``: eval reports turned into the results page."""

from __future__ import annotations

from typing import Annotated

import typer

from metric_tracker_rl.cli.common import CliError, command_group

app = command_group()


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
