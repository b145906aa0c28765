"""One browser tab's episode: its own environment, the episode's public data for the
charts, the dates results pointed at (detectors' verdicts and discovery hints), and the
submission being built.

Analysis calls, previews and submissions go through ``MetricTrackerRlEnvironment.step``
exactly as an agent's would (they count against the step and submission budgets); the
charts read the episode's arrays directly and cost no steps. Plain Python, no Gradio.
"""

from __future__ import annotations

import threading
from typing import Any

from metric_tracker_rl.analysis import build_payload, parse_generator_specs
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.episode import Episode, build_episode
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.tasks import NAMED_TASKS, config_for
from metric_tracker_rl.web import data


class DebuggerSession:
    """The state behind one browser tab (held in a ``gr.State``; never shared)."""

    def __init__(self, debug: bool | None = None) -> None:
        self.env = MetricTrackerRlEnvironment(debug=debug)
        self.episode: Episode | None = None
        self.observation: MetricTrackerRlObservation | None = None
        self.reset_observation: MetricTrackerRlObservation | None = None
        self.marks: data.Marks = {}  # dates results pointed at: verdicts and hints
        self.last_result_rows: list[dict[str, Any]] = []
        self.generators: list[dict[str, Any]] = []
        self.chart_keys: dict[str, Any] = {}  # what each chart last showed (unchanged: not redrawn)
        # One tab's events may overlap (a chart refresh while a method runs); the lock is
        # this tab's own, so other tabs and agent sessions never wait on it.
        self.lock = threading.Lock()

    @property
    def debug(self) -> bool:
        return self.env.debug

    def reset(self, **kwargs: Any) -> MetricTrackerRlObservation:
        """Start a new episode. Raises ``ConfigError`` for a bad config (state unchanged)."""
        if not kwargs:
            kwargs = {"task_id": next(iter(NAMED_TASKS))}  # what the environment plays by default
        with self.lock:
            episode = build_episode(config_for(**_config_arguments(kwargs)))
            observation = self.env.reset(**kwargs)
            if episode.visible_config() != observation.config:  # the charts must show the env's data
                raise RuntimeError(f"debugger episode {episode.visible_config()} != env {observation.config}")
            self.episode = episode
            self.observation = self.reset_observation = observation
            self.marks = {}
            self.last_result_rows = []
            self.generators = []
            self.chart_keys = {}
            return observation

    def run_method(self, method_name: str, args: dict[str, Any]) -> MetricTrackerRlObservation:
        """One analysis step; remembers the dates it points at and any rows it carries."""
        with self.lock:
            observation = self.env.step(
                MetricTrackerRlAction(analysis_method=method_name, analysis_args=args)
            )
            self.observation = observation
            result = (observation.analysis_result or {}).get("result")
            if result is not None:
                self.marks = data.merge_marks(self.marks, data.date_marks(method_name, result))
                self.last_result_rows = data.result_rows(result)
            return observation

    def generated_rows(self) -> list[dict[str, Any]]:
        """The rows the current generator specs would send (computed locally: no step)."""
        if self.episode is None or not self.generators:
            return []
        return build_payload(self.episode, parse_generator_specs(self.generators))

    def preview(self, hand_rows: list[dict[str, Any]]) -> MetricTrackerRlObservation:
        """``preview_submission`` of the hand-typed rows plus the generated rows (one step)."""
        hand_keys = {_key(r) for r in hand_rows}
        rows = [*hand_rows, *(r for r in self.generated_rows() if _key(r) not in hand_keys)]
        return self.run_method("preview_submission", {"rows": rows})

    def submit(self, hand_rows: list[dict[str, Any]]) -> MetricTrackerRlObservation:
        """Grade the hand-typed rows with the generator specs (one graded submission)."""
        with self.lock:
            action = MetricTrackerRlAction(
                classifications=hand_rows, payload_generators=list(self.generators)
            )
            self.observation = self.env.step(action)
            return self.observation

    def debug_snapshot(self) -> dict[str, Any] | None:
        """Expected rows and anomaly schedule, only when the server runs in debug mode."""
        if not self.debug or self.episode is None:
            return None
        return self.env.export_debug_snapshot()


def _config_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k != "episode_id"}


def _key(row: dict[str, Any]) -> str:
    return f"{row.get('date')}|{row.get('entity_type')}|{row.get('entity_name')}"
