"""``python -m metric_tracker_rl.cli``: the ``metric-tracker`` script."""

from metric_tracker_rl.cli import entry_point

entry_point()
