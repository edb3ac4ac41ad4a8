"""Forecasts page callbacks: history (blue), forecast (red) and confidence range (orange) per target, the
active model version of each chart's slot, and training started and polled as a background job.

Forecasts and training go through the request facade the `/aggregator/...` endpoints use
(jobs/requests.py): an issued forecast from the forecast cache, else jobs on the `forecast` and `training`
queues, never a model loaded in the web process. The scope always comes from the
cookie (`ui_scope()`); the browser's scope choice is checked with `resolve_choice` and only the checked
`Choice.params` reach the services. Training is for admins and analysts (`forecast:train`), re-checked in
every callback; the page keeps only the job ids in a dcc.Store and the server re-checks them when polled.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta

import plotly.graph_objects as go
from dash import Input, Output, State, html, no_update
from sqlalchemy import select

from callbacks.charts import (
    BAND_ORANGE,
    BAND_ORANGE_LINE,
    FORECAST_RED,
    HISTORY_BLUE,
    STEPS,
    base_layout,
    empty_figure,
    with_gaps,
)
from callbacks.common import error_text
from dashboard.choices import Choice, resolve_choice
from dashboard.clock import to_local
from dashboard.context import db, services
from dashboard.errors import DomainError, ForecastFailed, QueueUnavailable, ValidationFailed
from dashboard.jobqueue import FINAL, JobNotFound
from dashboard.model_store import Slot, current_version
from dashboard.policy import allowed
from dashboard.queries import energy_series
from dashboard.schema import ModelVersion
from dashboard.scope import Scope
from dashboard.ui_auth import ui_scope
from jobs import requests
from jobs.training import TRAIN_FUNC

TARGETS = ("consumption", "production")
PRODUCTS = ("next-24-hours", "short-term")
PAGE_MODELS = ("auto", "xgboost", "ridge", "sarima")
STRATEGIES = ("direct", "recursive")
RESOLUTION = {"next-24-hours": "hour", "short-term": "15min"}
HISTORY = {"next-24-hours": timedelta(hours=48), "short-term": timedelta(hours=6)}
UNIT = {"next-24-hours": "kWh per hour", "short-term": "kWh per 15 min"}
DEFAULT_PRODUCT, DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_STRATEGY = "next-24-hours", 8, "auto", "direct"
POLL_MS = 1000
NO_MODEL = "No trained model for this scope: an analyst or admin can train one here"
TRAIN_REFUSED = "Only admins and analysts can train models."
UNKNOWN_JOB = "Unknown training job."
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

PRODUCT_OPTIONS = [
    {"label": "Next 24 hours", "value": "next-24-hours"},
    {"label": "Short-term", "value": "short-term"},
]
HORIZON_OPTIONS = [
    {"label": f"{n} step{'s' if n > 1 else ''} ({n * 15 // 60} h {n * 15 % 60:02d} min)", "value": n}
    for n in range(1, 21)
]
MODEL_OPTIONS = [
    {"label": "Auto (best on hold-out)", "value": "auto"},
    {"label": "XGBoost", "value": "xgboost"},
    {"label": "Ridge", "value": "ridge"},
    {"label": "SARIMA", "value": "sarima"},
]
STRATEGY_OPTIONS = [{"label": "Direct", "value": "direct"}, {"label": "Recursive", "value": "recursive"}]


# ---- services for the page's inputs -------------------------------------------------------------------


def forecast_params(product, horizon, model, strategy, choice: Choice) -> dict:
    """The services' parameters from the page's controls and the *checked* scope choice. The product,
    model and strategy must be the page's own options; the horizon is checked by `resolve_task`."""
    problems = []
    if product not in PRODUCTS:
        problems.append({"field": "product", "message": f"one of {', '.join(PRODUCTS)}"})
    if model not in PAGE_MODELS:
        problems.append({"field": "model", "message": f"one of {', '.join(PAGE_MODELS)}"})
    if strategy not in STRATEGIES:
        problems.append({"field": "strategy", "message": f"one of {', '.join(STRATEGIES)}"})
    if problems:
        raise ValidationFailed(details=problems)
    params = {"model": model, "strategy": strategy} | choice.params
    if product == "short-term":
        params["horizon"] = horizon
    return params


def slot_filter(slot: Slot) -> dict:
    """energy_series keywords for the slot's scope: the very series its model was trained on."""
    if slot.scope_kind == "house":
        return {"house_id": slot.scope_id}
    if slot.scope_kind == "community":
        return {"community_id": slot.scope_id}
    return {}


def _utc(text: str) -> datetime:
    """'2026-06-19 00:00:00' or '2026-06-19T00:00:00Z' (UTC) as a naive-UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "").replace("T", " "))


def history_rows(session, scope: Scope, task, end: datetime) -> list[dict]:
    product = task.cfg.product
    return energy_series(
        session, scope, RESOLUTION[product], end - HISTORY[product], end, **slot_filter(task.slot)
    )


# ---- figure and model panel ---------------------------------------------------------------------------


def forecast_figure(
    target: str,
    product: str,
    history: list[dict],
    forecast: list[dict],
    timezone: str,
    interval: float | None,
) -> go.Figure:
    """History in blue (gaps kept), the forecast in red and a filled orange band between lower and upper."""
    column = f"{target}_kwh"
    fig = go.Figure()
    if forecast:
        x = [to_local(_utc(r["timestamp"]), timezone) for r in forecast]
        share = f"{round((interval or 0.9) * 100)}%"
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r["lower"] for r in forecast],
                mode="lines",
                name="Confidence range (lower)",
                line={"color": BAND_ORANGE_LINE, "width": 1},
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r["upper"] for r in forecast],
                mode="lines",
                name=f"{share} confidence range",
                line={"color": BAND_ORANGE_LINE, "width": 1},
                fill="tonexty",
                fillcolor=BAND_ORANGE,
            )
        )
    if history:
        times, values = with_gaps(
            [_utc(r["timestamp"]) for r in history], [r[column] for r in history], STEPS[RESOLUTION[product]]
        )
        fig.add_trace(
            go.Scatter(
                x=[to_local(t, timezone) for t in times],
                y=values,
                mode="lines+markers",
                name="History",
                line={"color": HISTORY_BLUE},
                marker={"color": HISTORY_BLUE, "size": 4},
            )
        )
    if forecast:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r["forecasted_energy_usage"] for r in forecast],
                mode="lines+markers",
                name="Forecast",
                line={"color": FORECAST_RED},
                marker={"color": FORECAST_RED, "size": 5},
            )
        )
    if not fig.data:
        return empty_figure(
            f"No {target} readings in the last {_hours(product)} and no forecast.", height=380
        )
    return base_layout(fig, y_title=UNIT[product], height=380)


def _hours(product: str) -> str:
    return f"{int(HISTORY[product].total_seconds() // 3600)} h"


def _number(value, digits: int = 3, percent: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return "n/a"
    return f"{value * 100:.1f}%" if percent else f"{value:.{digits}f}"


def accuracy_text(metrics: dict, target: str) -> str:
    """MAPE for consumption; normalised MAE for production, which is zero at night."""
    if target == "production":
        return f"NMAE {_number(metrics.get('nmae'), percent=True)}"
    return f"MAPE {_number(metrics.get('mape'), percent=True)}"


def metrics_text(metrics: dict, target: str = "consumption") -> str:
    mse = metrics.get("mse")
    rmse = math.sqrt(mse) if isinstance(mse, int | float) and mse >= 0 else None
    return (
        f"MAE {_number(metrics.get('mae'))} kWh · RMSE {_number(rmse)} kWh · R² {_number(metrics.get('r2'))} · "
        f"{accuracy_text(metrics, target)} · "
        f"band coverage {_number(metrics.get('coverage'), percent=True)} · "
        f"skill vs weekly naive {_number(metrics.get('skill_vs_weekly_naive'))}"
    )


def candidates_table(metrics: dict, target: str):
    """Every candidate and baseline `model=auto` weighed, best hold-out MAE first, the served one bold."""
    rows = [(name, c) for name, c in metrics["candidates"].items() if isinstance(c, dict)]
    rows.sort(key=lambda item: (item[1].get("mae") is None or "error" in item[1], item[1].get("mae") or 0))
    accuracy = "NMAE" if target == "production" else "MAPE"
    key = "nmae" if target == "production" else "mape"
    body = [
        html.Tr(
            [
                html.Td(name),
                html.Td(c.get("kind", "")),
                html.Td(_number(c.get("mae")) if "error" not in c else c["error"]),
                html.Td(_number(c.get(key), percent=True) if "error" not in c else ""),
            ],
            className="fw-bold" if name == metrics.get("chosen") else None,
        )
        for name, c in rows
    ]
    head = html.Thead(
        html.Tr([html.Th("Candidate"), html.Th("Kind"), html.Th("Hold-out MAE (kWh)"), html.Th(accuracy)])
    )
    return html.Table([head, html.Tbody(body)], className="table table-sm forecasts-candidates mt-2")


def _served(row: ModelVersion) -> str:
    if row.model != "auto":
        return f"{row.model}, {row.strategy}"
    try:
        chosen = json.loads(row.metrics_json or "{}").get("chosen")
    except (ValueError, AttributeError):
        chosen = None
    return f"auto: {chosen}" if chosen else "auto"


def model_panel(row: ModelVersion | None, scope: Scope, timezone: str, problem: str | None = None):
    """The version, its metrics and when it was trained (local time); the metrics for models:read roles."""
    if row is None:
        return html.Div(NO_MODEL, className="text-muted fst-italic")
    trained = f"{to_local(row.trained_at, timezone):%Y-%m-%d %H:%M} ({timezone})"
    lines = [
        html.Div(
            [
                html.Span("Model "),
                html.Code(row.version, className="forecasts-version"),
                html.Span(f" · {_served(row)} · trained {trained}"),
            ]
        )
    ]
    if allowed("models:read", scope.role):
        try:
            metrics = json.loads(row.metrics_json or "{}")
        except ValueError:
            metrics = {}
        lines.append(
            html.Div(f"Hold-out metrics: {metrics_text(metrics, row.target)}", className="text-muted")
        )
        if metrics.get("note"):
            lines.append(html.Div(metrics["note"], className="text-warning"))
        if isinstance(metrics.get("candidates"), dict):
            lines.append(candidates_table(metrics, row.target))
    if problem:
        lines.append(html.Div(f"No forecast: {problem}", className="text-danger"))
    return html.Div(lines)


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
            f"(MAE {_number(r.get('mae'))} kWh, R² {_number(r.get('r2'))})."
        )
    if status.status == "finished":
        return False, f"{target.capitalize()}: training failed: {status.result.get('detail') or 'no detail'}"
    detail = ((status.error or "").strip().splitlines()[-1:] or ["the job failed"])[0][:500]
    return False, f"{target.capitalize()}: training failed: {detail}"


def render_view(scope: Scope | None, product, horizon, model, strategy, choice, cached_only: bool = False):
    """The render callback's seven outputs: both figures, both model panels and the page message.

    `cached_only`: answer only from issued forecasts already cached (no forecast job, so no wait), else
    None; the page layout uses it to draw the default view in the page's first response."""
    if scope is None:  # the request guard already refused anonymous calls; belt and braces
        blank = empty_figure("Please log in.")
        return blank, blank, "", "", "Please log in.", "danger", True
    session = db()
    try:
        picked = resolve_choice(session, scope, choice)
        params = forecast_params(product, horizon, model, strategy, picked)
        tasks = {t: requests.validate(scope, t, product, params) for t in TARGETS}
    except DomainError as exc:
        blank = empty_figure(error_text(exc))
        return blank, blank, "", "", error_text(exc), "danger", True
    svc = services()
    timezone = svc.settings.timezone
    rows = {t: current_version(session, tasks[t].slot) for t in TARGETS}
    problems: dict[str, str] = {}
    jobs = {}
    results: dict[str, dict] = {}
    for target in TARGETS:  # issued forecasts from the cache; the others queued side by side
        if rows[target] is None:
            continue
        cached = requests.cached_answer(svc, session, scope, tasks[target], rows[target])
        if cached is not None:
            results[target] = cached
            continue
        if cached_only:
            return None
        try:
            jobs[target] = requests.enqueue_forecast(svc, scope, target, product, params)
        except QueueUnavailable as exc:
            problems[target] = exc.detail
    for target, job_id in jobs.items():
        try:
            results[target] = requests.forecast_result(svc, job_id)
        except ForecastFailed as exc:
            problems[target] = exc.detail or "the forecast failed"
        except DomainError as exc:
            problems[target] = error_text(exc)

    figures, panels = [], []
    histories: dict[tuple, list[dict]] = {}  # both targets are columns of one series: read it once
    for target in TARGETS:
        task, result = tasks[target], results.get(target)
        rows_out = result["forecast"] if result else []
        end = tasks[target].origin().tz_localize(None).to_pydatetime()
        if rows_out:
            end = min(end, _utc(rows_out[0]["timestamp"]))  # history stops where the forecast starts
        row = rows[target]
        if result and (row is None or row.version != result.get("version")):  # the fallback version
            row = session.scalar(select(ModelVersion).where(ModelVersion.version == result["version"]))
        metrics = json.loads(row.metrics_json or "{}") if row is not None else {}
        read = (tuple(sorted(slot_filter(task.slot).items())), end)
        if read not in histories:
            histories[read] = history_rows(session, scope, task, end)
        history = histories[read]
        figures.append(forecast_figure(target, product, history, rows_out, timezone, metrics.get("interval")))
        panels.append(model_panel(row, scope, timezone, problems.get(target)))

    missing = [t for t in TARGETS if rows[t] is None]
    if missing:
        which = " and ".join(missing)
        return *figures, *panels, f"{NO_MODEL} ({which}).", "info", True
    if problems:
        text = "; ".join(f"{t}: {p}" for t, p in problems.items())
        return *figures, *panels, f"No forecast for {text}", "warning", True
    return *figures, *panels, "", "info", False


def initial_view(scope: Scope, choice) -> tuple | None:
    """The default view (default product, model and strategy; the page's default scope) for the page's
    layout, if every forecast it needs is already issued; None when one needs a forecast job (the page
    then asks the render callback, which waits for it behind a spinner).

    Drawn in the layout, a fresh tab gets its charts in the page's first response: no extra round trip,
    and plotly draws each chart once instead of an empty chart first (`make bench-ui`)."""
    return render_view(
        scope, DEFAULT_PRODUCT, DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_STRATEGY, choice, cached_only=True
    )


# ---- callbacks ----------------------------------------------------------------------------------------

HIDDEN, SHOWN = {"display": "none"}, {"display": "block"}


def register_callbacks(app) -> None:
    @app.callback(
        Output("forecasts-horizon", "disabled"),
        Input("forecasts-product", "value"),
        prevent_initial_call=True,  # the layout disables it for the default product
    )
    def horizon_enabled(product):
        if ui_scope() is None:
            return True
        return product != "short-term"

    @app.callback(
        Output("forecasts-consumption-graph", "figure"),
        Output("forecasts-production-graph", "figure"),
        Output("forecasts-consumption-model", "children"),
        Output("forecasts-production-model", "children"),
        Output("forecasts-message", "children"),
        Output("forecasts-message", "color"),
        Output("forecasts-message", "is_open"),
        Input("forecasts-product", "value"),
        Input("forecasts-horizon", "value"),
        Input("forecasts-model", "value"),
        Input("forecasts-strategy", "value"),
        Input("forecasts-scope", "value"),
        Input("forecasts-trained", "data"),
        Input("forecasts-kick", "n_intervals"),
        prevent_initial_call=True,  # the page's layout draws the default view (see initial_view)
    )
    def render(product, horizon, model, strategy, choice, _trained, _kick):
        return render_view(ui_scope(), product, horizon, model, strategy, choice)

    @app.callback(
        Output("forecasts-jobs", "data"),
        Output("forecasts-train-message", "children"),
        Output("forecasts-train-message", "color"),
        Output("forecasts-train-message", "is_open"),
        Input("forecasts-train", "n_clicks"),
        State("forecasts-product", "value"),
        State("forecasts-horizon", "value"),
        State("forecasts-model", "value"),
        State("forecasts-strategy", "value"),
        State("forecasts-scope", "value"),
        prevent_initial_call=True,
    )
    def train(n_clicks, product, horizon, model, strategy, choice):
        if not n_clicks:
            return no_update, no_update, no_update, no_update
        scope = ui_scope()
        if scope is None:
            return None, "Please log in.", "danger", True
        if not allowed("forecast:train", scope.role):  # consumers: refused here, whatever the browser sent
            return None, TRAIN_REFUSED, "danger", True
        try:
            picked = resolve_choice(db(), scope, choice)
            params = forecast_params(product, horizon, model, strategy, picked)
            for target in TARGETS:  # both checked before either is queued
                requests.validate(scope, target, product, params)
            job_ids = [
                requests.start_training(services(), scope, target, product, params) for target in TARGETS
            ]
        except DomainError as exc:
            return None, error_text(exc), "danger", True
        except QueueUnavailable as exc:
            return None, f"Training failed: {exc.detail}", "danger", True
        return job_ids, "", "info", False

    @app.callback(
        Output("forecasts-progress", "value"),
        Output("forecasts-progress", "label"),
        Output("forecasts-progress-box", "style"),
        Output("forecasts-job-status", "children"),
        Output("forecasts-poll", "disabled"),
        Output("forecasts-trained", "data"),
        Input("forecasts-poll", "n_intervals"),
        Input("forecasts-jobs", "data"),
        prevent_initial_call=True,
    )
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
