"""Login sessions: the tokens of a login, their revocation, what ends them, and the login form's CSRF token.

A login opens a session: its access and refresh tokens share a session id (`sid`), carry the session's end
(`sexp`, the refresh token's expiry) and the user's token generation (`gen`). Logout revokes the session id,
so the refresh token dies with the access token even when the client does not send it; a password, role or
activation change bumps the generation (a flush hook, whichever face made the change), which ends every
session of the user. The same hook keeps the last active admin an admin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from flask import current_app, g, request
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session

from dashboard.config import Settings
from dashboard.errors import Conflict, Forbidden, Unauthorized
from dashboard.schema import RevokedToken, User

SESSION_PREFIX = "sid:"


def issue_tokens(user: User, settings: Settings) -> dict:
    """A new session's access and refresh tokens (inside an app context)."""
    sid = uuid.uuid4().hex
    refresh_life = timedelta(days=settings.refresh_token_days)
    session_end = int(time.time() + refresh_life.total_seconds())
    claims = {"role": user.role, "gen": user.token_generation, "sid": sid, "sexp": session_end}
    return {
        "access_token": mint_access_token(str(user.id), claims, settings),
        "refresh_token": create_refresh_token(
            identity=str(user.id), additional_claims=claims, expires_delta=refresh_life
        ),
        "token_type": "bearer",
        "expires_in": settings.access_token_minutes * 60,
    }


def mint_access_token(identity: str, claims: dict, settings: Settings) -> str:
    """An access token for the session in `claims`, never outliving the session (`sexp`)."""
    lifetime = settings.access_token_minutes * 60
    if "sexp" in claims:
        lifetime = min(lifetime, int(claims["sexp"] - time.time()))
        if lifetime <= 0:
            raise Unauthorized("The session has ended; log in again")
    keep = {k: claims[k] for k in ("role", "gen", "sid", "sexp") if k in claims}
    return create_access_token(
        identity=identity, additional_claims=keep, expires_delta=timedelta(seconds=lifetime)
    )


def _expiry(claims: dict) -> datetime:
    return datetime.fromtimestamp(claims["exp"], UTC).replace(tzinfo=None)


def revoke_token(session: Session, jti: str, expires_at: datetime) -> None:
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, expires_at=expires_at))


def revoke_claims(session: Session, claims: dict) -> None:
    """Revoke a token and, when it belongs to a session, the whole session (its refresh token too)."""
    revoke_token(session, claims["jti"], _expiry(claims))
    if claims.get("sid"):
        # kept a minute past the session's end: the refresh token's own exp may be a second later than sexp
        end = max(claims.get("sexp") or 0, claims["exp"]) + 60
        revoke_token(
            session, SESSION_PREFIX + claims["sid"], datetime.fromtimestamp(end, UTC).replace(tzinfo=None)
        )


def token_is_revoked(session: Session, claims: dict) -> bool:
    """True for a revoked token or session, a token of an older generation, or a gone or disabled user.

    One query (every request pays it): the user's row, loaded into the session, so the scope that follows
    (dashboard/auth.py resolve_scope) finds the user without another one."""
    ids = [claims["jti"]] + ([SESSION_PREFIX + claims["sid"]] if claims.get("sid") else [])
    try:
        user_id = int(claims["sub"])
    except (KeyError, TypeError, ValueError):
        return True
    revoked = select(func.count()).where(RevokedToken.jti.in_(ids)).scalar_subquery()
    row = session.execute(select(User, revoked).where(User.id == user_id)).first()
    if row is None:
        return True
    user, revocations = row
    session.info["token_user"] = user  # a strong reference: the identity map alone holds objects weakly
    return bool(revocations) or not user.is_active or user.token_generation != claims.get("gen", 0)


def revoke_all_sessions(user: User) -> None:
    """End every token of the user (flushed with the user's row)."""
    user.token_generation = (user.token_generation or 0) + 1


def _before(obj: User, name: str):
    """The attribute's value before this flush's change."""
    old = inspect(obj).attrs[name].history.deleted
    return old[0] if old else getattr(obj, name)


@event.listens_for(Session, "before_flush")
def _guard_user_changes(session: Session, _context, _instances) -> None:
    """On every write of users, wherever it comes from (API, Admin page, CLI):

    - a changed password, role or activation ends all of that user's sessions (`token_generation`);
    - the last active admin is never demoted, deactivated or deleted (Conflict, 409).
    """
    leaving: set[int] = set()  # active admins this flush demotes, deactivates or deletes
    for obj in session.dirty:
        if not isinstance(obj, User):
            continue
        attrs = inspect(obj).attrs
        if not any(attrs[name].history.has_changes() for name in ("password_hash", "role", "is_active")):
            continue
        if not attrs.token_generation.history.has_changes():
            revoke_all_sessions(obj)
        was_admin = _before(obj, "role") == "admin" and _before(obj, "is_active")
        if was_admin and (obj.role != "admin" or not obj.is_active):
            leaving.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, User) and obj.role == "admin" and obj.is_active:
            leaving.add(obj.id)
    if not leaving:
        return
    with session.no_autoflush:
        # FOR UPDATE: two admins demoting each other at once wait for one another, so one of them is refused
        remaining = session.scalars(
            select(User.id).where(User.role == "admin", User.is_active.is_(True)).with_for_update()
        ).all()
    if not set(remaining) - leaving:
        raise Conflict(
            "This is the last active admin: make another user an admin first, then demote, deactivate "
            "or delete this one"
        )


# ---- the login form's CSRF protection ------------------------------------------------------------------

LOGIN_NONCE_COOKIE = "login_nonce"
LOGIN_FORM_FIELD = "csrf_token"


def _form_token(nonce: str) -> str:
    return hmac.new(current_app.config["LOGIN_FORM_KEY"], nonce.encode(), hashlib.sha256).hexdigest()


def login_form_token() -> str:
    """The value of the login form's hidden `csrf_token`: an HMAC of this browser's `login_nonce` cookie
    (HttpOnly, SameSite=Strict; set with this response when the browser has none yet)."""
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or g.get("new_login_nonce")
    if not nonce:
        nonce = g.new_login_nonce = secrets.token_urlsafe(24)
    return _form_token(nonce)


def check_login_form() -> None:
    """Refuse (Forbidden) a login form post from another site: its Origin (or Referer) must be this host,
    and its `csrf_token` must match this browser's nonce cookie, which a cross-site post does not carry."""
    for header in ("Origin", "Referer"):
        value = request.headers.get(header)
        if value is not None:
            if urlparse(value).netloc != request.host:
                raise Forbidden(f"Login form posted from another site ({header} {value[:100]})")
            break
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE, "")
    sent = request.form.get(LOGIN_FORM_FIELD, "")
    if not nonce or not sent or not hmac.compare_digest(_form_token(nonce), sent):
        raise Forbidden("The login form has expired or was not sent from this site; reload it and log in")
