"""Analytics page callbacks: anomalies, EN 50160 voltage events, power-factor trends and load profiles.

Every number comes from the analytics service (`dashboard.analytics`, the same functions as
`GET /api/v1/analytics/...`); each section (a tab) has its own callback and computes only while shown
and only for a request it has not answered yet. One house is judged here; several houses come from one
background scan (jobs/analytics.py) that the anomaly callback queues and polls, and whose finished result
the voltage and power-factor cards then read. The scope comes from the cookie (`ui_scope()`); the house
the browser sends is only a choice checked with `resolve_choice`.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import select

from callbacks.common import error_text, local_days_range, parse_date
from dashboard import analytics
from dashboard.choices import resolve_choice
from dashboard.clock import local_today, to_local
from dashboard.context import db, services
from dashboard.errors import DomainError, Forbidden, ValidationFailed
from dashboard.jobqueue import FINAL, JobNotFound
from dashboard.policy import allowed
from dashboard.queries import energy_series
from dashboard.schema import House
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope
from jobs.analytics import own_scan_id, scan_of, scan_result, start_scan
from pages._charts import CONSUMPTION, STEPS, base_layout, empty_figure, resolution_for, with_gaps

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7
MAX_DAYS = 365  # local days per request: the service's 366-day limit, with room for a DST hour
MAX_TABLE_ROWS = 500  # rows shown in a table (the count above it is always the full one)
MAX_TIMELINE_EVENTS = 1_500  # 3 points per event: no timeline trace beyond 5,000 points
LOW_PF = 0.9
ANOMALY_KINDS = {
    "consumption_spike": ("Consumption spike", "#d62728"),
    "night_load": ("Night load", "#9467bd"),
    "stuck_meter": ("Stuck meter", "#8c564b"),
}
VOLTAGE_KINDS = {
    "sag": ("Sag", "#ff7f0e"),
    "swell": ("Swell", "#d62728"),
    "interruption": ("Interruption", "#343a40"),
}
PF_LINE, PF_BARS = "#1f77b4", "rgba(214, 39, 40, 0.45)"
WEEKDAY, WEEKEND = "#1f77b4", "#ff7f0e"
POLL_MS = 800  # how often the page asks about a running all-houses anomaly scan
NO_SCAN = "This anomaly scan is unknown or has expired: choose the range again."
SCAN_FAILED = "The anomaly scan failed; choose the range again to retry."
NO_QUEUE = "The anomaly scan could not be started: the job queue is unavailable."
SCAN_NOT_RUNNING = "The background scan of these houses is not running: choose the range again."
HIDDEN, SHOWN = {"display": "none"}, {"display": "block"}
SECTIONS = {  # tab value (the prefix of its components' ids) -> tab label
    "anomaly": "Anomalies",
    "voltage": "Voltage events (EN 50160)",
    "pf": "Power factor",
    "profile": "Load profile",
}
NOT_ALLOWED = "Your role may not read analytics."
PLEASE_LOG_IN = "Please log in."


def default_range(timezone: str) -> tuple[date, date]:
    """The last 7 local days, today included (the picker's end date is inclusive)."""
    return last_days(DEFAULT_DAYS, timezone)


def last_days(days: int, timezone: str) -> tuple[date, date]:
    today = local_today(timezone)
    return today - timedelta(days=days - 1), today


@dataclass(frozen=True)
class Request:
    """The page's inputs checked on the server: the scope from the cookie, a house it may see (or None
    for all of its houses) and naive-UTC bounds of the chosen local days."""

    scope: Scope
    house_id: int | None
    label: str
    start: datetime
    end: datetime
    timezone: str


def analysis_request(scope: Scope, choice, start_date, end_date) -> Request:
    """Check the browser's choice and dates against the scope; DomainError for anything refused."""
    if not allowed("analytics:read", scope.role):
        raise Forbidden(NOT_ALLOWED)
    timezone = services().settings.timezone
    chosen = resolve_choice(db(), scope, choice)  # NotFound for a house outside the scope
    if chosen.community_id is not None:
        raise ValidationFailed(
            details=[{"field": "scope", "message": "analytics work per house: choose a house or all houses"}]
        )
    first, last = parse_date(start_date, "start_date"), parse_date(end_date, "end_date")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(details=[{"field": "end_date", "message": f"at most {MAX_DAYS} days"}])
    start, end = local_days_range(first, last, timezone)
    return Request(scope, chosen.house_id, chosen.label, start, end, timezone)


def house_names(ids) -> dict[int, str]:
    """Labels of houses the service returned (it only returns houses in the scope)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = db().execute(select(House.id, House.name).where(House.id.in_(ids)))
    return {house_id: f"{name} (#{house_id})" for house_id, name in rows}


def local_text(ts_utc: str, timezone: str) -> str:
    return f"{to_local(ts_utc, timezone):%Y-%m-%d %H:%M}"


def table(header: list[str], rows: list[list], table_id: str) -> dbc.Table:
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in header])),
            html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows[:MAX_TABLE_ROWS]]),
        ],
        id=table_id,
        striped=True,
        hover=True,
        size="sm",
        responsive=True,
        className="mt-2",
    )


def shown_note(total: int) -> str:
    return f" Showing the first {MAX_TABLE_ROWS}." if total > MAX_TABLE_ROWS else ""


def message(text: str, color: str = "info") -> tuple[str, str, bool]:
    return text, color, True


NO_MESSAGE = ("", "info", False)


# ---- anomalies ------------------------------------------------------------------------------------------


def anomaly_score_text(event: dict) -> str:
    score = event["score"]
    if event["kind"] == "stuck_meter":
        return f"{score:.2f} h stuck"
    return "no usual load" if score == float("inf") else f"{score:.2f} x usual"


def anomaly_detail_text(event: dict) -> str:
    d = event["detail"] or {}
    if event["kind"] == "stuck_meter":
        return f"meter repeated {d.get('value_kw', 0):.3f} kW for {d.get('hours', 0):g} h"
    return (
        f"unexplained {d.get('mean_unexplained_kw', 0):.2f} kW on average (usual "
        f"{d.get('usual_kw', 0):.2f} kW), meter peak {d.get('peak_meter_kw', 0):.2f} kW"
    )


def anomaly_rows(events: list[dict], names: dict[int, str], timezone: str) -> list[list[str]]:
    return [
        [
            names.get(e["house_id"], f"#{e['house_id']}"),
            ANOMALY_KINDS.get(e["kind"], (e["kind"], ""))[0],
            local_text(e["start"], timezone),
            local_text(e["end"], timezone),
            anomaly_score_text(e),
            anomaly_detail_text(e),
        ]
        for e in events
    ]


def anomaly_counts(events: list[dict]) -> list:
    counts = Counter(e["kind"] for e in events)
    badges = [
        dbc.Badge(
            f"{label}: {counts.get(kind, 0)}", color="light", text_color="dark", className="me-2 border"
        )
        for kind, (label, _colour) in ANOMALY_KINDS.items()
    ]
    return [
        html.Strong(f"{len(events)} anomal{'y' if len(events) == 1 else 'ies'}: ", className="me-2")
    ] + badges


def consumption_figure(req: Request, events: list[dict]) -> go.Figure:
    """The house's consumption (kW, from rollups) with each anomaly shaded and marked at its peak."""
    resolution = resolution_for(req.start, req.end)
    step = STEPS[resolution]
    series = energy_series(db(), req.scope, resolution, req.start, req.end, house_id=req.house_id)
    if not series:
        return empty_figure("No consumption readings in this range.")
    hours = step / timedelta(hours=1)
    utc_times = [datetime.fromisoformat(p["timestamp"][:-1]) for p in series]
    kw = [round(p["consumption_kwh"] / hours, 4) for p in series]
    times, values = with_gaps(utc_times, kw, step)
    # ISO text, not datetimes: plotly validates and encodes a datetime per point (~40 ms a month)
    local = [to_local(t, req.timezone).isoformat() if t is not None else None for t in times]
    fig = go.Figure(
        go.Scatter(x=local, y=values, mode="lines", name="Consumption (kW)", line={"color": CONSUMPTION})
    )
    marks: dict[str, tuple[list, list, list]] = {}
    for e in events:
        label, colour = ANOMALY_KINDS.get(e["kind"], (e["kind"], "#d62728"))
        lo = datetime.fromisoformat(e["start"][:-1])
        hi = datetime.fromisoformat(e["end"][:-1])
        x0, x1 = to_local(lo, req.timezone), to_local(hi, req.timezone)
        fig.add_vrect(x0=x0, x1=x1, fillcolor=colour, opacity=0.2, line_width=0, layer="below")
        inside = [(t, v) for t, v in zip(utc_times, kw, strict=True) if lo <= t < hi]
        at, peak = max(inside, key=lambda p: p[1]) if inside else (lo, None)
        xs, ys, texts = marks.setdefault(e["kind"], ([], [], []))
        xs.append(to_local(at, req.timezone))
        ys.append(peak if peak is not None else max(kw))
        texts.append(
            f"{label}: {local_text(e['start'], req.timezone)} - {local_text(e['end'], req.timezone)}"
        )
    for kind, (xs, ys, texts) in marks.items():
        label, colour = ANOMALY_KINDS.get(kind, (kind, "#d62728"))
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=f"Anomaly: {label}",
                text=texts,
                hoverinfo="text",
                marker={"color": colour, "size": 11, "symbol": "x", "line": {"width": 1}},
            )
        )
    title = f"{req.label}: consumption and anomalies ({resolution} rollups, local time)"
    base_layout(fig, title, "kW")
    fig.update_xaxes(range=local_window(req))
    return fig


def anomaly_count_figure(events: list[dict], names: dict[int, str]) -> go.Figure:
    """All houses: anomalies per house, stacked by kind."""
    houses = sorted({e["house_id"] for e in events}, key=lambda h: names.get(h, str(h)))
    fig = go.Figure()
    for kind, (label, colour) in ANOMALY_KINDS.items():
        counts = Counter(e["house_id"] for e in events if e["kind"] == kind)
        if counts:
            fig.add_trace(
                go.Bar(
                    x=[names.get(h, f"#{h}") for h in houses],
                    y=[counts.get(h, 0) for h in houses],
                    name=label,
                    marker={"color": colour},
                )
            )
    fig.update_layout(barmode="stack")
    return base_layout(fig, "Anomalies per house, by kind", "count")


def anomaly_outputs(req: Request, events: list[dict]) -> tuple:
    """Message (3), figure, counts and table of the anomaly card for the service's events."""
    names = house_names(e["house_id"] for e in events)
    if req.house_id is not None:
        figure = consumption_figure(req, events)
    elif events:
        figure = anomaly_count_figure(events, names)
    else:
        figure = empty_figure("No anomalies in this range.")
    if not events:
        return (*message(f"No anomalies found for {req.label} in this range."), figure, [], [])
    rows = anomaly_rows(events, names, req.timezone)
    header = ["House", "Kind", "Start (local)", "End (local)", "Score", "Detail"]
    note = shown_note(len(events))
    alert = message(note.strip(), "warning") if note else NO_MESSAGE
    return (*alert, figure, anomaly_counts(events), table(header, rows, "analytics-anomaly-rows"))


def in_background(req: Request) -> bool:
    """Several houses: their anomalies, voltage events and power factor come from one background scan."""
    return req.house_id is None and len(analytics.scope_houses(db(), req.scope)) > 1


def finished_scan(req: Request, job) -> tuple[dict | None, str | None]:
    """For the voltage and power-factor cards: (what this request's finished scan found, None), (None,
    None) while it runs (or the store names another range's scan, about to be replaced), or (None, the
    reason) for a forged, foreign, unknown or failed scan, or none at all."""
    if req.scope.user_id is None:
        return None, NOT_ALLOWED
    job_id = job.get("job") if isinstance(job, dict) else None
    if job_id is None:
        return None, SCAN_NOT_RUNNING
    if not own_scan_id(req.scope, job_id):
        return None, NO_SCAN  # forged, or another user's job
    if not scan_of(req, job_id):
        return None, None
    try:
        status = services().job_queue.status(job_id)
    except JobNotFound:
        return None, NO_SCAN
    except Exception:  # noqa: BLE001 - the queue (Redis) is unreachable: say so, never a 500
        log.exception("Analytics scan: job queue unavailable")
        return None, NO_QUEUE
    if status.status == "failed":
        return None, SCAN_FAILED
    if status.status not in FINAL:
        return None, None
    found = scan_result(req, status)
    return (None, NO_SCAN) if found is None else (found, None)


def waiting(req: Request, what: str, extras: int) -> tuple:
    """A card while the background scan runs: a note, an empty chart, no table."""
    text = (
        f"The {what} of {req.label.lower()} are computed in the background with the anomaly scan "
        "(progress above); they follow."
    )
    return (*message(text), empty_figure(f"Scanning every house for {what}..."), *([[]] * extras))


# ---- voltage events ---------------------------------------------------------------------------------------


def voltage_rows(summary: list[dict], names: dict[int, str]) -> list[list]:
    """One row per house: count and total minutes of sags, swells and interruptions."""
    per_house: dict[int, dict[str, dict]] = {}
    for s in summary:
        per_house.setdefault(s["house_id"], {})[s["kind"]] = s
    rows = []
    for house_id in sorted(per_house, key=lambda h: names.get(h, str(h))):
        row = [names.get(house_id, f"#{house_id}")]
        for kind in VOLTAGE_KINDS:
            s = per_house[house_id].get(kind, {"count": 0, "total_duration_s": 0.0})
            row += [s["count"], minutes(s["total_duration_s"])]
        rows.append(row)
    return rows


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def local_window(req: Request) -> list[datetime]:
    """The chosen local days as an x-axis range (local wall-clock time)."""
    return [to_local(req.start, req.timezone), to_local(req.end, req.timezone)]


def voltage_timeline(result: dict, names: dict[int, str], req: Request) -> go.Figure:
    """Each event as a bar from its start to its end on its house's row, coloured by kind."""
    timezone = req.timezone
    events = result["events"][:MAX_TIMELINE_EVENTS]
    fig = go.Figure()
    for kind, (label, colour) in VOLTAGE_KINDS.items():
        xs: list = []
        ys: list = []
        texts: list = []
        for e in events:
            if e["kind"] != kind:
                continue
            house = names.get(e["house_id"], f"#{e['house_id']}")
            text = (
                f"{house}: {label.lower()} at {local_text(e['start'], timezone)}, {e['duration_s']:.0f} s, "
                f"{e['min_voltage_v']:.1f}-{e['max_voltage_v']:.1f} V ({e['device']})"
            )
            xs += [to_local(e["start"], timezone), to_local(e["end"], timezone), None]
            ys += [house, house, None]
            texts += [text, text, None]
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=label,
                    text=texts,
                    hoverinfo="text",
                    line={"color": colour, "width": 12},
                    marker={"color": colour, "size": 8},
                )
            )
    houses = sorted({names.get(e["house_id"], f"#{e['house_id']}") for e in events})
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=houses)
    fig.update_xaxes(type="date", range=local_window(req))
    height = max(260, 60 + 40 * len(houses))
    base_layout(fig, "Voltage events by house (local time)", None, height=height)
    fig.update_layout(hovermode="closest", showlegend=True)  # the kind, even when only one occurs
    return fig


# ---- power factor -------------------------------------------------------------------------------------------


def pf_by_day(days: list[dict]) -> list[dict]:
    """Per local day over the houses given: time-weighted mean power factor and share below 0.9 (the
    service's per-house figures weighted by each house's hours of readings)."""
    acc: dict[str, list[float]] = {}
    for d in days:
        hours = d["hours"]
        a = acc.setdefault(d["day"], [0.0, 0.0, 0.0, 0.0, 0])
        a[0] += hours
        a[1] += d["mean_power_factor"] * hours
        a[2] += (d["share_below_0_9"] or 0.0) * hours
        a[3] += d["mean_power_factor"]
        a[4] += 1
    out = []
    for day in sorted(acc):
        w, w_pf, w_low, pf_sum, n = acc[day]
        out.append(
            {
                "day": day,
                "mean_power_factor": round(w_pf / w, 4) if w > 0 else round(pf_sum / n, 4),
                "share_below_0_9": round(w_low / w, 4) if w > 0 else None,
                "hours": round(w, 3),
            }
        )
    return out


def pf_figure(daily: list[dict], label: str) -> go.Figure:
    days = [d["day"] for d in daily]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=days,
            y=[None if d["share_below_0_9"] is None else round(100 * d["share_below_0_9"], 2) for d in daily],
            name="Time below 0.9 (%)",
            marker={"color": PF_BARS},
            yaxis="y2",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=days,
            y=[d["mean_power_factor"] for d in daily],
            mode="lines+markers",
            name="Daily mean power factor",
            line={"color": PF_LINE},
        )
    )
    base_layout(fig, f"{label}: power factor per local day", "power factor")
    lowest = min(d["mean_power_factor"] for d in daily)
    bottom = max(0.0, min(0.8, math.floor((lowest - 0.05) * 10) / 10))  # room below the 0.9 line
    fig.update_layout(
        yaxis={"range": [bottom, 1.01]},
        yaxis2={
            "title": "% of time below 0.9",
            "overlaying": "y",
            "side": "right",
            "range": [0, 100],
            "tickmode": "linear",
            "tick0": 0,
            "dtick": 20,
            "showgrid": False,
        },
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": LOW_PF,
                "y1": LOW_PF,
                "line": {"color": "#6c757d", "dash": "dot", "width": 1},
            }
        ],
    )
    fig.update_xaxes(type="date", tickformat="%Y-%m-%d")
    return fig


def pf_house_rows(days: list[dict], names: dict[int, str]) -> list[list]:
    """Per house over the range: time-weighted mean, share below 0.9, hours; worst share first."""
    by_house: dict[int, list[dict]] = {}
    for d in days:
        by_house.setdefault(d["house_id"], []).append(d)
    rows = []
    for house_id, items in by_house.items():
        total = pf_by_day([d | {"day": "all"} for d in items])[0]
        rows.append((total, names.get(house_id, f"#{house_id}")))
    rows.sort(key=lambda r: (-(r[0]["share_below_0_9"] or 0.0), r[1]))
    return [
        [
            name,
            f"{t['mean_power_factor']:.3f}",
            "-" if t["share_below_0_9"] is None else f"{100 * t['share_below_0_9']:.1f}",
            f"{t['hours']:.1f}",
        ]
        for t, name in rows
    ]


# ---- load profile ---------------------------------------------------------------------------------------------


def profile_figure(profile: dict, label: str) -> go.Figure:
    fig = go.Figure()
    for key, name, colour in (("weekday", "Weekdays", WEEKDAY), ("weekend", "Weekends", WEEKEND)):
        slots = profile[key]
        if any(s["mean_kw"] is not None for s in slots):
            fig.add_trace(
                go.Scatter(
                    x=[s["slot"] for s in slots],
                    y=[s["mean_kw"] for s in slots],
                    mode="lines",
                    name=f"{name} ({profile['days'][key]} days)",
                    line={"color": colour},
                )
            )
    base_layout(fig, f"{label}: average daily profile (local time, 15-minute slots)", "mean kW")
    fig.update_xaxes(type="category", nticks=24, title="local time of day")
    return fig


def profile_stats(profile: dict, timezone: str) -> list:
    peak_at = "-" if profile["peak_at"] is None else local_text(profile["peak_at"], timezone)
    factor = "-" if profile["load_factor"] is None else f"{profile['load_factor']:.3f}"
    items = [
        ("Peak (15-min mean)", f"{profile['peak_kw']:.2f} kW", "analytics-profile-peak"),
        ("Peak at (local)", peak_at, "analytics-profile-peak-at"),
        ("Mean power", f"{profile['mean_kw']:.2f} kW", "analytics-profile-mean"),
        ("Load factor (mean / peak)", factor, "analytics-profile-load-factor"),
        ("Energy", f"{profile['energy_kwh']:.1f} kWh", "analytics-profile-energy"),
    ]
    return [
        dbc.Col(
            dbc.Card(dbc.CardBody([html.Div(title, className="text-muted small"), html.H5(value, id=vid)])),
            md=True,
        )
        for title, value, vid in items
    ]


# ---- callbacks ------------------------------------------------------------------------------------------------

RANGE_INPUTS = (
    Input("analytics-scope", "value"),
    Input("analytics-range", "start_date"),
    Input("analytics-range", "end_date"),
)
TAB_INPUT = Input("analytics-tabs", "value")


# the all-houses scan: its job id, the poll timer and the progress bar
SCAN_OUTPUTS = (
    Output("analytics-anomaly-job", "data"),
    Output("analytics-anomaly-poll", "disabled"),
    Output("analytics-anomaly-progress", "value"),
    Output("analytics-anomaly-progress", "label"),
    Output("analytics-anomaly-progress-text", "children"),
    Output("analytics-anomaly-progress-box", "style"),
)
SCAN_IDLE = (None, True, 0, "", "", HIDDEN)  # no job, no polling, no bar


def scan_idle(job) -> tuple:
    """No scan: the store is cleared only when it names one (so its dependants are not called again)."""
    return (no_update if job is None else None, *SCAN_IDLE[1:])


def shown_key(*request) -> str:
    """What a section shows, as its "shown" store holds it: the browser's choice, dates (and scan store).
    Only ever compared to skip work: a forged value can at most keep a tab as it is."""
    return json.dumps(request, sort_keys=True, default=str)


def _section(prefix: str, *extra: tuple[str, str]) -> list[Output]:
    return [
        Output(f"analytics-{prefix}-message", "children"),
        Output(f"analytics-{prefix}-message", "color"),
        Output(f"analytics-{prefix}-message", "is_open"),
        Output(f"analytics-{prefix}-graph", "figure"),
        *(Output(component, prop) for component, prop in extra),
        Output(f"analytics-{prefix}-shown", "data"),
    ]


def _refused(text: str, color: str, extras: int) -> tuple:
    return (*message(text, color), empty_figure(text), *([[]] * extras))


def background_or_now(scope, choice, start_date, end_date, job, key: str, label: str, compute):
    """A section's data: for several houses the finished background scan's `key`, else `compute(req)`
    now. Returns (req, data, None), or (None, None, outputs) when the section shows a message instead
    (a refusal, the scan still running, the scan's error for this section)."""
    what = {"voltage": "voltage events", "power_factor": "power factors"}[key]
    try:
        req = analysis_request(scope, choice, start_date, end_date)
        if not in_background(req):
            return req, compute(req), None
        found, refused = finished_scan(req, job)
        if refused is not None:
            return None, None, _refused(refused, "danger", 1)
        if found is None:
            return None, None, waiting(req, what, 1)
        if found[key] is None:
            return None, None, _refused(f"{label}: {found['errors'].get(key, '')}", "danger", 1)
        return req, found[key], None
    except DomainError as exc:
        return None, None, _refused(error_text(exc), "danger", 1)


def register_callbacks(app) -> None:
    @app.callback(
        Output("analytics-range", "start_date"),
        Output("analytics-range", "end_date"),
        Input("analytics-last-7", "n_clicks"),
        Input("analytics-last-30", "n_clicks"),
        prevent_initial_call=True,
    )
    def preset(n7, n30):
        """Quick ranges: the last 7 or 30 local days."""
        scope = ui_scope()
        if scope is None or not ctx.triggered_id:
            return no_update, no_update
        days = 30 if ctx.triggered_id == "analytics-last-30" else 7
        first, last = last_days(days, services().settings.timezone)
        return first.isoformat(), last.isoformat()

    @app.callback(
        *_section(
            "anomaly", ("analytics-anomaly-counts", "children"), ("analytics-anomaly-table", "children")
        ),
        *SCAN_OUTPUTS,
        *RANGE_INPUTS,
        Input("analytics-anomaly-poll", "n_intervals"),
        TAB_INPUT,
        State("analytics-anomaly-job", "data"),
        State("analytics-anomaly-shown", "data"),
    )
    def anomalies_section(choice, start_date, end_date, _n_intervals, tab, job, shown):
        """One house: its anomalies, computed when its tab is shown. Several houses (whichever tab): queue
        the scan (new range) or report on it (poll tick, tab change): progress while it runs, its events
        when it is done."""
        keep = (no_update,) * 7  # the card (6) and its shown store
        scope = ui_scope()
        if scope is None:  # the request guard already refused anonymous calls; belt and braces
            return (*_refused(PLEASE_LOG_IN, "danger", 2), None, *SCAN_IDLE)
        try:
            req = analysis_request(scope, choice, start_date, end_date)
            if not in_background(req):
                key = shown_key(choice, start_date, end_date)
                if tab != "anomaly" or shown == key:  # another tab, or shown already: nothing to draw
                    return (*keep, *scan_idle(job))
                events = analytics.anomalies(
                    db(), scope, req.start, req.end, house_id=req.house_id, timezone=req.timezone
                )
                return (*anomaly_outputs(req, events), key, *scan_idle(job))
        except DomainError as exc:
            return (*_refused(error_text(exc), "danger", 2), None, *scan_idle(job))
        if scope.user_id is None:  # page scopes are users' scopes; nothing to own a job otherwise
            return (*_refused(NOT_ALLOWED, "danger", 2), None, *SCAN_IDLE)

        job_id = job.get("job") if isinstance(job, dict) else None
        polling = ctx.triggered_id == "analytics-anomaly-poll"
        if polling and not own_scan_id(scope, job_id):
            return (*_refused(NO_SCAN, "danger", 2), None, *SCAN_IDLE)  # forged, or another user's job
        queue = services().job_queue
        # the store names this request's scan (a tab change, a poll): report on it; else (a new range, a
        # tick racing a change of range, a retry after a failure) this request's scan
        current = scan_of(req, job_id)
        fresh = not current or (not polling and bool(job.get("failed")))
        try:
            if fresh:
                job_id = start_scan(services(), req)
            try:
                status = queue.status(job_id)
            except JobNotFound:
                if fresh or polling:
                    raise
                # a tab shown after the scan's result expired: scan again rather than show an error
                fresh, job_id = True, start_scan(services(), req)
                status = queue.status(job_id)
        except JobNotFound:
            return (*_refused(NO_SCAN, "danger", 2), None, *SCAN_IDLE)
        except Exception:  # noqa: BLE001 - the queue (Redis) is unreachable: say so, never a 500
            log.exception("Anomaly scan: job queue unavailable")
            return (*_refused(NO_QUEUE, "danger", 2), None, *SCAN_IDLE)
        if status.status == "failed":  # the store names it, so the other cards say so too
            failed = {"job": job_id, "failed": True}
            return (*_refused(SCAN_FAILED, "danger", 2), None, failed, *SCAN_IDLE[1:])
        if status.status in FINAL:
            done = {"job": job_id, "done": True}
            key = shown_key(choice, start_date, end_date, done)
            store = no_update if job == done else done  # a new value: the voltage and power-factor cards
            if shown == key:  # read the same result now
                return (*keep, store, *SCAN_IDLE[1:])
            found = scan_result(req, status)
            if found is None:
                return (*_refused(NO_SCAN, "danger", 2), None, *SCAN_IDLE)
            return (*anomaly_outputs(req, found["events"]), key, store, *SCAN_IDLE[1:])
        percent = round(100 * float(status.progress or 0.0))
        detail = status.message or ("queued" if status.status == "queued" else "starting")
        progress = (False, percent, f"{percent}%", f"Scanning {req.label.lower()}: {detail}", SHOWN)
        if not fresh:  # the card keeps what it shows until the result is in
            return (*keep, no_update, *progress)
        text = f"Scanning {req.label.lower()} for anomalies in the background; the list follows."
        waiting = empty_figure("Scanning every house for anomalies...")
        return (*message(text), waiting, [], [], None, {"job": job_id}, *progress)

    @app.callback(
        *_section("voltage", ("analytics-voltage-table", "children")),
        *RANGE_INPUTS,
        TAB_INPUT,
        Input("analytics-anomaly-job", "data"),
        State("analytics-voltage-shown", "data"),
        prevent_initial_call=True,  # the page opens on the anomalies: no request for a hidden tab
    )
    def voltage_section(choice, start_date, end_date, tab, job, shown):
        """One house: its events at once. Several houses: the background scan's, once it is done. Only
        while its tab is shown, and only what it does not show already."""
        scope = ui_scope()
        if scope is None:
            return (*_refused(PLEASE_LOG_IN, "danger", 1), None)
        key = shown_key(choice, start_date, end_date, job)
        if tab != "voltage" or shown == key:
            raise PreventUpdate
        req, result, refused = background_or_now(
            scope, choice, start_date, end_date, job, "voltage", "Voltage events",
            lambda req: analytics.voltage_events(db(), scope, req.start, req.end, house_id=req.house_id),
        )  # fmt: skip
        if refused is not None:  # not remembered as shown: showing the tab again asks again
            return (*refused, None)
        names = house_names([s["house_id"] for s in result["summary"]])
        if not result["summary"]:
            return (*_refused(f"No voltage readings for {req.label} in this range.", "info", 1), key)
        t = result["thresholds_v"]
        header = ["House"]
        for label, _colour in VOLTAGE_KINDS.values():
            header += [f"{label} count", f"{label} total (min)"]
        rows = voltage_rows(result["summary"], names)
        limits = (
            f"EN 50160, Un {result['nominal_v']:g} V: sag below {t['sag_below']:g} V, swell above "
            f"{t['swell_above']:g} V, interruption at or below {t['interruption_at_or_below']:g} V. "
            f"{len(result['events'])} event(s)."
        )
        if result["events"]:
            figure = voltage_timeline(result, names, req)
            extra = ""
            if len(result["events"]) > MAX_TIMELINE_EVENTS:
                extra = f" The timeline shows the first {MAX_TIMELINE_EVENTS}."
            alert = message(limits + extra + shown_note(len(rows)), "light")
        else:
            figure = empty_figure("No voltage events in this range.")
            alert = message(f"No voltage events for {req.label} in this range. " + limits, "info")
        return (*alert, figure, table(header, rows, "analytics-voltage-rows"), key)

    @app.callback(
        *_section("pf", ("analytics-pf-table", "children")),
        *RANGE_INPUTS,
        TAB_INPUT,
        Input("analytics-anomaly-job", "data"),
        State("analytics-pf-shown", "data"),
        prevent_initial_call=True,
    )
    def power_factor_section(choice, start_date, end_date, tab, job, shown):
        """One house: its daily power factor at once. Several houses: the background scan's. Only while
        its tab is shown, and only what it does not show already."""
        scope = ui_scope()
        if scope is None:
            return (*_refused(PLEASE_LOG_IN, "danger", 1), None)
        key = shown_key(choice, start_date, end_date, job)
        if tab != "pf" or shown == key:
            raise PreventUpdate
        req, days, refused = background_or_now(
            scope, choice, start_date, end_date, job, "power_factor", "Power factor",
            lambda req: analytics.power_factor_trend(
                db(), scope, req.start, req.end, house_id=req.house_id, timezone=req.timezone
            ),
        )  # fmt: skip
        if refused is not None:  # not remembered as shown: showing the tab again asks again
            return (*refused, None)
        if not days:
            return (*_refused(f"No power-factor readings for {req.label} in this range.", "info", 1), key)
        names = house_names(d["house_id"] for d in days)
        daily = pf_by_day(days)
        label = req.label if req.house_id is not None else f"{req.label} (time-weighted)"
        total = pf_by_day([d | {"day": "all"} for d in days])[0]
        share = "-" if total["share_below_0_9"] is None else f"{100 * total['share_below_0_9']:.1f} %"
        summary = (
            f"Mean power factor over the range {total['mean_power_factor']:.3f}; "
            f"time below 0.9: {share} ({total['hours']:.1f} h of readings)."
        )
        rows = pf_house_rows(days, names)
        header = ["House", "Mean power factor", "Time below 0.9 (%)", "Hours of readings"]
        return (
            *message(summary + shown_note(len(rows)), "light"),
            pf_figure(daily, label),
            table(header, rows, "analytics-pf-rows"),
            key,
        )

    @app.callback(
        *_section("profile", ("analytics-profile-stats", "children")),
        *RANGE_INPUTS,
        TAB_INPUT,
        State("analytics-profile-shown", "data"),
        prevent_initial_call=True,
    )
    def load_profile_section(choice, start_date, end_date, tab, shown):
        """The load profile, only while its tab is shown and only what it does not show already."""
        scope = ui_scope()
        if scope is None:
            return (*_refused(PLEASE_LOG_IN, "danger", 1), None)
        key = shown_key(choice, start_date, end_date)
        if tab != "profile" or shown == key:
            raise PreventUpdate
        try:
            req = analysis_request(scope, choice, start_date, end_date)
            profile = analytics.load_profile(
                db(), scope, req.start, req.end, house_id=req.house_id, timezone=req.timezone
            )
        except DomainError as exc:
            return (*_refused(error_text(exc), "danger", 1), None)
        if profile["peak_kw"] is None:
            return (*_refused(f"No consumption readings for {req.label} in this range.", "info", 1), key)
        label = req.label if req.house_id is not None else f"{req.label} (summed)"
        return (*NO_MESSAGE, profile_figure(profile, label), profile_stats(profile, req.timezone), key)
