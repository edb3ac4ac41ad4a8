"""The Admin page's "Create and edit" tab (houses, devices, PVs, PV parks, communities) and its
"Accounts" tab (a user's houses and communities; one-time password reset links; the user's sessions).
Callbacks: callbacks/admin_resources.py and callbacks/admin_accounts.py (each re-checks the caller on the
server; the rules are dashboard/metadata.py's and dashboard/accounts.py's, as for the API).

(The leading underscore keeps Dash's page registry from taking this module for a page.)
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from pages._components import field

RECORDS_TAB, ACCOUNTS_TAB = "records", "accounts"
RESOURCE_LABELS = {
    "houses": "Houses",
    "devices": "Devices",
    "pvs": "PVs (a house's panels)",
    "pv-parks": "PV parks",
    "communities": "Communities",
}
NEW = "new"  # the record dropdown's value for a new record
RESOURCE, RECORD, FORM, SAVE = "admin-res-resource", "admin-res-record", "admin-res-form", "admin-res-save"
MESSAGE, CHANGED = "admin-res-message", "admin-res-changed"
FIELD = "admin-res-field"  # the form's inputs: pattern-matching ids {"type": FIELD, "name": field name}

USER, HOUSES, COMMUNITIES = "admin-acc-user", "admin-acc-houses", "admin-acc-communities"
LINK, RESET = "admin-acc-link", "admin-acc-reset"
ACC_MESSAGE, ACC_CHANGED = "admin-acc-message", "admin-acc-changed"
ACC_SESSIONS, ACC_SESSIONS_MESSAGE = "admin-acc-sessions", "admin-acc-sessions-message"
ACC_END = "admin-acc-end-session"  # the sessions' End buttons: {"type": ACC_END, "index": session id}


def _message(component_id: str) -> dbc.Alert:
    return dbc.Alert(id=component_id, is_open=False, color="info", dismissable=True, className="mt-3")


def records_tab() -> html.Div:
    resource = dcc.Dropdown(
        id=RESOURCE,
        options=[{"label": label, "value": name} for name, label in RESOURCE_LABELS.items()],
        value="houses",
        clearable=False,
    )
    record = dcc.Dropdown(id=RECORD, options=[{"label": "New", "value": NEW}], value=NEW, clearable=False)
    return html.Div(
        [
            html.P(
                "Pick what to create or edit; the same rules as the API apply (a house's name and address "
                "are encrypted at rest). Leave optional fields empty for none.",
                className="text-muted",
            ),
            dbc.Row(
                [field("What", resource, md=3), field("Record (or New)", record, md=5)],
                className="g-3 align-items-end",
            ),
            dcc.Loading(html.Div(id=FORM, className="mt-3")),
            dbc.Button("Save", id=SAVE, color="primary", className="mt-3"),
            _message(MESSAGE),
            dcc.Store(id=CHANGED, data={"count": 0}),
        ],
        className="pt-3",
    )


def accounts_tab() -> html.Div:
    user = dcc.Dropdown(id=USER, options=[], placeholder="A user", clearable=False)
    return html.Div(
        [
            html.P(
                "Link a user to houses (consumers see exactly those) and energy communities (their totals), "
                "or give them a one-time link to set a new password (shown once; e-mailed too when SMTP is "
                "set and the user has an address). Using the link ends all of the user's sessions; below, "
                "end one of them (a lost device).",
                className="text-muted",
            ),
            dbc.Row([field("User", user, md=4)], className="g-3"),
            dbc.Row(
                [
                    field(
                        "Houses", dcc.Dropdown(id=HOUSES, options=[], multi=True, placeholder="None"), md=6
                    ),
                    field(
                        "Communities",
                        dcc.Dropdown(id=COMMUNITIES, options=[], multi=True, placeholder="None"),
                        md=6,
                    ),
                ],
                className="g-3 mt-1",
            ),
            html.Div(
                [
                    dbc.Button("Save links", id=LINK, color="primary", className="me-2"),
                    dbc.Button("Issue a password reset link", id=RESET, color="outline-warning"),
                ],
                className="mt-3",
            ),
            _message(ACC_MESSAGE),
            dcc.Store(id=ACC_CHANGED, data=0),
            html.H5("The user's sessions", className="mt-4"),
            _message(ACC_SESSIONS_MESSAGE),
            html.Div(html.P("Choose a user.", className="text-muted"), id=ACC_SESSIONS),
        ],
        className="pt-3",
    )
