"""Login page: a plain HTML form posting to /auth/login, which sets HTTP-only JWT cookies."""

import dash_bootstrap_components as dbc
from dash import html

from dashboard.sessions import LOGIN_FORM_FIELD, login_form_token

PATH, NAME, ORDER, PERMISSION = "/login", "Log in", 99, None  # open to everyone; not in the navbar

ERRORS = {
    "401": "Wrong username or password.",
    "429": "Too many failed attempts. Wait 15 minutes, then try again.",
    "403": "The login form had expired or was not sent from this site. Please log in again.",
    "api-only": (
        "This is an API-only account (a third-party app): it has no pages. Use it with the REST API "
        "(POST /api/v1/auth/login, or an X-API-Key header; its documentation is at /api/docs)."
    ),
}


def layout(error: str | None = None, next: str = "/", **_kwargs):  # noqa: A002 - query parameter name
    alert = dbc.Alert(ERRORS.get(error, "Login failed."), color="danger", id="login-error") if error else None
    return dbc.Row(
        dbc.Col(
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H3("Aggregator Web App", className="card-title"),
                        html.P("Log in to see your energy data.", className="text-muted"),
                        alert,
                        html.Form(
                            [
                                dbc.Label("Username", html_for="login-username"),
                                dbc.Input(id="login-username", name="username", autoComplete="username"),
                                dbc.Label("Password", html_for="login-password", className="mt-2"),
                                dbc.Input(
                                    id="login-password",
                                    name="password",
                                    type="password",
                                    autoComplete="current-password",
                                ),
                                dbc.Input(type="hidden", name="next", value=next or "/"),
                                # against login CSRF: bound to this browser's nonce cookie (dashboard/sessions.py)
                                dbc.Input(type="hidden", name=LOGIN_FORM_FIELD, value=login_form_token()),
                                dbc.Button(
                                    "Log in", id="login-submit", type="submit", className="mt-3 w-100"
                                ),
                            ],
                            action="/auth/login",
                            method="POST",
                        ),
                    ]
                )
            ),
            md=4,
            className="mx-auto mt-5",
        )
    )
