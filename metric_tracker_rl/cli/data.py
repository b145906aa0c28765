"""``metric-tracker export`` and ``metric-tracker dataset``: episodes and training data on disk."""

from __future__ import annotations

from typing import Annotated

import typer

from metric_tracker_rl import constants as C
from metric_tracker_rl.cli.common import command_group

app = command_group()


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
