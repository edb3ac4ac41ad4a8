"""Retention (spec 1.7: logs are rotated): the API access log, the model run log and expired revoked
tokens. Run hourly by the embedded app, daily by one training worker, or `python -m dashboard prune-logs`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from dashboard.clock import utcnow
from dashboard.schema import ApiAccessLog, ModelRun, RevokedToken

RUN_LOG_RETENTION_DAYS = 90  # spec 1.7


def prune_access_log(session: Session, retention_days: int) -> int:
    cutoff = utcnow() - timedelta(days=retention_days)
    return session.execute(delete(ApiAccessLog).where(ApiAccessLog.at < cutoff)).rowcount


def prune_run_log(session: Session, retention_days: int = RUN_LOG_RETENTION_DAYS) -> int:
    cutoff = utcnow() - timedelta(days=retention_days)
    return session.execute(delete(ModelRun).where(ModelRun.at < cutoff)).rowcount


def prune_revoked_tokens(session: Session) -> int:
    """Revocations of tokens that have expired anyway."""
    return session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow())).rowcount


def prune_logs(session: Session, access_log_retention_days: int) -> dict[str, int]:
    """Every retention rule, in the caller's transaction; the rows deleted per log."""
    return {
        "access_log": prune_access_log(session, access_log_retention_days),
        "model_runs": prune_run_log(session),
        "revoked_tokens": prune_revoked_tokens(session),
    }
