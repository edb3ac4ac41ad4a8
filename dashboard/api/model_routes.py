"""Model versions (list, activate for rollback) and background job status."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify
from sqlalchemy import select

from dashboard.api.common import requires
from dashboard.clock import iso_utc
from dashboard.context import db, services
from dashboard.errors import NotFound
from dashboard.jobqueue import JobNotFound
from dashboard.schema import ModelVersion

bp = Blueprint("models", __name__)


@bp.get("/api/v1/jobs/<job_id>")
@requires("jobs:read")
def job_status(job_id: str):
    """Status, progress and result of a background job."""
    try:
        status = services().job_queue.status(job_id)
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
    row = services().model_store.activate(db(), model_id)
    db().commit()
    return jsonify(_version_json(row))
