"""Alerts: the user's own rules (create, delete) and in-app notifications; the navbar's bell shows the
unread count on every page. Callbacks: callbacks/alerts.py (each checks the caller on the server; the
rules' targets are checked against the caller's scope in dashboard/alert_rules.py, never trusted).
"""

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.alert_rules import DIRECTIONS, METRICS, unread_count
from dashboard.choices import COMMUNITY_PREFIX, scope_options
from dashboard.context import db
from dashboard.policy import SEES_EVERY_HOUSE
from dashboard.ui_auth import page_guard
from pages._components import field

PATH, PERMISSION = "/alerts", "page:alerts"
NAME, ORDER = "Alerts", 7

FLEET = "fleet"
KIND_OPTIONS = [
    {"label": "Silent device (no reading for N minutes)", "value": "silent_device"},
    {"label": "Threshold (power over/under X kW for M minutes)", "value": "threshold"},
    {"label": "Voltage event (EN 50160 sag, swell, interruption)", "value": "voltage_event"},
    {"label": "Consumption anomaly", "value": "anomaly"},
]
# component ids the callbacks use
NAME_INPUT, KIND, TARGET, MINUTES = "alerts-name", "alerts-kind", "alerts-target", "alerts-minutes"
METRIC, DIRECTION, THRESHOLD, NOMINAL = (
    "alerts-metric",
    "alerts-direction",
    "alerts-threshold",
    "alerts-nominal",
)
EMAIL, WEBHOOK_URL, WEBHOOK_SECRET = "alerts-email", "alerts-webhook-url", "alerts-webhook-secret"
CREATE, MESSAGE, VERSION, RULES = "alerts-create", "alerts-message", "alerts-version", "alerts-rules"
NOTIFICATIONS, READ_ALL, REFRESH = "alerts-notifications", "alerts-read-all", "alerts-refresh"
DELETE = "alerts-delete"  # pattern-matching type of the rules' delete buttons (index: the rule id)
BELL, BELL_COUNT, BELL_TICK = "nav-bell", "nav-bell-count", "nav-bell-tick"
BELL_EVERY_MS = 60_000


def target_options(scope) -> list[dict]:
    """Where a rule may look, built on the server from the scope: staff the fleet, communities and every
    house; consumers their own houses only."""
    options = [o for o in scope_options(db(), scope, communities=True) if o["value"] != "all"]
    if scope.role in SEES_EVERY_HOUSE:
        return [{"label": "The whole fleet", "value": FLEET}, *options]
    return [o for o in options if not o["value"].startswith(COMMUNITY_PREFIX)]


def badge_text(count: int) -> str:
    return str(count) if count < 100 else "99+"


def bell(scope) -> dbc.NavItem:
    """The navbar's bell: unread notifications of the logged-in user, refreshed every minute."""
    count = unread_count(db(), scope.user_id)
    return dbc.NavItem(
        [
            dbc.NavLink(
                [
                    html.Span("\N{BELL}", title="Notifications", **{"aria-label": "Unread notifications"}),
                    dbc.Badge(
                        badge_text(count) if count else "",
                        id=BELL_COUNT,
                        color="danger",
                        pill=True,
                        className="ms-1",
                    ),
                ],
                href=PATH,
                id=BELL,
            ),
            dcc.Interval(id=BELL_TICK, interval=BELL_EVERY_MS),
        ]
    )


def rule_form(scope) -> dbc.Card:
    staff = scope.role in SEES_EVERY_HOUSE
    options = target_options(scope)
    rows = [
        dbc.Row(
            [
                field(
                    "Name", dbc.Input(id=NAME_INPUT, maxLength=120, placeholder="e.g. Meter offline"), md=3
                ),
                field(
                    "Kind",
                    dcc.Dropdown(id=KIND, options=KIND_OPTIONS, value="silent_device", clearable=False),
                    md=5,
                ),
                field(
                    "Where",
                    dcc.Dropdown(
                        id=TARGET,
                        options=options,
                        value=options[0]["value"] if options else None,
                        clearable=False,
                    ),
                    md=4,
                ),
            ],
            className="g-3 mb-2",
        ),  # fmt: skip
        dbc.Row(
            [
                field("Minutes", dbc.Input(id=MINUTES, type="number", min=1, step=1, value=15), md=2),
                field(
                    "Metric",
                    dcc.Dropdown(id=METRIC, options=list(METRICS), value="consumption", clearable=False),
                    md=3,
                ),
                field(
                    "Direction",
                    dcc.Dropdown(id=DIRECTION, options=list(DIRECTIONS), value="above", clearable=False),
                    md=2,
                ),
                field("Threshold (kW)", dbc.Input(id=THRESHOLD, type="number", value=5), md=2),
                field("Nominal voltage (V)", dbc.Input(id=NOMINAL, type="number", value=230), md=3),
            ],
            className="g-3 mb-2",
        ),  # fmt: skip
        dbc.Checkbox(
            id=EMAIL, label="Also e-mail me (to my account's address)", value=False, className="mb-2"
        ),
    ]
    if staff:  # consumers get in-app and e-mail only; the server refuses their webhooks anyway
        rows.append(
            dbc.Row(
                [
                    field(
                        "Webhook URL (optional)",
                        dbc.Input(id=WEBHOOK_URL, type="url", placeholder="https://"),
                        md=8,
                    ),
                    field(
                        "Webhook secret (optional, 16+ characters)",
                        dbc.Input(id=WEBHOOK_SECRET, type="password", autoComplete="new-password"),
                        md=4,
                    ),
                ],
                className="g-3 mb-2",
            )  # fmt: skip
        )
    else:
        hidden = {"display": "none"}
        rows += [
            dbc.Input(id=WEBHOOK_URL, value="", style=hidden),
            dbc.Input(id=WEBHOOK_SECRET, value="", style=hidden),
        ]
    rows.append(dbc.Button("Create rule", id=CREATE, color="primary"))
    return dbc.Card(dbc.CardBody([html.H5("New rule", className="card-title"), *rows]), className="mb-3")


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    return html.Div(
        [
            html.H2("Alerts"),
            html.P(
                "Rules are checked every minute; each fires once per episode (until its condition clears) "
                "with an in-app notification, and an e-mail or a signed webhook if you ask for one.",
                className="text-muted",
            ),
            dcc.Store(id=VERSION, data=0),
            dcc.Interval(id=REFRESH, interval=30_000),
            dbc.Card(
                dbc.CardBody(
                    [
                        dbc.Row(
                            [
                                dbc.Col(html.H5("Notifications", className="card-title"), width="auto"),
                                dbc.Col(
                                    dbc.Button("Mark all read", id=READ_ALL, size="sm", color="secondary"),
                                    width="auto",
                                ),
                            ],
                            className="justify-content-between",
                        ),  # fmt: skip
                        html.Div(id=NOTIFICATIONS),
                    ]
                ),
                className="mb-3",
            ),
            rule_form(scope),
            dbc.Alert(id=MESSAGE, is_open=False, color="info", dismissable=True),
            dbc.Card(dbc.CardBody([html.H5("Your rules", className="card-title"), html.Div(id=RULES)])),
        ]
    )
