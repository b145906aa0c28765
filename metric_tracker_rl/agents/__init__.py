"""Baseline agents. ``AGENTS`` maps a name to a factory; every agent plays one episode
through an ``EnvHandle`` (the in-process environment, or ``ClientHandle`` over a server)."""

from metric_tracker_rl.agents.base import Agent, ClientHandle, EnvHandle
from metric_tracker_rl.agents.llm import LLMAgent
from metric_tracker_rl.agents.scripted import ScriptedAgent
from metric_tracker_rl.agents.shortcuts import (
    DateScanAgent,
    DetectorScanAgent,
    DumpAndFilterAgent,
    ExplorerAgent,
    FeedbackOracleAgent,
    HintGuessAgent,
    PayloadSearchAgent,
)
from metric_tracker_rl.agents.solver import SolverAgent
from metric_tracker_rl.agents.trivial import EmptyAgent, MassAgent, RandomAgent

BASELINES = (EmptyAgent, MassAgent, RandomAgent, ScriptedAgent, SolverAgent, LLMAgent)
SHORTCUTS = (
    FeedbackOracleAgent,
    DumpAndFilterAgent,
    DateScanAgent,
    DetectorScanAgent,
    HintGuessAgent,
    PayloadSearchAgent,
    ExplorerAgent,
)
AGENTS = {a.name: a for a in (*BASELINES, *SHORTCUTS)}

__all__ = ["AGENTS", "Agent", "ClientHandle", "EnvHandle"]
