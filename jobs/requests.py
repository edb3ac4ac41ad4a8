"""Forecast requests, the one facade the `/aggregator/...` endpoints and the Forecasts page share: validate
once, queue training, answer a forecast from the cache or from a forecast job.

Training and forecasting run as jobs (RQ, or in-process when embedded). A forecast is answered from the
forecast cache when it was already issued (by the publisher after each origin, or an earlier request),
else a forecast worker computes it, so the web process never loads a model into its own memory.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from dashboard import forecasting
from dashboard.context import AppServices
from dashboard.errors import ForecastFailed, QueueUnavailable, ValidationFailed
from dashboard.forecasting import ForecastTask
from dashboard.jobqueue import JobStatus
from dashboard.model_store import current_version
from dashboard.scope import Scope
from jobs.autotrain import model_missing
from jobs.training import enqueue_training

log = logging.getLogger(__name__)
FORECAST_RESULT_TTL_S = 600  # a forecast answers one waiting request; keep it only for inspection
FORECAST_RETRIES = 1


def validate(scope: Scope, target: str, product: str, params: dict) -> ForecastTask:
    """The one validation of a forecast or training request (ValidationFailed: the caller's 422)."""
    return forecasting.resolve_task(scope, target, product, params)


def start_training(svc: AppServices, scope: Scope, target: str, product: str, params: dict) -> str:
    """Validate (nothing is queued on bad input) and queue a training job; its id.
    Raises QueueUnavailable when the queue cannot take it."""
    validate(scope, target, product, params)
    job_params = {k: v for k, v in params.items() if k != "async"}
    try:
        return enqueue_training(svc.job_queue, target, product, job_params, scope)
    except Exception as exc:  # the queue (Redis) is unreachable
        log.exception("Could not enqueue training")
        raise QueueUnavailable(exc) from exc


def training_status(svc: AppServices, job_id: str, wait_s: float) -> JobStatus:
    """The training job's status after waiting up to `wait_s` for it to end. When the queue (Redis) goes
    away while waiting, a failed status whose error says so (the spec's `500 Training failed`); the job
    itself may still finish, which `GET /api/v1/jobs/{id}` shows once the queue is back."""
    try:
        return svc.job_queue.wait(job_id, wait_s)
    except Exception as exc:  # noqa: BLE001 - Redis unreachable or timing out mid-wait
        log.warning(
            "Lost the job queue while waiting for training job %s: %s", job_id, exc.__class__.__name__
        )
        return JobStatus(job_id, "failed", error=queue_lost(exc, job_id))


def queue_lost(exc: Exception, job_id: str) -> str:
    return (
        f"the job queue became unreachable while waiting for job {job_id} ({exc.__class__.__name__}); "
        f"it may still finish: see GET /api/v1/jobs/{job_id} once the queue is back"
    )


def enqueue_forecast(svc: AppServices, scope: Scope, target: str, product: str, params: dict) -> str:
    """Queue a forecast of already validated parameters on the `forecast` queue; its job id.
    Raises QueueUnavailable when the queue cannot take it."""
    try:
        # one retry: a forecast whose worker dies mid-job is requeued (by the worker supervisor at once,
        # else by RQ's abandoned-job cleanup) and answered by another worker before any 500
        return svc.job_queue.enqueue("jobs.forecasting.forecast", target, product, params, scope.to_fields(),
                                     queue="forecast", result_ttl_s=FORECAST_RESULT_TTL_S,
                                     retries=FORECAST_RETRIES)  # fmt: skip
    except Exception as exc:  # the queue (Redis) is unreachable
        log.exception("Could not enqueue a forecast")
        raise QueueUnavailable(exc) from exc


def forecast_result(svc: AppServices, job_id: str) -> dict:
    """Wait up to FORECAST_WAIT_S for a queued forecast: `{"version", "forecast": [rows]}`.
    Raises ValidationFailed (bad input, the caller's 422) or ForecastFailed (the spec's 500)."""
    wait_s = svc.settings.forecast_wait_s
    try:
        status = svc.job_queue.wait(job_id, wait_s)
    except Exception as exc:  # noqa: BLE001 - Redis unreachable or timing out mid-wait
        log.warning(
            "Lost the job queue while waiting for forecast job %s: %s", job_id, exc.__class__.__name__
        )
        raise ForecastFailed(queue_lost(exc, job_id)) from exc
    if status.status != "finished":
        raise ForecastFailed(
            f"no forecast worker answered within {wait_s} s: start one with `make worker`"
            if status.status in ("queued", "started")
            else "the forecast job failed"
        )
    result = status.result
    if result.get("failed") == "input":
        raise ValidationFailed(result["detail"], details=result.get("details"))
    if result.get("failed"):
        raise ForecastFailed(result.get("detail"))
    return result


def cached_answer(
    svc: AppServices, session: Session, scope: Scope, task: ForecastTask, row=None
) -> dict | None:
    """The forecast already issued for the task's current model version and origin, read without a job;
    None when there is none yet. `row`: the slot's current version when the caller has it."""
    if row is None:
        return forecasting.cached_forecast(session, svc.cache, scope, task)
    return forecasting.issued_answer(svc.cache, scope, task, row)


def run_forecast(svc: AppServices, session: Session, scope: Scope, target: str, product: str,
                 params: dict) -> dict:  # fmt: skip
    """The issued forecast if cached, else a forecast job's answer (see forecast_result). A slot without
    a model gets its training queued (jobs/autotrain.py) and ForecastFailed saying so."""
    task = validate(scope, target, product, params)  # 422 before anything is read or queued
    row = current_version(session, task.slot)
    if row is None:
        raise model_missing(svc, scope, task, target, product, params)
    answer = cached_answer(svc, session, scope, task, row)
    if answer is not None:
        return answer
    return forecast_result(svc, enqueue_forecast(svc, scope, target, product, params))
