"""Forecast from a slot's active model: the job behind POST /aggregator/{target}/forecast/{product}.

It runs on the `forecast` queue, served by a non-forking `ForecastWorker` (jobs/worker.py) whose model
store keeps loaded models cached, so a warm forecast is a database read and a prediction. The result
is plain data: `{"version", "forecast": [rows]}` on success, else `{"failed": kind, "detail"}` where
kind is "input" (the caller's 422) or "model" (the spec's 500). Failures are answers, not exceptions:
the web request is waiting, and a retry later would answer nobody.
"""

from __future__ import annotations

import logging
import time

from jobs.context import scope_from_fields, services

log = logging.getLogger(__name__)


def forecast_rows(frame) -> list[dict]:
    """The spec's rows: UTC interval start, kWh, and the band around it."""
    return [
        {
            "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
            "forecasted_energy_usage": round(float(r.point), 6),
            "lower": round(float(r.lower), 6),
            "upper": round(float(r.upper), 6),
        }
        for ts, r in frame.iterrows()
    ]


def forecast(target: str, product: str, params: dict, scope_fields: dict) -> dict:
    from dashboard import forecasting
    from dashboard.errors import DomainError, ValidationFailed
    from dashboard.model_store import ModelUnavailable

    svc = services()
    scope = scope_from_fields(scope_fields)
    logged = params | {"target": target, "product": product}
    started = time.perf_counter()
    with svc.session_factory() as session:
        try:
            task = forecasting.resolve_task(scope, target, product, params)
            version, frame = forecasting.forecast(session, svc.store, scope, task)
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
        forecasting.log_run(session, "forecast", scope, logged, started, "ok", version=version)
        session.commit()
    return {"version": version, "forecast": forecast_rows(frame)}
