"""Historical page callbacks: consumption and production energy (kWh) as bars, and summary panels.

Every expected bucket is on the x axis; a bucket without readings has y None (no bar), never zero.
The scope comes from the cookie (`ui_scope()`); the browser's scope choice is only checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
from dash import Input, Output, html

import pages._charts as charts
from callbacks.chart_marks import add_event_marks, find_events
from callbacks.common import drawn_with_layout, error_text, local_days_range, parse_date, sync_url
from callbacks.ranges import bucket_ends, clock_spans, preset_days, register_range_picker
from dashboard.choices import resolve_choice
from dashboard.clock import floor_to, local_midnight_utc, to_local, utcnow
from dashboard.context import db, services
from dashboard.costs import compute, scope_houses
from dashboard.errors import DomainError, Forbidden, ValidationFailed
from dashboard.policy import allowed
from dashboard.queries import energy_series
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope
from pages._charts import (
    CONSUMPTION,
    MAX_POINTS,
    NET,
    PRODUCTION,
    STEPS,
    empty_figure,
    resolution_for,
    template_json,
)
from pages._cost import cost_card, hover_line
from pages._ranges import RANGE_7D, RANGE_24H, RANGE_30D, RANGE_CUSTOM, RANGE_MONTH
from pages.historical import (
    BARS,
    BARS_AUTO,
    BARS_LABELS,
    CAPTION,
    CONSUMPTION_GRAPH,
    DATES,
    MESSAGE,
    PATH,
    PRODUCTION_GRAPH,
    RANGE,
    SCOPE,
    SUMMARY,
    URL_FIELDS,
    URL_PREFIX,
    bars_options,
)

RESOLUTION_NAMES = {"15min": "15-minute", "hour": "Hourly", "day": "Daily"}
BUCKET_UNITS = {"15min": "15 min", "hour": "hour", "day": "day"}
CUSTOM_DAILY_AFTER_DAYS = 14
BAR_BUDGET = 400  # bars a custom range shows at most when its bar size is "Auto" (before daily)
MAX_CUSTOM_DAYS = MAX_POINTS  # daily bars: one point per local day, never more than 5,000
BAR_GAP = 0.1  # of each bucket's span, half before its bar and half after


@dataclass(frozen=True)
class Window:
    """What to draw: naive-UTC [start, end), the rollup, and every expected bucket start in order."""

    start: datetime
    end: datetime
    resolution: str
    buckets: list[datetime]
    description: str
    note: str | None = None


def _grid(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, ts = [], start
    while ts < end:
        out.append(ts)
        ts += step
    return out


def _local_text(ts: datetime, zone: ZoneInfo) -> str:
    """A naive-UTC instant as local wall-clock text with the zone's abbreviation (EET/EEST)."""
    return ts.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def window_for(range_choice, start_date, end_date, bars, timezone: str, now: datetime) -> Window:
    """The window for the page's controls; `now` is naive UTC. ValidationFailed for bad dates.

    "24 h" and "7 d" are the 24 or 168 hourly buckets ending with the current (still filling) hour:
    hourly rather than 7 daily bars, which would hide the daily load and solar shape and short gaps.
    "Custom" is local days [first, last], both included. Its bars "Auto" are daily beyond
    CUSTOM_DAILY_AFTER_DAYS local days, else the finest rollup within BAR_BUDGET bars; an explicit bar
    size is honoured unless a trace would exceed MAX_POINTS, then the next coarser one. A daily bar is
    a rollup row keyed by the UTC instant of local midnight: exactly one local day, 23 or 25 hours long
    on DST change days."""
    if range_choice in (RANGE_24H, RANGE_7D):
        hours = 24 if range_choice == RANGE_24H else 7 * 24
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start = end - timedelta(hours=hours)
        zone = ZoneInfo(timezone)
        text = "last 24 hours" if range_choice == RANGE_24H else "last 7 days"
        return Window(
            start,
            end,
            "hour",
            _grid(start, end, STEPS["hour"]),
            f"Hourly bars, {text}: {_local_text(start, zone)} to {_local_text(end, zone)}",
        )
    today = now.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).date()
    if range_choice in (RANGE_30D, RANGE_MONTH):  # whole local days up to today, as a custom range
        first, last = preset_days(range_choice, today)
        bars = BARS_AUTO
    elif range_choice == RANGE_CUSTOM:
        first, last = parse_date(start_date, "start_date"), parse_date(end_date, "end_date")
    else:
        raise ValidationFailed(details=[{"field": "range", "message": "one of 24h, 7d, 30d, month, custom"}])
    local_days_range(first, last, timezone)  # refuses a reversed range
    days = (last - first).days + 1
    if days > MAX_CUSTOM_DAYS:
        raise ValidationFailed(
            details=[{"field": "end_date", "message": f"at most {MAX_CUSTOM_DAYS:,} local days"}]
        )
    if first > today:  # nothing can be measured yet: refused, not drawn as an empty "balanced" range
        raise ValidationFailed(
            details=[
                {
                    "field": "start_date",
                    "message": f"{first.isoformat()} is in the future: choose days up to today "
                    f"({today.isoformat()}, {timezone})",
                }
            ]
        )
    note = None
    if last > today:  # clamped to today, and said so
        note = f"Days after today ({today.isoformat()}) have no readings yet: showing up to today."
        last = today
        days = (last - first).days + 1
    start, end = local_days_range(first, last, timezone)
    if bars in STEPS:
        resolution = bars
        if (end - start) / STEPS[resolution] > MAX_POINTS:
            resolution = resolution_for(start, end)
            too_many = (
                f"{BARS_LABELS[bars]} bars would exceed {MAX_POINTS:,} per chart: "
                f"showing {RESOLUTION_NAMES[resolution].lower()} bars."
            )
            note = f"{note} {too_many}" if note else too_many
    elif days > CUSTOM_DAILY_AFTER_DAYS:
        resolution = "day"
    else:
        resolution = resolution_for(start, end, max_points=BAR_BUDGET)
    if resolution == "day":
        buckets = [local_midnight_utc(first + timedelta(days=i), timezone) for i in range(days)]
    else:
        step = STEPS[resolution]
        start = floor_to(start, step)  # local midnight is on the grid unless the zone's offset is odd
        buckets = _grid(start, end, step)
    description = (
        f"{RESOLUTION_NAMES[resolution]} bars, local days {first.isoformat()} to {last.isoformat()} "
        f"({days} day{'s' if days != 1 else ''}, {timezone})"
    )
    return Window(start, end, resolution, buckets, description, note)


@dataclass
class Series:
    """Values per expected bucket (None = no readings) with local labels for the axis and hover."""

    window: Window
    x: list = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    consumption: list[float | None] = field(default_factory=list)
    production: list[float | None] = field(default_factory=list)
    partial: int | None = None  # the bucket still filling (now is inside it): drawn as "so far"
    spans: list[timedelta] = field(default_factory=list)  # each bucket's length on the axis (clock_spans)


def day_label(midnight_utc: datetime, timezone: str) -> tuple[str, str]:
    """(x value, hover label) of the local day starting at this naive-UTC midnight: '25 h' on the
    autumn DST change day, '23 h' in spring."""
    day = to_local(midnight_utc, timezone).date()
    hours = round(
        (local_midnight_utc(day + timedelta(days=1), timezone) - midnight_utc).total_seconds() / 3600
    )
    return day.isoformat(), f"{day:%a %Y-%m-%d} ({hours} h)"


def build_series(rows: list[dict], window: Window, timezone: str, now: datetime | None = None) -> Series:
    zone = ZoneInfo(timezone)
    by_bucket = {datetime.fromisoformat(row["timestamp"].replace("Z", "")): row for row in rows}
    series = Series(window, spans=clock_spans(window.buckets, window.resolution, timezone))
    if now is not None:
        series.partial = charts.current_index(
            window.buckets, now, bucket_ends(window.buckets, window.resolution, timezone)
        )
    for bucket in window.buckets:
        if window.resolution == "day":
            x, label = day_label(bucket, timezone)
        else:
            x, label = to_local(bucket, timezone).isoformat(), _local_text(bucket, zone)
        row = by_bucket.get(bucket)
        series.x.append(x)
        series.labels.append(label)
        series.consumption.append(None if row is None else row["consumption_kwh"])
        series.production.append(None if row is None else row["production_kwh"])
    return series


@dataclass(frozen=True)
class Stats:
    total: float
    average: float | None
    maximum: float | None
    maximum_at: str | None


def stats(values: list[float | None], labels: list[str]) -> Stats:
    present = [(v, label) for v, label in zip(values, labels, strict=True) if v is not None]
    if not present:
        return Stats(0.0, None, None, None)
    total = sum(v for v, _ in present)
    best, at = max(present, key=lambda pair: pair[0])  # the first bucket wins a tie
    return Stats(total, total / len(present), best, at if best > 0 else None)  # all zero: no "when"


def expected_buckets(window: Window, now: datetime) -> int:
    """Buckets of the window that have begun by now (future buckets cannot have readings yet)."""
    return sum(1 for bucket in window.buckets if bucket <= now)


def _kwh(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f} kWh"


def _line(label: str, value_id: str, text: str) -> html.Div:
    return html.Div([html.Span(f"{label}: ", className="text-muted"), html.Strong(text, id=value_id)])


def _energy_card(kind: str, title: str, colour: str, st: Stats, unit: str) -> dbc.Col:
    body = [
        html.H6(title, className="mb-2", style={"color": colour}),
        _line("Total", f"historical-{kind}-total", _kwh(st.total)),
        _line(f"Average per {unit}", f"historical-{kind}-average", _kwh(st.average)),
        _line(f"Maximum per {unit}", f"historical-{kind}-max", _kwh(st.maximum)),
        _line("Maximum at", f"historical-{kind}-max-at", st.maximum_at or "-"),
    ]
    return dbc.Col(dbc.Card(dbc.CardBody(body), className="h-100"), md=3)


def summary_cards(series: Series, now: datetime) -> dbc.Row:
    unit = BUCKET_UNITS[series.window.resolution]
    cons = stats(series.consumption, series.labels)
    prod = stats(series.production, series.labels)
    net = cons.total - prod.total
    with_data = sum(1 for v in series.consumption if v is not None)
    expected = expected_buckets(series.window, now)
    share = f" ({100.0 * with_data / expected:.1f} %)" if expected else ""
    shown_net = round(net, 3)  # as the card prints it
    if all(v is None for v in (*series.consumption, *series.production)):  # not "balanced": unknown
        balance = "no readings in this range"
    else:
        balance = "net import" if shown_net > 0 else "net export" if shown_net < 0 else "balanced"
    net_card = dbc.Card(
        dbc.CardBody(
            [
                html.H6("Net balance", className="mb-2", style={"color": NET}),
                html.H4(_kwh(net), id="historical-net", className="mb-1"),
                html.Div(f"consumption - production: {balance}", className="text-muted small"),
            ]
        ),
        className="h-100",
    )
    coverage_card = dbc.Card(
        dbc.CardBody(
            [
                html.H6("Data coverage", className="mb-2"),
                html.H4(f"{with_data} / {expected}{share}", id="historical-coverage", className="mb-1"),
                html.Div(f"{unit} buckets with readings / expected so far", className="text-muted small"),
            ]
        ),
        className="h-100",
    )
    return dbc.Row(
        [
            _energy_card("consumption", "Consumption", CONSUMPTION, cons, unit),
            _energy_card("production", "Production", PRODUCTION, prod, unit),
            dbc.Col(net_card, md=3),
            dbc.Col(coverage_card, md=3),
        ],
        className="g-3",
    )


def bar_figure(series: Series, name: str, values: list, colour: str, choice_label: str) -> dict:
    """One bar per expected bucket (None = no bar) at local wall-clock x, as a plain figure dict with
    the look of `charts.base_layout` (title, margins, plotly_white)."""
    window = series.window
    # each bar spans its bucket on the local wall-clock axis, from its start (x: the local date or time) to
    # the time its end shows (clock_spans: a DST change day is midnight to midnight), less a tenth as a
    # gap, so the anomaly and voltage marks (callbacks/chart_marks.py) fall on the bar of their time (or, in
    # the first or last twentieth of its bucket, in the half-gap beside it, never on a neighbour's bar)
    spans = [span.total_seconds() * 1000 for span in series.spans]
    lo = datetime.fromisoformat(series.x[0])
    hi = datetime.fromisoformat(series.x[-1]) + series.spans[-1]
    trace = {
        "type": "bar",
        "x": series.x,
        "offset": [BAR_GAP / 2 * span for span in spans],
        "width": [(1 - BAR_GAP) * span for span in spans],
        "y": values,
        "name": name,
        "marker": {"color": colour},
        "customdata": series.labels,
        "hovertemplate": "%{customdata}<br>%{y:,.3f} kWh<extra>" + name + "</extra>",
    }
    charts.mark_partial_bar(trace, series.partial)
    layout = {
        "title": {"text": f"{name}, {choice_label}"},
        "height": 320,
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "xaxis": {"type": "date", "range": [lo.isoformat(), hi.isoformat()]},
        "yaxis": {"title": {"text": f"kWh per {BUCKET_UNITS[window.resolution]}"}, "rangemode": "tozero"},
        "hovermode": "closest",
        "showlegend": False,
        # The repeated local hour of an autumn DST change has two buckets at one wall-clock time:
        # stacked, both hours' energy shows (the hover names each with its zone abbreviation).
        "barmode": "stack",
        "template": template_json("plotly_white"),
    }
    return {"data": [trace], "layout": layout}


def historical_view(scope: Scope, range_choice, start_date, end_date, bars, choice, now: datetime):
    """(consumption figure, production figure, summary, caption, message, colour) for the controls.
    Raises DomainError for a choice outside the scope or bad dates."""
    if not allowed("energy:read", scope.role):
        raise Forbidden("Your role cannot read energy data")
    timezone = services().settings.timezone
    session = db()
    picked = resolve_choice(session, scope, choice)
    window = window_for(range_choice, start_date, end_date, bars, timezone, now)
    rows = energy_series(session, scope, window.resolution, window.start, window.end, **picked.params)
    series = build_series(rows, window, timezone, now)
    consumption = bar_figure(series, "Consumption", series.consumption, CONSUMPTION, picked.label)
    production = bar_figure(series, "Production", series.production, PRODUCTION, picked.label)
    summary = summary_cards(series, now)
    cost = window_cost(scope, window, picked.params, now)  # None without a tariff or a carbon intensity
    if cost is not None:
        for figure in (consumption, production):
            add_cost_hover(figure, cost, window)
        summary = html.Div(
            [summary, dbc.Row(cost_card(cost, "Cost of this range", "historical"), className="g-3 mt-1")]
        )
    events, marks_note = find_events(session, scope, picked, window.start, min(window.end, now), timezone)
    add_event_marks(consumption, events, timezone)
    caption = f"{window.description}; {len(window.buckets)} buckets. {picked.label}. {marks_note}".strip()
    if not rows:
        message, colour = "No readings in this range.", "info"
    elif window.note:
        message, colour = window.note, "info"
    else:
        message, colour = "", "info"
    return consumption, production, summary, caption, message, colour


def window_cost(scope: Scope, window: Window, params: dict, now: datetime):
    """Cost and CO2 per bar (hourly or daily; 15-minute bars get the range's total only, as prices are per
    hour), or None. From the import and export settled per 15 minutes in the rollups (dashboard/costs.py)."""
    if not allowed("cost:read", scope.role):
        return None
    settings, session = services().settings, db()
    group = "day" if window.resolution == "day" else "hour"
    start = window.start.replace(minute=0, second=0, microsecond=0)
    return compute(session, scope_houses(session, scope, **params), start, window.end, settings.timezone,
                   settings.currency, settings.grid_co2_g_per_kwh, now, group=group)  # fmt: skip


def add_cost_hover(figure: dict, cost, window: Window) -> None:
    """Each bar's hover gets its bucket's cost and CO2 (hourly and daily bars)."""
    if window.resolution == "15min":
        return
    trace = figure["data"][0]
    lines = [
        hover_line(cost.buckets.get(b), cost.currency, cost.has_tariff, cost.has_co2) for b in window.buckets
    ]
    trace["customdata"] = [
        f"{label}<br>{line}" if line else label
        for label, line in zip(trace["customdata"], lines, strict=True)
    ]


def custom_controls(range_choice):
    """The bar sizes are chosen for a custom range only (the date picker: callbacks/ranges.py)."""
    if ui_scope() is None:  # the request guard already refused anonymous calls; belt and braces
        return bars_options(False)
    return bars_options(range_choice == RANGE_CUSTOM)


def update(range_choice, start_date, end_date, bars, choice):
    scope = ui_scope()
    if scope is None:
        blank = empty_figure("Please log in.")
        return blank, blank, None, "", "Please log in.", "danger", True
    try:
        cons, prod, summary, caption, message, colour = historical_view(
            scope, range_choice, start_date, end_date, bars, choice, utcnow()
        )
    except DomainError as exc:
        text = error_text(exc)
        blank = empty_figure("No data: " + text)
        return blank, blank, None, "", text, "danger", True
    return cons, prod, summary, caption, message, colour, bool(message)


def register_callbacks(app) -> None:
    sync_url(app, URL_PREFIX, URL_FIELDS)
    register_range_picker(app, URL_PREFIX, (CONSUMPTION_GRAPH, PRODUCTION_GRAPH), bars_id=BARS,
                          resolution_of=lambda *controls: window_for(*controls, services().settings.timezone,
                                                                     utcnow()).resolution,
                          max_days=MAX_CUSTOM_DAYS)  # fmt: skip
    app.callback(
        Output(BARS, "options"), Input(RANGE, "value"), prevent_initial_call=True
    )(  # drawn by the layout
        custom_controls
    )
    outputs = [Output(CONSUMPTION_GRAPH, "figure"), Output(PRODUCTION_GRAPH, "figure"),
               Output(SUMMARY, "children"), Output(CAPTION, "children"), Output(MESSAGE, "children"),
               Output(MESSAGE, "color"), Output(MESSAGE, "is_open")]  # fmt: skip
    inputs = [Input(RANGE, "value"), Input(DATES, "start_date"), Input(DATES, "end_date"), Input(BARS, "value"),
              Input(SCOPE, "value")]  # fmt: skip
    drawn_with_layout(app, PATH, outputs, inputs, update)
