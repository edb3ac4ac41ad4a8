"""Train one forecaster and store it: the job behind POST /aggregator/{target}/train/{product}.

Arguments are plain data (the caller's resolved scope and parameters), so RQ can carry them; the
result is the spec's response body. A failure raises, which RQ retries with back-off.
"""

from __future__ import annotations

import time

from jobs.context import services


def train_model(target: str, product: str, params: dict, scope_fields: dict) -> dict:
    from dashboard import forecasting
    from dashboard.errors import ValidationFailed
    from dashboard.jobqueue import report_progress
    from dashboard.scope import Scope

    svc = services()
    scope = Scope(**{k: frozenset(v) if isinstance(v, list) else v for k, v in scope_fields.items()})
    task = forecasting.resolve_task(scope, target, product, params)
    started = time.perf_counter()
    report_progress(0.05, "loading history")
    with svc.session_factory() as session:
        try:
            report_progress(0.2, "fitting")
            model_id, version, report = forecasting.train(session, svc.store, scope, task)
            forecasting.log_run(session, "train", scope, params | {"target": target, "product": product}, started,
                                "ok", metrics=report.metrics, version=version)  # fmt: skip
            session.commit()
        except ValidationFailed as exc:  # a data problem: permanent, so report it instead of retrying
            session.rollback()
            forecasting.log_run(session, "train", scope, params | {"target": target, "product": product}, started,
                                "failed", error=exc.message[:2000])  # fmt: skip
            session.commit()
            return {"failed": True, "detail": exc.message}
        except Exception as exc:  # transient (database, object store): raise, so the queue retries
            session.rollback()
            forecasting.log_run(session, "train", scope, params | {"target": target, "product": product}, started,
                                "failed", error=str(exc)[:2000])  # fmt: skip
            session.commit()
            raise
    report_progress(1.0, "stored")
    m = report.metrics
    body = {
        "message": "Model trained and saved to MinIO successfully",
        "mse": m["mse"],
        "mae": m["mae"],
        "r2": m["r2"],
    }
    if product == "short-term":
        body["horizon"] = task.cfg.horizon
    body |= {
        "model_version": version,
        "model_id": model_id,
        "mape": m["mape"],
        "coverage": m["coverage"],
        "skill_vs_weekly_naive": m["skill_vs_weekly_naive"],
        "training_seconds": report.seconds,
    }
    return body


def prune_logs() -> dict:
    """Scheduled maintenance: model run logs past 90 days, API access log past its retention."""
    from dashboard import forecasting
    from dashboard.api import prune_access_log

    svc = services()
    with svc.session_factory() as session:
        runs = forecasting.prune_run_log(session)
        access = prune_access_log(session, svc.settings.access_log_retention_days)
        session.commit()
    return {"model_runs": runs, "access_log": access}
