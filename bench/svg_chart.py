"""A small, dependency-free SVG line chart: deterministic text, so the committed picture
changes only when its numbers do."""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 190, 40, 56
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    dashed: bool = False


@dataclass
class Chart:
    title: str
    x_label: str
    y_label: str
    x_ticks: list[float]
    y_ticks: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    series: list[Series] = field(default_factory=list)

    def render(self) -> str:
        x_low, x_high = self.x_ticks[0], self.x_ticks[-1]
        y_low, y_high = self.y_ticks[0], self.y_ticks[-1]
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

        def x(value: float) -> float:
            return LEFT + (value - x_low) / (x_high - x_low) * plot_w

        def y(value: float) -> float:
            return TOP + (1 - (value - y_low) / (y_high - y_low)) * plot_h

        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
            f'<text x="{WIDTH / 2:.0f}" y="22" text-anchor="middle" font-size="15">{self.title}</text>',
        ]
        for tick in self.y_ticks:
            at = f"{y(tick):.1f}"
            out.append(f'<line x1="{LEFT}" y1="{at}" x2="{LEFT + plot_w}" y2="{at}" stroke="#e5e5e5"/>')
            out.append(f'<text x="{LEFT - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>')
        for tick in self.x_ticks:
            out.append(
                f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{tick:g}</text>'
            )
        out.append(
            f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>'
        )
        out.append(
            f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 14}" text-anchor="middle">{self.x_label}</text>'
        )
        out.append(
            f'<text transform="translate(18 {TOP + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">'
            f"{self.y_label}</text>"
        )
        for i, series in enumerate(self.series):
            colour = COLOURS[i % len(COLOURS)] if not series.dashed else "#777"
            dash = ' stroke-dasharray="6 4"' if series.dashed else ""
            path = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in series.points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            if not series.dashed:
                out.extend(
                    f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3" fill="{colour}"/>'
                    for px, py in series.points
                )
            legend_y = TOP + 14 + 20 * i
            out.append(
                f'<line x1="{LEFT + plot_w + 14}" y1="{legend_y - 4}" x2="{LEFT + plot_w + 36}" '
                f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"{dash}/>'
            )
            out.append(f'<text x="{LEFT + plot_w + 42}" y="{legend_y}">{series.label}</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"
