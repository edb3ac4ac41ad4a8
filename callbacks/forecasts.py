"""Forecasts page callbacks: the view redrawn when a control changes (pages/forecasts_view.py), the horizon
enabled for the short-term product, and training started and polled as a background job.

The scope always comes from the cookie (`ui_scope()`). Training is for admins and analysts
(`forecast:train`), re-checked in every callback; the page keeps only the job ids in a dcc.Store and the
server re-checks them when polled.
"""

from __future__ import annotations

import re

from dash import Input, Output, State, ctx, html, no_update

import pages.forecasts as forecasts_page
from callbacks.common import error_text, sync_url
from dashboard.choices import resolve_choice
from dashboard.context import db, services
from dashboard.errors import DomainError, QueueUnavailable
from dashboard.jobqueue import FINAL, JobNotFound
from dashboard.policy import allowed
from dashboard.ui_auth import ui_scope
from jobs import requests
from jobs.training import TRAIN_FUNC
from pages.forecasts import (
    CONTROL_IDS,
    GRAPH_IDS,
    HORIZON_ID,
    JOB_STATUS_ID,
    JOBS_ID,
    KICK_ID,
    MESSAGE_ID,
    PANEL_IDS,
    POLL_ID,
    PREPARE_BOX_ID,
    PREPARE_POLL_ID,
    PREPARE_PROGRESS_ID,
    PREPARE_STATUS_ID,
    PRODUCT_ID,
    PROGRESS_BOX_ID,
    PROGRESS_ID,
    TRAIN_ID,
    TRAIN_MESSAGE_ID,
    TRAINED_ID,
)
from pages.forecasts_view import TARGETS, forecast_params, number, preparing, render_view

TRAIN_REFUSED = "Only admins and analysts can train models."
UNKNOWN_JOB = "Unknown training job."
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HIDDEN, SHOWN = {"display": "none"}, {"display": "block"}


# ---- training jobs ------------------------------------------------------------------------------------


def checked_job_ids(raw) -> list[str] | None:
    """The store's job ids if they have the shape the Train callback writes (one per target), else None."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= len(TARGETS):
        return None
    if not all(isinstance(job_id, str) and JOB_ID.match(job_id) for job_id in raw):
        return None
    return raw


def is_training_status(status) -> bool:
    """Only training jobs are shown: the queue records each job's function; a finished job must also
    carry a training's answer (the model version, or `failed: True` with why), never a forecast's."""
    if status.func != TRAIN_FUNC:
        return False
    if status.status != "finished":
        return True
    result = status.result
    if not isinstance(result, dict) or "forecast" in result:
        return False
    return "model_version" in result or result.get("failed") is True


def job_outcome(target: str, status) -> tuple[bool, str]:
    """(succeeded, one line) for a finished or failed training job."""
    if status.status == "finished" and not status.result.get("failed"):
        r = status.result
        return True, (
            f"{target.capitalize()}: model {r.get('model_version')} trained "
            f"(MAE {number(r.get('mae'))} kWh, R² {number(r.get('r2'))})."
        )
    if status.status == "finished":
        return False, f"{target.capitalize()}: training failed: {status.result.get('detail') or 'no detail'}"
    detail = ((status.error or "").strip().splitlines()[-1:] or ["the job failed"])[0][:500]
    return False, f"{target.capitalize()}: training failed: {detail}"


# ---- callbacks ----------------------------------------------------------------------------------------


def horizon_enabled(product):
    if ui_scope() is None:
        return True
    return product != "short-term"


def render(product, horizon, model, strategy, choice, _trained, _kick):
    return render_view(ui_scope(), product, horizon, model, strategy, choice)


def train(n_clicks, product, horizon, model, strategy, choice):
    if not n_clicks:
        return no_update, no_update, no_update, no_update
    scope = ui_scope()
    if scope is None:
        return None, "Please log in.", "danger", True
    if not allowed("forecast:train", scope.role):  # consumers: refused here, whatever the browser sent
        return None, TRAIN_REFUSED, "danger", True
    try:
        params = forecast_params(product, horizon, model, strategy, resolve_choice(db(), scope, choice))
        for target in TARGETS:  # both checked before either is queued
            requests.validate(scope, target, product, params)
        job_ids = [requests.start_training(services(), scope, target, product, params) for target in TARGETS]
    except DomainError as exc:
        return None, error_text(exc), "danger", True
    except QueueUnavailable as exc:
        return None, f"Training failed: {exc.detail}", "danger", True
    return job_ids, "", "info", False


def poll(_n_intervals, raw_job_ids):
    scope = ui_scope()
    if scope is None:
        return 0, "", HIDDEN, "Please log in.", True, no_update
    if not raw_job_ids:
        return 0, "", HIDDEN, "", True, no_update
    if not (allowed("forecast:train", scope.role) and allowed("jobs:read", scope.role)):
        return 0, "", SHOWN, TRAIN_REFUSED, True, no_update
    job_ids = checked_job_ids(raw_job_ids)
    if job_ids is None:
        return 0, "", SHOWN, UNKNOWN_JOB, True, no_update
    queue = services().job_queue
    try:
        statuses = [queue.status(job_id) for job_id in job_ids]
    except JobNotFound:
        return 0, "", SHOWN, UNKNOWN_JOB, True, no_update
    if not all(is_training_status(s) for s in statuses):
        return 0, "", SHOWN, UNKNOWN_JOB, True, no_update

    done = [s.status in FINAL for s in statuses]
    fractions = [1.0 if d else float(s.progress or 0.0) for s, d in zip(statuses, done, strict=True)]
    percent = round(100 * sum(fractions) / len(fractions))
    lines = []
    for target, status, finished in zip(TARGETS, statuses, done, strict=True):
        if finished:
            ok, line = job_outcome(target, status)
            lines.append(html.Div(line, className="text-success" if ok else "text-danger"))
        else:
            lines.append(html.Div(f"{target.capitalize()}: {status.message or status.status}"))
    if all(done):
        return 100, "done", SHOWN, lines, True, job_ids  # redraw the charts with the new versions
    return percent, f"{percent}%", SHOWN, lines, False, no_update


def prepare(_message, _n_intervals, product, horizon, model, strategy, choice):
    """The trainings the shown view queued for its slots without a model: their progress while they run;
    when the last one ends, the TRAINED store is bumped so the view is drawn again with the forecast.
    The slots come from the cookie's scope and the controls, never from a job id the browser holds."""
    idle = (True, HIDDEN, 0, "", "", no_update)
    scope = ui_scope()
    if scope is None:
        return idle
    running = preparing(scope, product, horizon, model, strategy, choice)
    if not running:
        if ctx.triggered_id == PREPARE_POLL_ID:  # it was training and is done: draw the view again
            return (True, HIDDEN, 100, "done", "", f"prepared-{_n_intervals}")
        return idle
    percent = round(100 * sum(float(s.progress or 0) for s in running.values()) / len(running))
    lines = [html.Div(f"{target.capitalize()}: {s.message or s.status}") for target, s in running.items()]
    return False, SHOWN, percent, f"{percent}%", lines, no_update


def register_callbacks(app) -> None:
    sync_url(app, forecasts_page.URL_PREFIX, forecasts_page.URL_FIELDS)  # the page's state in its URL
    app.callback(
        Output(PREPARE_POLL_ID, "disabled"),
        Output(PREPARE_BOX_ID, "style"),
        Output(PREPARE_PROGRESS_ID, "value"),
        Output(PREPARE_PROGRESS_ID, "label"),
        Output(PREPARE_STATUS_ID, "children"),
        Output(TRAINED_ID, "data", allow_duplicate=True),
        Input(MESSAGE_ID, "children"),
        Input(PREPARE_POLL_ID, "n_intervals"),
        *(State(control, "value") for control in CONTROL_IDS),
        prevent_initial_call=True,
    )(prepare)
    app.callback(
        Output(HORIZON_ID, "disabled"),
        Input(PRODUCT_ID, "value"),
        prevent_initial_call=True,  # the layout disables it for the default product
    )(horizon_enabled)
    app.callback(
        *(Output(GRAPH_IDS[target], "figure") for target in TARGETS),
        *(Output(PANEL_IDS[target], "children") for target in TARGETS),
        *(Output(MESSAGE_ID, prop) for prop in ("children", "color", "is_open")),
        *(Input(control, "value") for control in CONTROL_IDS),
        Input(TRAINED_ID, "data"),
        Input(KICK_ID, "n_intervals"),
        prevent_initial_call=True,  # the page's layout draws the default view (pages.forecasts.initial_view)
    )(render)
    app.callback(
        Output(JOBS_ID, "data"),
        *(Output(TRAIN_MESSAGE_ID, prop) for prop in ("children", "color", "is_open")),
        Input(TRAIN_ID, "n_clicks"),
        *(State(control, "value") for control in CONTROL_IDS),
        prevent_initial_call=True,
    )(train)
    app.callback(
        Output(PROGRESS_ID, "value"),
        Output(PROGRESS_ID, "label"),
        Output(PROGRESS_BOX_ID, "style"),
        Output(JOB_STATUS_ID, "children"),
        Output(POLL_ID, "disabled"),
        Output(TRAINED_ID, "data"),
        Input(POLL_ID, "n_intervals"),
        Input(JOBS_ID, "data"),
        prevent_initial_call=True,
    )(poll)
