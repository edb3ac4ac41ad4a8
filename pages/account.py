"""My account (every browser user): change one's password, log out one's other sessions.
Callbacks: callbacks/account.py (the rules: dashboard/accounts.py)."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.auth import MIN_ADMIN_PASSWORD, MIN_PASSWORD
from dashboard.ui_auth import page_guard

PATH, PERMISSION = "/account", "page:account"
NAME, ORDER = "My account", 9

CURRENT, NEW, REPEAT, CHANGE = "account-current", "account-new", "account-repeat", "account-change"
OTHERS, MESSAGE, LOCATION = "account-logout-others", "account-message", "account-location"
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
                html.H5("Sessions", className="card-title"),
                html.P(
                    "Logged in somewhere else, or lost a device? End every other session of your account "
                    "(other browsers, apps and API tokens); this browser stays logged in.",
                    className="text-muted",
                ),
                dbc.Button("Log out my other sessions", id=OTHERS, color="outline-danger"),
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
