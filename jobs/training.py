"""Train one forecaster and store it: the job behind POST /aggregator/{target}/train/{product}.

Arguments are plain data (the caller's resolved scope and parameters), so RQ can carry them; the
result is the spec's response body, or `{"failed": True, "detail"}`.

Two kinds of failure, two remedies (spec 1.3):
- an attempt that raises (database or object store briefly away) is tried again inside the job after a
  back-off of 5 s, then 15 s; a data problem (no readings, too little history) is final at once;
- a job whose worker dies (SIGKILL, a lost machine) cannot retry itself: RQ requeues it, without delay,
  when its heartbeat expires (jobs/worker.py bounds that to about 30 s), up to ABANDONED_RETRIES times.
The back-off lives here rather than in RQ's scheduled retries because RQ's scheduler lock outlives a
killed worker by a minute, which would stretch the failover bound.
"""

from __future__ import annotations

import logging
import resource
import time

from dashboard import forecasting
from dashboard.clock import iso_utc
from dashboard.context import worker_services
from dashboard.errors import ValidationFailed
from dashboard.jobqueue import report_progress
from dashboard.model_store import Slot
from dashboard.places import default_place
from dashboard.scope import Scope
from models import progress

BACKOFF_S = (5, 15)  # waits before the second and third attempt after a transient failure
ABANDONED_RETRIES = 2  # requeues of a job whose worker died


TRAIN_FUNC = "jobs.training.train_model"  # job status records it: the UI shows only these jobs


def training_key(slot: Slot) -> str:
    """What makes two trainings the same: the slot they store into (target, product, horizon, scope,
    model, strategy). One of them runs at a time (`enqueue_training_once`)."""
    parts = (
        slot.target,
        slot.product,
        slot.horizon,
        slot.scope_kind,
        slot.scope_id,
        slot.model,
        slot.strategy,
    )
    return "train:" + ":".join("-" if part is None else str(part) for part in parts)


def enqueue_training_once(
    queue, slot: Slot, target: str, product: str, params: dict, scope
) -> tuple[str, bool]:
    """Queue `train_model` on the training queue (requeued at once, without back-off, when its worker
    dies) unless a training of the same slot is queued or running: (that job's id, False) then, else
    (the new job's id, True)."""
    return queue.enqueue_once(training_key(slot), TRAIN_FUNC, target, product, params, scope.to_fields(),
                              queue="training", retries=ABANDONED_RETRIES)  # fmt: skip


def enqueue_training(queue, target: str, product: str, params: dict, scope) -> str:
    """Queue a training the one way the API, the page and the tests do; its job id (an unfinished
    training of the same slot's, if there is one)."""
    slot = forecasting.resolve_task(scope, target, product, params).slot
    return enqueue_training_once(queue, slot, target, product, params, scope)[0]


def train_model(target: str, product: str, params: dict, scope_fields: dict) -> dict:

    scope = Scope.from_fields(scope_fields)
    # the environment's place; forecasting.train puts the house's or community's own over it
    task = forecasting.resolve_task(scope, target, product, params, default_place(worker_services().settings))
    logged = params | {"target": target, "product": product}
    for attempt, backoff in enumerate((*BACKOFF_S, None), start=1):
        started = time.perf_counter()
        report_progress(0.05, "loading history" if attempt == 1 else f"loading history (attempt {attempt})")
        try:
            return _train_once(task, scope, logged, started, product)
        except ValidationFailed as exc:  # a data problem: final, so say it instead of retrying
            _log_failure(scope, logged, started, exc.message)
            return {"failed": True, "detail": exc.message}
        except Exception as exc:  # noqa: BLE001 - transient (database, object store): back off, try again
            detail = f"{exc.__class__.__name__}: {exc}"[:500]
            _log_failure(scope, logged, started, detail)
            if backoff is None:
                return {"failed": True, "detail": f"{detail} (after {attempt} attempts)"}
            report_progress(
                0.0, f"attempt {attempt} failed ({exc.__class__.__name__}); retrying in {backoff} s"
            )
            time.sleep(backoff)
    raise AssertionError("unreachable")  # pragma: no cover


def _train_once(task, scope, logged: dict, started: float, product: str) -> dict:

    svc = worker_services()
    with svc.session_factory() as session:
        task, note = forecasting.training_task(session, scope, task)  # data that ended long ago: its window
        report_progress(0.1, "fitting")
        # the fit reports from inside (per lead, optimiser iteration, candidate, calibration step)
        with progress.reporting(
            lambda share, message: report_progress(0.1 + 0.8 * share, message or "fitting")
        ):
            model_id, version, report = forecasting.train(session, svc.model_store, scope, task)
        forecasting.log_run(session, "train", scope, logged, started, "ok", metrics=report.metrics,
                            version=version)  # fmt: skip
        session.commit()
    report_progress(0.92, "stored; forecasting with the new model")
    _issue_first_forecast(svc, scope, task)
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
    # production is zero at night, where a percentage error means nothing: normalised MAE instead
    # (MAE / installed capacity where the PV metadata gives it: models/base.py `without_mape`)
    accuracy = (
        {"nmae": m["nmae"], "nmae_basis": m.get("nmae_basis", "mean")}
        if task.cfg.target == "production"
        else {"mape": m["mape"]}
    )
    body |= {
        "model_version": version,
        "model_id": model_id,
        "model": m.get("chosen", task.cfg.model),
        **accuracy,
        "cv_rmse": m.get("cv_rmse"),  # single homes: judged against the 7-day same-hour mean
        "coverage": m["coverage"],
        "skill_vs_weekly_naive": m["skill_vs_weekly_naive"],
        "skill_vs_mean_7d": m.get("skill_vs_mean_7d"),
        "served_baseline": m.get("served_baseline", False),
        "weather": m.get("weather", "none"),
        "candidates": m.get("candidates", {}),
        "training_seconds": report.seconds,
        # peak resident memory of the process that trained (the RQ work horse; the app when embedded)
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if note:  # trained up to the latest reading, not up to now: say from which origin
        body["as_of"] = iso_utc(task.origin())
    notes = [text for text in (note, m.get("note")) if text]  # the window's, and a served baseline's
    if notes:
        body["note"] = "; ".join(notes)
    return body


def _issue_first_forecast(svc, scope, task) -> None:
    """Issue the new version's forecast from the training origin into the forecast cache, so the page that
    asked for the training shows it without waiting for a forecast job. Best effort: the model is stored
    either way, and a forecast request computes it if this did not."""

    try:
        with svc.session_factory() as session:
            forecasting.issue_forecast(session, svc.model_store, svc.cache, scope, task)
    except Exception as exc:  # noqa: BLE001
        logging.getLogger(__name__).info("No first forecast for the new model: %s", exc)


def _log_failure(scope, logged: dict, started: float, error: str) -> None:
    """Record a failed attempt; the log must not turn one failure into another (database still away)."""

    try:
        with worker_services().session_factory() as session:
            forecasting.log_run(session, "train", scope, logged, started, "failed", error=error[:2000])
            session.commit()
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).exception("Could not log a failed training attempt")
