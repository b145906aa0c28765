"""metric_tracker_rl as a verifiers environment.

``load_environment(base_url=..., split=..., difficulty=..., max_steps=...)`` builds it in
Python; ``vf-eval metric-tracker-verifiers`` and prime-rl (``env.taskset.id =
"metric-tracker-verifiers"``) find the taskset and environment classes exported here.
"""

from metric_tracker_verifiers.taskset import (
    MetricTrackerEnv,
    MetricTrackerTaskset,
    load_environment,
)

__all__ = ["MetricTrackerEnv", "MetricTrackerTaskset", "load_environment"]
