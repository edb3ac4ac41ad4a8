"""Server-side guards for the Dash UI.

Every Dash callback POST is authenticated here before Dash sees it; the single exception is the page
router, whose layout functions guard themselves with `page_guard` (they decide from the cookie, never
from the pathname the browser sends). Callbacks then read `ui_scope()` for role and house scope.
"""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

from dash import html
from dash.dash import _ID_CONTENT, _ID_DUMMY, _ID_LOCATION, _ID_STORE
from flask import Flask, g, jsonify, request
from flask_jwt_extended import decode_token, get_jwt, set_access_cookies
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from werkzeug.exceptions import BadRequest

from dashboard.auth import resolve_scope
from dashboard.context import db, services
from dashboard.errors import DomainError
from dashboard.policy import BROWSER_ROLES, allowed
from dashboard.scope import Scope
from dashboard.sessions import mint_access_token
from dashboard.untrusted import json_failure

# Dash's page router: its ids, as dash names them (app.py page_container draws the same container)
PAGE_IDS = {"content": _ID_CONTENT, "location": _ID_LOCATION, "store": _ID_STORE, "dummy": _ID_DUMMY}
PAGE_ROUTER_OUTPUTS = (f"{_ID_CONTENT}.children", f"{_ID_STORE}.data")


def _is_page_router(payload: dict) -> bool:
    """True only when every output of the callback belongs to Dash's page router."""
    output = payload.get("output", "")
    if not isinstance(output, str):
        return False
    # Dash writes several outputs as "..a.prop...b.prop.."
    parts = output[2:-2].split("...") if output.startswith("..") and output.endswith("..") else [output]
    return set(parts) == set(PAGE_ROUTER_OUTPUTS)


def _callback_shape_problem(payload) -> str | None:
    """What makes a body not a Dash callback request (Dash would fail on it with a 500), or None."""
    if not isinstance(payload, dict):
        return "send a JSON object"
    if not isinstance(payload.get("output"), str):
        return "'output' must be a string"
    if "outputs" in payload and not isinstance(payload["outputs"], dict | list):
        return "'outputs' must be an object or a list"
    for name in ("inputs", "state", "changedPropIds"):
        if name in payload and not isinstance(payload[name], list):
            return f"'{name}' must be a list"
    for name in ("inputs", "state"):
        for item in payload.get(name) or []:
            entries = item if isinstance(item, list) else [item]
            if not all(
                isinstance(e, dict) and "id" in e and isinstance(e.get("property"), str) for e in entries
            ):
                return f"each of '{name}' must be an object with 'id' and 'property'"
    return None


def ui_scope() -> Scope | None:
    """The browser user's scope from the JWT cookie, or None. Third-party apps have no UI."""
    scope = resolve_scope(db())
    if scope is None or scope.role not in BROWSER_ROLES:
        return None
    return scope


def _refresh_cookie_claims(server: Flask) -> dict | None:
    """The claims of the request's refresh cookie when it is valid and unexpired, else None."""
    value = request.cookies.get(server.config.get("JWT_REFRESH_COOKIE_NAME", "refresh_token_cookie"))
    if not value:
        return None
    try:
        claims = decode_token(value)
    except (JWTExtendedException, PyJWTError):
        return None
    return claims if claims.get("type") == "refresh" else None


def install_callback_guard(server: Flask) -> None:
    @server.after_request
    def _refresh_browser_session(response):
        """Implicit refresh: a cookie session used in its second half gets a fresh access cookie, so an
        active analyst is not logged out mid-work while an idle tab still expires.

        Only with the session's refresh cookie beside it (same session id, valid, not revoked: the access
        token's session passed the token loader), and never past the session's end: the new token and its
        cookie expire at the latest with the refresh token, so a stolen access cookie cannot be kept alive
        beyond the session, and logout or a password change ends it at once."""
        scope = g.get("scope")
        cookie = server.config.get("JWT_ACCESS_COOKIE_NAME", "access_token_cookie")
        if scope is None or scope.user_id is None or "Authorization" in request.headers:
            return response
        if g.get("session_reissued"):  # a callback gave this browser a new session (callbacks/account.py)
            return response
        if not request.cookies.get(cookie):
            return response
        try:
            claims = get_jwt()
        except RuntimeError:  # no JWT was verified in this request
            return response
        lifetime = server.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()
        if not claims or claims.get("type") != "access" or claims["exp"] - time.time() >= lifetime / 2:
            return response
        session_refresh = _refresh_cookie_claims(server)
        if session_refresh is None or not claims.get("sid") or session_refresh.get("sid") != claims["sid"]:
            return response
        try:
            token = mint_access_token(
                claims["sub"], claims | {"sexp": session_refresh["exp"]}, services().settings
            )
        except DomainError:  # the session has ended
            return response
        set_access_cookies(response, token, max_age=max(1, int(decode_token(token)["exp"] - time.time())))
        return response

    @server.before_request
    def _guard_dash_callbacks():
        if request.path.endswith("/_dash-update-component") and request.method == "POST":
            try:
                # the app's JSON provider (dashboard/untrusted.py: depth limit, no NUL or lone surrogate),
                # cached for Dash, which parses the same body again
                payload = request.get_json(force=True, cache=True)
            except (BadRequest, ValueError, RecursionError) as exc:
                detail = f"callback body: {json_failure(exc)}"
                return jsonify({"error": "Invalid or missing input", "detail": detail}), 400
            problem = _callback_shape_problem(payload)
            if problem:
                return jsonify(
                    {"error": "Invalid or missing input", "detail": f"callback body: {problem}"}
                ), 400
            if _is_page_router(payload):
                return None
            if ui_scope() is None:
                return jsonify({"error": "Authentication required", "detail": "log in at /login"}), 401
        return None


URL_SCOPE = "url_scope"  # the layout keyword that carries a link's ?scope=... value


def page_guard(path: str, permission: str):
    """Decorate a page layout: anonymous users get a link to log in, roles without the page's permission
    (dashboard/policy.py PAGE_MATRIX) a refusal."""

    def decorate(layout):
        def guarded(**kwargs):
            scope = ui_scope()
            if scope is None:
                # the link's query string (its range, scope, ...) goes along, so the view opens after login
                query = {k: v for k, v in kwargs.items() if isinstance(v, str)}
                login = "/login?next=" + quote(path + (f"?{urlencode(query)}" if query else ""), safe="/")
                return html.Div(
                    [
                        html.H4("Please log in"),
                        html.A("Go to the login page", href=login, id="login-link"),
                        html.Meta(httpEquiv="refresh", content=f"0; url={login}"),
                    ],
                    className="p-4",
                )
            if not allowed(permission, scope.role):
                return html.Div(
                    [html.H4("Not allowed"), html.P(f"The {scope.role} role cannot open this page.")],
                    className="p-4",
                    id="forbidden",
                )
            if "scope" in kwargs:  # a link's ?scope=... (pages/_urlstate.py) is not the caller's Scope
                kwargs[URL_SCOPE] = kwargs.pop("scope")
            return layout(scope=scope, **kwargs)

        return guarded

    return decorate
