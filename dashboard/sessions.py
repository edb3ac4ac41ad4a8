"""Login sessions: the tokens of a login, their revocation, what ends them, and the login form's CSRF token.

A login opens a session: its access and refresh tokens share a session id (`sid`), carry the session's end
(`sexp`, the refresh token's expiry) and the user's token generation (`gen`). Logout revokes the session id,
so the refresh token dies with the access token even when the client does not send it; a password, role or
activation change bumps the generation (a flush hook, whichever face made the change), which ends every
session of the user. The same hook keeps the last active admin an admin.

Each session also has a row (`UserSession`, keyed by its `sid`, so it survives refreshes): the device and
network it signed in from, when, and its last activity, so its user sees it and can end it (`end_session`
revokes its `sid`: every token of it is refused at its next request). The last activity is written at most
once a minute per session (`touch_session`); the row goes when the session ends or expires.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from flask import current_app, g, has_request_context, request
from flask_jwt_extended import create_access_token, create_refresh_token, get_jwt
from sqlalchemy import delete, event, exists, func, inspect, literal, or_, select, update
from sqlalchemy.orm import Session

from dashboard.clients import describe_user_agent, truncate_address
from dashboard.clock import utcnow
from dashboard.config import Settings
from dashboard.errors import Conflict, Forbidden, NotFound, Unauthorized
from dashboard.schema import RevokedToken, User
from dashboard.schema_features import UserSession

SESSION_PREFIX = "sid:"


def issue_tokens(session: Session, user: User, settings: Settings) -> dict:
    """A new session's access and refresh tokens (inside an app context), and its row (flushed with the
    caller's transaction: the device and network of the request)."""
    sid = uuid.uuid4().hex
    refresh_life = timedelta(days=settings.refresh_token_days)
    session_end = int(time.time() + refresh_life.total_seconds())
    claims = {"role": user.role, "gen": user.token_generation, "sid": sid, "sexp": session_end}
    session.add(_session_row(sid, user.id, user.token_generation or 0, utcnow(), _at(session_end)))
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


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


def _expiry(claims: dict) -> datetime:
    return _at(claims["exp"])


def revoke_token(session: Session, jti: str, expires_at: datetime) -> None:
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, expires_at=expires_at))


def revoke_claims(session: Session, claims: dict) -> None:
    """Revoke a token and, when it belongs to a session, the whole session (its refresh token too)."""
    revoke_token(session, claims["jti"], _expiry(claims))
    if claims.get("sid"):
        # kept a minute past the session's end: the refresh token's own exp may be a second later than sexp
        end = max(claims.get("sexp") or 0, claims["exp"]) + 60
        revoke_token(session, SESSION_PREFIX + claims["sid"], _at(end))
        session.execute(delete(UserSession).where(UserSession.id == claims["sid"]))


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


# ---- the sessions' rows: what a user sees of their sessions ---------------------------------------------

TOUCH_EVERY = timedelta(minutes=1)  # the last activity is written at most this often per session
_TOUCHED_MAX = 10_000
_touched: OrderedDict[str, float] = OrderedDict()  # sid -> monotonic time this process last touched it


def _session_row(sid: str, user_id: int, generation: int, created_at: datetime, end: datetime) -> UserSession:
    """A session's row, its device and network from the current request (none outside one)."""
    agent = request.headers.get("User-Agent") if has_request_context() else None
    address = request.remote_addr if has_request_context() else None
    return UserSession(
        id=sid, user_id=user_id, generation=generation, device=describe_user_agent(agent),
        network=truncate_address(address), created_at=created_at, last_seen_at=utcnow(), expires_at=end,
    )  # fmt: skip


def touch_session(session: Session, claims: dict, refresh_days: int) -> None:
    """Note the session's activity for a token that passed the revocation check: a write at most once a
    minute per session (skipped in this process within the minute, and by the UPDATE's condition across
    processes). A session opened before sessions had rows gets its row now (signed in: its refresh
    token's end minus REFRESH_TOKEN_DAYS). Commits only when it wrote."""
    sid = claims.get("sid")
    if not isinstance(sid, str) or not sid:
        return
    clock = time.monotonic()
    last = _touched.get(sid)
    if last is not None and clock - last < TOUCH_EVERY.total_seconds():
        return
    _touched[sid] = clock
    _touched.move_to_end(sid)
    while len(_touched) > _TOUCHED_MAX:
        _touched.popitem(last=False)
    now = utcnow()
    stale = UserSession.id == sid, UserSession.last_seen_at < now - TOUCH_EVERY
    if session.execute(update(UserSession).where(*stale).values(last_seen_at=now)).rowcount:
        session.commit()
    elif session.get(UserSession, sid) is None and claims.get("sexp"):
        end = _at(claims["sexp"])
        session.add(_session_row(sid, int(claims["sub"]), claims.get("gen", 0),
                                 min(now, end - timedelta(days=refresh_days)), end))  # fmt: skip
        session.commit()


def forget_touches() -> None:
    """Clear this process's note of recent touches (the next request of each session may write again)."""
    _touched.clear()


def _live():
    """The conditions of a row whose session still works: its user active and of the same generation,
    not expired, its `sid` not revoked (a request racing the session's end may have written its row back)."""
    revoked = exists().where(RevokedToken.jti == literal(SESSION_PREFIX) + UserSession.id)
    return (
        User.id == UserSession.user_id,
        User.is_active.is_(True),
        User.token_generation == UserSession.generation,
        UserSession.expires_at > utcnow(),
        ~revoked,
    )


def user_sessions(session: Session, user_id: int) -> list[UserSession]:
    """The user's sessions that still work, the most recently active first."""
    query = (
        select(UserSession)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.user_id == user_id, *_live())
    )
    return list(session.scalars(query.order_by(UserSession.last_seen_at.desc(), UserSession.id)))


def end_session(session: Session, user_id: int, sid) -> UserSession:
    """End one session of the user: its `sid` is revoked (each of its tokens is refused at its next request)
    and its row deleted (flushed). NotFound for an id that is not a working session of this user, so
    another user's session ids cannot be probed."""
    row = None
    if isinstance(sid, str) and 0 < len(sid) <= 32:
        row = session.scalar(
            select(UserSession)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.id == sid, UserSession.user_id == user_id, *_live())
        )
    if row is None:
        raise NotFound("No such session")
    revoke_token(session, SESSION_PREFIX + row.id, row.expires_at + timedelta(minutes=1))
    session.delete(row)
    session.flush()
    _touched.pop(row.id, None)
    return row


def prune_sessions(session: Session) -> int:
    """Rows of sessions that no longer work: expired, of an older generation, of an inactive user, or
    revoked (maintenance; the faces delete the rows of the sessions they end at once)."""
    dead = (
        select(UserSession.id)
        .join(User, User.id == UserSession.user_id)
        .where(
            or_(
                UserSession.expires_at <= utcnow(),
                User.token_generation != UserSession.generation,
                User.is_active.is_(False),
                exists().where(RevokedToken.jti == literal(SESSION_PREFIX) + UserSession.id),
            )
        )
    )
    return session.execute(
        delete(UserSession).where(UserSession.id.in_(dead)), execution_options={"synchronize_session": False}
    ).rowcount


def current_session_id() -> str | None:
    """The `sid` of the request's verified token (cookie or Authorization header), if it has one."""
    try:
        sid = get_jwt().get("sid")
    except RuntimeError:  # no token was verified in this request
        return None
    return sid if isinstance(sid, str) else None


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
    ended: set[int] = set()  # users whose every session this flush ends
    for obj in session.dirty:
        if not isinstance(obj, User):
            continue
        attrs = inspect(obj).attrs
        if any(attrs[name].history.has_changes() for name in ("password_hash", "role", "is_active")):
            if not attrs.token_generation.history.has_changes():
                revoke_all_sessions(obj)
            was_admin = _before(obj, "role") == "admin" and _before(obj, "is_active")
            if was_admin and (obj.role != "admin" or not obj.is_active):
                leaving.add(obj.id)
        if attrs.token_generation.history.has_changes():
            ended.add(obj.id)
    if ended:  # their rows go with them: the list shows only sessions that still work
        with session.no_autoflush:
            session.execute(
                delete(UserSession).where(UserSession.user_id.in_(ended)),
                execution_options={"synchronize_session": False},
            )
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
