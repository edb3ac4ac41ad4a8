"""The spec's endpoints (section 1.4.1), answering exactly its bodies: POST /aggregator/{target}/train/{product}
and POST /aggregator/{target}/forecast/{product}, through the request facade in jobs/requests.py.

A train request waits up to TRAIN_WAIT_S for the job and answers the spec body; `?async=true` answers 202
with a job id at once.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from dashboard.api.common import current_scope, requires
from dashboard.api.openapi import responds
from dashboard.context import db, services
from dashboard.errors import ForecastFailed, QueueUnavailable, ValidationFailed
from dashboard.privacy import check_forecast_scope
from jobs import requests

bp = Blueprint("aggregator", __name__)
PARAMS_DOC = {
    "horizon": "short-term only: steps of 15 minutes, 1-20",
    "model": "auto (default: the best candidate on the hold-out) | xgboost | ridge | sarima | mstl | seasonal_naive",
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


def _check_scope(target: str, product: str, params: dict) -> None:
    """The house or community named exists (a deleted house answers 404), and a third party's scope has at
    least MIN_AGGREGATE_HOUSES houses (dashboard/privacy.py)."""
    scope = current_scope()
    slot = requests.validate(scope, target, product, params).slot
    check_forecast_scope(
        db(), scope, services().settings.min_aggregate_houses, slot.scope_kind, slot.scope_id
    )


def spec_error(status: int, error: str, detail: str | None = None, training: dict | None = None):
    body = {"error": error}
    if detail:
        body["detail"] = detail
    if training:  # no model yet, its training under way: the job, its status and progress
        body["training"] = training
    return jsonify(body), status


def _job_accepted(job_id: str, status: str = "queued"):
    return jsonify({"job_id": job_id, "status": status, "status_url": f"/api/v1/jobs/{job_id}"}), 202


@responds(200, 202)  # 202: still running after TRAIN_WAIT_S, or ?async=true
@requires("forecast:train", query=PARAMS_DOC)
def train(target: str, product: str):
    """Train a forecaster on the scope's history and store it (encrypted) as the active version."""
    params, svc = _params(), services()
    _check_scope(target, product, params)
    try:
        job_id = requests.start_training(svc, current_scope(), target, product, params)
    except QueueUnavailable as exc:  # say so in the spec's body
        return spec_error(500, "Training failed", exc.detail)
    if str(params.get("async", "")).lower() in ("1", "true", "yes"):
        return _job_accepted(job_id)
    status = requests.training_status(svc, job_id, svc.settings.train_wait_s)
    if status.status == "finished" and not status.result.get("failed"):
        return jsonify(status.result)
    if status.status == "finished":
        return spec_error(500, "Training failed", status.result.get("detail"))
    if status.status == "failed":
        detail = (status.error or "").strip().splitlines()[-1:] or [""]
        return spec_error(500, "Training failed", detail[0][:500])
    return _job_accepted(job_id, status.status)


@requires("forecast:read", query=PARAMS_DOC)
def forecast(target: str, product: str):
    """Forecast with the active model of the slot (history blue, forecast red on the Forecasts page)."""
    params = _params()
    _check_scope(target, product, params)
    try:
        result = requests.run_forecast(services(), db(), current_scope(), target, product, params)
    except (ForecastFailed, QueueUnavailable) as exc:  # the spec's body; ValidationFailed answers 422
        return spec_error(500, "Model missing or forecast failed", exc.detail, getattr(exc, "training", None))
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
