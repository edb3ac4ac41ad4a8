"""Figure helpers every page shares: the spec's colours, the rollup picked by range, gaps kept as gaps.
They sit with the pages, below the callbacks, so a layout can draw a figure as well as a callback can.

- Colours: forecasts show history in blue, the forecast in red and the confidence range in orange (spec
  section "Forecasts"); consumption and production keep one colour each on every page.
- `resolution_for` picks the finest rollup (15 min, hour, day) that keeps a trace at or under
  MAX_POINTS points, so no chart ever ships more than 5,000 points per trace.
- `with_gaps` inserts a None wherever consecutive samples are further apart than one step: Plotly then
  breaks the line (or leaves the bar out) instead of joining across missing data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

import plotly.graph_objects as go
import plotly.io as pio

MAX_POINTS = 5_000
HISTORY_BLUE = "#1f77b4"
FORECAST_RED = "#d62728"
BAND_ORANGE = "rgba(255, 127, 14, 0.35)"
BAND_ORANGE_LINE = "#ff7f0e"
CONSUMPTION = "#1f77b4"
PRODUCTION = "#2ca02c"
NET = "#7f7f7f"
GRID = "#e5e5e5"
STEPS = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def resolution_for(start: datetime, end: datetime, max_points: int = MAX_POINTS) -> str:
    """The finest rollup whose bucket count over [start, end) stays within max_points."""
    for resolution in ("15min", "hour", "day"):
        if (end - start) / STEPS[resolution] <= max_points:
            return resolution
    return "day"


def with_gaps(times: list[datetime], values: list, step: timedelta) -> tuple[list, list]:
    """Insert (midpoint, None) wherever two samples are more than `step` apart (times in UTC or any
    monotonic clock), so a line breaks at missing data instead of joining across it."""
    out_t: list = []
    out_v: list = []
    previous = None
    for ts, value in zip(times, values, strict=True):
        if previous is not None and ts - previous > step * 1.5:
            out_t.append(previous + (ts - previous) / 2)
            out_v.append(None)
        out_t.append(ts)
        out_v.append(value)
        previous = ts
    return out_t, out_v


def empty_figure(message: str, height: int = 320) -> dict:
    """A blank chart that says why it is blank (no data, not allowed, an error)."""
    layout = {
        "height": height,
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "annotations": [
            {"text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}
        ],
        "margin": {"l": 40, "r": 20, "t": 30, "b": 40},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
    }
    return plain_figure([], layout)


# The legend sits at the very bottom of the figure, below the tick labels and the x-axis title, which
# plotly's automargin lifts above the space it reserves: nothing overlaps at any width (a phone's legend
# wraps onto more lines and the plot shrinks instead). The title sits just above the plot area, left,
# clear of the toolbar (modebar) in the top-right corner, whose row the top margin leaves free.
LEGEND_BELOW = {
    "orientation": "h",
    "x": 0,
    "xanchor": "left",
    "y": 0,
    "yref": "container",
    "yanchor": "bottom",
}
TOOLBAR_ROW_PX = 30


def chart_title(text: str) -> dict:
    """A title above the plot area, left-aligned, below the modebar's row (see LEGEND_BELOW)."""
    return {"text": text, "x": 0, "xref": "paper", "xanchor": "left", "y": 1, "yref": "paper",
            "yanchor": "bottom", "pad": {"b": 8}, "automargin": True}  # fmt: skip


def base_layout(
    fig: go.Figure, title: str | None = None, y_title: str | None = None, height: int = 360
) -> go.Figure:
    """The shared look: plotly_white, legend at the bottom, title clear of the modebar. The page's
    dark theme restyles the paper, grid and text in CSS (assets/theme.css), never the traces."""
    fig.update_layout(title=chart_title(title) if title else None, **layout_props(title, y_title, height))
    return fig


def layout_props(title: str | None = None, y_title: str | None = None, height: int = 360) -> dict:
    """base_layout's look as plain layout properties (the title apart)."""
    yaxis = {"gridcolor": GRID, "linecolor": GRID, "zerolinecolor": GRID, "automargin": True}
    return {
        "height": height,
        "margin": {"l": 50, "r": 20, "t": TOOLBAR_ROW_PX + 30 if title else TOOLBAR_ROW_PX, "b": 10},
        "legend": dict(LEGEND_BELOW),
        "hovermode": "x unified",
        # plotly_white's look without its template, which would be expanded into every figure sent
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"gridcolor": GRID, "linecolor": GRID, "zeroline": False, "automargin": True},
        "yaxis": yaxis | ({"title": {"text": y_title}} if y_title else {}),
    }


def plain_figure(data: list[dict], layout: dict) -> dict:
    """A figure as the dict go.Figure(data, layout) would send (the default template included), built
    without plotly.py's validation of every property: a small chart's figure in ~1 ms instead of ~90 ms.
    Only for traces and layouts known to be valid (tests/ui/test_overview_page.py checks the Overview's)."""
    return {"data": data, "layout": {"template": template_json()} | layout}


def chart(
    data: list[dict], title: str | None = None, y_title: str | None = None, height: int = 360, **layout
) -> dict:
    """base_layout's look as a plain figure (`plain_figure`): the traces as dicts, `layout` merged into the
    shared look as update_layout would merge it (nested dicts key by key). Only for known-valid traces and
    layouts: plotly.py's figure objects spent most of a chart callback's time (docs/benchmarks.md)."""
    props = layout_props(title, y_title, height)
    if title:
        props["title"] = chart_title(title)
    return plain_figure(data, _merged(props, layout))


def _merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def vrect(x0, x1, colour: str, opacity: float = 0.2) -> dict:
    """A shaded span of the x axis over the whole plot height, below the traces (go.Figure.add_vrect's)."""
    return {"type": "rect", "x0": x0, "x1": x1, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain",
            "fillcolor": colour, "opacity": opacity, "line": {"width": 0}, "layer": "below"}  # fmt: skip


@cache
def template_json(name: str | None = None) -> dict:
    """A plotly template as JSON (None: plotly's default), built once: plotly's figure objects would
    validate and rebuild it for every figure, most of a small callback's budget (docs/benchmarks.md)."""
    return pio.templates[name or pio.templates.default].to_plotly_json()


# ---- the current, unfinished bucket: never read as a drop ------------------------------------------

SO_FAR = " (so far: this bucket is not over)"


def current_index(buckets: list[datetime], now: datetime, next_start) -> int | None:
    """The index of the bucket that holds `now` (naive UTC), if the chart shows it: that bar is unfinished.
    `next_start(i)` is the end of bucket i (the next local midnight for daily bars)."""
    if not buckets or buckets[-1] > now:
        # the last shown bucket starts in the future: find the one holding now, if any
        for i, start in enumerate(buckets):
            if start <= now < next_start(i):
                return i
        return None
    i = len(buckets) - 1
    return i if now < next_start(i) else None


def mark_partial_bar(trace: dict, index: int | None) -> None:
    """Draw bar `index` as unfinished: hatched and faded, its hover saying "so far" (never read as a drop)."""
    if index is None:
        return
    n = len(trace["x"])
    trace["marker"]["pattern"] = {"shape": ["/" if i == index else "" for i in range(n)], "solidity": 0.4}
    trace["marker"]["opacity"] = [0.5 if i == index else 1.0 for i in range(n)]
    labels = trace.get("customdata")
    if isinstance(labels, list) and index < len(labels):
        labels[index] = f"{labels[index]}{SO_FAR}"


def mark_partial_line(trace: dict, index: int | None) -> dict | None:
    """Split a line trace (plain dict, lists x and y) at point `index`, the unfinished bucket: the main
    trace stops before it and the returned extra trace draws the last segment dashed and faded, its hover
    saying "so far". None when there is no unfinished point."""
    if index is None or index >= len(trace["y"]) or trace["y"][index] is None:
        return None
    xs, ys = trace["x"], trace["y"]
    before = index - 1 if index > 0 and ys[index - 1] is not None else index
    line = dict(trace.get("line") or {}, dash="dash")
    extra = {
        "type": "scatter",
        "mode": "lines+markers",
        "x": xs[before : index + 1],
        "y": ys[before : index + 1],
        "name": f"{trace.get('name', '')}{SO_FAR}",
        "line": line,
        "marker": {"size": [0] * (index - before) + [7], "color": line.get("color")},
        "opacity": 0.6,
        "showlegend": False,
        "hovertemplate": "%{y:,.3f} so far: this bucket is not over<extra></extra>",
    }
    trace["y"] = ys[:index] + [None] + ys[index + 1 :]
    return extra


def warm_up() -> None:
    """Build and serialise one figure with the trace types and layout parts the pages use.

    plotly imports its validators lazily, on a process's first figure, which the first callback of every
    web worker would pay (docs/benchmarks.md). Called once per worker (wsgi.py) before it serves."""
    fig = base_layout(go.Figure(), "warm-up", "kW")
    fig.add_trace(go.Bar(x=[0, 1], y=[1.0, 2.0], name="bars", marker_color=CONSUMPTION, hovertemplate="%{y}"))
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[1.0, None], mode="lines+markers", name="line", connectgaps=False,
                   line={"color": FORECAST_RED, "width": 2, "dash": "dot"}, fill="tonexty",
                   fillcolor=BAND_ORANGE, showlegend=True, yaxis="y2", customdata=[[1], [2]])
    )  # fmt: skip
    fig.update_layout(
        barmode="group",
        bargap=0.1,
        yaxis2={"overlaying": "y", "side": "right", "range": [0, 1]},
        shapes=[
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": 0,
                "y1": 1,
                "fillcolor": BAND_ORANGE,
                "line": {"width": 0},
                "layer": "below",
            }
        ],  # fmt: skip
        uirevision="warm-up",
        showlegend=True,
    )
    fig.to_plotly_json()


def max_trace_points(figure: dict | go.Figure) -> int:
    """The longest trace of a figure (for tests and the UI benchmark's 5,000-point check)."""
    data = figure.to_dict()["data"] if isinstance(figure, go.Figure) else figure.get("data", [])
    return max((_length(trace.get("x")) or _length(trace.get("y")) for trace in data), default=0)


def _length(values) -> int:
    """Points in a trace array: a list, or Plotly's typed-array dict {"dtype", "bdata"[, "shape"]}."""
    if values is None:
        return 0
    if isinstance(values, dict) and "bdata" in values:
        import base64

        import numpy as np

        return len(base64.b64decode(values["bdata"])) // np.dtype(values["dtype"]).itemsize
    return len(values)
