"""Shortcut agents: recipes that try to score without investigating.

They exist to keep the score honest. ``bench/validity.py`` runs them on many configs next
to the honest agents, and the tests hold their scores under fixed bounds. Each uses the
public interface only (reset, step, the observations), like any agent would. By kind:
``feedback`` (the grader's feedback as an oracle), ``scans`` (views and filters with the
public rules applied locally), ``guesses`` (unconfirmed guesses and server-written rows),
``playbook`` (the briefing followed literally, as a checklist) and ``explorer`` (a
stochastic investigator, for the spread of rollout groups).
"""

from metric_tracker_rl.agents.shortcuts.explorer import ExplorerAgent
from metric_tracker_rl.agents.shortcuts.feedback import (
    FeedbackOracleAgent,
    FieldProbeAgent,
    PayloadSearchAgent,
)
from metric_tracker_rl.agents.shortcuts.guesses import CalibratedPayloadAgent, HintGuessAgent
from metric_tracker_rl.agents.shortcuts.playbook import PlaybookAgent, StochasticPlaybookAgent
from metric_tracker_rl.agents.shortcuts.scans import (
    CalibratedScanAgent,
    DailyScanAgent,
    DateScanAgent,
    DetectorScanAgent,
    DumpAndFilterAgent,
)

__all__ = [
    "CalibratedPayloadAgent",
    "CalibratedScanAgent",
    "DailyScanAgent",
    "DateScanAgent",
    "DetectorScanAgent",
    "DumpAndFilterAgent",
    "ExplorerAgent",
    "FeedbackOracleAgent",
    "FieldProbeAgent",
    "HintGuessAgent",
    "PayloadSearchAgent",
    "PlaybookAgent",
    "StochasticPlaybookAgent",
]
