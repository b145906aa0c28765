"""The web debugger mounted at ``/web``: a Gradio workbench for one episode per browser tab.

``data`` (series, tables, argument controls), ``charts`` (Plotly figures) and ``session``
(one tab's environment) are plain Python; ``app`` is the Gradio layout; ``deferred`` mounts it
at /web, built after the server answers. This module stays light: nothing here imports Gradio.
"""

from __future__ import annotations

from typing import Any

DEBUGGER_TITLE = "metric_tracker_rl debugger"


def build_debugger(*args: Any, **kwargs: Any) -> Any:
    """OpenEnv ``gradio_builder``: the debugger's ``gr.Blocks`` (see ``web.app.build_debugger``)."""
    from metric_tracker_rl.web.app import build_debugger as build

    return build(*args, **kwargs)


__all__ = ["DEBUGGER_TITLE", "build_debugger"]
