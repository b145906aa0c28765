"""The operator's notices (which kernels serve episodes, when the web debugger is ready): one
line each on standard error, ``metric_tracker_rl: ...``, through the ``metric_tracker_rl``
logger.

The handler writes to the standard error the process had when this module was imported, so
that a notice from a background thread reaches the process's log even while some code has
swapped ``sys.stderr`` for a while (a CLI test runner capturing a command's output, say).
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("metric_tracker_rl")
if not LOGGER.handlers:
    _handler = logging.StreamHandler()  # sys.stderr as it is now
    _handler.setFormatter(logging.Formatter("metric_tracker_rl: %(message)s"))
    LOGGER.addHandler(_handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


def notice(message: str) -> None:
    """One line for the operator."""
    LOGGER.info(message)
