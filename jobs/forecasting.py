"""Forecasts from the slots' active models: the job behind POST /aggregator/{target}/forecast/{product},
and the publisher that issues every active model's forecast once per origin.

Both run on non-forking `ForecastWorker`s (jobs/worker.py) whose model store keeps loaded models cached,
so a warm forecast is a database read and a prediction. Answers go into the forecast cache
(dashboard/forecast_cache.py): the web process answers a repeat view from it without a job, and the
publisher fills it shortly after each 15-minute origin (once the late readings are in), so a page view
rarely waits for a job at all.

A forecast job's result is plain data: `{"version", "forecast": [rows]}` on success, else
`{"failed": kind, "detail"}` where kind is "input" (the caller's 422) or "model" (the spec's 500).
Failures are answers, not exceptions: the web request is waiting, and a retry later would answer nobody.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import select

from dashboard import forecasting
from dashboard.context import worker_services
from dashboard.errors import DomainError, ValidationFailed
from dashboard.forecast_cache import SETTLE_S
from dashboard.jobqueue import report_progress
from dashboard.model_store import ModelUnavailable, slot_of
from dashboard.schema import ModelVersion
from dashboard.scope import Scope, system_scope
from models import ForecastConfig

log = logging.getLogger(__name__)

PUBLISH_QUEUE = "publish"  # after `forecast` in the forecast workers' queue order: requests go first
PUBLISH_BATCH = 20  # versions per publish job: a request waits behind at most one batch (a few seconds)
PUBLISH_EVERY = pd.Timedelta(minutes=15)  # the finest product step: every origin of every product


def forecast(target: str, product: str, params: dict, scope_fields: dict) -> dict:

    svc = worker_services()
    cache = svc.cache
    scope = Scope.from_fields(scope_fields)
    logged = params | {"target": target, "product": product}
    started = time.perf_counter()
    with svc.session_factory() as session:
        try:
            task = forecasting.resolve_task(scope, target, product, params)
            # another request or the publisher may have issued it while this job waited in the queue
            answer = forecasting.cached_forecast(session, cache, scope, task)
            if answer is None:
                answer = forecasting.issue_forecast(session, svc.model_store, cache, scope, task)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the answer the caller waits for
            session.rollback()
            forecasting.log_run(session, "forecast", scope, logged, started, "failed", error=str(exc)[:2000])
            session.commit()
            if isinstance(exc, ValidationFailed):
                return {"failed": "input", "detail": exc.message, "details": exc.details}
            if isinstance(exc, ModelUnavailable):
                return {"failed": "model", "detail": "train a model for this scope first"}
            if not isinstance(exc, DomainError):
                log.exception("Forecast failed")
            return {"failed": "model", "detail": None}
        forecasting.log_run(session, "forecast", scope, logged, started, "ok", version=answer["version"])
        session.commit()
    return answer


# ---- the publisher ------------------------------------------------------------------------------------


def due_origin(now: datetime | None = None) -> pd.Timestamp:
    """The latest 15-minute origin whose late readings have had SETTLE_S to arrive."""

    now_ts = pd.Timestamp(now or datetime.now(UTC))
    return (now_ts - pd.Timedelta(seconds=SETTLE_S)).floor(PUBLISH_EVERY)


def publish_due() -> dict:
    """Issue the current forecast of every active model version: one batch here, more as publish jobs."""

    svc = worker_services()
    with svc.session_factory() as session:
        ids = list(
            session.scalars(select(ModelVersion.id).where(ModelVersion.is_active).order_by(ModelVersion.id))
        )
    batches = [ids[i : i + PUBLISH_BATCH] for i in range(0, len(ids), PUBLISH_BATCH)]
    if len(batches) <= 1:
        return publish_forecasts(ids)
    queue = svc.job_queue
    for batch in batches:
        queue.enqueue("jobs.forecasting.publish_forecasts", batch, queue=PUBLISH_QUEUE, result_ttl_s=3600)
    return {"versions": len(ids), "batches": len(batches)}


def publish_forecasts(version_ids: list[int]) -> dict:
    """Issue (compute and cache) the current forecast of each named version that is still active, unless a
    settled one is cached already. Nothing goes to the run log: it records requests, not the publisher."""

    svc = worker_services()
    cache = svc.cache
    scope = system_scope()
    counts = {"issued": 0, "cached": 0, "skipped": 0, "failed": 0}
    with svc.session_factory() as session:
        for done, version_id in enumerate(version_ids, start=1):
            row = session.get(ModelVersion, version_id)
            if row is None or not row.is_active:
                counts["skipped"] += 1
                continue
            cfg = ForecastConfig(product=row.product, horizon=row.horizon, model=row.model,
                                 strategy=row.strategy, target=row.target)  # fmt: skip
            task = forecasting.ForecastTask(cfg, slot_of(row), None)
            try:
                if forecasting.cached_forecast(session, cache, scope, task, settled_only=True) is not None:
                    counts["cached"] += 1
                else:
                    forecasting.issue_forecast(session, svc.model_store, cache, scope, task)
                    counts["issued"] += 1
            except ValidationFailed as exc:  # no recent data for the slot: nothing to publish
                counts["failed"] += 1
                log.info("No forecast published for model %s: %s", row.version, exc.message)
            except Exception:  # noqa: BLE001 - one bad model must not stop the others
                counts["failed"] += 1
                log.exception("Publishing the forecast of model %s failed", row.version)
            session.rollback()  # end the read transaction: no locks held between versions
            report_progress(done / len(version_ids), f"{done} of {len(version_ids)} models")
    return counts
