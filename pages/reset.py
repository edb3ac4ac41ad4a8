"""The password reset page (public): /reset?token=... from a link an admin issued (Admin page, Users:
callbacks/admin_accounts.py). A plain form posting to /auth/reset (dashboard/api/auth_routes.py), CSRF
protected like the login form; a used, expired or unknown link says so and offers no form."""

import dash_bootstrap_components as dbc
from dash import html

from dashboard.accounts import check_reset_token
from dashboard.auth import MIN_ADMIN_PASSWORD, MIN_PASSWORD
from dashboard.context import db
from dashboard.errors import ValidationFailed
from dashboard.schema import User
from dashboard.sessions import LOGIN_FORM_FIELD, login_form_token

PATH, NAME, ORDER, PERMISSION = "/reset", "Reset password", 98, None  # open to everyone; not in the navbar

ERRORS = {
    "password": "The new password was refused: see the rule below, and type it the same twice.",
    "429": "Too many wrong reset links from this network. Wait 15 minutes, then try again.",
    "403": "The form had expired or was not sent from this site. Please try again.",
}


def _card(*children) -> dbc.Row:
    body = dbc.CardBody([html.H3("Set a new password", className="card-title"), *children])
    return dbc.Row(dbc.Col(dbc.Card(body), md=5, className="mx-auto mt-5"))


def _form(token: str, user: User) -> html.Form:
    least = MIN_ADMIN_PASSWORD if user.role == "admin" else MIN_PASSWORD
    return html.Form(
        [
            html.P(["For the account ", html.Strong(user.username, id="reset-username"), "."]),
            dbc.Label("New password", html_for="reset-password"),
            dbc.Input(id="reset-password", name="password", type="password", autoComplete="new-password"),
            dbc.Label("The new password again", html_for="reset-repeat", className="mt-2"),
            dbc.Input(id="reset-repeat", name="repeat", type="password", autoComplete="new-password"),
            html.Small(f"At least {least} characters.", className="text-muted", id="reset-rule"),
            dbc.Input(type="hidden", name="token", value=token),
            # against CSRF: bound to this browser's nonce cookie, as the login form (dashboard/sessions.py)
            dbc.Input(type="hidden", name=LOGIN_FORM_FIELD, value=login_form_token()),
            dbc.Button("Set password", id="reset-submit", type="submit", className="mt-3 w-100"),
        ],
        action="/auth/reset",
        method="POST",
    )


def layout(token: str | None = None, error: str | None = None, done: str | None = None, **_kwargs):
    if done:
        return _card(
            dbc.Alert(
                "Your password is set. Every session of your account has ended: log in with the new password.",
                color="success",
                id="reset-done",
            ),
            html.A("Go to the login page", href="/login", id="reset-login-link"),
        )
    if not token:
        return _card(
            dbc.Alert(
                "Open the reset link an admin gave you (it ends in ?token=...).",
                color="info",
                id="reset-error",
            )
        )
    session = db()
    try:
        row = check_reset_token(session, token)
    except ValidationFailed as exc:
        return _card(dbc.Alert(exc.message + ".", color="danger", id="reset-error"))
    alert = (
        dbc.Alert(ERRORS.get(error, "That did not work."), color="danger", id="reset-error")
        if error
        else None
    )
    return _card(alert, _form(token, session.get(User, row.user_id)))
