"""A user's own account: changing one's password, ending one's other sessions, and the one-time password
reset links an admin issues (dashboard/schema_features.py PasswordReset).

Every password goes through dashboard/auth.py `set_password` (the rule of the user's role: 12 characters
for admins, 8 for the others; Argon2id), and every change ends all of the user's sessions through the
token generation (dashboard/sessions.py). The faces decide what happens to the caller's own browser.

Guessing is throttled like logins (dashboard/auth.py check_login_allowed, the LoginFailure table): a wrong
current password counts against (the username, the client); a wrong, used or expired reset token against
(RESET_KEY, the client), so one client cannot try tokens without end.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from dashboard.alert_delivery import DeliveryFailed, send_email
from dashboard.auth import check_login_allowed, set_password, verify_password
from dashboard.clock import utcnow
from dashboard.config import Settings
from dashboard.errors import NotFound, RateLimited, Unauthorized, ValidationFailed
from dashboard.schema import LoginFailure, User
from dashboard.schema_features import PasswordReset
from dashboard.sessions import revoke_all_sessions

RESET_KEY = "(password reset link)"  # the LoginFailure username of wrong reset tokens (no username has "(")
RESET_PATH = "/reset"


def _failed(session: Session, username: str, client: str) -> None:
    """Count a failed attempt; committed at once, since the request that failed writes nothing else."""
    session.rollback()
    session.add(LoginFailure(username=username[:80], client=client[:64], at=utcnow()))
    session.commit()


def _throttle(session: Session, settings: Settings, username: str, client: str, what: str) -> None:
    try:
        check_login_allowed(session, settings, username, client)
    except RateLimited as exc:
        raise RateLimited(
            exc.retry_after_s,
            f"Too many wrong {what}; try again in {settings.login_window_minutes} minutes",
        ) from None


# ---- one's own password and sessions -------------------------------------------------------------------


def active_user(session: Session, user_id: int | None) -> User:
    user = session.get(User, user_id) if user_id is not None else None
    if user is None or not user.is_active:
        raise Unauthorized("Your session has ended; log in again")
    return user


def change_password(
    session: Session, settings: Settings, user_id: int, current, new, repeat, client: str
) -> User:
    """Check the current password (a wrong one counts as a failed login of this user from `client`) and
    the new one (the role's rule; typed twice; not the current one), then store it: every session of the
    user ends (flushed, not committed). Nothing changes on any error."""
    user = active_user(session, user_id)
    _throttle(session, settings, user.username, client, "current passwords")
    current = current if isinstance(current, str) else ""
    if not verify_password(user.password_hash, current):
        _failed(session, user.username, client)
        raise ValidationFailed(
            "The current password is wrong: nothing was changed",
            details=[{"field": "current password", "message": "type the password you logged in with"}],
        )
    if not isinstance(new, str) or new != repeat:
        raise ValidationFailed(details=[{"field": "new password", "message": "the two entries differ"}])
    if new == current:
        raise ValidationFailed(
            details=[{"field": "new password", "message": "must differ from the current one"}]
        )
    set_password(user, new)  # the role's rule (ValidationFailed); the flush hook bumps token_generation
    session.execute(delete(LoginFailure).where(LoginFailure.username == user.username[:80]))
    session.flush()
    return user


def end_all_sessions(session: Session, user_id: int) -> User:
    """End every session of the user, this one included (the face re-issues its own; flushed)."""
    user = active_user(session, user_id)
    revoke_all_sessions(user)
    session.flush()
    return user


# ---- reset links -----------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    # 256 random bits: a fast hash is safe (nothing to guess from), as for API keys
    return hashlib.sha256(token.encode()).hexdigest()


def issue_reset_link(
    session: Session, settings: Settings, user_id, issued_by: int | None
) -> tuple[User, str, datetime]:
    """A new one-time reset token for an active user (expires after RESET_LINK_TTL_H); the user's earlier
    unused links stop working. Returns the user, the token (never stored: only its hash) and its expiry."""
    user = session.get(User, user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else None
    if user is None:
        raise NotFound("No such user")
    if not user.is_active:
        raise ValidationFailed(
            f"{user.username} is deactivated: reactivate the account first, then issue a reset link",
            details=[{"field": "user", "message": "inactive"}],
        )
    now = utcnow()
    expires_at = now + timedelta(hours=settings.reset_link_ttl_h)
    session.execute(
        delete(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
    )
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            user_id=user.id,
            token_hash=_token_hash(token),
            created_by=issued_by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return user, token, expires_at


def reset_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{RESET_PATH}?token={token}"


def email_reset_link(settings: Settings, user: User, url: str) -> tuple[str | None, str | None]:
    """E-mail the link when SMTP_HOST is set and the user has an address: (sent to, None), or (None, why
    not) when it should have gone, or (None, None) when e-mail is not configured."""
    if not settings.smtp_host:
        return None, None
    if not user.email:
        return None, f"{user.username} has no e-mail address"
    text = (
        f"Hello {user.full_name or user.username},\n\nan administrator of the Aggregator Web App issued a "
        f"password reset link for your account '{user.username}'. Open it to choose a new password:\n\n"
        f"{url}\n\nIt works once, for {settings.reset_link_ttl_h} hours. Setting the password logs out every "
        "session of your account. If you did not ask for this, tell your administrator.\n"
    )
    try:
        send_email(settings, user.email, "Your password reset link", text)
    except DeliveryFailed as exc:
        return None, str(exc)
    return user.email, None


def check_reset_token(session: Session, token) -> PasswordReset:
    """The reset link's row when it can still be used; ValidationFailed saying why not otherwise."""
    row = None
    if isinstance(token, str) and 0 < len(token) <= 200:
        row = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _token_hash(token)))
    if row is None:
        raise ValidationFailed(
            "This reset link is not valid (mistyped, or replaced by a newer link): ask an admin for a new one"
        )
    if row.used_at is not None:
        raise ValidationFailed("This reset link has already been used: ask an admin for a new one")
    if row.expires_at <= utcnow():
        raise ValidationFailed("This reset link has expired: ask an admin for a new one")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise ValidationFailed("This account is deactivated: ask an admin")
    return row


def redeem_reset_link(session: Session, settings: Settings, token, new, repeat, client: str) -> User:
    """Set the password of the link's user and use the link up (once, even under concurrent posts); every
    session of the user ends (flushed, not committed). A bad link counts against `client`; a password
    that breaks the rule leaves the link usable."""
    _throttle(session, settings, RESET_KEY, client, "reset links")
    try:
        row = check_reset_token(session, token)
    except ValidationFailed:
        _failed(session, RESET_KEY, client)
        raise
    user = session.get(User, row.user_id)
    if not isinstance(new, str) or new != repeat:
        raise ValidationFailed(details=[{"field": "new password", "message": "the two entries differ"}])
    set_password(user, new)
    used = session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == row.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:  # another post used it between our check and now
        session.rollback()
        raise ValidationFailed("This reset link has already been used: ask an admin for a new one")
    session.flush()
    return user
