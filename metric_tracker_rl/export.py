"""Export an episode's tables (CSV or Parquet) for offline analysis in pandas / polars.

The same config always gives the same bytes: columns in a fixed order, rows sorted by
date (and hour), no timestamps anywhere (Parquet files carry only the writer's version in
``created_by``). The hidden truth (expected rows, anomaly schedule) is written only when
the caller asks for it explicitly (``debug=True``): it is for operators, not agents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from metric_tracker_rl import __version__
from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.analysis import conversion_metric_definitions
from metric_tracker_rl.config import EpisodeConfig
from metric_tracker_rl.episode import Episode, build_episode
from metric_tracker_rl.rows import ROW_FIELDS

FORMATS: tuple[str, ...] = ("csv", "parquet")
MANIFEST_NAME = "manifest.json"
SCHEDULE_NAME = "anomaly_schedule.json"
TABLE_NAMES: tuple[str, ...] = ("daily", "hourly", "expected_rows")

DAILY_SCHEMA = pa.schema(
    [
        ("date", pa.date32()),
        ("weekday", pa.string()),
        *[(event, pa.int64()) for event in C.EVENTS],
        *[(metric, pa.float64()) for metric in C.RATE_METRICS],
    ]
)
HOURLY_SCHEMA = pa.schema(
    [("date", pa.date32()), ("hour", pa.int64()), *[(event, pa.int64()) for event in C.EVENTS]]
)
_ROW_VALUE_FIELDS = ("baseline_value", "observed_value", "delta_value")
EXPECTED_ROWS_SCHEMA = pa.schema(
    [
        (name, pa.date32() if name == "date" else pa.float64() if name in _ROW_VALUE_FIELDS else pa.string())
        for name in ROW_FIELDS
    ]
)

# Parquet writer settings, fixed so that files are byte-identical across runs.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    "version": "2.6",
    "use_dictionary": True,
    "write_statistics": True,
    "store_schema": True,
}


class ExportError(ValueError):
    """The export cannot be written as asked (unknown format, output path is a file...)."""


# --- tables ----------------------------------------------------------------------------


def _dates(episode: Episode) -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in episode.dates]


def _rate(value: float) -> float | None:
    """A conversion rate in percent, rounded as everywhere else; None if undefined (x / 0)."""
    return round(float(value), C.ROUND_DIGITS) if np.isfinite(value) else None


def daily_table(episode: Episode) -> pa.Table:
    """One row per date: weekday, the five daily event counts, the six conversion rates (%)."""
    counts = episode.hourly.sum(axis=1)
    columns: dict[str, Any] = {"date": _dates(episode), "weekday": list(episode.weekdays)}
    for i, event in enumerate(C.EVENTS):
        columns[event] = counts[:, i].tolist()
    for metric, col in zip(C.RATE_METRICS, S.RATE_COLS, strict=True):
        columns[metric] = [_rate(v) for v in episode.values[:, col]]
    return pa.table(columns, schema=DAILY_SCHEMA)


def hourly_table(episode: Episode) -> pa.Table:
    """One row per (date, hour): the five hourly event counts."""
    days, hours, _ = episode.hourly.shape
    flat = episode.hourly.reshape(days * hours, C.NUM_EVENTS)
    columns: dict[str, Any] = {
        "date": [d for d in _dates(episode) for _ in range(hours)],
        "hour": list(range(hours)) * days,
    }
    for i, event in enumerate(C.EVENTS):
        columns[event] = flat[:, i].tolist()
    return pa.table(columns, schema=HOURLY_SCHEMA)


def expected_rows_table(episode: Episode) -> pa.Table:
    """The hidden expected rows in the submission schema (debug only), sorted by key."""
    rows = sorted((row.model_dump() for row in episode.expected_rows), key=_row_key)
    columns = {name: [row[name] for row in rows] for name in ROW_FIELDS}
    columns["date"] = [dt.date.fromisoformat(d) for d in columns["date"]]
    return pa.table(columns, schema=EXPECTED_ROWS_SCHEMA)


def _row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["date"], row["entity_type"], row["entity_name"]


# --- encoding --------------------------------------------------------------------------


def encode_table(table: pa.Table, fmt: str) -> bytes:
    """The bytes of one table in ``fmt`` (deterministic for equal tables)."""
    sink = pa.BufferOutputStream()
    if fmt == "csv":
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=True))
    elif fmt == "parquet":
        pq.write_table(table, sink, **PARQUET_OPTIONS)
    else:
        raise ExportError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
    return sink.getvalue().to_pybytes()


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _file_entry(name: str, content: bytes, **extra: Any) -> dict[str, Any]:
    return {"name": name, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(), **extra}


def _table_entry(name: str, table: pa.Table, content: bytes) -> dict[str, Any]:
    columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    return _file_entry(name, content, rows=table.num_rows, columns=columns)


def _all_export_names() -> set[str]:
    return {f"{table}.{fmt}" for table in TABLE_NAMES for fmt in FORMATS} | {SCHEDULE_NAME}


# --- export ----------------------------------------------------------------------------


def export_episode(episode: Episode, out_dir: str | Path, *, fmt: str = "csv", debug: bool = False) -> dict:
    """Write the episode's tables and a ``manifest.json`` into ``out_dir``; return the manifest.

    ``out_dir`` is created if missing. Files of an earlier export there that this one does
    not write (the other format, or the debug files of a ``debug=True`` export) are removed,
    so the directory always matches its manifest and never keeps stale hidden truth.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"output path {str(out)!r} exists and is not a directory")

    tables = {"daily": daily_table(episode), "hourly": hourly_table(episode)}
    if debug:
        tables["expected_rows"] = expected_rows_table(episode)
    contents: dict[str, bytes] = {}
    entries: list[dict[str, Any]] = []
    for table_name, table in tables.items():
        name = f"{table_name}.{fmt}"
        contents[name] = encode_table(table, fmt)
        entries.append(_table_entry(name, table, contents[name]))
    if debug:
        schedule = episode.anomaly_schedule()
        contents[SCHEDULE_NAME] = _json_bytes(schedule)
        entries.append(_file_entry(SCHEDULE_NAME, contents[SCHEDULE_NAME], items=len(schedule)))

    manifest = {
        "generator": {"package": "metric_tracker_rl", "version": __version__},
        "config": episode.visible_config(),
        "format": fmt,
        "debug": debug,
        "expected_row_count": episode.expected_count if debug else episode.shown_row_count(),
        "rates": "conversion rates in percent (numerator / denominator x 100), rounded to 4 decimals",
        "conversion_metric_definitions": conversion_metric_definitions(),
        "files": entries,
    }
    contents[MANIFEST_NAME] = _json_bytes(manifest)

    try:
        out.mkdir(parents=True, exist_ok=True)
        for stale in sorted(_all_export_names() - set(contents)):
            (out / stale).unlink(missing_ok=True)
        for name, content in contents.items():
            (out / name).write_bytes(content)
    except OSError as err:
        raise ExportError(f"cannot write the export to {str(out)!r}: {err.strerror or err}") from err
    return manifest


def export_config(
    config: EpisodeConfig, out_dir: str | Path, *, fmt: str = "csv", debug: bool = False
) -> dict:
    """Build (or fetch from the cache) the episode for ``config`` and export it."""
    return export_episode(build_episode(config), out_dir, fmt=fmt, debug=debug)
