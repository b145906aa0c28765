"""The reference solver: an investigator that uses public methods and the briefing's facts only.

It ranks dates by the discovery evidence (``list_suspicious_dates``: each date's strongest
signals, in robust standard deviations from the median; ranked over the scenario family's
entity type when the visible config names one family), and examines them in that order with
the methods their signals call for: a date-level detection method for funnel,
impossible-count and hourly-mix signals; for daily counts and rates, ``rows_for_date`` and
the public thresholds of ``task_overview`` to pick the statistics, then each one's detection
method to confirm it.

What makes it more than a checklist is what it knows of how incidents show:

- one incident moves several statistics: a step that converts worse, all day or for hours,
  moves the end-to-end rates through it and the counts after it; traffic that never converts
  moves the app opens and the rates out of them; a tracking bug that logs an event twice shows
  as impossible counts, a count spike, and the rates into and out of the event. So once a date
  holds an incident it sweeps the date's related statistics (the daily view, every crossing
  confirmed) instead of moving on;
- two incidents can share a date: every signal of the date is followed, not only the first;
- the row count may be hidden: it then stops once it has found as many incidents as the
  visible config names (``anomaly_count``), counting the incidents of a date by the
  mechanisms its confirmed rows show; otherwise once it holds the expected rows.

It submits the confirmed assessments when done or when the budget says stop (the last unit
is the report's). Prices come from ``available_methods``.
"""

from __future__ import annotations

from typing import Any

from metric_tracker_rl import constants as C
from metric_tracker_rl.agents.base import EnvHandle, analysis, analysis_left
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
DAILY = ("event_count", "conversion_rate")
# A date's weaker signals are examined too when they reach this share of its strongest.
SIGNAL_SHARE = 0.5


def related_daily_statistics(entity_type: str, entity_name: str) -> set[str]:
    """The daily counts and rates that the incident behind an hour-level row can move too
    (funnel algebra): a step that breaks for hours moves its own rate, the end-to-end rates
    through it and every later count; traffic that never converts moves the app opens and the
    rates out of them; an event logged twice moves its count, the rates into and out of it
    and the end-to-end rate that ends at it."""
    if entity_type == "funnel_step":
        step = C.FUNNEL_STEPS.index(entity_name)
        through = {m for m, (num, den) in C.CONVERSION_METRICS.items() if den <= step < num}
        return through | set(C.EVENTS[step + 1 :])
    if entity_type == "hourly_mix":
        return {m for m, (num, den) in C.CONVERSION_METRICS.items() if den == 0} | {C.EVENTS[0]}
    if entity_type == "data_quality":
        event = C.DATA_QUALITY_PAIRS.index(entity_name) + 1
        rates = {
            m for m, (num, den) in C.CONVERSION_METRICS.items() if event in (num, den) and num - den == 1
        }
        ending = {m for m in C.END_TO_END_RATE_METRICS if C.CONVERSION_METRICS[m][0] == event}
        return {C.EVENTS[event], *rates, *ending}
    return set()


class _Investigation:
    """One episode's state: budget left, thresholds once fetched, what was learnt."""

    def __init__(self, env: EnvHandle, first: MetricTrackerRlObservation) -> None:
        self.env = env
        self.costs = {m["name"]: m["cost"] for m in first.available_methods}
        self.left = analysis_left(first.budget)
        self.wanted = first.expected_row_count  # None where the difficulty hides it
        self.incidents = int(first.config.get("anomaly_count") or 0)
        self.thresholds: dict[str, float] | None = None
        self.confirmed: dict[str, dict[str, Any]] = {}
        self.normal: set[tuple[str, str]] = set()  # (date, entity_name) known not to flag
        self.swept: set[str] = set()  # dates whose daily statistics were all judged
        self.ran: set[tuple[str, str]] = set()  # (date-level method, date) already called
        # Within one entity the discovery score grows with |value - median|, which the
        # detectors judge: a weaker signal than one found normal cannot flag either.
        self.normal_ceiling: dict[tuple[str, str], float] = {}
        self.family = _single_family(first.config)
        # Where every incident shows in one statistic (easy), a daily row has no hidden cause.
        self.causes_hide = first.config.get("difficulty") != "easy"

    def in_play(self, signal: dict[str, Any]) -> bool:
        """Whether a signal can start an incident of the scenario's family (every signal when
        mixed)."""
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
        if self.wanted is not None:
            return len(self.confirmed) >= self.wanted
        return self.incidents_found() >= self.incidents

    def incidents_found(self) -> int:
        """Incidents behind the confirmed rows: per date, one per hour-level row (an outage,
        a mix shift, impossible counts) and one for daily rows that those do not explain (two
        incidents that both move the daily statistics never share a date). Where a daily
        incident hides behind an hour-level one this counts one too few, and the search
        goes on: never too many."""
        by_date: dict[str, list[dict[str, Any]]] = {}
        for row in self.confirmed.values():
            by_date.setdefault(row["date"], []).append(row)
        found = 0
        for rows in by_date.values():
            explained: set[str] = set()
            for row in rows:
                if row["entity_type"] not in DAILY:
                    found += 1
                    explained |= related_daily_statistics(row["entity_type"], row["entity_name"])
            found += any(r["entity_type"] in DAILY and r["entity_name"] not in explained for r in rows)
        return found

    def ruled_out(self, signal: dict[str, Any]) -> bool:
        """A signal weaker than one of its entity (and direction) found normal. In a mixed
        scenario a daily signal is never ruled out: a rate that cannot flag may still ride
        on a count that does."""
        if signal["entity_type"] not in HOUR_LEVEL and self.family is None:
            return False
        key = (signal["entity_name"], signal["direction"])
        return signal["score"] < self.normal_ceiling.get(key, -1.0)

    def examine(self, item: dict[str, Any]) -> None:
        """Every method a date's signals call for, strongest signal first; then, if the date
        holds an incident, its related daily statistics."""
        date = item["date"]
        open_signals = [s for s in item["signals"] if self.in_play(s) and not self.ruled_out(s)]
        # Impossible counts are off the scale: the other signals are weighed among themselves.
        scored = [s["score"] for s in open_signals if s["entity_type"] != "data_quality"]
        strongest = max(scored, default=0.0)
        signals = [
            s
            for s in open_signals
            if s["entity_type"] == "data_quality" or s["score"] >= SIGNAL_SHARE * strongest
        ]
        planned: list[str] = []
        for signal in signals:
            plan = PLANS[signal["entity_type"]]
            if signal["entity_type"] == "funnel_step" and signal["direction"] == "up":
                plan = (DAILY_VIEW,)  # a step rate that rose is no break, but may be a rate spike
            planned.extend(m for m in plan if m not in planned)
        for method in planned:
            if self.wanted is not None and self.done:
                return  # every expected row is in hand
            if method == DAILY_VIEW:
                self.examine_daily(date)
            else:
                self.run_date_level(method, date)
        found_here = any(row["date"] == date for row in self.confirmed.values())
        if found_here and not (self.wanted is not None and self.done):
            self.examine_daily(date)  # an incident rarely shows in one statistic alone
            for method in self.possible_causes(date):  # and an hour-level cause may lie behind it
                if self.wanted is not None and self.done:
                    break
                self.run_date_level(method, date)
        self.remember_normal(item)

    def run_date_level(self, method: str, date: str) -> None:
        if (method, date) not in self.ran and self.affords(method):
            self.ran.add((method, date))
            self.learn(self.call(method, date=date)["assessments"])

    def possible_causes(self, date: str) -> list[str]:
        """The date-level detection methods whose incidents would explain the daily rows
        confirmed on a date (funnel algebra): a step rate that dropped may be a step broken
        for hours; app opens that rose while the rates out of them dropped, traffic that never
        converts; an event that rose with the rate into it, an event logged twice."""
        rows = {r["entity_name"]: r for r in self.confirmed.values() if r["date"] == date}
        causes: list[str] = []
        if not self.causes_hide:
            return causes
        if any(
            rows.get(m, {}).get("anomaly_type") == "rate_drop_from_median" for m in C.ADJACENT_RATE_METRICS
        ):
            causes.append("detect_funnel_break")
        first = C.EVENTS[0]
        out_of_app_opens = [m for m, (_, den) in C.CONVERSION_METRICS.items() if den == 0]
        if first in rows and any(m in rows for m in out_of_app_opens):
            causes.append("hourly_rows_for_date")
        if any(
            event in rows and m in rows and num == C.EVENTS.index(event)
            for event in C.EVENTS[1:]
            for m, (num, den) in C.CONVERSION_METRICS.items()
            if num - den == 1
        ):
            causes.append("check_impossible_counts")
        family = self.family
        return [m for m in causes if family is None or family.detection_method == m]

    def remember_normal(self, item: dict[str, Any]) -> None:
        for signal in item["signals"]:
            if (item["date"], signal["entity_name"]) in self.normal:
                key = (signal["entity_name"], signal["direction"])
                self.normal_ceiling[key] = max(self.normal_ceiling.get(key, -1.0), signal["score"])

    def examine_daily(self, date: str) -> None:
        """Counts and rates of a date against the public thresholds; confirm what crosses one."""
        if date in self.swept:
            return
        if self.thresholds is None:
            if not self.affords("task_overview", DAILY_VIEW):
                return
            self.thresholds = self.call("task_overview")["thresholds"]
        if not self.affords(DAILY_VIEW):
            return
        self.swept.add(date)
        day = self.call(DAILY_VIEW, date=date)
        crossed = []
        for method, entity_type, observed, median in (
            ("compare_count_to_median", "event_count", day["counts"], day["median_counts"]),
            ("compare_rate_to_median", "conversion_rate", day["rates_pct"], day["median_rates_pct"]),
        ):
            for name in observed:
                if public_flag(entity_type, median[name], observed[name], self.thresholds[name]):
                    crossed.append((method, name))
                else:
                    self.normal.add((date, name))
        for method, name in crossed:
            if not self.affords(method) or (self.wanted is not None and self.done):
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
            for item in by_agreement(ranking["dates"]):
                if work.done:
                    break
                work.examine(item)
        return env.step(MetricTrackerRlAction(classifications=list(work.confirmed.values())))


def by_agreement(dates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ranked dates, those whose signals agree most first: by the sum of their listed
    signals' scores (a ranking caps its scores, and an incident moves several related
    statistics where a merely unusual day moves one), the ranking's order among equals."""
    return sorted(dates, key=lambda item: -sum(signal["score"] for signal in item["signals"]))


def _single_family(config: dict[str, Any]) -> Family | None:
    """The scenario's one anomaly family, or None for a mixed or injected episode."""
    if config.get("injections"):
        return None
    return FAMILY_BY_TYPE.get(str(config.get("scenario_family")))
