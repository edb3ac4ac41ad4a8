"""Login, refresh, logout and "who am I", for API clients (JSON) and the browser (cookies + CSRF)."""

from __future__ import annotations

import hmac
import time
from urllib.parse import quote, urlencode, urlparse

from flask import Blueprint, current_app, jsonify, redirect, request
from flask_jwt_extended import (
    decode_token,
    get_jwt,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from werkzeug.exceptions import MethodNotAllowed

from dashboard.accounts import redeem_reset_link
from dashboard.api.common import current_scope, json_body, public, requires
from dashboard.auth import authenticate, client_key
from dashboard.clock import iso_utc
from dashboard.context import db, services
from dashboard.errors import DomainError, Unauthorized, ValidationFailed
from dashboard.policy import BROWSER_ROLES, landing_page
from dashboard.sessions import (
    LOGIN_FORM_FIELD,
    check_login_form,
    current_session_id,
    end_session,
    issue_tokens,
    mint_access_token,
    revoke_claims,
    user_sessions,
)

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
browser = Blueprint("browser_auth", __name__, url_prefix="/auth")

LOGIN_BODY = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
}


def _client() -> str:
    """The caller's address (the real client's behind TRUSTED_PROXIES proxies, see dashboard/server.py)."""
    return client_key(request.remote_addr)


@bp.post("/login")
@public(body=LOGIN_BODY)
def login():
    """Exchange a username and password for an access and a refresh token (one session)."""
    body = json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ValidationFailed(
            details=[{"field": "username/password", "message": "both are required strings"}]
        )
    user = authenticate(db(), services().settings, username, password, _client())
    tokens = issue_tokens(db(), user, services().settings)
    db().commit()
    return jsonify(tokens)


@bp.post("/refresh")
@public()
def refresh():
    """Exchange a refresh token (Authorization: Bearer <refresh_token>) for a new access token of the same
    session; refused once the session is logged out, or the user's password, role or activation changed."""
    try:
        verify_jwt_in_request(refresh=True, locations=["headers"])
    except (JWTExtendedException, PyJWTError) as exc:
        raise Unauthorized(f"Send a valid refresh token: {exc}") from None
    claims = get_jwt()  # the token loader has checked the session, the generation and the account
    settings = services().settings
    token = mint_access_token(claims["sub"], {"sexp": claims["exp"]} | claims, settings)
    return jsonify(
        {"access_token": token, "token_type": "bearer", "expires_in": settings.access_token_minutes * 60}
    )


@bp.post("/logout")
@requires("auth:me")
def logout():
    """End the session of the token in the Authorization header: its access and its refresh token.

    Optionally send `{"refresh_token": "..."}` to revoke that refresh token too (e.g. one issued before
    sessions were tracked)."""
    if current_scope().api_key_id is not None:
        raise ValidationFailed(
            "API keys are not sessions: an admin revokes them with DELETE /api/v1/api-keys/{id}",
            details=[{"field": "X-API-Key", "message": "logout revokes bearer tokens only"}],
        )
    try:
        verify_jwt_in_request(locations=["headers"], verify_type=False)
    except (JWTExtendedException, PyJWTError) as exc:
        raise Unauthorized(f"Send the token to revoke as 'Authorization: Bearer': {exc}") from None
    claims = get_jwt()
    also = json_body().get("refresh_token") if request.get_data(cache=True) else None
    if also is not None:
        if not isinstance(also, str):
            raise ValidationFailed(details=[{"field": "refresh_token", "message": "must be a string"}])
        try:
            other = decode_token(also, allow_expired=True)
        except (JWTExtendedException, PyJWTError):
            raise ValidationFailed(
                details=[{"field": "refresh_token", "message": "not a refresh token of this service"}]
            ) from None
        if other.get("type") != "refresh" or other.get("sub") != claims["sub"]:
            raise ValidationFailed(
                details=[{"field": "refresh_token", "message": "not a refresh token of this account"}]
            )
        revoke_claims(db(), other)
    revoke_claims(db(), claims)
    db().commit()
    return jsonify({"message": "Session ended: its access and refresh tokens are revoked"})


@bp.get("/me")
@requires("auth:me")
def me():
    """Who the token belongs to, its role and the houses it may see."""
    scope = current_scope()
    return jsonify(
        {
            "username": scope.username,
            "role": scope.role,
            "house_ids": None if scope.house_ids is None else sorted(scope.house_ids),
        }
    )


def _session_user() -> int:
    """The caller's user id (sessions:manage is a login's: `requires` refuses API keys it, policy.LOGINS_ONLY)."""
    return current_scope().user_id


@bp.get("/sessions")
@requires("sessions:manage")
def sessions():
    """The caller's own sessions that still work (one per login, kept across refreshes), the most recently
    active first; `current` marks the one of the token sent. Times are UTC; `last_active_at` is at most a
    minute behind, `network` the address with its host part dropped."""
    mine = current_session_id()
    rows = user_sessions(db(), _session_user())
    return jsonify(
        {
            "sessions": [
                {
                    "id": row.id,
                    "device": row.device,
                    "network": row.network,
                    "signed_in_at": iso_utc(row.created_at),
                    "last_active_at": iso_utc(row.last_seen_at),
                    "expires_at": iso_utc(row.expires_at),
                    "current": row.id == mine,
                }
                for row in rows
            ]
        }
    )


@bp.delete("/sessions/<session_id>")
@requires("sessions:manage")
def end_one_session(session_id: str):
    """End one of the caller's sessions: its access and refresh tokens are refused from their next request
    on (the session of the token sent, too: that is a logout). 404 for an id that is not a working session
    of the caller's."""
    end_session(db(), _session_user(), session_id)
    db().commit()
    return jsonify({"message": "Session ended: its access and refresh tokens are revoked"})


# ---- browser: an HTML form posts here; tokens go into HTTP-only cookies -----------------------------


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths (with their query string: a shared link keeps its state), so the
    login form cannot be used as an open redirect. A backslash or a control character is refused too:
    browsers read "/\\evil.example" and "/<tab>/evil.example" as "//evil.example"."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    return target


def _login_again(error: str, next_url: str):
    """Back to the form with the reason; `next` encoded, so its own query string survives."""
    return redirect(f"/login?error={quote(error)}&next={quote(next_url, safe='/')}", code=303)


def _cookie_max_age(token: str) -> int:
    """A cookie lives exactly as long as the token in it."""
    return max(1, int(decode_token(token)["exp"] - time.time()))


@browser.post("/login")
def browser_login():
    """The login form: a cross-site post (foreign Origin, or no nonce cookie and form token) is refused."""
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    next_url = _safe_next(request.form.get("next"))
    try:
        check_login_form()
        user = authenticate(db(), services().settings, username, password, _client())
    except DomainError as exc:
        return _login_again(str(exc.status), next_url)
    if user.role not in BROWSER_ROLES:
        # a third-party account has no page to open: say so instead of logging it in to be bounced back
        db().commit()  # the successful check's cleared failures
        return _login_again("api-only", next_url)
    tokens = issue_tokens(db(), user, services().settings)
    db().commit()
    # the site's root, asked for or by default, is the role's landing page (consumers: their household)
    response = redirect(landing_page(user.role) if next_url == "/" else next_url, code=303)
    set_access_cookies(response, tokens["access_token"], max_age=_cookie_max_age(tokens["access_token"]))
    set_refresh_cookies(response, tokens["refresh_token"], max_age=_cookie_max_age(tokens["refresh_token"]))
    return response


@browser.get("/logout")
def browser_logout_get():
    """Logout is POST only (a link or an image on any page must not log anyone out): 405, not Dash's page."""
    raise MethodNotAllowed(
        valid_methods=["POST"], description="Log out with the Log out button (a POST form)."
    )


@browser.post("/logout")
def browser_logout():
    """The navbar's logout form: revokes the session of both cookies (access and refresh) and clears them.

    The form carries the refresh CSRF cookie's value (`csrf_token`), so another site cannot log a user out.
    """
    response = redirect("/login", code=303)
    found = []
    for name in ("JWT_ACCESS_COOKIE_NAME", "JWT_REFRESH_COOKIE_NAME"):
        value = request.cookies.get(current_app.config[name])
        if value:
            try:
                found.append(decode_token(value, allow_expired=True))
            except (JWTExtendedException, PyJWTError):
                pass  # an invalid cookie is simply cleared
    if found:
        sent = request.form.get(LOGIN_FORM_FIELD, "")
        if not sent or not any(hmac.compare_digest(str(c.get("csrf", "")), sent) for c in found):
            return redirect("/?error=logout-csrf", code=303)
        for claims in found:
            revoke_claims(db(), claims)
        db().commit()
    unset_jwt_cookies(response)
    return response


@browser.post("/reset")
def browser_reset():
    """The password reset page's form (pages/reset.py): CSRF-checked like the login form, throttled like
    logins; sets the link's user's password once, which ends every session of that user. Back to the page
    with an error code (it explains a bad link itself), or with `done`."""
    token = request.form.get("token", "")[:200]
    try:
        check_login_form()
        redeem_reset_link(db(), services().settings, token, request.form.get("password"),
                          request.form.get("repeat"), _client())  # fmt: skip
        db().commit()
    except DomainError as exc:
        db().rollback()
        code = "password" if isinstance(exc, ValidationFailed) and exc.details else str(exc.status)
        return redirect(f"/reset?{urlencode({'token': token, 'error': code})}", code=303)
    return redirect("/reset?done=1", code=303)
