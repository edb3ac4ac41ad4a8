"""Forecasts without pressing Train: the first forecast request for a slot without a model queues its
training (once: `jobs.training.enqueue_training_once`), and every request until the model is stored
answers the spec's `500 {"error": "Model missing or forecast failed"}` with a detail saying the training
is under way (job id, progress) and a `training` object the Forecasts page polls.

Who may cause a training: admins and analysts for any scope they may see; consumers for their own houses
only (the slot was resolved from their server-side scope, `forecasting.resolve_task`). Communities and the
fleet are trained for everyone else by the scheduled retraining (jobs/retrain.py). A training that failed
is not queued again for RETRY_AFTER: its reason answers meanwhile (a house with two days of data must not
queue a training on every page view).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.context import AppServices
from dashboard.errors import ForecastFailed, QueueUnavailable
from dashboard.forecasting import ForecastTask
from dashboard.jobqueue import FINAL, JobStatus
from dashboard.policy import allowed
from dashboard.scope import Scope
from jobs.training import enqueue_training_once, training_key

RETRY_AFTER = timedelta(hours=1)


def may_start(scope: Scope, task: ForecastTask) -> bool:
    """Whether this caller's request may queue the slot's training."""
    if allowed("forecast:train", scope.role):
        return True
    return (
        scope.per_house_allowed
        and task.slot.scope_kind == "house"
        and scope.can_see_house(task.slot.scope_id)
    )


def failed_reason(status: JobStatus) -> str | None:
    """Why a final training job failed, or None if it succeeded."""
    if status.status == "finished":
        result = status.result if isinstance(status.result, dict) else {}
        return result.get("detail") or "no detail" if result.get("failed") else None
    return ((status.error or "").strip().splitlines()[-1:] or ["the job failed"])[0][:300]


def training_info(status: JobStatus) -> dict:
    return {"job_id": status.id, "status": status.status,
            "progress": round(float(status.progress or 0.0), 3), "message": status.message}  # fmt: skip


def in_training(svc: AppServices, task: ForecastTask) -> JobStatus | None:
    """The slot's training job when one is queued or running, else None (read only: queues nothing)."""
    status = svc.job_queue.last_under(training_key(task.slot))
    return status if status is not None and status.status not in FINAL else None


def model_missing(svc: AppServices, scope: Scope, task: ForecastTask, target: str, product: str,
                  params: dict) -> ForecastFailed:  # fmt: skip
    """The answer to a forecast request for a slot without a model, after queueing its training when the
    caller may (and no training of the slot is queued, running or failed within RETRY_AFTER)."""
    if task.as_of is not None:  # a backtest names its own training (POST .../train with the same as_of)
        return ForecastFailed(f"No model for this scope: train one with as_of={params.get('as_of')} first")
    queue = svc.job_queue
    try:
        last = queue.last_under(training_key(task.slot))
    except Exception as exc:  # noqa: BLE001 - the queue (Redis) is unreachable: the spec's 500, with why
        return ForecastFailed(QueueUnavailable(exc).detail)
    if last is not None and last.status in FINAL and (reason := failed_reason(last)) is not None:
        ended = last.ended_at or datetime.now(UTC)
        ended = ended if ended.tzinfo else ended.replace(tzinfo=UTC)
        if datetime.now(UTC) - ended < RETRY_AFTER:
            retry = (ended + RETRY_AFTER).strftime("%H:%M UTC")
            return ForecastFailed(f"No model for this scope: its training failed: {reason} (tried again "
                                  f"after {retry} or at the next scheduled retraining)")  # fmt: skip
    if last is not None and last.status not in FINAL:
        status = last
    elif may_start(scope, task):
        job_params = {k: v for k, v in params.items() if k not in ("async", "as_of")}
        try:
            job_id, _created = enqueue_training_once(queue, task.slot, target, product, job_params, scope)
            status = queue.status(job_id)
        except Exception as exc:  # noqa: BLE001 - the queue (Redis) is unreachable
            return ForecastFailed(QueueUnavailable(exc).detail)
    else:
        return ForecastFailed(
            "No model for this scope yet: it is trained at the next scheduled retraining (RETRAIN_CRON)"
        )
    info = training_info(status)
    percent = round(100 * info["progress"])
    doing = f": {info['message']}" if info["message"] else ""
    return ForecastFailed(f"No model for this scope yet: training is under way (job {status.id}, "
                          f"{status.status}, {percent} %{doing}); ask again in a minute", training=info)  # fmt: skip
