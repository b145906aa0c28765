"""Plotly figures of the debugger, built from the series in ``web.data``.

Imported on the first chart render, not at server start (Plotly is not needed to serve).
Every daily chart shades the dates results pointed at: red where a detection method
flagged the date (a verdict), amber where a ranking or a generator only hinted at it.
"""

from __future__ import annotations

import datetime as dt
import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from metric_tracker_rl import constants as C
from metric_tracker_rl.web.data import DailySeries, DateMark, FunnelShape, HourlyProfile, Marks

FLAG_COLOR = "rgba(220, 38, 38, 0.14)"
FLAG_MARKER = "rgb(220, 38, 38)"
HINT_COLOR = "rgba(217, 119, 6, 0.10)"
HINT_MARKER = "rgb(217, 119, 6)"
MARK_STYLE = {  # kind -> (shading, marker symbol, marker colour, height above the top value)
    "flagged": (FLAG_COLOR, "triangle-down", FLAG_MARKER, 1.35),
    "hint": (HINT_COLOR, "triangle-down-open", HINT_MARKER, 1.15),
}
LOG_TICK_STEPS = (1, 2, 5)  # the log axis labels 1, 2, 5 x 10^k only
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


def _strongest(marks: list[DateMark]) -> str:
    return "flagged" if any(m.kind == "flagged" for m in marks) else "hint"


def _shading(marks: Marks, axes: tuple[str, ...] = ("x",)) -> list[dict[str, object]]:
    """One full-height column per marked date and x axis: red if flagged, amber if a hint."""
    return [
        {
            "type": "rect",
            "xref": axis,
            "yref": "paper",
            "x0": x0,
            "x1": x1,
            "y0": 0,
            "y1": 1,
            "fillcolor": MARK_STYLE[_strongest(day_marks)][0],
            "line": {"width": 0},
            "layer": "below",
        }
        for date, day_marks in marks.items()
        for x0, x1 in [_day_bounds(date)]
        for axis in axes
    ]


def _short_number(value: float) -> str:
    """1000 -> 1k, 20000 -> 20k, 1500000 -> 1.5M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Ticks of a log axis over [low, high]: only 1, 2, 5 x 10^k, labelled 1k, 2k, 5k, 10k, ..."""
    low, high = max(low, 1.0), max(high, 1.0)
    values = [
        step * 10.0**exponent
        for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
        for step in LOG_TICK_STEPS
    ]
    shown = [v for v in values if low / 2 <= v <= high * 2]
    return shown, [_short_number(v) for v in shown]


def daily_counts_figure(series: DailySeries, marks: Marks) -> go.Figure:
    """Daily count per funnel event (log scale) with the dates results pointed at marked."""
    fig = go.Figure()
    for event, values in series.counts.items():
        fig.add_trace(
            go.Scatter(x=series.dates, y=values, mode="lines+markers", name=event, marker={"size": 5})
        )
    counts = [v for values in series.counts.values() for v in values if v > 0]
    low, high = (min(counts), max(counts)) if counts else (1.0, 10.0)
    by_label: dict[str, list[tuple[str, DateMark]]] = {}
    for date, day_marks in marks.items():
        for mark in day_marks:
            by_label.setdefault(mark.label, []).append((date, mark))
    for label, found in sorted(by_label.items(), key=lambda item: item[1][0][1].kind != "flagged"):
        kind = found[0][1].kind
        _, symbol, color, above = MARK_STYLE[kind]
        dates = list(dict.fromkeys(d for d, _ in found))
        fig.add_trace(
            go.Scatter(
                x=dates,
                y=[high * above] * len(dates),
                mode="markers",
                name=label,
                marker={"symbol": symbol, "size": 11, "color": color, "line": {"width": 2, "color": color}},
                text=["<br>".join(m.reason for d, m in found if d == date) for date in dates],
                hovertemplate=f"%{{x}}<br>%{{text}}<extra>{label}</extra>",
            )
        )
    tick_values, tick_text = log_ticks(low, high * MARK_STYLE["flagged"][3])
    fig.update_layout(
        title="Daily counts per event",
        shapes=_shading(marks),
        yaxis={
            "type": "log",
            "title": "events / day (log scale)",
            "tickmode": "array",
            "tickvals": tick_values,
            "ticktext": tick_text,
        },
        **LAYOUT,
    )
    return fig


def rates_figure(series: DailySeries, marks: Marks) -> go.Figure:
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
    # One shaded column per marked date and subplot column (faster than add_vrect per subplot).
    fig.update_layout(shapes=_shading(marks, ("x", "x2")))
    fig.update_layout(title="Conversion rates (%) with their median band", height=620, **LAYOUT)
    fig.update_layout(legend={"orientation": "h", "y": -0.08})
    fig.update_annotations(font_size=11)
    return fig


def hourly_figure(profile: HourlyProfile, marks: list[DateMark] | None = None) -> go.Figure:
    """An event's hourly counts on a date against the median hourly profile.

    The title's second line says what results said about the date: which detection method
    flagged what, or that the date was only ranked unusual (a hint, not a verdict).
    """
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
    note = _marks_note(marks or [])
    if note:
        title += f"<br><span style='font-size: 12px'>{note}</span>"
    fig.update_layout(
        title=title, xaxis_title="hour (shaded: daytime 08:00-19:59)", yaxis_title="events / hour", **LAYOUT
    )
    if note:
        fig.update_layout(margin={**LAYOUT["margin"], "t": 72})
    fig.update_xaxes(dtick=2)
    return fig


def _marks_note(marks: list[DateMark]) -> str:
    """``flagged by compare_rate_to_median: rate_spike_from_median: app_open_...`` or the hint."""
    verdicts: dict[str, list[str]] = {}
    for mark in marks:
        if mark.kind == "flagged":
            verdicts.setdefault(mark.label, []).append(mark.reason)
    if verdicts:
        return "; ".join(f"{label}: {', '.join(reasons)}" for label, reasons in verdicts.items())
    hints = sorted({m.label for m in marks})
    return f"{', '.join(hints)}: not a verdict" if hints else ""


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
