"""The Forecasts page's view: both charts, both model panels and the page message, built from the request
facade's answers (jobs/requests.py). The layout draws the default view with it and the render callback
every other one, so it sits with the pages, below the callbacks."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

from dash import html
from sqlalchemy import select

from dashboard.choices import Choice, resolve_choice
from dashboard.clock import to_local
from dashboard.context import db, services
from dashboard.errors import DomainError, ForecastFailed, QueueUnavailable
from dashboard.model_store import Slot, current_version
from dashboard.policy import allowed
from dashboard.queries import energy_series
from dashboard.schema import ModelVersion
from dashboard.scope import Scope
from jobs import autotrain, requests
from pages._charts import (
    BAND_ORANGE,
    BAND_ORANGE_LINE,
    FORECAST_RED,
    HISTORY_BLUE,
    STEPS,
    chart,
    empty_figure,
    with_gaps,
)

TARGETS = ("consumption", "production")
RESOLUTION = {"next-24-hours": "hour", "short-term": "15min"}
HISTORY = {"next-24-hours": timedelta(hours=48), "short-term": timedelta(hours=6)}
UNIT = {"next-24-hours": "kWh per hour", "short-term": "kWh per 15 min"}
HEIGHT = 380
NO_MODEL = "No model for this scope yet"
# the first view of a slot without a model queues its training (jobs/autotrain.py); the page polls it
PREPARING = "Your forecast is being prepared"


def forecast_params(product, horizon, model, strategy, choice: Choice) -> dict:
    """The services' parameters from the page's controls and the *checked* scope choice; the request
    facade's `validate` checks them all."""
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
) -> dict:
    """History in blue (gaps kept), the forecast in red and a filled orange band between lower and upper."""
    column = f"{target}_kwh"
    data: list[dict] = []
    if forecast:
        x = [to_local(_utc(r["timestamp"]), timezone) for r in forecast]
        share = f"{round((interval or 0.9) * 100)}%"
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [r["lower"] for r in forecast],
                "mode": "lines",
                "name": "Confidence range (lower)",
                "line": {"color": BAND_ORANGE_LINE, "width": 1},
                "showlegend": False,
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [r["upper"] for r in forecast],
                "mode": "lines",
                "name": f"{share} confidence range",
                "line": {"color": BAND_ORANGE_LINE, "width": 1},
                "fill": "tonexty",
                "fillcolor": BAND_ORANGE,
            }
        )
    if history:
        times, values = with_gaps(
            [_utc(r["timestamp"]) for r in history], [r[column] for r in history], STEPS[RESOLUTION[product]]
        )
        data.append(
            {
                "type": "scatter",
                "x": [to_local(t, timezone) for t in times],
                "y": values,
                "mode": "lines+markers",
                "name": "History",
                "line": {"color": HISTORY_BLUE},
                "marker": {"color": HISTORY_BLUE, "size": 4},
            }
        )
    if forecast:
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [r["forecasted_energy_usage"] for r in forecast],
                "mode": "lines+markers",
                "name": "Forecast",
                "line": {"color": FORECAST_RED},
                "marker": {"color": FORECAST_RED, "size": 5},
            }
        )
    if not data:
        hours = f"{int(HISTORY[product].total_seconds() // 3600)} h"
        return empty_figure(f"No {target} readings in the last {hours} and no forecast.", height=HEIGHT)
    return chart(data, y_title=UNIT[product], height=HEIGHT)


def number(value, digits: int = 3, percent: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return "n/a"
    return f"{value * 100:.1f}%" if percent else f"{value:.{digits}f}"


def accuracy_text(metrics: dict, target: str) -> str:
    """MAPE for consumption; normalised MAE for production, which is zero at night."""
    if target == "production":  # of the installed PV where it is known (models/base.py), else of the mean
        basis = "of capacity" if metrics.get("nmae_basis") == "capacity" else "of mean production"
        return f"NMAE {number(metrics.get('nmae'), percent=True)} ({basis})"
    return f"MAPE {number(metrics.get('mape'), percent=True)}"


def metrics_text(metrics: dict, target: str = "consumption") -> str:
    mse = metrics.get("mse")
    rmse = math.sqrt(mse) if isinstance(mse, int | float) and mse >= 0 else None
    return (
        f"MAE {number(metrics.get('mae'))} kWh · RMSE {number(rmse)} kWh · R² {number(metrics.get('r2'))} · "
        f"{accuracy_text(metrics, target)} · "
        f"band coverage {number(metrics.get('coverage'), percent=True)} · "
        f"skill vs weekly naive {number(metrics.get('skill_vs_weekly_naive'))}"
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
                html.Td(number(c.get("mae")) if "error" not in c else c["error"]),
                html.Td(number(c.get(key), percent=True) if "error" not in c else ""),
            ],
            className="fw-bold" if name == metrics.get("chosen") else None,
        )
        for name, c in rows
    ]
    head = html.Thead(
        html.Tr([html.Th("Candidate"), html.Th("Kind"), html.Th("Hold-out MAE (kWh)"), html.Th(accuracy)])
    )
    table = html.Table([head, html.Tbody(body)], className="table table-sm forecasts-candidates mb-0")
    return html.Div(table, className="table-responsive mt-2")  # scrolls inside its box on a phone


def _metrics(row: ModelVersion) -> dict:
    try:
        return json.loads(row.metrics_json or "{}")
    except ValueError:
        return {}


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
        extra = [html.Div(problem, className="text-warning")] if problem else []
        return html.Div([html.Div(f"{NO_MODEL}.", className="text-muted fst-italic"), *extra])
    trained = f"{to_local(row.trained_at, timezone):%Y-%m-%d %H:%M} ({timezone})"
    version = [html.Span("Model "), html.Code(row.version, className="forecasts-version")]
    lines = [html.Div([*version, html.Span(f" · {_served(row)} · trained {trained}")])]
    if allowed("models:read", scope.role):
        metrics = _metrics(row)
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


# ---- the view -----------------------------------------------------------------------------------------


def _failed(text: str) -> tuple:
    blank = empty_figure(text)
    return blank, blank, "", "", text, "danger", True


def _answers(svc, session, scope: Scope, tasks: dict, rows: dict, product, params, cached_only: bool):
    """(answers, problems, trainings) per target: issued forecasts from the cache, the others from
    forecast jobs queued side by side; a target without a model gets its training queued (once) and
    its job in `trainings`; None when `cached_only` and one is not issued yet."""
    problems: dict[str, str] = {}
    jobs, results, trainings = {}, {}, {}
    for target in TARGETS:
        if rows[target] is None:
            if cached_only:  # the render callback queues the training (the layout waits for nothing)
                return None
            missing = autotrain.model_missing(svc, scope, tasks[target], target, product, params)
            if missing.training:
                trainings[target] = missing.training
            else:
                problems[target] = missing.detail or NO_MODEL
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
            problems[target] = exc.one_line()
    return results, problems, trainings


def preparing(scope: Scope, product, horizon, model, strategy, choice) -> dict:
    """{target: JobStatus} of the view's slots that have no model and a training queued or running (read
    only: nothing is queued here)."""
    session = db()
    try:
        params = forecast_params(product, horizon, model, strategy, resolve_choice(session, scope, choice))
        tasks = {t: requests.validate(scope, t, product, params) for t in TARGETS}
    except DomainError:
        return {}
    svc = services()
    out = {}
    for target, task in tasks.items():
        if current_version(session, task.slot) is None and (status := autotrain.in_training(svc, task)):
            out[target] = status
    return out


def render_view(scope: Scope | None, product, horizon, model, strategy, choice, cached_only: bool = False):
    """The render callback's seven outputs: both figures, both model panels and the page message.

    `cached_only`: answer only from issued forecasts already cached (no forecast job, so no wait), else
    None; the page layout uses it to draw the default view in the page's first response."""
    if scope is None:  # the request guard already refused anonymous calls; belt and braces
        return _failed("Please log in.")
    session = db()
    try:
        params = forecast_params(product, horizon, model, strategy, resolve_choice(session, scope, choice))
        tasks = {t: requests.validate(scope, t, product, params) for t in TARGETS}
    except DomainError as exc:
        return _failed(exc.one_line())
    svc = services()
    timezone = svc.settings.timezone
    rows = {t: current_version(session, tasks[t].slot) for t in TARGETS}
    answers = _answers(svc, session, scope, tasks, rows, product, params, cached_only)
    if answers is None:
        return None
    results, problems, trainings = answers

    figures, panels = [], []
    histories: dict[tuple, list[dict]] = {}  # both targets are columns of one series: read it once
    for target in TARGETS:
        task, result = tasks[target], results.get(target)
        rows_out = result["forecast"] if result else []
        end = task.origin().tz_localize(None).to_pydatetime()
        if rows_out:
            end = min(end, _utc(rows_out[0]["timestamp"]))  # history stops where the forecast starts
        row = rows[target]
        if result and (row is None or row.version != result.get("version")):  # the fallback version
            row = session.scalar(select(ModelVersion).where(ModelVersion.version == result["version"]))
        interval = json.loads(row.metrics_json or "{}").get("interval") if row is not None else None
        read = (tuple(sorted(slot_filter(task.slot).items())), end)
        if read not in histories:
            histories[read] = history_rows(session, scope, task, end)
        figures.append(forecast_figure(target, product, histories[read], rows_out, timezone, interval))
        panels.append(model_panel(row, scope, timezone, problems.get(target)))

    if trainings:
        percent = round(100 * sum(t["progress"] for t in trainings.values()) / len(trainings))
        text = (f"{PREPARING}: the {' and '.join(trainings)} model for this scope is training ({percent} %). "
                "It appears here by itself when it is ready, usually within a few minutes.")  # fmt: skip
        return *figures, *panels, text, "info", True
    if problems:
        text = "; ".join(f"{t}: {p}" for t, p in problems.items())
        return *figures, *panels, f"No forecast for {text}", "warning", True
    return *figures, *panels, "", "info", False
