"""Baseline agents. ``AGENTS`` maps a name to a factory; every agent plays one episode
through an ``EnvHandle`` (the in-process environment, or ``ClientHandle`` over a server)."""

from metric_tracker_rl.agents.base import Agent, ClientHandle, EnvHandle
from metric_tracker_rl.agents.llm import LLMAgent
from metric_tracker_rl.agents.scripted import ScriptedAgent
from metric_tracker_rl.agents.shortcuts import (
    CalibratedPayloadAgent,
    CalibratedScanAgent,
    DailyScanAgent,
    DateScanAgent,
    DetectorScanAgent,
    DumpAndFilterAgent,
    ExplorerAgent,
    FeedbackOracleAgent,
    FieldProbeAgent,
    HintGuessAgent,
    PayloadSearchAgent,
    PlaybookAgent,
    StochasticPlaybookAgent,
)
from metric_tracker_rl.agents.solver import SolverAgent
from metric_tracker_rl.agents.trivial import EmptyAgent, MassAgent, RandomAgent

BASELINES = (EmptyAgent, MassAgent, RandomAgent, ScriptedAgent, SolverAgent, LLMAgent)
SHORTCUTS = (
    FeedbackOracleAgent,
    FieldProbeAgent,
    PayloadSearchAgent,
    CalibratedPayloadAgent,
    CalibratedScanAgent,
    DumpAndFilterAgent,
    DailyScanAgent,
    DateScanAgent,
    DetectorScanAgent,
    HintGuessAgent,
    PlaybookAgent,
    StochasticPlaybookAgent,
    ExplorerAgent,
)
AGENTS = {a.name: a for a in (*BASELINES, *SHORTCUTS)}
# Recipes that never call the detection method of a row they report: only evidence earns
# credit, so none may score above SHORTCUT_CEILING (bench/validity.py, tests/test_investigation.py).
SHORTCUT_CEILING = 0.3
WITHOUT_EVIDENCE = (
    "mass",
    "random",
    "scripted",
    "feedback_oracle",
    "field_probe",
    "payload_search",
    "calibrated_payload",
    "calibrated_scan",
    "dump_and_filter",
    "daily_scan",
    "hint_guess",
)

__all__ = ["AGENTS", "SHORTCUT_CEILING", "WITHOUT_EVIDENCE", "Agent", "ClientHandle", "EnvHandle"]
