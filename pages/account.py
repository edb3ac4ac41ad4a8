"""My account (every browser user): change one's password, see one's sessions, end one or all others.
Callbacks: callbacks/account.py (the rules: dashboard/accounts.py and dashboard/sessions.py)."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.auth import MIN_ADMIN_PASSWORD, MIN_PASSWORD
from dashboard.context import db, services
from dashboard.sessions import current_session_id, user_sessions
from dashboard.ui_auth import page_guard
from pages._sessions import session_list

PATH, PERMISSION = "/account", "page:account"
NAME, ORDER = "My account", 9

CURRENT, NEW, REPEAT, CHANGE = "account-current", "account-new", "account-repeat", "account-change"
OTHERS, MESSAGE, LOCATION = "account-logout-others", "account-message", "account-location"
SESSIONS, SESSIONS_MESSAGE, END = "account-sessions", "account-sessions-message", "account-end-session"
DONE = {
    "password": "Your password is changed. Every other session of yours (other browsers, apps, API tokens) "
    "has ended; this browser stays logged in.",
    "sessions": "Every other session of yours has ended; this browser stays logged in.",
}


def _password(component_id: str, label: str, autocomplete: str) -> list:
    return [
        dbc.Label(label, html_for=component_id, className="mt-2"),
        dbc.Input(id=component_id, type="password", autoComplete=autocomplete, debounce=False),
    ]


def own_sessions(user_id: int):
    """The user's sessions, this request's marked "This browser" (callbacks/account.py redraws them)."""
    rows = user_sessions(db(), user_id)
    return session_list(rows, current_session_id(), services().settings.timezone, END)


@page_guard(PATH, PERMISSION)
def layout(scope, done: str | None = None, **_kwargs):
    least = MIN_ADMIN_PASSWORD if scope.role == "admin" else MIN_PASSWORD
    password = dbc.Card(
        dbc.CardBody(
            [
                html.H5("Change your password", className="card-title"),
                *_password(CURRENT, "Current password", "current-password"),
                *_password(NEW, "New password", "new-password"),
                *_password(REPEAT, "The new password again", "new-password"),
                html.Small(f"At least {least} characters.", className="text-muted", id="account-rule"),
                html.Div(dbc.Button("Change password", id=CHANGE, color="primary", className="mt-3")),
            ]
        ),
        className="mb-3",
    )
    sessions = dbc.Card(
        dbc.CardBody(
            [
                html.H5("Your sessions", className="card-title"),
                html.P(
                    "Where your account is logged in: browsers and apps. Don't recognise one, or lost a "
                    "device? End it; it is logged out at its next click or request.",
                    className="text-muted",
                ),
                dbc.Alert(id=SESSIONS_MESSAGE, is_open=False, dismissable=True),
                html.Div(own_sessions(scope.user_id), id=SESSIONS, className="mb-3"),
                dbc.Button("Log out my other sessions", id=OTHERS, color="outline-danger"),
                html.Small(
                    " Ends every session but this browser's (API tokens too).", className="text-muted"
                ),
            ]
        )
    )
    notice = DONE.get(done)
    return dbc.Row(
        dbc.Col(
            [
                html.H2("My account"),
                html.P(["Logged in as ", html.Strong(scope.username), f" ({scope.role})."], id="account-who"),
                dbc.Alert(notice, id=MESSAGE, is_open=notice is not None, color="success", dismissable=True),
                password,
                sessions,
                dcc.Location(id=LOCATION, refresh=True),
            ],
            md=6,
        )
    )
