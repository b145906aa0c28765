"""What an episode's own detection calls established: the evidence a report row needs.

A row is *supported* when, earlier in the same episode, its ``detection_method`` was called
on the row's date (and on its entity, for the methods that take one) and flagged that
(date, entity): it answered an anomaly type, not ``normal``. Only supported rows earn
credit. Whether a row is supported depends on the agent's own calls alone, never on the
hidden truth, so what the grader says about an unsupported row reveals nothing hidden.

The environment records every detection answer it gives (``Evidence.record``); the grader
reads the record (``Evidence.supports``, ``Evidence.gap``) and never changes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from metric_tracker_rl.families import DETECTION_METHOD_BY_ENTITY_TYPE
from metric_tracker_rl.rows import AnomalyRow, row_key

NORMAL = "normal"
# The rule in the words every briefing uses: the instruction, task_overview, the tools.
EVIDENCE_RULE = (
    "Only evidence earns credit: a row counts only if, earlier in this episode, its "
    "detection_method was called on the row's date (and entity, for methods that take one) and "
    "flagged that date and entity. Any other row earns nothing and costs as much as a wrong "
    "row, whether or not it is a real anomaly; generators and payload_generators format rows, "
    "they do not confirm them."
)


class Evidence:
    """The detection answers of one episode, by (detection method, row key)."""

    __slots__ = ("_answers",)

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], str] = {}

    def record(self, method: str, assessments: Iterable[Mapping[str, Any]]) -> None:
        """Remember what ``method`` answered for each (date, entity) it assessed."""
        for answer in assessments:
            self._answers[(method, row_key(answer))] = str(answer["anomaly_type"])

    @classmethod
    def confirming(cls, rows: Iterable[AnomalyRow]) -> Evidence:
        """Evidence as if each row's detection method had been called and had flagged it
        (for checking the grader on given rows, not for play)."""
        evidence = cls()
        for row in rows:
            evidence._answers[(row.detection_method, row.key)] = row.anomaly_type
        return evidence

    def supports(self, row: AnomalyRow) -> bool:
        """Whether the row's detection method flagged its (date, entity) in this episode."""
        return self._answers.get((row.detection_method, row.key), NORMAL) != NORMAL

    def flagged(self) -> list[tuple[str, str]]:
        """Every (detection method, row key) the episode's calls flagged, in call order."""
        return [pair for pair, answer in self._answers.items() if answer != NORMAL]

    def gap(self, row: AnomalyRow) -> str:
        """What an unsupported row lacks, in words that name the row's own fields only."""
        method = row.detection_method
        canonical = DETECTION_METHOD_BY_ENTITY_TYPE[row.entity_type]
        if method != canonical:
            return (
                f"{method!r} is not the detection method of {row.entity_type} rows; "
                f"{canonical} is, and only rows it flagged earn credit"
            )
        scope = "this date and entity" if takes_entity(method) else "this date"
        if (method, row.key) in self._answers:
            return f"{method} answered normal on {scope}"
        return f"no earlier {method} call on {scope}"


@cache
def takes_entity(method: str) -> bool:
    """Whether a detection method judges one (date, entity) rather than a whole date (the
    registry is fixed at import, so each answer is computed once)."""
    from metric_tracker_rl.analysis import REGISTRY  # the methods import this module's rule

    return "entity_name" in REGISTRY[method].args_model.model_fields
