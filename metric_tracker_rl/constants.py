"""Constants that define the benchmark: funnel, metrics, thresholds, noise, margins, weights.

Everything a user needs to know to interpret a number lives here, in one visible place.
Changing a value here changes the benchmark; the tests pin the important ones.
"""

from __future__ import annotations

import datetime as dt

# --- Window ---------------------------------------------------------------------------
DEFAULT_END_DATE = dt.date(2026, 3, 31)  # fixed: the data never depends on the wall clock
NUM_DAYS = 28
HOURS = 24

# --- Funnel ---------------------------------------------------------------------------
EVENTS: tuple[str, ...] = (
    "app_opens",
    "menu_opens",
    "product_added_to_cart",
    "orders_placed",
    "payment_successful",
)
NUM_EVENTS = len(EVENTS)
NUM_STEPS = NUM_EVENTS - 1

# Conversion metrics: name -> (numerator event index, denominator event index).
CONVERSION_METRICS: dict[str, tuple[int, int]] = {
    "app_open_to_menu_open": (1, 0),
    "menu_open_to_product_added_to_cart": (2, 1),
    "product_added_to_cart_to_order_placed": (3, 2),
    "order_placed_to_payment_successful": (4, 3),
    "app_open_to_order_placed": (3, 0),
    "app_open_to_payment_successful": (4, 0),
}
RATE_METRICS: tuple[str, ...] = tuple(CONVERSION_METRICS)
ADJACENT_RATE_METRICS: tuple[str, ...] = RATE_METRICS[:NUM_STEPS]
END_TO_END_RATE_METRICS: tuple[str, ...] = RATE_METRICS[NUM_STEPS:]

# Funnel-step entity names ("{event}_from_{previous_event}") and data-quality pair names
# ("{event}_lte_{previous_event}"), one per step, in funnel order.
FUNNEL_STEPS: tuple[str, ...] = tuple(f"{EVENTS[i]}_from_{EVENTS[i - 1]}" for i in range(1, NUM_EVENTS))
DATA_QUALITY_PAIRS: tuple[str, ...] = tuple(f"{EVENTS[i]}_lte_{EVENTS[i - 1]}" for i in range(1, NUM_EVENTS))
HOURLY_MIX_ENTITY = "app_opens:daytime_share"
DAYTIME_HOURS = range(8, 20)  # 08:00-19:59 counts as daytime for the traffic mix

# --- Clean-data shape -----------------------------------------------------------------
BASE_DAILY_APP_OPENS = 18_000.0
# Monday .. Sunday multipliers (weekend dip, Friday bump).
WEEKDAY_FACTORS: tuple[float, ...] = (1.00, 0.99, 0.99, 1.01, 1.04, 0.97, 0.98)
TREND_PER_DAY = 0.0015  # slow growth: +0.15 % a day
# Share of a day's traffic in each hour 00..23: night low, evening peak (sums to 1).
_HOURLY_WEIGHTS = (
    1.2,
    0.8,
    0.6,
    0.5,
    0.6,
    1.0,
    2.0,
    3.2,
    4.2,
    4.8,
    5.0,
    5.2,
    5.6,
    5.4,
    5.0,
    4.9,
    5.0,
    5.4,
    6.2,
    7.0,
    7.4,
    6.6,
    4.6,
    2.8,
)
HOURLY_PROFILE: tuple[float, ...] = tuple(w / sum(_HOURLY_WEIGHTS) for w in _HOURLY_WEIGHTS)
# Nominal step conversion (fraction of the previous event that reaches the next one).
BASE_STEP_RATES: tuple[float, ...] = (0.62, 0.36, 0.55, 0.85)

DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
# Noise by difficulty: daily traffic (log-normal sigma), hourly traffic, and step
# conversion noise in logit space (daily and hourly).
NOISE: dict[str, dict[str, float]] = {
    "easy": {"daily_traffic": 0.020, "hourly_traffic": 0.03, "daily_logit": 0.020, "hourly_logit": 0.03},
    "medium": {"daily_traffic": 0.030, "hourly_traffic": 0.04, "daily_logit": 0.030, "hourly_logit": 0.04},
    "hard": {"daily_traffic": 0.040, "hourly_traffic": 0.05, "daily_logit": 0.040, "hourly_logit": 0.05},
}
# Separation margin, as a fraction of each threshold: a flagged value lies beyond
# threshold * (1 + margin), an unflagged one within threshold * (1 - margin).
MARGIN: dict[str, float] = {"easy": 0.12, "medium": 0.08, "hard": 0.05}
# How far beyond the flag boundary generated incidents reach (fraction of threshold):
# easy anomalies stand out, hard ones sit close to the line.
INCIDENT_REACH: dict[str, float] = {"easy": 1.2, "medium": 0.6, "hard": 0.3}
# Decoys per episode: normal-but-unusual days (a holiday dip, a partial slowdown) that
# move one statistic at least DECOY_MIN_Z of the way to its threshold (and stay inside
# the margin). They flag nothing, but stand out to filters that only count deviations.
DECOYS: dict[str, int] = {"easy": 1, "medium": 9, "hard": 12}
DECOY_MIN_Z: dict[str, float] = {"easy": 0.5, "medium": 0.8, "hard": 0.85}

# How incidents show (see families.SHAPES): the share of incidents of a family with a
# several-row shape that take it, and the share of incidents after the first that land on the
# day of an earlier incident of another family (two incidents on one date). Easy keeps one
# statistic per incident and one incident per day: the start of a curriculum.
MULTI_ROW_SHARE: dict[str, float] = {"easy": 0.0, "medium": 0.5, "hard": 1.0}
SHARED_DAY_SHARE: dict[str, float] = {"easy": 0.0, "medium": 0.2, "hard": 0.35}
# Difficulties on which, in a scenario of one family with one statistic (mix shifts alone), that
# statistic is volatile: every day but the QUIET_DAYS that holds no incident is a decoy of it (the
# day/night mix moves on ordinary days too: an evening campaign, a holiday morning, the weather).
# Its ranking then orders the family's dates by how far they moved, so the budget has no
# date-level allowance: an investigator takes the dates in that order and sweeps each incident's
# related statistics, while a checklist that takes them loosely runs out of budget.
SAME_STATISTIC_DECOYS: tuple[str, ...] = ("medium", "hard")
# At most this many incidents of an episode show in several statistics (so that a window
# crowded with incidents keeps its medians); the others show in one.
MAX_MULTI_ROW_INCIDENTS = 6
# Difficulties on which the number of expected rows is not shown: the analyst stops when what
# is left looks like normal variance, and reports once.
HIDDEN_ROW_COUNT: tuple[str, ...] = ("hard",)

# --- Canonical detector thresholds (public, returned by task_overview) ----------------
# Counts: relative change of the day's count against the window median.
COUNT_THRESHOLD_RELATIVE = 0.22
# Conversion rates: percentage points away from the window median, per metric.
RATE_THRESHOLD_PP: dict[str, float] = {
    "app_open_to_menu_open": 7.5,
    "menu_open_to_product_added_to_cart": 4.5,
    "product_added_to_cart_to_order_placed": 6.5,
    "order_placed_to_payment_successful": 9.0,
    "app_open_to_order_placed": 2.2,
    "app_open_to_payment_successful": 1.9,
}
# Funnel break: the day's lowest hourly step rate fell below (1 - this) x median step rate.
FUNNEL_BREAK_RELATIVE_DROP = 0.5
# Hourly mix: daytime share of app opens moved more than this many share points.
HOURLY_MIX_THRESHOLD_PP = 5.0
# Impossible counts: any excess is flagged; generated issues carry at least this many.
DATA_QUALITY_MIN_EXCESS = 10.0

# Severity from |delta| / threshold (data quality: excess as % of the predecessor's
# daily count). A value >= a cut-off takes that level.
SEVERITY_LEVELS: tuple[str, ...] = ("low", "medium", "high", "critical")
SEVERITY_RATIO_CUTOFFS: tuple[float, ...] = (0.0, 1.5, 2.0, 3.0)
DATA_QUALITY_SEVERITY_PCT_CUTOFFS: tuple[float, ...] = (0.0, 0.5, 2.0, 5.0)

# --- Scenario sizes -------------------------------------------------------------------
ANOMALY_DENSITY_COUNTS: dict[str, int] = {"low": 3, "medium": 5, "high": 7}
MIN_ANOMALY_COUNT = 1
MAX_ANOMALY_COUNT = 12

# --- Budgets --------------------------------------------------------------------------
# Every action spends budget units: an analysis method its registered cost (see
# analysis/methods.py), a submission SUBMISSION_COST, an error or a refused call ERROR_COST.
# The step budget of an episode is STEP_BUDGET_BASE + STEP_BUDGET_PER_INCIDENT x incidents
# (more, STEP_BUDGET_DATE_LEVEL, for an incident of a family judged a whole date at a time,
# in proportion to such families among those the scenario draws from; none for a scenario of
# mix shifts alone on the SAME_STATISTIC_DECOYS difficulties)
# + STEP_BUDGET_PER_ROW x expected rows: about 1.2-1.3x what the reference investigator needs
# on average. Where the row
# count is hidden it plays no part. The episode ends when the budget is spent.
STEP_BUDGET_BASE: dict[str, int] = {"easy": 8, "medium": 6, "hard": 8}
STEP_BUDGET_PER_INCIDENT: dict[str, int] = {"easy": 5, "medium": 7, "hard": 11}
STEP_BUDGET_DATE_LEVEL: dict[str, int] = {"easy": 0, "medium": 4, "hard": 6}
STEP_BUDGET_PER_ROW: dict[str, int] = {"easy": 0, "medium": 1, "hard": 0}
# Graded submissions per episode: where the row count is hidden, one (the report), so no
# earlier score can reveal it.
MAX_SUBMISSIONS: dict[str, int] = {"easy": 3, "medium": 3, "hard": 1}
SUBMISSION_COST = 1
ERROR_COST = 1
# Methods priced per row (generators, raw daily rows) show at most this many rows a call.
MAX_ROWS_PER_CALL = 10
GENERATOR_ROW_COST = 2  # a generator row is an exact canonical row the agent did not have to find
# The smallest threshold_multiplier (x std_from_median) a generator accepts. A low one selects
# most days, and a call shows only its first MAX_ROWS_PER_CALL rows in date order, at full
# price per row: a low threshold buys a window's first days, not its anomalies.
MIN_THRESHOLD_MULTIPLIER = 0.0

# --- Grading --------------------------------------------------------------------------
# Score = sum of weight x credit minus penalties, clamped to [0, 1]. Precision is matched /
# valid submitted rows; every other credit is counted per matched row and divided by the
# expected row count, so each exactly right row adds (1 - 0.10) / E and an exact subset of
# j of E rows scores 0.10 + 0.90 j / E.
GRADE_WEIGHTS: dict[str, float] = {
    "precision": 0.10,
    "recall": 0.20,  # the row's key (date|entity_type|entity_name) is an expected one
    "anomaly_type": 0.05,
    "detection_method": 0.05,
    # a third each for baseline, observed and delta within tolerance; the baseline and the
    # delta, like the severity, count only next to a right observed value
    "numeric_values": 0.40,
    "severity": 0.20,
}
NUMERIC_RELATIVE_TOLERANCE = 0.01  # |submitted - expected| <= max(1 % of |expected|, floor)
NUMERIC_ABSOLUTE_FLOOR = 0.05
EXTRA_ROW_PENALTY_SHARE = 0.5  # an extra valid row costs half of what an exactly right row earns
DUPLICATE_ROW_PENALTY = 0.05  # per duplicate key
INVALID_ROW_PENALTY = 0.05  # per row that fails validation
MASS_SUBMISSION_FACTOR = 3  # more extra rows than this x expected ...
MASS_SUBMISSION_PENALTY = 0.5  # ... costs this much on top
MAX_SUBMISSION_ROWS = 500

ROUND_DIGITS = 4
MAD_TO_SIGMA = 1.4826  # median absolute deviation x this = a robust standard deviation
# The discovery ranking's scale is at least this share of an entity's detection threshold.
DISCOVERY_SCALE_FLOOR = 0.1
MAX_DISCOVERY_SCORE = 99.9  # robust z-scores shown by discovery views are capped here
# ... and, by difficulty, every score but an impossible count's: beyond this a ranking says
# "far from usual", not how far, so it points at incidents and strong decoys alike.
DISCOVERY_SCORE_CEILING: dict[str, float] = {"easy": 99.9, "medium": 6.0, "hard": 6.0}

# Training data (`metric-tracker dataset`): training configs per family x difficulty x density.
DATASET_PER_CELL = 14
