"""Retention (spec 1.7: logs are rotated): the API access log, the model run log, expired revoked
tokens, the rows of login sessions that ended or expired, failed logins (client addresses are personal
data: kept a day, far past the throttle's window), and with RAW_RETENTION_DAYS the raw readings past that
age (their rollups stay: docs/privacy.md).
Run hourly by the embedded app, daily by one training worker, or `python -m dashboard prune-logs`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from dashboard.clock import utcnow
from dashboard.schema import ApiAccessLog, LoginFailure, Measurement, ModelRun, RevokedToken
from dashboard.sessions import prune_sessions

RUN_LOG_RETENTION_DAYS = 90  # spec 1.7
LOGIN_FAILURE_RETENTION = timedelta(days=1)  # the throttle reads the last LOGIN_WINDOW_MINUTES (15)


def prune_access_log(session: Session, retention_days: int) -> int:
    cutoff = utcnow() - timedelta(days=retention_days)
    return session.execute(delete(ApiAccessLog).where(ApiAccessLog.at < cutoff)).rowcount


def prune_run_log(session: Session, retention_days: int = RUN_LOG_RETENTION_DAYS) -> int:
    cutoff = utcnow() - timedelta(days=retention_days)
    return session.execute(delete(ModelRun).where(ModelRun.at < cutoff)).rowcount


def prune_revoked_tokens(session: Session) -> int:
    """Revocations of tokens that have expired anyway."""
    return session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow())).rowcount


def prune_login_failures(session: Session, keep: timedelta = LOGIN_FAILURE_RETENTION) -> int:
    """Failed logins (username and client address) older than `keep`: the throttle no longer reads them."""
    return session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - keep)).rowcount


def prune_raw_readings(session: Session, retention_days: int | None) -> int:
    """Raw readings older than `retention_days` (None: kept for ever). The rollups, which every chart,
    export and forecast reads, keep their sums; only what needs single readings (voltage events,
    anomalies, raw downloads, a correction's voltage extremes) no longer reaches that far back."""
    if retention_days is None:
        return 0
    cutoff = utcnow() - timedelta(days=retention_days)
    return session.execute(delete(Measurement).where(Measurement.ts < cutoff)).rowcount


def prune_logs(
    session: Session, access_log_retention_days: int, raw_retention_days: int | None = None
) -> dict[str, int]:
    """Every retention rule, in the caller's transaction; the rows deleted per log."""
    return {
        "access_log": prune_access_log(session, access_log_retention_days),
        "model_runs": prune_run_log(session),
        "revoked_tokens": prune_revoked_tokens(session),
        "sessions": prune_sessions(session),
        "login_failures": prune_login_failures(session),
        "raw_readings": prune_raw_readings(session, raw_retention_days),
    }
