"""The reference solver: an investigator that uses public methods only.

It ranks dates by the discovery evidence (``list_suspicious_dates``: each date's
strongest signals, in robust standard deviations from the median; ranked over the
scenario family's entity type when the visible config names one family), and examines
them in that order with the method that fits the signal: a date-level detection method
for funnel, impossible-count and hourly-mix signals; for daily counts and rates in a
mixed scenario, ``rows_for_date`` and the public thresholds of ``task_overview`` to pick
the entity, then that entity's detection method to confirm it; in a one-family scenario,
the detection method on each signalled entity. It submits the confirmed assessments once
it has as many rows as the episode has, or when the budget says stop (one unit is kept
for the submission). Prices come from ``available_methods``.
"""

from __future__ import annotations

from typing import Any

from metric_tracker_rl import constants as C
from metric_tracker_rl.agents.base import EnvHandle, analysis
from metric_tracker_rl.families import FAMILY_BY_TYPE, Family
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.rows import ROW_FIELDS, row_key
from metric_tracker_rl.statistics import public_flag

DISCOVERY = "list_suspicious_dates"
DAILY_VIEW = "rows_for_date"
# What a signal of each entity type calls for. A whole-day shift of a step's conversion
# moves its lowest hourly rate too, but then the daily rates signal as well.
PLANS: dict[str, tuple[str, ...]] = {
    "event_count": (DAILY_VIEW,),
    "conversion_rate": (DAILY_VIEW,),
    "funnel_step": ("detect_funnel_break",),
    "hourly_mix": ("hourly_rows_for_date",),
    "data_quality": ("check_impossible_counts",),
}
HOUR_LEVEL = ("funnel_step", "hourly_mix")
# A date's weaker signals are examined too when they reach this share of its strongest.
SIGNAL_SHARE = 0.5


class _Investigation:
    """One episode's state: budget left, thresholds once fetched, what was learnt."""

    def __init__(self, env: EnvHandle, first: MetricTrackerRlObservation) -> None:
        self.env = env
        self.costs = {m["name"]: m["cost"] for m in first.available_methods}
        self.left = first.budget["max_steps"] - first.budget["steps_used"] - C.SUBMISSION_COST
        self.wanted = first.expected_row_count
        self.thresholds: dict[str, float] | None = None
        self.confirmed: dict[str, dict[str, Any]] = {}
        self.normal: set[tuple[str, str]] = set()  # (date, entity_name) known not to flag
        # Within one entity the discovery score grows with |value - median|, which the
        # detectors judge: a weaker signal than one found normal cannot flag either.
        self.normal_ceiling: dict[tuple[str, str], float] = {}
        self.family = _single_family(first.config)

    def in_play(self, signal: dict[str, Any]) -> bool:
        """Whether a signal can belong to the scenario's family (every signal when mixed)."""
        family = self.family
        if family is None:
            return True
        if signal["entity_type"] != family.entity_type:
            return False
        return family.direction == "both" or signal["direction"] == family.direction

    def affords(self, *methods: str) -> bool:
        return sum(self.costs[m] for m in methods) <= self.left

    def call(self, method: str, **args: Any) -> dict[str, Any]:
        self.left -= self.costs[method]
        return analysis(self.env, method, **args)

    def learn(self, answers: list[dict[str, Any]]) -> None:
        for answer in answers:
            if answer["anomaly_type"] == "normal":
                self.normal.add((answer["date"], answer["entity_name"]))
            else:
                self.confirmed[row_key(answer)] = {k: answer[k] for k in ROW_FIELDS}

    @property
    def done(self) -> bool:
        return len(self.confirmed) >= self.wanted

    def ruled_out(self, signal: dict[str, Any]) -> bool:
        """A signal weaker than one of its entity (and direction) found normal. In a mixed
        scenario a daily signal is never ruled out: a rate that cannot flag may still ride
        on a count that does."""
        if signal["entity_type"] not in HOUR_LEVEL and self.family is None:
            return False
        key = (signal["entity_name"], signal["direction"])
        return signal["score"] < self.normal_ceiling.get(key, -1.0)

    def examine(self, item: dict[str, Any]) -> None:
        """Run the methods a date's signals call for, strongest signal first."""
        date = item["date"]
        open_signals = [s for s in item["signals"] if self.in_play(s) and not self.ruled_out(s)]
        strongest = max((signal["score"] for signal in open_signals), default=0.0)
        signals = [signal for signal in open_signals if signal["score"] >= SIGNAL_SHARE * strongest]
        planned: list[str] = []
        for signal in signals:
            plan = PLANS[signal["entity_type"]]
            if signal["entity_type"] == "funnel_step" and signal["direction"] == "up":
                plan = (DAILY_VIEW,)  # a step rate that rose is no break, but may be a rate spike
            planned.extend(m for m in plan if m not in planned)
        before = len(self.confirmed)
        for method in planned:
            if self.done or len(self.confirmed) > before:
                break  # each incident has a day of its own: this date is explained
            if method == DAILY_VIEW:
                self.examine_daily(date)
            elif self.affords(method):
                self.learn(self.call(method, date=date)["assessments"])
        self.remember_normal(item)

    def remember_normal(self, item: dict[str, Any]) -> None:
        for signal in item["signals"]:
            if (item["date"], signal["entity_name"]) in self.normal:
                key = (signal["entity_name"], signal["direction"])
                self.normal_ceiling[key] = max(self.normal_ceiling.get(key, -1.0), signal["score"])

    def examine_daily(self, date: str) -> None:
        """Counts and rates of a date against the public thresholds; confirm what crosses one."""
        if self.thresholds is None:
            if not self.affords("task_overview", DAILY_VIEW):
                return
            self.thresholds = self.call("task_overview")["thresholds"]
        if not self.affords(DAILY_VIEW):
            return
        day = self.call(DAILY_VIEW, date=date)
        crossed = []
        for method, entity_type, observed, median in (
            ("compare_count_to_median", "event_count", day["counts"], day["median_counts"]),
            ("compare_rate_to_median", "conversion_rate", day["rates_pct"], day["median_rates_pct"]),
        ):
            for name in observed:
                direction = "up" if observed[name] > median[name] else "down"
                signal = {"entity_type": entity_type, "entity_name": name, "direction": direction}
                if self.in_play(signal) and public_flag(
                    entity_type, median[name], observed[name], self.thresholds[name]
                ):
                    crossed.append((method, name))
                else:
                    self.normal.add((date, name))
        for method, name in crossed:
            if self.done or not self.affords(method):
                return
            self.learn([self.call(method, date=date, entity_name=name)])


class SolverAgent:
    name = "solver"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        work = _Investigation(env, first)
        if work.affords(DISCOVERY):
            scope = {"entity_type": work.family.entity_type} if work.family is not None else {}
            ranking = work.call(DISCOVERY, limit=int(first.config["num_days"]), **scope)
            for item in ranking["dates"]:
                if work.done:
                    break
                work.examine(item)
        return env.step(MetricTrackerRlAction(classifications=list(work.confirmed.values())))


def _single_family(config: dict[str, Any]) -> Family | None:
    """The scenario's one anomaly family, or None for a mixed or injected episode."""
    if config.get("injections"):
        return None
    return FAMILY_BY_TYPE.get(str(config.get("scenario_family")))
