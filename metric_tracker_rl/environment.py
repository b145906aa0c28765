"""The OpenEnv environment: reset/step/state glue around the engine, plus budgets.

All the work happens in plain functions (generator, analysis methods, grader); this
class only keeps the episode's counters and turns results into observations.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata
from pydantic import ValidationError

from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis import (
    GENERATOR_METHODS,
    REGISTRY,
    MethodError,
    assessments_of,
    available_methods,
    conversion_metric_definitions,
    parse_generator_specs,
    payload_hits,
    run_method,
)
from metric_tracker_rl.arguments import RESET_ARGUMENTS, check_reset_arguments
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.episode import Episode, build_episode
from metric_tracker_rl.evidence import EVIDENCE_RULE, Evidence, takes_entity
from metric_tracker_rl.families import FAMILIES, same_statistic_decoys
from metric_tracker_rl.grading import ReportRubric, grade_submission
from metric_tracker_rl.models import (
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
)
from metric_tracker_rl.rows import AnomalyRow, row_key
from metric_tracker_rl.tasks import (
    NAMED_TASKS,
    SPLIT_TYPES,
    TASK_SPLITS,
    config_for,
    split_configs,
    task_spec,
)
from metric_tracker_rl.tools import EpisodeTools

if TYPE_CHECKING:
    from metric_tracker_rl.episodes import EpisodeStore

DEBUG_ENV_VAR = "METRIC_TRACKER_DEBUG"

INSTRUCTION = (
    "Investigate four weeks of product-funnel metrics ({start}..{end}) and report every "
    "anomaly as a row (date, entity_type, entity_name, anomaly_type, detection_method, "
    "baseline_value, observed_value, delta_value, severity). {count} Use the analysis methods "
    "(analysis_method + analysis_args) to look at the data: each has a cost in budget units "
    "(see available_methods); discovery views rank and hint, the detection methods decide. "
    "{rule} Submit with classifications and/or payload_generators (a submission costs "
    "{submission_cost}; the last unit of the budget is kept for it). Each exactly right row "
    "earns an equal share of the score; unsupported and wrong rows cost. Budget: {steps} units, "
    "{subs} graded submission{plural}."
)


def count_sentence(episode: Episode) -> str:
    """What the briefing says of how much there is to find."""
    if episode.config.injections:
        return f"The injections make {episode.expected_count} anomaly rows to find."
    incidents = episode.config.anomaly_count
    shows = "an incident can show in several statistics, and two can share a date"
    if episode.row_count_hidden:
        return (
            f"There are {incidents} incidents ({shows}); the number of anomaly rows is not given: "
            "report every row you can confirm."
        )
    return f"There are {episode.expected_count} anomaly rows to find, from {incidents} incidents ({shows})."


def step_budget(difficulty: str, scenario_family: str, incidents: int, expected_rows: int) -> int:
    """The default step budget (in budget units) of an episode: independent of the row count
    where the difficulty hides it."""
    families = [f for f in FAMILIES if scenario_family in ("mixed", f.anomaly_type)]
    date_level = sum(not takes_entity(f.detection_method) for f in families) / len(families)
    if same_statistic_decoys(scenario_family, difficulty):
        date_level = 0.0  # its ranking orders the dates of its one volatile statistic by how far they moved
    per_row = 0 if difficulty in C.HIDDEN_ROW_COUNT else C.STEP_BUDGET_PER_ROW[difficulty]
    per_incident = C.STEP_BUDGET_PER_INCIDENT[difficulty] + C.STEP_BUDGET_DATE_LEVEL[difficulty] * date_level
    return C.STEP_BUDGET_BASE[difficulty] + math.ceil(per_incident * incidents) + per_row * expected_rows


def _generated_summary(row: AnomalyRow) -> dict[str, Any]:
    """What a submission shows of a row the server built: its key and family, not its values
    (those are canonical; an analysis call that shows them is priced per row)."""
    return {
        "date": row.date,
        "entity_type": row.entity_type,
        "entity_name": row.entity_name,
        "anomaly_type": row.anomaly_type,
        "detection_method": row.detection_method,
    }


def _submission_note(action: MetricTrackerRlAction) -> str:
    """Why an action was graded, when it may not have been meant as a submission."""
    if action.analysis_args:
        return (
            " (analysis_method was null, so the action was a submission and its analysis_args were ignored)"
        )
    if not action.classifications and not action.payload_generators:
        return " (an action without analysis_method is a submission: this one held no rows)"
    return ""


def debug_enabled_from_env() -> bool:
    return os.environ.get(DEBUG_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


class DebugDisabledError(PermissionError):
    """The debug snapshot was requested while the operator has not enabled debug mode."""


class MetricTrackerRlEnvironment(
    Environment[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState]
):
    """Metric-anomaly investigation benchmark (one episode per instance).

    With an ``EpisodeStore`` (``episodes``), as the server builds it, the instance also
    reaches the episodes kept there: ``reset(keep_episode=True)`` starts one and answers
    its handle, an action with ``episode_id`` acts on that kept episode, and an action
    without one goes to the episode this instance last started (its own, or a kept one).
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(
        self,
        debug: bool | None = None,
        max_steps: int | None = None,
        max_submissions: int | None = None,
        episodes: EpisodeStore | None = None,
    ) -> None:
        """``max_steps``: the step budget in budget units; by default it is set per episode
        by difficulty, incidents and expected row count (``step_budget``).
        ``max_submissions``: graded submissions per episode; by default by difficulty.
        ``episodes``: the store of kept episodes this instance can reach (none by default)."""
        super().__init__(rubric=ReportRubric())
        self.debug = debug_enabled_from_env() if debug is None else bool(debug)
        if max_steps is not None and (isinstance(max_steps, bool) or max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.max_steps_override = max_steps
        self.max_steps = max_steps or 0
        self.max_submissions_override = max_submissions
        self.max_submissions = max_submissions or 0
        self._episode: Episode | None = None
        self._episode_id: str | None = None
        self._steps = 0  # budget units spent
        self._actions = 0  # steps taken (OpenEnv's step_count)
        self._submissions = 0
        self._last_score: float | None = None
        self._done = False
        self._evidence = Evidence()  # what this episode's detection calls answered
        self.episodes = episodes
        self._kept: str | None = None  # the handle of the kept episode this instance last started
        # start_episode, the analysis methods, submit_report (start_episode keeps its episode
        # when there is a store, so that its handle works from anywhere).
        self.tools = EpisodeTools(self, keep_episodes=episodes is not None)
        self._mcp_server: Any = None

    # --- OpenEnv API -------------------------------------------------------------------

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        scenario_family: str | None = None,
        difficulty: str | None = None,
        anomaly_density: str | None = None,
        anomaly_count: int | None = None,
        anomalies: list[dict[str, Any]] | None = None,
        end_date: str | None = None,
        split: str | None = None,
        index: int | None = None,
        keep_episode: bool = False,
        **unknown: Any,
    ) -> MetricTrackerRlObservation:
        """Start an episode (the arguments are ``ResetArgs``'s). Raises ``ConfigError`` for
        unknown or out-of-range arguments.

        With no arguments at all, the first named task is played. ``split`` + ``index``
        (OpenEnv's Task API) pick a task of a split; explicit arguments override it.
        ``keep_episode``: start the episode in the store instead; the observation carries
        its handle, ``episode_id`` (minted by the store, so the caller sends none).
        """
        # The ResetArgs given, by name (the parameters above are exactly those, and locals()
        # holds only the parameters at this point).
        arguments = {k: v for k, v in locals().items() if k in RESET_ARGUMENTS and v is not None}
        check_reset_arguments(unknown, openenv=True)
        if keep_episode is not False:
            return self._start_kept(arguments, keep_episode, episode_id)
        self._kept = None
        if not arguments:
            arguments["task_id"] = next(iter(NAMED_TASKS))
        config = config_for(**arguments)
        self._episode = build_episode(config)
        self._episode_id = episode_id
        self._steps = self._actions = self._submissions = 0
        self._last_score = None
        self._done = False
        self._evidence = Evidence()
        self._reset_rubric()
        episode = self._episode
        incidents = episode.expected_count if config.injections else config.anomaly_count
        self.max_steps = self.max_steps_override or step_budget(
            config.difficulty, config.scenario_family, incidents, episode.expected_count
        )
        self.max_submissions = self.max_submissions_override or C.MAX_SUBMISSIONS[config.difficulty]
        return self._observation(
            status="ready",
            message="Episode ready. Start with task_overview.",
            reward=None,
            instruction=INSTRUCTION.format(
                start=episode.dates[0],
                end=episode.dates[-1],
                count=count_sentence(episode),
                steps=self.max_steps,
                subs=self.max_submissions,
                plural="" if self.max_submissions == 1 else "s",
                submission_cost=C.SUBMISSION_COST,
                rule=EVIDENCE_RULE,
            ),
            config=self._visible_config(),
            available_methods=available_methods(),
            available_synthetic_generator_methods=list(GENERATOR_METHODS),
            available_tasks=[t.describe() for t in NAMED_TASKS.values()],
            conversion_metric_definitions=conversion_metric_definitions(),
            applied_synthetic_generators=episode.applied_synthetic_generators(),
        )

    def step(
        self,
        action: MetricTrackerRlAction | dict[str, Any],
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> MetricTrackerRlObservation:
        """Run an analysis method or grade a submission. Never raises for bad input."""
        handle = _handle_of(action)
        if handle is None:
            handle = self._kept
        if handle is not None:
            if self.episodes is None:
                return self._error_without_episode(
                    "This environment keeps no episodes: episode_id names an episode a server keeps."
                )
            return self.episodes.step(handle, action)
        if self._episode is None:
            return self._error_without_episode()
        if self._done:
            return self._observation(
                status="finished",
                message="The episode is finished; call reset (the MCP tool start_episode) for a new one.",
                reward=self._final_reward(),
            )
        self._actions += 1
        if not isinstance(action, MetricTrackerRlAction):
            try:
                action = MetricTrackerRlAction.model_validate(action)
            except ValidationError as err:
                self._charge_error()
                return self._after_step(status="error", message=f"malformed action: {err.errors()[0]['msg']}")
        if action.analysis_method is not None:
            return self._analysis(action)
        return self._submission(action)

    # A step is a sub-millisecond computation: run it on the server's event loop rather
    # than handing it to a per-session worker thread (OpenEnv uses these when overridden).
    async def reset_async(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        return self.reset(seed=seed, episode_id=episode_id, **kwargs)

    async def step_async(
        self, action: MetricTrackerRlAction | dict[str, Any], timeout_s: float | None = None, **kwargs: Any
    ) -> MetricTrackerRlObservation:
        return self.step(action, timeout_s=timeout_s, **kwargs)

    @property
    def state(self) -> MetricTrackerRlState:
        if self._kept is not None and self.episodes is not None:
            return self.episodes.state(self._kept) or MetricTrackerRlState()
        return MetricTrackerRlState(
            episode_id=self._episode_id,
            step_count=self._actions,
            task_id=self._episode.config.task_id if self._episode else None,
            config=self._visible_config(),
            submissions_used=self._submissions,
            last_score=self._last_score,
            done=self._done,
        )

    @property
    def evidence(self) -> Evidence:
        """What this episode's detection calls answered: the evidence its rows are graded on."""
        return self._evidence

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name="metric_tracker_rl",
            description=(
                "Investigate four weeks of synthetic product-funnel metrics with safe analysis "
                "tools and submit a structured anomaly report, graded against hidden seeded "
                "ground truth."
            ),
            version="0.1.0",
        )

    @property
    def kept_episode_id(self) -> str | None:
        """The handle of the kept episode that calls without one play (None: this instance's own)."""
        return self._kept

    def follow(self, episode_id: str | None) -> None:
        """Make the kept episode ``episode_id`` the one calls without a handle play (None: none):
        how an MCP session that a new process serves goes on with its episode."""
        self._kept = episode_id

    @property
    def mcp_server(self) -> Any:
        """This session's tools as a FastMCP server, for OpenEnv's own MCP dialect (its /mcp
        JSON-RPC and WebSocket messages); built on first use."""
        if self._mcp_server is None:
            from metric_tracker_rl.mcp.dialect import fastmcp_server

            self._mcp_server = fastmcp_server(self.tools)
        return self._mcp_server

    # --- OpenEnv Task API (metadata only; select with reset(split=..., index=...)) --------

    def list_splits(self) -> list[dict[str, str]]:
        return [{"name": name, "type": SPLIT_TYPES[name]} for name in TASK_SPLITS]

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return [task_spec(split, i) for i in range(len(split_configs(split)))]

    def num_tasks(self, split: str) -> int:
        return len(split_configs(split))

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        return task_spec(split, index)

    def get_task_range(
        self, split: str, start: int | None = None, stop: int | None = None
    ) -> list[dict[str, Any]]:
        count = len(split_configs(split))
        lo, hi, _ = slice(start, stop).indices(count)
        return [task_spec(split, i) for i in range(lo, hi)]

    # --- debug (operator only) ---------------------------------------------------------

    def export_debug_snapshot(self) -> dict[str, Any]:
        """Expected rows and anomaly schedule; only when the operator enabled debug mode."""
        if not self.debug:
            raise DebugDisabledError(
                "debug snapshot is disabled: construct the environment with debug=True or start "
                f"the server with {DEBUG_ENV_VAR}=1"
            )
        if self._episode is None:
            raise RuntimeError("no episode yet: call reset() first")
        return {
            "expected_payload": [row.model_dump() for row in self._episode.expected_rows],
            "anomaly_schedule": self._episode.anomaly_schedule(),
        }

    # --- internals ---------------------------------------------------------------------

    def _analysis_left(self) -> int:
        """Units analysis may still spend: the last SUBMISSION_COST units are the report's, so
        the final submission is always possible."""
        return max(self.max_steps - self._steps - C.SUBMISSION_COST, 0)

    def _charge_error(self) -> int:
        """Charge an error or a refused call, never from the units kept for the report."""
        cost = min(C.ERROR_COST, self._analysis_left())
        self._steps += cost
        return cost

    def _start_kept(
        self, arguments: dict[str, Any], keep_episode: Any, episode_id: str | None
    ) -> MetricTrackerRlObservation:
        if keep_episode is not True:
            raise ConfigError(f"keep_episode must be true or false, got {keep_episode!r}")
        if self.episodes is None:
            raise ConfigError("keep_episode needs a server that keeps episodes; this environment keeps none")
        if episode_id is not None:
            raise ConfigError("with keep_episode the server mints the episode_id (the handle): send none")
        observation = self.episodes.start(arguments)
        self._kept = observation.episode_id
        return observation

    def _analysis(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        assert self._episode is not None
        method = action.analysis_method
        result = run_method(self._episode, method, action.analysis_args, budget_left=self._analysis_left())
        if "error" in result:
            result["cost"] = self._charge_error()
            return self._after_step(status="error", message=result["error"], analysis_result=result)
        self._steps += result["cost"]
        if REGISTRY[method].kind == "targeted":  # a detection method: its answers are evidence
            self._evidence.record(method, assessments_of(result["result"]))
        extra: dict[str, Any] = {}
        if action.analysis_method == "preview_submission":
            extra["submission_preview"] = result["result"]
        return self._after_step(
            status="analysis", message=f"{action.analysis_method} ran.", analysis_result=result, **extra
        )

    def _submission(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        episode = self._episode
        assert episode is not None
        try:
            specs = parse_generator_specs(action.payload_generators) if action.payload_generators else []
            hits = payload_hits(episode, specs)
        except MethodError as err:
            self._charge_error()
            return self._after_step(status="error", message=f"payload_generators not graded: {err}")
        self._steps += C.SUBMISSION_COST
        # A hand-written row overrides a generated row with the same key.
        hand_keys = {row_key(r) for r in action.classifications if isinstance(r, dict)}
        generated = [row for row in episode.row_models(hits) if row.key not in hand_keys]
        hand = len(action.classifications)
        grade = grade_submission(
            [*action.classifications, *generated],
            episode.expected_rows,
            episode.date_index,
            self._evidence,
            self.rubric,
        )
        self._submissions += 1
        self._last_score = grade.score
        if grade.score >= 1.0 or self._submissions >= self.max_submissions:
            self._done = True
        message = f"Submission {self._submissions}/{self.max_submissions} graded: score {grade.score:.4f}."
        return self._after_step(
            status="graded",
            message=message + _submission_note(action),
            reward=grade.score,
            generated_rows=[_generated_summary(r) for r in generated[: C.MAX_SUBMISSION_ROWS]],
            submitted_rows=[
                row.model_dump() for row, i in zip(grade.valid_rows, grade.positions, strict=True) if i < hand
            ],
            submission_preview={
                k: grade.breakdown[k]
                for k in ("submitted_rows", "valid_rows", "invalid_rows", "duplicate_rows")
            },
            submission_issues=grade.issues,
            reward_breakdown=grade.breakdown,
            correct_row_count=grade.correct_row_count,
        )

    def _after_step(self, *, status: str, message: str, reward: float | None = None, **fields: Any):
        if self._steps >= self.max_steps and not self._done:
            self._done = True
            message = f"{message} Step budget spent: the episode is finished."
        if self._done:
            reward = self._final_reward()
        elif reward is None:
            reward = 0.0
        return self._observation(status=status, message=message, reward=reward, **fields)

    def _final_reward(self) -> float:
        return self._last_score if self._last_score is not None else 0.0

    def _visible_config(self) -> dict[str, Any]:
        return self._episode.visible_config() if self._episode else {}

    def _observation(self, *, status: str, message: str, reward: float | None, **fields: Any):
        episode = self._episode
        assert episode is not None
        fields.setdefault("instruction", "")
        return MetricTrackerRlObservation(
            task_id=episode.config.task_id,
            status=status,
            message=message,
            reward=reward,
            done=self._done,
            expected_row_count=episode.shown_row_count(),
            budget={
                "steps_used": self._steps,
                "steps_left": max(self.max_steps - self._steps, 0),
                "analysis_steps_left": self._analysis_left(),
                "max_steps": self.max_steps,
                "submissions_used": self._submissions,
                "max_submissions": self.max_submissions,
            },
            **fields,
        )

    def _error_without_episode(self, message: str | None = None) -> MetricTrackerRlObservation:
        return MetricTrackerRlObservation(
            status="error",
            message=message
            or (
                "No episode in this session: call reset (the MCP tool start_episode) with a task_id "
                "or config first. Over plain HTTP every /reset and /step gets a fresh environment: "
                "reset with keep_episode: true and send the episode_id it answers in every action, or "
                "play over the WebSocket session (/ws, the MetricTrackerRlEnv client) or an MCP session."
            ),
            reward=None,
            done=False,
        )


def _handle_of(action: Any) -> Any:
    """The ``episode_id`` an action carries (None when it carries none)."""
    if isinstance(action, MetricTrackerRlAction):
        return action.episode_id
    return action.get("episode_id") if isinstance(action, dict) else None
