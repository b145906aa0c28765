"""Plotly figures of the debugger, built from the series in ``web.data``.

Imported on the first chart render, not at server start (Plotly is not needed to serve).
Dates a detector flagged are shaded in every daily chart.
"""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from metric_tracker_rl import constants as C
from metric_tracker_rl.web.data import DailySeries, FunnelShape, HourlyProfile

FLAG_COLOR = "rgba(220, 38, 38, 0.14)"
FLAG_MARKER = "rgb(220, 38, 38)"
MEDIAN_COLOR = "rgb(100, 116, 139)"
BAND_COLOR = "rgba(100, 116, 139, 0.16)"
RATE_COLOR = "rgb(37, 99, 235)"
LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 56, "r": 16, "t": 48, "b": 40},
    "legend": {"orientation": "h", "y": -0.18},
    "hovermode": "x unified",
}


def _day_bounds(date: str) -> tuple[str, str]:
    day = dt.date.fromisoformat(date)
    start = dt.datetime.combine(day, dt.time()) - dt.timedelta(hours=12)
    return start.isoformat(), (start + dt.timedelta(days=1)).isoformat()


def _shade_flags(fig: go.Figure, flags: dict[str, list[str]], **where: object) -> None:
    for date in flags:
        x0, x1 = _day_bounds(date)
        fig.add_vrect(x0=x0, x1=x1, fillcolor=FLAG_COLOR, line_width=0, layer="below", **where)


def daily_counts_figure(series: DailySeries, flags: dict[str, list[str]]) -> go.Figure:
    """Daily count per funnel event (log scale) with flagged dates shaded."""
    fig = go.Figure()
    for event, values in series.counts.items():
        fig.add_trace(
            go.Scatter(x=series.dates, y=values, mode="lines+markers", name=event, marker={"size": 5})
        )
    if flags:
        top = max(max(v) for v in series.counts.values()) * 1.25
        fig.add_trace(
            go.Scatter(
                x=list(flags),
                y=[top] * len(flags),
                mode="markers",
                name="flagged by a detector",
                marker={"symbol": "triangle-down", "size": 11, "color": FLAG_MARKER},
                text=["<br>".join(reasons) for reasons in flags.values()],
                hovertemplate="%{x}<br>%{text}<extra>flagged</extra>",
            )
        )
        _shade_flags(fig, flags)
    fig.update_layout(title="Daily counts per event", yaxis_type="log", yaxis_title="events / day", **LAYOUT)
    return fig


def rates_figure(series: DailySeries, flags: dict[str, list[str]]) -> go.Figure:
    """Each conversion rate with its median and the band the detector tolerates."""
    metrics = list(series.rates)
    fig = make_subplots(rows=3, cols=2, subplot_titles=metrics, shared_xaxes=True, vertical_spacing=0.09)
    traces, rows, cols = [], [], []
    dates = series.dates
    for i, metric in enumerate(metrics):
        low, high = series.rate_band[metric]
        median = series.rate_medians[metric]
        first = i == 0
        values = series.rates[metric]
        outside = [v < low or v > high for v in values]
        traces += [
            go.Scatter(  # the band as one closed polygon
                x=[*dates, *dates[::-1]],
                y=[high] * len(dates) + [low] * len(dates),
                mode="lines",
                fill="toself",
                fillcolor=BAND_COLOR,
                line={"width": 0},
                name="median ± detection threshold",
                showlegend=first,
                legendgroup="band",
                hoverinfo="skip",
            ),
            go.Scatter(
                x=[dates[0], dates[-1]],
                y=[median, median],
                mode="lines",
                line={"color": MEDIAN_COLOR, "dash": "dash", "width": 1},
                name="median",
                showlegend=first,
                legendgroup="median",
                hoverinfo="skip",
            ),
            go.Scatter(
                x=dates,
                y=values,
                mode="lines+markers",
                line={"color": RATE_COLOR, "width": 1.5},
                marker={
                    "size": [8 if o else 4 for o in outside],
                    "color": [FLAG_MARKER if o else RATE_COLOR for o in outside],
                },
                name="rate % (red: outside the band)",
                showlegend=first,
                legendgroup="rate",
                hovertemplate=f"%{{x}}: %{{y:.2f}}% (median {median:.2f}%)<extra>{metric}</extra>",
            ),
        ]
        rows += [i // 2 + 1] * 3
        cols += [i % 2 + 1] * 3
    fig.add_traces(traces, rows=rows, cols=cols)
    # One shaded column per flagged date and subplot column (faster than add_vrect per subplot).
    fig.update_layout(
        shapes=[
            {
                "type": "rect",
                "xref": axis,
                "yref": "paper",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": FLAG_COLOR,
                "line": {"width": 0},
                "layer": "below",
            }
            for x0, x1 in map(_day_bounds, flags)
            for axis in ("x", "x2")
        ]
    )
    fig.update_layout(title="Conversion rates (%) with their median band", height=620, **LAYOUT)
    fig.update_layout(legend={"orientation": "h", "y": -0.08})
    fig.update_annotations(font_size=11)
    return fig


def hourly_figure(profile: HourlyProfile, flagged_reasons: list[str] | None = None) -> go.Figure:
    """An event's hourly counts on a date against the median hourly profile."""
    fig = go.Figure()
    fig.add_vrect(
        x0=min(C.DAYTIME_HOURS) - 0.5, x1=max(C.DAYTIME_HOURS) + 0.5, fillcolor=BAND_COLOR, line_width=0
    )
    fig.add_trace(go.Bar(x=profile.hours, y=profile.counts, name=f"{profile.date}", marker_color=RATE_COLOR))
    fig.add_trace(
        go.Scatter(
            x=profile.hours,
            y=profile.median,
            mode="lines+markers",
            name="median hourly profile",
            line={"color": MEDIAN_COLOR, "dash": "dash"},
        )
    )
    title = (
        f"Hourly {profile.event} on {profile.date}: daytime share {profile.daytime_share:.1f}% "
        f"(median {profile.median_daytime_share:.1f}%)"
    )
    if flagged_reasons:
        title += " · flagged"
    fig.update_layout(
        title=title, xaxis_title="hour (shaded: daytime 08:00-19:59)", yaxis_title="events / hour", **LAYOUT
    )
    fig.update_xaxes(dtick=2)
    return fig


def funnel_figure(shape: FunnelShape) -> go.Figure:
    """The funnel on a date against the median funnel, with each step's conversion."""

    def labels(rates: list[float | None]) -> list[str]:
        return ["" if r is None else f"{r:.1f}%" for r in rates]

    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=shape.events,
            y=shape.counts,
            name=shape.date,
            text=labels(shape.step_rates),
            textposition="outside",
            marker_color=RATE_COLOR,
        )
    )
    fig.add_trace(
        go.Bar(
            x=shape.events,
            y=shape.median,
            name="median day",
            text=labels(shape.median_step_rates),
            textposition="outside",
            marker_color="rgba(100, 116, 139, 0.55)",
        )
    )
    fig.update_layout(
        title=f"Funnel on {shape.date} vs the median day (labels: step conversion)",
        barmode="group",
        yaxis_title="events / day",
        **LAYOUT,
    )
    return fig
