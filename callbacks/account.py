"""My account callbacks: change one's password, log out one's other sessions, end one session.

The first two end EVERY session of the user (dashboard/sessions.py token generation: other browsers, apps, API
tokens), then gives this browser a new session in fresh cookies, so the person who just proved who they are
stays logged in here while everyone else holding one of their tokens is out. The page then reloads, so the
navbar's logout form carries the new session's CSRF value, and the sessions list shows this browser only.
Ending one session (the list's buttons) revokes that session alone, if it is one of the caller's.
"""

from __future__ import annotations

import time

from dash import ALL, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate
from flask import g, request
from flask_jwt_extended import decode_token, set_access_cookies, set_refresh_cookies

from callbacks.common import clicked, error_text, message
from dashboard.accounts import change_password, end_all_sessions
from dashboard.auth import client_key
from dashboard.context import db, services
from dashboard.errors import DomainError
from dashboard.policy import allowed
from dashboard.sessions import end_session, issue_tokens
from dashboard.ui_auth import ui_scope
from pages.account import (
    CHANGE,
    CURRENT,
    END,
    LOCATION,
    MESSAGE,
    NEW,
    OTHERS,
    PERMISSION,
    REPEAT,
    SESSIONS,
    SESSIONS_MESSAGE,
    own_sessions,
)

NOT_ALLOWED = "Not allowed: log in first."


def _max_age(token: str) -> int:
    return max(1, int(decode_token(token)["exp"] - time.time()))


def set_browser_session(tokens: dict) -> None:
    """This browser's new session (issued and committed) in the callback's cookies."""
    response = ctx.response.callback_response
    set_access_cookies(response, tokens["access_token"], max_age=_max_age(tokens["access_token"]))
    set_refresh_cookies(response, tokens["refresh_token"], max_age=_max_age(tokens["refresh_token"]))
    g.session_reissued = True  # ui_auth's implicit refresh must not overwrite them with the old session


def account_action(_change, _others, current, new, repeat):
    target = clicked()
    if target not in (CHANGE, OTHERS):
        raise PreventUpdate
    scope = ui_scope()
    if scope is None or scope.user_id is None or not allowed(PERMISSION, scope.role):
        return *message(NOT_ALLOWED, "danger"), no_update, no_update, no_update, no_update
    session, settings = db(), services().settings
    try:
        if target == CHANGE:
            user = change_password(
                session, settings, scope.user_id, current, new, repeat, client_key(request.remote_addr)
            )
            done = "password"
        else:
            user = end_all_sessions(session, scope.user_id)
            done = "sessions"
        # a new session for this browser (the user's new token generation), its row in this transaction
        tokens = issue_tokens(session, user, settings)
        session.commit()
    except DomainError as exc:
        session.rollback()
        return *message(error_text(exc), "danger"), no_update, no_update, no_update, no_update
    set_browser_session(tokens)
    return *message("Done: reloading.", "success"), f"/account?done={done}", "", "", ""


def end_one(_clicks):
    """End the clicked session of the caller's (another user's id is "no such session", like a gone one)."""
    target = clicked()
    if not isinstance(target, dict) or target.get("type") != END:
        raise PreventUpdate
    scope = ui_scope()
    if scope is None or scope.user_id is None or not allowed(PERMISSION, scope.role):
        return *message(NOT_ALLOWED, "danger"), no_update
    session = db()
    try:
        row = end_session(session, scope.user_id, target.get("index"))
        session.commit()
        text, color = f"Ended the session of {row.device}: it is logged out at its next request.", "success"
    except DomainError as exc:
        session.rollback()
        text, color = f"{error_text(exc)}: it may have ended already.", "warning"
    return *message(text, color), own_sessions(scope.user_id)


def register_callbacks(app) -> None:
    app.callback(
        Output(SESSIONS_MESSAGE, "children"),
        Output(SESSIONS_MESSAGE, "color"),
        Output(SESSIONS_MESSAGE, "is_open"),
        Output(SESSIONS, "children"),
        Input({"type": END, "index": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )(end_one)
    app.callback(
        Output(MESSAGE, "children"),
        Output(MESSAGE, "color"),
        Output(MESSAGE, "is_open"),
        Output(LOCATION, "href"),
        Output(CURRENT, "value"),
        Output(NEW, "value"),
        Output(REPEAT, "value"),
        Input(CHANGE, "n_clicks"),
        Input(OTHERS, "n_clicks"),
        State(CURRENT, "value"),
        State(NEW, "value"),
        State(REPEAT, "value"),
        prevent_initial_call=True,
    )(account_action)
