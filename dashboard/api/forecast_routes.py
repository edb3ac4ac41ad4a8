"""The spec's endpoints (section 1.4.1), answering exactly its bodies, plus jobs and model versions.

Training and forecasting run as jobs (RQ, or in-process when embedded). A train request waits up to
TRAIN_WAIT_S for the result and answers the spec body; `?async=true` answers 202 with a job id at once.
A forecast request is answered from the forecast cache when that forecast was already issued (by the
publisher after each origin, or an earlier request; dashboard/forecast_cache.py), else it waits up to
FORECAST_WAIT_S for a forecast worker, which keeps loaded models cached (jobs/worker.py), so the web
process never loads XGBoost or a model into its own memory.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from dashboard import forecasting
from dashboard.api.common import current_scope, db, requires, services
from dashboard.api.openapi import responds
from dashboard.errors import NotFound, ValidationFailed
from dashboard.forecast_cache import forecast_cache
from dashboard.jobqueue import JobNotFound, job_queue_from_settings
from dashboard.model_store import ModelStore
from dashboard.queries import iso_utc
from dashboard.schema import ModelVersion
from dashboard.storage import object_store_from_settings
from jobs import context as jobs_context
from jobs.context import scope_fields
from jobs.training import enqueue_training

bp = Blueprint("forecasting", __name__)
log = logging.getLogger(__name__)
FORECAST_RESULT_TTL_S = 600  # a forecast answers one waiting request; keep it only for inspection
PARAMS_DOC = {
    "horizon": "short-term only: steps of 15 minutes, 1-20",
    "model": "auto (default: the best candidate on the hold-out) | xgboost | ridge | sarima | seasonal_naive",
    "strategy": "direct (default) | recursive (xgboost and ridge; auto weighs both)",
    "house_id": "optional: one house in your scope",
    "community_id": "optional: a community",
    "as_of": "optional ISO 8601: train on / forecast from data before it",
    "async": "train only: true answers 202 with a job id",
}


def _params() -> dict:
    body = request.get_json(silent=True) if request.data else None
    if request.data and not isinstance(body, dict):
        raise ValidationFailed(
            details=[{"field": "body", "message": "send a JSON object or query parameters"}]
        )
    return {k: v for k, v in request.args.items()} | (body or {})


def model_store() -> ModelStore:
    svc = services()
    if not hasattr(svc, "model_store"):
        svc.model_store = ModelStore(svc.settings, object_store_from_settings(svc.settings))
    return svc.model_store


def spec_error(status: int, error: str, detail: str | None = None):
    body = {"error": error}
    if detail:
        body["detail"] = detail
    return jsonify(body), status


class QueueUnavailable(Exception):
    """The job queue (Redis) could not take the job; `detail` says so in the spec's words."""

    def __init__(self, exc: Exception):
        super().__init__(f"the job queue is unavailable: {exc.__class__.__name__}")
        self.detail = str(self)


class ForecastFailed(Exception):
    """No forecast: the model is missing, the job failed or no worker answered (the spec's 500)."""

    def __init__(self, detail: str | None):
        super().__init__(detail or "Model missing or forecast failed")
        self.detail = detail


def start_training(scope, target: str, product: str, params: dict) -> str:
    """Validate (ValidationFailed before anything is queued) and queue a training job; its id.

    Raises QueueUnavailable when the queue cannot take it. Shared by the API and the Forecasts page."""
    forecasting.resolve_task(scope, target, product, params)  # 422 now, before anything is queued
    jobs_context.configure(services().settings)  # in-process jobs follow the app that enqueued them
    queue = job_queue_from_settings(services().settings)
    job_params = {k: v for k, v in params.items() if k != "async"}
    try:
        return enqueue_training(queue, target, product, job_params, scope)
    except Exception as exc:  # the queue (Redis) is unreachable
        log.exception("Could not enqueue training")
        raise QueueUnavailable(exc) from exc


def enqueue_forecast(scope, target: str, product: str, params: dict) -> str:
    """Validate (ValidationFailed before anything is queued) and queue a forecast on the `forecast`
    queue; its job id. Raises QueueUnavailable when the queue cannot take it."""
    forecasting.resolve_task(scope, target, product, params)  # 422 now, before anything is queued
    settings = services().settings
    jobs_context.configure(settings)
    queue = job_queue_from_settings(settings)
    try:
        return queue.enqueue("jobs.forecasting.forecast", target, product, params, scope_fields(scope),
                             queue="forecast", result_ttl_s=FORECAST_RESULT_TTL_S)  # fmt: skip
    except Exception as exc:  # the queue (Redis) is unreachable
        log.exception("Could not enqueue a forecast")
        raise QueueUnavailable(exc) from exc


def forecast_result(job_id: str) -> dict:
    """Wait up to FORECAST_WAIT_S for a queued forecast: the job's result, `{"version", "forecast": [rows]}`.
    Raises ValidationFailed (bad input, the caller's 422) or ForecastFailed (the spec's 500)."""
    settings = services().settings
    status = job_queue_from_settings(settings).wait(job_id, settings.forecast_wait_s)
    if status.status != "finished":
        raise ForecastFailed(
            f"no forecast worker answered within {settings.forecast_wait_s} s: start one with `make worker`"
            if status.status in ("queued", "started")
            else "the forecast job failed"
        )
    result = status.result
    if result.get("failed") == "input":
        raise ValidationFailed(result["detail"], details=result.get("details"))
    if result.get("failed"):
        raise ForecastFailed(result.get("detail"))
    return result


def cached_answer(scope, task, row=None) -> dict | None:
    """The forecast already issued for the task's current model version and origin (the publisher's, or
    an earlier request's), read in the web process without a job; None when there is none yet. `row`:
    the slot's current version when the caller has it (`model_store.current_version`)."""
    cache = forecast_cache(services().settings)
    if row is None:
        return forecasting.cached_forecast(db(), cache, scope, task)
    return forecasting.issued_answer(cache, scope, task, row)


def run_forecast(scope, target: str, product: str, params: dict) -> dict:
    """The issued forecast if cached, else forecast with the slot's active model and wait for it (see
    enqueue_forecast, forecast_result). Shared by the API and the Forecasts page."""
    task = forecasting.resolve_task(scope, target, product, params)  # 422 before anything is read
    answer = cached_answer(scope, task)
    if answer is not None:
        return answer
    return forecast_result(enqueue_forecast(scope, target, product, params))


@responds(200, 202)  # 202: still running after TRAIN_WAIT_S, or ?async=true
@requires("forecast:train", query=PARAMS_DOC)
def train(target: str, product: str):
    """Train a forecaster on the scope's history and store it (encrypted) as the active version."""
    params = _params()
    try:
        job_id = start_training(current_scope(), target, product, params)
    except QueueUnavailable as exc:  # say so in the spec's body
        return spec_error(500, "Training failed", exc.detail)

    if str(params.get("async", "")).lower() in ("1", "true", "yes"):
        return jsonify({"job_id": job_id, "status": "queued", "status_url": f"/api/v1/jobs/{job_id}"}), 202
    queue = job_queue_from_settings(services().settings)
    status = queue.wait(job_id, services().settings.train_wait_s)
    if status.status == "finished" and not status.result.get("failed"):
        return jsonify(status.result)
    if status.status == "finished":
        return spec_error(500, "Training failed", status.result.get("detail"))
    if status.status == "failed":
        detail = (status.error or "").strip().splitlines()[-1:] or [""]
        return spec_error(500, "Training failed", detail[0][:500])
    return jsonify({"job_id": job_id, "status": status.status, "status_url": f"/api/v1/jobs/{job_id}"}), 202


@requires("forecast:read", query=PARAMS_DOC)
def forecast(target: str, product: str):
    """Forecast with the active model of the slot (history blue, forecast red on the Forecasts page)."""
    try:
        result = run_forecast(current_scope(), target, product, _params())
    except (ForecastFailed, QueueUnavailable) as exc:  # the spec's body; ValidationFailed answers 422
        return spec_error(500, "Model missing or forecast failed", exc.detail)
    return jsonify({"forecast": result["forecast"]})


# The spec's literal paths, one rule each, so the OpenAPI document lists exactly them.
for _target in ("consumption", "production"):
    for _product in ("next-24-hours", "short-term"):
        for _verb, _view in (("train", train), ("forecast", forecast)):
            bp.add_url_rule(
                f"/aggregator/{_target}/{_verb}/{_product}",
                endpoint=f"{_verb}_{_target}_{_product.replace('-', '_')}",
                view_func=_view,
                methods=["POST"],
                defaults={"target": _target, "product": _product},
            )


@bp.get("/api/v1/jobs/<job_id>")
@requires("jobs:read")
def job_status(job_id: str):
    """Status, progress and result of a background job."""
    try:
        status = job_queue_from_settings(services().settings).status(job_id)
    except JobNotFound:
        raise NotFound(f"Job {job_id} not found") from None
    return jsonify(status.as_json())


def _version_json(row: ModelVersion) -> dict:
    metrics = json.loads(row.metrics_json)
    return {
        "id": row.id, "version": row.version, "target": row.target, "product": row.product,
        "horizon": row.horizon, "scope_kind": row.scope_kind, "scope_id": row.scope_id, "model": row.model,
        "strategy": row.strategy, "trained_at": iso_utc(row.trained_at), "is_active": row.is_active,
        "data_start": iso_utc(row.data_start) if row.data_start else None,
        "data_end": iso_utc(row.data_end) if row.data_end else None,
        "served": metrics.get("chosen", row.model), "metrics": metrics, "features": json.loads(row.features_json),
        "libraries": json.loads(row.libraries_json),
    }  # fmt: skip


@bp.get("/api/v1/models")
@requires("models:read")
def list_models():
    """Stored model versions, newest first, with their metrics and whether each is active."""
    rows = db().scalars(select(ModelVersion).order_by(ModelVersion.id.desc()).limit(500))
    return jsonify({"models": [_version_json(r) for r in rows]})


@bp.post("/api/v1/models/<int:model_id>/activate")
@requires("models:activate")
def activate_model(model_id: int):
    """Make this version the active one of its slot (rollback)."""
    row = model_store().activate(db(), model_id)
    db().commit()
    return jsonify(_version_json(row))
