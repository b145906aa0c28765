"""Gather the evidence a report needs, as an agent would: call each row's detection method on
its date (and entity), once per call. Works with anything that steps like the environment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from metric_tracker_rl.analysis import assessments_of
from metric_tracker_rl.evidence import NORMAL, takes_entity
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.rows import row_key


def detection_calls(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The (method, arguments) calls that confirm the rows, without repeats."""
    calls: dict[tuple[str, tuple], dict[str, Any]] = {}
    for row in rows:
        method = row["detection_method"]
        args = {"date": row["date"]}
        if takes_entity(method):
            args["entity_name"] = row["entity_name"]
        calls.setdefault((method, tuple(sorted(args.items()))), args)
    return [(method, args) for (method, _), args in calls.items()]


def confirm(env: Any, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Call the detection method of each row; the observations (or step results)."""
    return [
        env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=args))
        for method, args in detection_calls(rows)
    ]


def flagged_keys(results: Iterable[Mapping[str, Any]]) -> set[str]:
    """The row keys that detection results (``analysis_result["result"]``) flagged."""
    return {
        row_key(answer)
        for result in results
        for answer in assessments_of(result)
        if answer["anomaly_type"] != NORMAL
    }
