"""Real-Time page callbacks: live consumption and production (kW) of the chosen scope, from raw readings
(dashboard/live.py), and the scope's status (latest voltage and power factor, silent devices).

The first draw and every scope or window change send a full figure; each 5-second tick sends a
`dash.Patch` with only what changed since the last bucket the browser has (kept in `realtime-state`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dash_bootstrap_components as dbc
from dash import Input, Output, Patch, State, html
from sqlalchemy.orm import Session

from callbacks.chart_marks import add_event_marks, find_events
from callbacks.common import drawn_with_layout, error_text, sync_refresh, sync_url, triggered_id
from dashboard.choices import resolve_choice
from dashboard.clock import floor_to, to_local, utcnow
from dashboard.context import db, services
from dashboard.errors import DomainError
from dashboard.live import ScopeDevice, power_buckets, scope_devices, scope_status
from dashboard.readings import FUTURE_TOLERANCE
from dashboard.ui_auth import ui_scope
from pages._charts import CONSUMPTION, PRODUCTION, chart, empty_figure
from pages.realtime import (
    DEFAULT_WINDOW,
    GRAPH,
    INTERVAL,
    LAST_READING,
    MESSAGE,
    PATH,
    PF,
    REFRESH_EVERY,
    SCOPE,
    SILENT,
    SILENT_DEVICES,
    STATE,
    UPDATED,
    URL_FIELDS,
    URL_PREFIX,
    VOLTAGE,
    WINDOW,
    WINDOWS,
)

SETTLE = timedelta(seconds=15)  # a bucket is final this long after its end (readings ingested late)
SILENT_ALERT = timedelta(seconds=60)  # no reading of the scope for this long: the warning opens
MAX_SILENT_ROWS = 10  # the longest silent first; a fleet-wide outage lists its count, not 700 rows
MAX_STATE_POINTS = 2_000  # a state longer than any window can hold is not ours: redraw
X_FORMAT = "%Y-%m-%d %H:%M:%S"
TRACES = (("Consumption", CONSUMPTION), ("Production", PRODUCTION))


# ---- figure and patches --------------------------------------------------------------------------------


def kw(watts: float | None) -> float | None:
    return None if watts is None else round(watts / 1000.0, 3)


def entries(rows, step: timedelta, previous: datetime | None = None) -> list[tuple]:
    """Points to draw: (bucket or None for a gap marker, x time, consumption kW, production kW); a gap
    marker (None values) goes wherever consecutive buckets are more than one bucket apart."""
    out = []
    for bucket, cons, prod in rows:
        if previous is not None and bucket - previous > step * 1.5:
            out.append((None, previous + (bucket - previous) / 2, None, None))
        out.append((bucket, bucket, kw(cons), kw(prod)))
        previous = bucket
    return out


def x_label(ts: datetime, timezone: str) -> str:
    return to_local(ts, timezone).strftime(X_FORMAT)


def window_bounds(now: datetime, window_key: str) -> tuple[datetime, datetime, timedelta]:
    """[start, query end) of the rolling window and its bucket width."""
    window, step = WINDOWS[window_key]
    return floor_to(now - window, step), now + FUTURE_TOLERANCE, step


def x_range(start: datetime, now: datetime, step: timedelta, timezone: str) -> list[str]:
    """The rolling x range, half a bucket of margin before the first one so its point is not cut."""
    return [x_label(start - step / 2, timezone), x_label(now + step, timezone)]


def full_figure(points: list[tuple], title: str, x_span: list[str], timezone: str) -> dict:
    xs = [x_label(p[1], timezone) for p in points]
    data = [
        {
            "type": "scatter",
            "x": xs,
            "y": [p[2 + index] for p in points],
            "name": name,
            "mode": "lines+markers",
            "line": {"color": colour, "width": 2},
            "marker": {"size": 5, "color": colour},
            "connectgaps": False,
            "hovertemplate": "%{y:.3f} kW",
        }  # fmt: skip
        for index, (name, colour) in enumerate(TRACES)
    ]
    layout = {
        "xaxis": {"range": x_span, "title": {"text": f"Local time ({timezone})"}},
        "yaxis": {"rangemode": "tozero"},
    }
    if not points:
        layout["annotations"] = [{"text": "No readings in this window yet", "showarrow": False, "xref": "paper",
                                  "yref": "paper", "x": 0.5, "y": 0.5}]  # fmt: skip
    return chart(data, title=title, y_title="Power (kW)", height=380, **layout)


def new_state(choice, window_key: str, times: list[datetime | None], now: datetime, step: timedelta) -> dict:
    last = times[-1] if times else None
    return {
        "choice": choice,
        "window": window_key,
        "times": [t.isoformat() if t is not None else None for t in times],
        "partial": last is not None and last + step + SETTLE > now,
    }


def read_state(state, choice, window_key: str, start: datetime) -> list[datetime | None] | None:
    """The buckets the browser holds, or None when it must redraw (other scope or window, a state that
    is not ours, or a browser that slept longer than the window)."""
    if not isinstance(state, dict) or state.get("choice") != choice or state.get("window") != window_key:
        return None
    raw = state.get("times")
    if not isinstance(raw, list) or len(raw) > MAX_STATE_POINTS:
        return None
    try:
        times = [None if t is None else datetime.fromisoformat(str(t)) for t in raw]
    except ValueError:
        return None
    real = [t for t in times if t is not None]
    if real and real[-1] < start:
        return None
    return times


def tick_patch(
    session: Session,
    devices: list[ScopeDevice],
    times: list[datetime | None],
    partial: bool,
    now: datetime,
    window_key: str,
    timezone: str,
) -> tuple[Patch, list[datetime | None]]:
    """Only the change since what the browser has: re-send its last bucket if it was still filling,
    drop points older than the window, append the new buckets."""
    start, end, step = window_bounds(now, window_key)
    times = list(times)
    last_drawn = next((t for t in reversed(times) if t is not None), None)
    patch = Patch()

    def delete(index: int) -> None:
        for trace in range(len(TRACES)):
            del patch["data"][trace]["x"][index]
            del patch["data"][trace]["y"][index]

    if partial and times:  # the browser's last bucket was still filling: it is sent again
        delete(-1)
        times.pop()
    while times and (times[0] is None or times[0] < start):
        delete(0)
        times.pop(0)
    previous = next((t for t in reversed(times) if t is not None), None)
    since = max(start, last_drawn) if last_drawn is not None else start
    rows = [
        r for r in power_buckets(session, devices, since, end, step) if previous is None or r[0] > previous
    ]
    ends_with_gap = bool(times) and times[-1] is None  # the gap marker before a re-sent bucket stays
    points = entries(rows, step, None if ends_with_gap else previous)
    if points:
        xs = [x_label(p[1], timezone) for p in points]
        for index in range(len(TRACES)):
            patch["data"][index]["x"].extend(xs)
            patch["data"][index]["y"].extend([p[2 + index] for p in points])
        patch["layout"]["annotations"] = []
    patch["layout"]["xaxis"]["range"] = x_range(start, now, step, timezone)
    return patch, times + [p[0] for p in points]


# ---- status ----------------------------------------------------------------------------------------------


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172_800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86_400} days ago"


def local_time(ts: datetime, timezone: str, now: datetime) -> str:
    local = to_local(ts, timezone)
    return local.strftime("%H:%M:%S" if local.date() == to_local(now, timezone).date() else X_FORMAT)


def silent_table(silent: list[tuple[ScopeDevice, datetime | None]], places: dict[int, str], timezone: str,
                 now: datetime):  # fmt: skip
    if not silent:
        return html.P(
            "Every device of this scope reported in the last 15 minutes.",
            className="text-success",
            id="realtime-silent-none",
        )
    shown = silent[:MAX_SILENT_ROWS]
    body = [
        html.Tr(
            [
                html.Td(dev.info.serial),
                html.Td(dev.name),
                html.Td(places.get(dev.id, "")),
                html.Td(dev.info.kind),
                html.Td(
                    "never"
                    if ts is None
                    else f"{local_time(ts, timezone, now)} ({ago((now - ts).total_seconds())})"
                ),
            ]
        )
        for dev, ts in shown
    ]
    header = html.Thead(html.Tr([html.Th(h) for h in ("Device", "Name", "Where", "Kind", "Last reading")]))
    more = (
        [html.P(f"... and {len(silent) - len(shown)} more.", className="text-muted")]
        if len(silent) > len(shown)
        else []
    )
    return html.Div(
        [
            html.H6(f"{len(silent)} silent device(s): no reading for 15 minutes", className="text-warning"),
            dbc.Table(
                [header, html.Tbody(body)],
                size="sm",
                striped=True,
                bordered=False,
                id="realtime-silent-table",
            ),
            *more,
        ]
    )


# ---- callbacks -------------------------------------------------------------------------------------------


def update_chart(choice, window_key, _n, state):
    """Full figure on the first call and on a scope or window change; a Patch on every tick."""
    scope = ui_scope()
    if scope is None:  # the request guard already refused anonymous calls; belt and braces
        return empty_figure("Please log in."), None, "Please log in.", True
    window_key = window_key if window_key in WINDOWS else DEFAULT_WINDOW
    session = db()
    try:
        picked = resolve_choice(session, scope, choice)
        devices = scope_devices(session, scope, picked)
    except DomainError as exc:
        return empty_figure("No data."), None, error_text(exc), True
    timezone = services().settings.timezone
    now = utcnow().replace(microsecond=0)
    start, end, step = window_bounds(now, window_key)
    if triggered_id() == INTERVAL:
        times = read_state(state, choice, window_key, start)
        if times is not None:
            patch, times = tick_patch(
                session, devices, times, bool(state.get("partial")), now, window_key, timezone
            )
            return patch, new_state(choice, window_key, times, now, step), "", False
    points = entries(power_buckets(session, devices, start, end, step), step)
    title = f"{picked.label}: power, {WINDOWS[window_key][0].seconds // 60} min"
    fig = full_figure(points, title, x_range(start, now, step, timezone), timezone)
    # voltage events and anomalies of the window, on a full draw only (a tick's patch leaves them)
    add_event_marks(fig, find_events(session, scope, picked, start, now, timezone)[0], timezone)
    return fig, new_state(choice, window_key, [p[0] for p in points], now, step), "", False


def update_status(choice, _n):
    """Latest voltage and power factor, the last reading's time, the silence warning and silent devices."""
    scope = ui_scope()
    if scope is None:
        return "-", "-", "Please log in.", "", False, ""
    session = db()
    try:
        picked = resolve_choice(session, scope, choice)
    except DomainError as exc:
        return "-", "-", error_text(exc), "", False, ""
    timezone = services().settings.timezone
    now = utcnow().replace(microsecond=0)
    status = scope_status(session, scope, picked, now, MAX_SILENT_ROWS)
    voltage = "-" if status["voltage"] is None else f"{status['voltage']:.1f}"
    pf = "-" if status["pf"] is None else f"{status['pf']:.3f}"
    last = status["last"]
    if last is None:
        last_text = "Last reading: none yet"
        alert, open_ = "No reading from this scope's devices yet.", True
    else:
        age = (now - last).total_seconds()
        last_text = f"Last reading: {local_time(last, timezone, now)} ({ago(age)})"
        if age > SILENT_ALERT.total_seconds():
            alert = (
                f"No reading for {ago(age).removesuffix(' ago')}: the last one arrived at "
                f"{local_time(last, timezone, now)}. The devices of this scope (or their gateway) "
                "may have gone silent."
            )
            open_ = True
        else:
            alert, open_ = "", False
    table = silent_table(status["silent"], status["places"], timezone, now)
    return voltage, pf, last_text, alert, open_, table


def register_callbacks(app) -> None:
    sync_url(app, URL_PREFIX, URL_FIELDS)
    sync_refresh(app, REFRESH_EVERY, INTERVAL, UPDATED, path=PATH)
    # both drawn with the page (their first call is the server's), then on every tick and scope change
    chart = [Output(GRAPH, "figure"), Output(STATE, "data"), Output(MESSAGE, "children"),
             Output(MESSAGE, "is_open")]  # fmt: skip
    chart_inputs = [Input(SCOPE, "value"), Input(WINDOW, "value"), Input(INTERVAL, "n_intervals"),
                    State(STATE, "data")]  # fmt: skip
    drawn_with_layout(app, PATH, chart, chart_inputs, update_chart)
    status = [Output(VOLTAGE, "children"), Output(PF, "children"), Output(LAST_READING, "children"),
              Output(SILENT, "children"), Output(SILENT, "is_open"), Output(SILENT_DEVICES, "children")]  # fmt: skip
    drawn_with_layout(
        app, PATH, status, [Input(SCOPE, "value"), Input(INTERVAL, "n_intervals")], update_status
    )
