"""Admin page, "Links, resets and sessions" tab: a user's houses and communities, one-time password
reset links, and the user's login sessions (each can be ended: a lost device).

Links are saved through the users resource's own validation (dashboard/metadata.py update_record, as
PATCH /api/v1/users/{id}); reset links are dashboard/accounts.py's: the token is shown here once (and
e-mailed when SMTP_HOST is set and the user has an address), only its hash is stored. Every callback checks
on the server that the caller may open the Admin page and holds users:write / users:read.
"""

from __future__ import annotations

from dash import ALL, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate
from flask import request

from callbacks.common import bump, clicked, error_text, message, scope_with
from dashboard import metadata
from dashboard.accounts import email_reset_link, issue_reset_link, reset_url
from dashboard.admin_queries import users
from dashboard.clock import local_text
from dashboard.context import db, services
from dashboard.errors import DomainError, NotFound
from dashboard.schema import Community, House, User
from dashboard.scope import Scope
from dashboard.sessions import current_session_id, end_session, user_sessions
from pages._admin_resources import (
    ACC_CHANGED,
    ACC_END,
    ACC_MESSAGE,
    ACC_SESSIONS,
    ACC_SESSIONS_MESSAGE,
    ACCOUNTS_TAB,
    COMMUNITIES,
    HOUSES,
    LINK,
    RESET,
    USER,
)
from pages._sessions import session_list
from pages.admin import PERMISSION, tab_store

NOT_ALLOWED = "Not allowed: users are managed by admins."


def admin_scope(permission: str) -> Scope | None:
    return scope_with(PERMISSION, permission)


def user_of(value) -> User:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotFound("Choose a user")
    user = db().get(User, value)
    if user is None:
        raise NotFound(f"User {value} not found")
    return user


def user_choices(tab, _changed):
    if tab != ACCOUNTS_TAB:
        raise PreventUpdate
    if admin_scope("users:read") is None:
        return []
    return [{"label": f"{u.username} ({u.role})", "value": u.id} for u in users(db())]


def user_links(tab, user, _changed):
    """The houses and communities to choose from, and the chosen user's."""
    if tab != ACCOUNTS_TAB:
        raise PreventUpdate
    if admin_scope("users:read") is None:
        return [], [], [], []
    session = db()
    houses, communities = metadata.record_choices(session, House), metadata.record_choices(session, Community)
    try:
        chosen = user_of(user)
    except DomainError:
        return houses, [], communities, []
    values = metadata.record_values(metadata.resource_named("users"), chosen)
    return houses, values["house_ids"], communities, values["community_ids"]


def link_message(username: str, url: str, expires_at, emailed_to, email_error):
    tz = services().settings.timezone
    parts = [
        html.Strong(f"Password reset link for {username}. Copy it now: it is shown only this once."),
        html.Div(html.Code(url, id="admin-reset-link", className="user-select-all"), className="my-2"),
        html.Span(f"It works once, until {local_text(expires_at, tz)} ({tz}). "),
    ]
    if emailed_to:
        parts.append(html.Span(f"E-mailed to {emailed_to}.", id="admin-reset-emailed"))
    elif email_error:
        parts.append(html.Span(f"Not e-mailed: {email_error}.", id="admin-reset-email-error"))
    return html.Div(parts)


def account_action(_link, _reset, user, houses, communities, changed):
    target = clicked()
    if target not in (LINK, RESET):
        raise PreventUpdate
    scope = admin_scope("users:write")
    if scope is None:
        return *message(NOT_ALLOWED, "danger"), no_update
    session, settings = db(), services().settings
    try:
        chosen = user_of(user)
        if target == LINK:
            body = {"house_ids": houses or [], "community_ids": communities or []}
            metadata.update_record(session, metadata.resource_named("users"), chosen, body)
            metadata.commit_or_conflict(session)
            text = f"{chosen.username}: {len(body['house_ids'])} houses, {len(body['community_ids'])} communities."
            return *message(text, "success"), bump(changed)
        chosen, token, expires_at = issue_reset_link(session, settings, chosen.id, scope.user_id)
        session.commit()
    except DomainError as exc:
        session.rollback()  # nothing written on error
        return *message(error_text(exc), "danger"), no_update
    url = reset_url(request.host_url, token)
    emailed_to, email_error = email_reset_link(settings, chosen, url)
    return *message(
        link_message(chosen.username, url, expires_at, emailed_to, email_error), "warning"
    ), no_update


def sessions_of_user(tab, user, _end):
    """The chosen user's sessions; an End button ends that one (users:write), if it is still theirs."""
    if tab != ACCOUNTS_TAB:
        raise PreventUpdate
    target = clicked()
    ending = isinstance(target, dict) and target.get("type") == ACC_END
    scope = admin_scope("users:write" if ending else "users:read")
    if scope is None:
        return *message(NOT_ALLOWED, "danger"), html.P(NOT_ALLOWED, className="text-muted")
    session, note = db(), (None, "info", False)
    try:
        chosen = user_of(user)
    except DomainError:
        return *note, html.P("Choose a user.", className="text-muted")
    if ending:
        try:
            row = end_session(session, chosen.id, target.get("index"))
            session.commit()
            note = message(f"Ended {chosen.username}'s session of {row.device}.", "success")
        except DomainError as exc:
            session.rollback()
            note = message(f"{error_text(exc)}: it may have ended already.", "warning")
    rows = user_sessions(session, chosen.id)
    return *note, session_list(rows, current_session_id(), services().settings.timezone, ACC_END)


def register_callbacks(app) -> None:
    app.callback(
        Output(ACC_SESSIONS_MESSAGE, "children"),
        Output(ACC_SESSIONS_MESSAGE, "color"),
        Output(ACC_SESSIONS_MESSAGE, "is_open"),
        Output(ACC_SESSIONS, "children"),
        Input(tab_store(ACCOUNTS_TAB), "data"),
        Input(USER, "value"),
        Input({"type": ACC_END, "index": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )(sessions_of_user)
    app.callback(
        Output(USER, "options"),
        Input(tab_store(ACCOUNTS_TAB), "data"),
        Input(ACC_CHANGED, "data"),
        prevent_initial_call=True,
    )(user_choices)
    app.callback(
        Output(HOUSES, "options"),
        Output(HOUSES, "value"),
        Output(COMMUNITIES, "options"),
        Output(COMMUNITIES, "value"),
        Input(tab_store(ACCOUNTS_TAB), "data"),
        Input(USER, "value"),
        Input(ACC_CHANGED, "data"),
        prevent_initial_call=True,
    )(user_links)
    app.callback(
        Output(ACC_MESSAGE, "children"),
        Output(ACC_MESSAGE, "color"),
        Output(ACC_MESSAGE, "is_open"),
        Output(ACC_CHANGED, "data"),
        Input(LINK, "n_clicks"),
        Input(RESET, "n_clicks"),
        State(USER, "value"),
        State(HOUSES, "value"),
        State(COMMUNITIES, "value"),
        State(ACC_CHANGED, "data"),
        prevent_initial_call=True,
    )(account_action)
