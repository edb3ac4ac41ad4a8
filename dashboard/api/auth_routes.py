"""Login, refresh, logout and "who am I", for API clients (JSON) and the browser (cookies + CSRF)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlparse

from flask import Blueprint, jsonify, redirect, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_identity,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from dashboard.api.common import current_scope, json_body, public, requires
from dashboard.auth import authenticate, revoke_token
from dashboard.context import db, services
from dashboard.errors import DomainError, Unauthorized, ValidationFailed
from dashboard.schema import User

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
browser = Blueprint("browser_auth", __name__, url_prefix="/auth")

LOGIN_BODY = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
}


def _client() -> str:
    return request.remote_addr or "unknown"


def _tokens(user: User) -> dict:
    claims = {"role": user.role}
    return {
        "access_token": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh_token": create_refresh_token(identity=str(user.id), additional_claims=claims),
        "token_type": "bearer",
        "expires_in": services().settings.access_token_minutes * 60,
    }


def _revoke_current() -> None:
    claims = get_jwt()
    revoke_token(db(), claims["jti"], datetime.fromtimestamp(claims["exp"], UTC).replace(tzinfo=None))


@bp.post("/login")
@public(body=LOGIN_BODY)
def login():
    """Exchange a username and password for an access and a refresh token."""
    body = json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ValidationFailed(
            details=[{"field": "username/password", "message": "both are required strings"}]
        )
    user = authenticate(db(), services().settings, username, password, _client())
    tokens = _tokens(user)
    db().commit()
    return jsonify(tokens)


@bp.post("/refresh")
@public()
def refresh():
    """Exchange a refresh token (Authorization: Bearer <refresh_token>) for a new access token."""
    try:
        verify_jwt_in_request(refresh=True, locations=["headers"])
    except (JWTExtendedException, PyJWTError) as exc:
        raise Unauthorized(f"Send a valid refresh token: {exc}") from None
    user = db().get(User, int(get_jwt_identity()))
    if user is None or not user.is_active:
        raise Unauthorized("The account no longer exists or is disabled")
    token = create_access_token(identity=str(user.id), additional_claims={"role": user.role})
    return jsonify(
        {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": services().settings.access_token_minutes * 60,
        }
    )


@bp.post("/logout")
@requires("auth:me")
def logout():
    """Revoke the access token in the Authorization header (send the refresh token to revoke it too)."""
    if current_scope().api_key_id is not None:
        raise ValidationFailed(
            "API keys are not sessions: an admin revokes them with DELETE /api/v1/api-keys/{id}",
            details=[{"field": "X-API-Key", "message": "logout revokes bearer tokens only"}],
        )
    try:
        verify_jwt_in_request(locations=["headers"], verify_type=False)
    except (JWTExtendedException, PyJWTError) as exc:
        raise Unauthorized(f"Send the token to revoke as 'Authorization: Bearer': {exc}") from None
    _revoke_current()
    db().commit()
    return jsonify({"message": "Token revoked"})


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


# ---- browser: an HTML form posts here; tokens go into HTTP-only cookies -----------------------------


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so the login form cannot be used as an open redirect."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@browser.post("/login")
def browser_login():
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    next_url = _safe_next(request.form.get("next"))
    try:
        user = authenticate(db(), services().settings, username, password, _client())
    except DomainError as exc:
        return redirect(f"/login?error={exc.status}&next={next_url}", code=303)
    tokens = _tokens(user)
    db().commit()
    response = redirect(next_url, code=303)
    set_access_cookies(response, tokens["access_token"])
    set_refresh_cookies(response, tokens["refresh_token"])
    return response


@browser.route("/logout", methods=["GET", "POST"])
def browser_logout():
    response = redirect("/login", code=303)
    try:
        verify_jwt_in_request(optional=True, locations=["cookies"], verify_type=False)
        if get_jwt():
            _revoke_current()
            db().commit()
    except (JWTExtendedException, PyJWTError):
        pass  # an invalid cookie is simply cleared
    unset_jwt_cookies(response)
    return response
