"""``metric-tracker export``: daily/hourly tables, debug truth, manifest, determinism, errors."""

from __future__ import annotations

import hashlib
import json
import operator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from metric_tracker_rl import constants as C
from metric_tracker_rl.cli import app
from metric_tracker_rl.episode import build_episode
from metric_tracker_rl.export import (
    DAILY_SCHEMA,
    EXPECTED_ROWS_SCHEMA,
    HOURLY_SCHEMA,
    ExportError,
    export_config,
    export_episode,
)
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.tasks import NAMED_TASKS, config_for

runner = CliRunner()
TASK = "hard_mixed_multi"  # hour-level families: the hourly table matters
FORMATS = ("csv", "parquet")
DAILY_COLUMNS = ["date", "weekday", *C.EVENTS, *C.RATE_METRICS]
HOURLY_COLUMNS = ["date", "hour", *C.EVENTS]
SCHEMAS = {"daily": DAILY_SCHEMA, "hourly": HOURLY_SCHEMA, "expected_rows": EXPECTED_ROWS_SCHEMA}


def export(out_dir: Path, *args: str) -> Path:
    result = runner.invoke(app, ["export", str(out_dir), *args])
    assert result.exit_code == 0, result.output
    return out_dir


def read_table(out_dir: Path, name: str, fmt: str) -> pa.Table:
    """Read a table back as an analyst would (CSV with the column types from the manifest)."""
    path = out_dir / f"{name}.{fmt}"
    if fmt == "parquet":
        return pq.read_table(path)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    (entry,) = [f for f in manifest["files"] if f["name"] == path.name]
    assert [c["name"] for c in entry["columns"]] == SCHEMAS[name].names
    return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=SCHEMAS[name]))


def plain(error_output: str) -> str:
    """Rich error boxes wrap long messages: undo the wrapping for substring checks."""
    return " ".join(error_output.replace("│", " ").split())


@pytest.fixture(scope="module")
def episode():
    return build_episode(config_for(TASK))


@pytest.fixture(scope="module", params=FORMATS)
def exported(request, tmp_path_factory) -> tuple[Path, str]:
    fmt = request.param
    return export(tmp_path_factory.mktemp(fmt) / "out", "--task", TASK, "--format", fmt), fmt


# --- tables ----------------------------------------------------------------------------


def test_writes_daily_hourly_and_manifest_only(exported) -> None:
    out_dir, fmt = exported
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"daily.{fmt}", f"hourly.{fmt}", "manifest.json"]
    )


def test_table_shapes_and_columns(exported) -> None:
    out_dir, fmt = exported
    daily = read_table(out_dir, "daily", fmt)
    hourly = read_table(out_dir, "hourly", fmt)
    assert daily.num_rows == 28 and daily.column_names == DAILY_COLUMNS
    assert hourly.num_rows == 672 and hourly.column_names == HOURLY_COLUMNS
    assert daily.schema == DAILY_SCHEMA and hourly.schema == HOURLY_SCHEMA
    # Inferred types agree too (a reader that ignores the manifest gets the same table).
    if fmt == "csv":
        assert pa_csv.read_csv(out_dir / "daily.csv").schema == DAILY_SCHEMA
        assert pa_csv.read_csv(out_dir / "hourly.csv").schema == HOURLY_SCHEMA


def test_tables_hold_the_episode_data(exported, episode) -> None:
    out_dir, fmt = exported
    daily = read_table(out_dir, "daily", fmt).to_pydict()
    hourly = read_table(out_dir, "hourly", fmt).to_pydict()
    assert [d.isoformat() for d in daily["date"]] == list(episode.dates)
    assert daily["weekday"] == list(episode.weekdays)
    assert hourly["hour"] == list(range(24)) * 28
    assert [d.isoformat() for d in hourly["date"][::24]] == list(episode.dates)
    counts = np.array([hourly[e] for e in C.EVENTS]).T.reshape(28, 24, C.NUM_EVENTS)
    np.testing.assert_array_equal(counts, episode.hourly)


def test_daily_counts_are_sums_of_hourly_counts(exported) -> None:
    out_dir, fmt = exported
    daily = read_table(out_dir, "daily", fmt).to_pydict()
    hourly = read_table(out_dir, "hourly", fmt).to_pydict()
    for event in C.EVENTS:
        per_day = np.array(hourly[event]).reshape(28, 24).sum(axis=1)
        assert per_day.tolist() == daily[event]


def test_rates_match_counts(exported) -> None:
    out_dir, fmt = exported
    daily = read_table(out_dir, "daily", fmt).to_pydict()
    for metric, (num, den) in C.CONVERSION_METRICS.items():
        for day in range(28):
            expected = 100.0 * daily[C.EVENTS[num]][day] / daily[C.EVENTS[den]][day]
            assert daily[metric][day] == round(expected, C.ROUND_DIGITS)


def test_manifest_describes_config_and_files(exported, episode) -> None:
    out_dir, fmt = exported
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["format"] == fmt
    assert manifest["debug"] is False
    assert manifest["config"] == episode.visible_config()
    assert manifest["config"]["task_id"] == TASK
    assert manifest["expected_row_count"] is None  # the task's difficulty hides it, unless --debug
    assert set(manifest["conversion_metric_definitions"]) == set(C.RATE_METRICS)
    files = {f["name"]: f for f in manifest["files"]}
    assert list(files) == [f"daily.{fmt}", f"hourly.{fmt}"]
    assert files[f"daily.{fmt}"]["rows"] == 28 and files[f"hourly.{fmt}"]["rows"] == 672
    for name, entry in files.items():
        content = (out_dir / name).read_bytes()
        assert entry["bytes"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    assert "created" not in json.dumps(manifest).lower()  # no timestamps


def test_parquet_has_no_wall_clock_metadata(tmp_path) -> None:
    out_dir = export(tmp_path / "out", "--task", TASK, "--format", "parquet")
    metadata = pq.ParquetFile(out_dir / "daily.parquet").metadata
    assert set(metadata.metadata) == {b"ARROW:schema"}  # no pandas block, no timestamps
    assert metadata.num_row_groups == 1


# --- determinism -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_exports_are_byte_identical(tmp_path, fmt) -> None:
    first = export(tmp_path / "a", "--task", TASK, "--format", fmt, "--debug")
    second = export(tmp_path / "b", "--task", TASK, "--format", fmt, "--debug")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert len(names) == 5
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# --- debug truth -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_debug_writes_expected_rows_and_schedule(tmp_path, fmt, episode) -> None:
    out_dir = export(tmp_path / "out", "--task", TASK, "--format", fmt, "--debug")
    table = read_table(out_dir, "expected_rows", fmt)
    assert table.column_names == list(ROW_FIELDS)
    rows = table.to_pylist()
    for row in rows:
        row["date"] = row["date"].isoformat()
    order = operator.itemgetter("date", "entity_type", "entity_name")
    assert sorted(rows, key=order) == sorted((r.model_dump() for r in episode.expected_rows), key=order)
    assert len(rows) == NAMED_TASKS[TASK].anomaly_rows  # the rows of the task's four anomalies
    schedule = json.loads((out_dir / "anomaly_schedule.json").read_text())
    assert schedule == json.loads(json.dumps(episode.anomaly_schedule()))
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["debug"] is True
    assert [f["name"] for f in manifest["files"]] == [
        f"daily.{fmt}",
        f"hourly.{fmt}",
        f"expected_rows.{fmt}",
        "anomaly_schedule.json",
    ]


def test_no_truth_without_debug_flag_even_with_debug_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("METRIC_TRACKER_DEBUG", "1")  # the flag is the only switch
    out_dir = export(tmp_path / "out", "--task", TASK)
    names = {p.name for p in out_dir.iterdir()}
    assert names == {"daily.csv", "hourly.csv", "manifest.json"}
    manifest_text = (out_dir / "manifest.json").read_text()
    assert "expected_rows" not in manifest_text and "anomaly_schedule" not in manifest_text


def test_reexport_removes_stale_files_of_an_earlier_export(tmp_path) -> None:
    out_dir = export(tmp_path / "out", "--task", TASK, "--format", "parquet", "--debug")
    (out_dir / "notes.txt").write_text("mine")
    export(out_dir, "--task", TASK)
    names = {p.name for p in out_dir.iterdir()}
    assert names == {"daily.csv", "hourly.csv", "manifest.json", "notes.txt"}


def test_empty_truth_still_has_the_row_schema(tmp_path) -> None:
    injection = {
        "method_name": "metric_stddev_shift",
        "metric_name": "app_opens",
        "date": "2026-03-10",
        "stddev_factor": 0.1,
        "direction": "up",
    }
    config = config_for(seed=5, anomalies=[injection])
    manifest = export_config(config, tmp_path / "out", fmt="parquet", debug=True)
    table = pq.read_table(tmp_path / "out" / "expected_rows.parquet")
    assert table.num_rows == len(build_episode(config).expected_rows) == 0
    assert table.schema == EXPECTED_ROWS_SCHEMA
    assert manifest["config"]["injections"] == [
        {
            "method_name": "metric_stddev_shift",
            "metric_names": ["app_opens"],
            "dates": ["2026-03-10"],
            "stddev_factor": 0.1,
            "direction": "up",
        }
    ]


# --- config options --------------------------------------------------------------------


def test_procedural_config_options(tmp_path) -> None:
    out_dir = export(
        tmp_path / "out",
        *("--seed", "7", "--scenario-family", "absolute_drop_in_event_count"),
        *("--difficulty", "easy", "--anomaly-count", "2", "--end-date", "2026-01-31"),
    )
    manifest = json.loads((out_dir / "manifest.json").read_text())
    config = manifest["config"]
    assert (config["seed"], config["scenario_family"], config["difficulty"]) == (
        7,
        "absolute_drop_in_event_count",
        "easy",
    )
    assert config["task_id"] is None
    assert (config["start_date"], config["end_date"]) == ("2026-01-04", "2026-01-31")
    daily = read_table(out_dir, "daily", "csv")
    assert daily["date"][0].as_py().isoformat() == "2026-01-04"
    assert daily.num_rows == 28


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "nope"], "unknown task_id 'nope'"),
        (["--format", "xlsx"], "unknown format 'xlsx'"),
        (["--difficulty", "insane"], "unknown difficulty 'insane'"),
        (["--scenario-family", "weird"], "unknown scenario_family 'weird'"),
        (["--anomaly-density", "huge"], "unknown anomaly_density 'huge'"),
        (["--anomaly-count", "99"], "anomaly_count must be between"),
        (["--seed", "-1"], "seed must be a non-negative integer"),
        (["--end-date", "tomorrow"], "end_date must be an ISO date"),
    ],
)
def test_bad_inputs_are_clear_errors(tmp_path, args, message) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert message in plain(result.output)
    assert not (tmp_path / "out").exists()


def test_output_path_that_is_a_file_is_an_error(tmp_path) -> None:
    target = tmp_path / "a_file"
    target.write_text("x")
    result = runner.invoke(app, ["export", str(target), "--task", TASK])
    assert result.exit_code == 2
    assert "is not a directory" in plain(result.output)
    with pytest.raises(ExportError, match="unknown format"):
        export_episode(build_episode(config_for(TASK)), tmp_path / "x", fmt="json")
