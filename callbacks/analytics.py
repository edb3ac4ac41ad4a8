"""Analytics page callbacks: check the browser's choice, ask the analytics service, draw the answer.

Each section (a tab) computes only while shown and only for a request it has not answered yet. One house
is judged at once; several houses come from one background scan (jobs/analytics.py) that the anomaly
callback queues and polls, and whose finished result the voltage and power-factor cards read. The scope
comes from the cookie (`ui_scope()`); the house the browser sends is only a choice (`resolve_choice`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from dash import Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import select

import pages.analytics as analytics_page
from callbacks.analytics_figures import (
    NO_MESSAGE,
    anomaly_card,
    anomaly_count_figure,
    consumption_figure,
    pf_card,
    profile_figure,
    profile_stats,
    voltage_card,
)
from callbacks.common import error_text, message, sync_url
from callbacks.ranges import checked_days, local_today, register_range_picker
from dashboard import analytics
from dashboard.choices import resolve_choice
from dashboard.context import db, services
from dashboard.errors import DomainError, Forbidden, ValidationFailed
from dashboard.jobqueue import FINAL, JobNotFound
from dashboard.policy import allowed
from dashboard.queries import energy_series
from dashboard.schema import House
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope
from jobs.analytics import own_scan_id, scan_of, scan_result, start_scan
from pages._charts import empty_figure, resolution_for
from pages.analytics import (
    ANOMALY,
    ANOMALY_COUNTS,
    ANOMALY_TABLE,
    DATES,
    HIDDEN,
    MAX_DAYS,
    PF,
    PF_TABLE,
    PROFILE,
    PROFILE_STATS,
    PROGRESS,
    PROGRESS_BOX,
    PROGRESS_TEXT,
    SCAN_JOB,
    SCAN_POLL,
    SCOPE,
    SHOWN,
    TABS,
    VOLTAGE,
    VOLTAGE_TABLE,
    section_id,
)

log = logging.getLogger(__name__)

NO_SCAN = "This anomaly scan is unknown or has expired: choose the range again."
SCAN_FAILED = "The anomaly scan failed; choose the range again to retry."
NO_QUEUE = "The anomaly scan could not be started: the job queue is unavailable."
SCAN_NOT_RUNNING = "The background scan of these houses is not running: choose the range again."
NOT_ALLOWED = "Your role may not read analytics."
PLEASE_LOG_IN = "Please log in."


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
    _first, _last, start, end = checked_days(start_date, end_date, timezone, local_today(), MAX_DAYS)
    house_id = chosen.house_id
    if house_id is None:  # "all my houses" with one house is that house: the same chart, not a blank
        houses = analytics.scope_houses(db(), scope)
        house_id = houses[0] if len(houses) == 1 else None
    return Request(scope, house_id, chosen.label, start, end, timezone)


def house_names(ids) -> dict[int, str]:
    """Labels of houses the service returned (it only returns houses in the scope)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = db().execute(select(House.id, House.name).where(House.id.in_(ids)))
    return {house_id: f"{name} (#{house_id})" for house_id, name in rows}


def anomaly_outputs(req: Request, events: list[dict]) -> tuple:
    """Message (3), figure, counts and table of the anomaly card for the service's events."""
    names = house_names(e["house_id"] for e in events)
    if req.house_id is not None:
        resolution = resolution_for(req.start, req.end)
        series = energy_series(db(), req.scope, resolution, req.start, req.end, house_id=req.house_id)
        figure = consumption_figure(req, resolution, series, events)
    elif events:
        figure = anomaly_count_figure(events, names)
    else:
        figure = empty_figure("No anomalies in this range.")
    return anomaly_card(req, events, names, figure)


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


def refused(text: str, color: str, extras: int) -> tuple:
    """A card that shows a message instead of data: the message, an empty chart, empty `extras`."""
    return (*message(text, color), empty_figure(text), *([[]] * extras))


def shown_key(*request) -> str:
    """What a section shows, as its "shown" store holds it: the browser's choice, dates (and scan store).
    Only ever compared to skip work: a forged value can at most keep a tab as it is."""
    return json.dumps(request, sort_keys=True, default=str)


SCAN_IDLE = (None, True, 0, "", "", HIDDEN)  # the scan's outputs: no job, no polling, no bar


def scan_idle(job) -> tuple:
    """No scan: the store is cleared only when it names one (so its dependants are not called again)."""
    return (no_update if job is None else None, *SCAN_IDLE[1:])


def background_or_now(scope, choice, start_date, end_date, job, key: str, label: str, compute):
    """A section's data: for several houses the finished background scan's `key`, else `compute(req)`
    now. Returns (req, data, None), or (None, None, outputs) when the section shows a message instead
    (a refusal, the scan still running, the scan's error for this section)."""
    what = {"voltage": "voltage events", "power_factor": "power factors"}[key]
    try:
        req = analysis_request(scope, choice, start_date, end_date)
        if not in_background(req):
            return req, compute(req), None
        found, reason = finished_scan(req, job)
        if reason is not None:
            return None, None, refused(reason, "danger", 1)
        if found is None:
            return None, None, waiting(req, what, 1)
        if found[key] is None:
            return None, None, refused(f"{label}: {found['errors'].get(key, '')}", "danger", 1)
        return req, found[key], None
    except DomainError as exc:
        return None, None, refused(error_text(exc), "danger", 1)


# ---- callbacks ------------------------------------------------------------------------------------------------


def anomalies_section(choice, start_date, end_date, _n_intervals, tab, job, shown):
    """One house: its anomalies, computed when its tab is shown. Several houses (whichever tab): the
    background scan (`scan_section`)."""
    scope = ui_scope()
    if scope is None:  # the request guard already refused anonymous calls; belt and braces
        return (*refused(PLEASE_LOG_IN, "danger", 2), None, *SCAN_IDLE)
    try:
        req = analysis_request(scope, choice, start_date, end_date)
        if not in_background(req):
            key = shown_key(choice, start_date, end_date)
            if tab != ANOMALY or shown == key:  # another tab, or shown already: nothing to draw
                return (*(no_update,) * 7, *scan_idle(job))
            events = analytics.anomalies(
                db(), scope, req.start, req.end, house_id=req.house_id, timezone=req.timezone
            )
            return (*anomaly_outputs(req, events), key, *scan_idle(job))
    except DomainError as exc:
        return (*refused(error_text(exc), "danger", 2), None, *scan_idle(job))
    if scope.user_id is None:  # page scopes are users' scopes; nothing to own a job otherwise
        return (*refused(NOT_ALLOWED, "danger", 2), None, *SCAN_IDLE)
    return scan_section(req, (choice, start_date, end_date), job, shown)


def scan_section(req: Request, choice: tuple, job, shown) -> tuple:
    """Several houses: queue the scan (new range) or report on it (poll tick, tab change): progress while
    it runs, its events when it is done. `choice`: the browser's house and dates, for the shown key."""
    keep = (no_update,) * 7  # the card (6) and its shown store
    job_id = job.get("job") if isinstance(job, dict) else None
    polling = ctx.triggered_id == SCAN_POLL
    if polling and not own_scan_id(req.scope, job_id):
        return (*refused(NO_SCAN, "danger", 2), None, *SCAN_IDLE)  # forged, or another user's job
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
        return (*refused(NO_SCAN, "danger", 2), None, *SCAN_IDLE)
    except Exception:  # noqa: BLE001 - the queue (Redis) is unreachable: say so, never a 500
        log.exception("Anomaly scan: job queue unavailable")
        return (*refused(NO_QUEUE, "danger", 2), None, *SCAN_IDLE)
    if status.status == "failed":  # the store names it, so the other cards say so too
        failed = {"job": job_id, "failed": True}
        return (*refused(SCAN_FAILED, "danger", 2), None, failed, *SCAN_IDLE[1:])
    if status.status in FINAL:
        done = {"job": job_id, "done": True}
        key = shown_key(*choice, done)
        store = no_update if job == done else done  # a new value: the voltage and power-factor cards
        if shown == key:  # read the same result now
            return (*keep, store, *SCAN_IDLE[1:])
        found = scan_result(req, status)
        if found is None:
            return (*refused(NO_SCAN, "danger", 2), None, *SCAN_IDLE)
        return (*anomaly_outputs(req, found["events"]), key, store, *SCAN_IDLE[1:])
    percent = round(100 * float(status.progress or 0.0))
    detail = status.message or ("queued" if status.status == "queued" else "starting")
    progress = (False, percent, f"{percent}%", f"Scanning {req.label.lower()}: {detail}", SHOWN)
    if not fresh:  # the card keeps what it shows until the result is in
        return (*keep, no_update, *progress)
    text = f"Scanning {req.label.lower()} for anomalies in the background; the list follows."
    empty = empty_figure("Scanning every house for anomalies...")
    return (*message(text), empty, [], [], None, {"job": job_id}, *progress)


def voltage_section(choice, start_date, end_date, tab, job, shown):
    """One house: its events at once. Several houses: the background scan's, once it is done. Only while
    its tab is shown, and only what it does not show already."""
    scope = ui_scope()
    if scope is None:
        return (*refused(PLEASE_LOG_IN, "danger", 1), None)
    key = shown_key(choice, start_date, end_date, job)
    if tab != VOLTAGE or shown == key:
        raise PreventUpdate
    req, result, refusal = background_or_now(
        scope, choice, start_date, end_date, job, "voltage", "Voltage events",
        lambda req: analytics.voltage_events(db(), scope, req.start, req.end, house_id=req.house_id),
    )  # fmt: skip
    if refusal is not None:  # not remembered as shown: showing the tab again asks again
        return (*refusal, None)
    if not result["summary"]:
        return (*refused(f"No voltage readings for {req.label} in this range.", "info", 1), key)
    names = house_names([s["house_id"] for s in result["summary"]])
    return (*voltage_card(req, result, names), key)


def power_factor_section(choice, start_date, end_date, tab, job, shown):
    """One house: its daily power factor at once. Several houses: the background scan's. Only while its
    tab is shown, and only what it does not show already."""
    scope = ui_scope()
    if scope is None:
        return (*refused(PLEASE_LOG_IN, "danger", 1), None)
    key = shown_key(choice, start_date, end_date, job)
    if tab != PF or shown == key:
        raise PreventUpdate
    req, days, refusal = background_or_now(
        scope, choice, start_date, end_date, job, "power_factor", "Power factor",
        lambda req: analytics.power_factor_trend(
            db(), scope, req.start, req.end, house_id=req.house_id, timezone=req.timezone
        ),
    )  # fmt: skip
    if refusal is not None:  # not remembered as shown: showing the tab again asks again
        return (*refusal, None)
    if not days:
        return (*refused(f"No power-factor readings for {req.label} in this range.", "info", 1), key)
    names = house_names(d["house_id"] for d in days)
    label = req.label if req.house_id is not None else f"{req.label} (time-weighted)"
    return (*pf_card(label, days, names), key)


def load_profile_section(choice, start_date, end_date, tab, shown):
    """The load profile, only while its tab is shown and only what it does not show already."""
    scope = ui_scope()
    if scope is None:
        return (*refused(PLEASE_LOG_IN, "danger", 1), None)
    key = shown_key(choice, start_date, end_date)
    if tab != PROFILE or shown == key:
        raise PreventUpdate
    try:
        req = analysis_request(scope, choice, start_date, end_date)
        profile = analytics.load_profile(
            db(), scope, req.start, req.end, house_id=req.house_id, timezone=req.timezone
        )
    except DomainError as exc:
        return (*refused(error_text(exc), "danger", 1), None)
    if profile["peak_kw"] is None:
        return (*refused(f"No consumption readings for {req.label} in this range.", "info", 1), key)
    label = req.label if req.house_id is not None else f"{req.label} (summed)"
    return (*NO_MESSAGE, profile_figure(profile, label), profile_stats(profile, req.timezone), key)


def section_outputs(tab: str, *extra: str) -> list[Output]:
    """A section's message (3), graph, its `extra` components' children and its shown store."""
    message_id = section_id(tab, "message")
    return [
        *(Output(message_id, prop) for prop in ("children", "color", "is_open")),
        Output(section_id(tab, "graph"), "figure"),
        *(Output(component, "children") for component in extra),
        Output(section_id(tab, "shown"), "data"),
    ]


def open_house(click):
    """A click on a house's bar in the anomaly counts opens that house, if the caller's scope holds it."""
    scope, point = ui_scope(), ((click or {}).get("points") or [{}])[0]
    try:
        picked = resolve_choice(db(), scope, point.get("customdata")) if scope else None
    except DomainError:
        picked = None
    if picked is None or picked.house_id is None:
        raise PreventUpdate
    return str(picked.house_id)


def register_callbacks(app) -> None:
    sync_url(app, analytics_page.URL_PREFIX, analytics_page.URL_FIELDS)  # the page's state in its URL
    range_inputs = (Input(SCOPE, "value"), Input(DATES, "start_date"), Input(DATES, "end_date"))
    # its dates hold the range's days; a zoom on a chart's time axis (not the profile's time of day, nor the
    # houses' bars) makes the zoomed days the range
    time_charts = [section_id(tab, "graph") for tab in (ANOMALY, VOLTAGE, PF)]
    register_range_picker(app, analytics_page.URL_PREFIX, time_charts, fill=True, max_days=MAX_DAYS)
    app.callback(
        *section_outputs(ANOMALY, ANOMALY_COUNTS, ANOMALY_TABLE),
        Output(SCAN_JOB, "data"),
        Output(SCAN_POLL, "disabled"),
        Output(PROGRESS, "value"),
        Output(PROGRESS, "label"),
        Output(PROGRESS_TEXT, "children"),
        Output(PROGRESS_BOX, "style"),
        *range_inputs,
        Input(SCAN_POLL, "n_intervals"),
        Input(TABS, "value"),
        State(SCAN_JOB, "data"),
        State(section_id(ANOMALY, "shown"), "data"),
    )(anomalies_section)
    app.callback(
        *section_outputs(VOLTAGE, VOLTAGE_TABLE),
        *range_inputs,
        Input(TABS, "value"),
        Input(SCAN_JOB, "data"),
        State(section_id(VOLTAGE, "shown"), "data"),
        prevent_initial_call=True,  # the page opens on the anomalies: no request for a hidden tab
    )(voltage_section)
    app.callback(
        *section_outputs(PF, PF_TABLE),
        *range_inputs,
        Input(TABS, "value"),
        Input(SCAN_JOB, "data"),
        State(section_id(PF, "shown"), "data"),
        prevent_initial_call=True,
    )(power_factor_section)
    app.callback(
        *section_outputs(PROFILE, PROFILE_STATS),
        *range_inputs,
        Input(TABS, "value"),
        State(section_id(PROFILE, "shown"), "data"),
        prevent_initial_call=True,
    )(load_profile_section)
    graph = Input(analytics_page.section_id(ANOMALY, "graph"), "clickData")
    app.callback(Output(SCOPE, "value"), graph, prevent_initial_call=True)(open_house)
