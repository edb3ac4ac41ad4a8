"""Overview: demand, production and net balance of the caller's scope (now, today, last 24 h), the user
distribution and the last 24 hours as a small chart. Callbacks: callbacks/overview.py."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.ui_auth import page_guard
from pages._components import GRAPH_CONFIG, REFRESH_CHOICES, field, refresh_picker, stat_card
from pages._urlstate import UrlField, one_of, read_url, url_location, url_notice

PATH, PERMISSION = "/", "page:overview"
NAME, ORDER = "Overview", 0

REFRESH_MS = 30_000
# component ids the callbacks use; the energy figures by key, in the callbacks' output order
ENERGY = ("demand", "production", "net")
NOW = {key: f"overview-{key}-now" for key in ENERGY}
TODAY = {key: f"overview-{key}-today" for key in ENERGY}
LAST_24H = {key: f"overview-{key}" for key in ENERGY}  # the 24-h ids keep their historical names
COUNTS = {
    "houses": "overview-houses",
    "consumers": "overview-consumers",
    "prosumers": "overview-prosumers",
    "members": "overview-members",
}
REFRESH, CHART = "overview-refresh", "overview-chart"
REFRESH_EVERY, URL_PREFIX = "overview-refresh-every", "overview"
URL_FIELDS = (UrlField("refresh", REFRESH_EVERY, "value", one_of(*REFRESH_CHOICES), "30s"),)
NOW_NOTE, UPDATED = "overview-now-note", "overview-updated"
COST = "overview-cost"  # cost and CO2 of the last 24 h: filled only where a tariff or intensity is set


def _line(label: str, value_id: str, unit: str, big: bool = False):
    """One figure of a card; the element with the id holds the number only."""
    number = html.Span("-", id=value_id, className="fs-3 fw-semibold" if big else "fs-5")
    return html.Div(
        [
            html.Span(label, className="text-muted me-2"),
            number,
            html.Span(f" {unit}", className="text-muted"),
        ],
        className="d-flex align-items-baseline justify-content-between",
    )


def _energy_card(title: str, key: str, colour: str) -> dbc.Col:
    """Now (kW), today (kWh) and last 24 h (kWh)."""
    return dbc.Col(
        dbc.Card(
            [
                dbc.CardHeader(html.Strong(title), className=f"border-{colour}"),
                dbc.CardBody(
                    [
                        _line("Now", NOW[key], "kW"),
                        _line("Today", TODAY[key], "kWh"),
                        _line("Last 24 h", LAST_24H[key], "kWh", big=True),
                    ]
                ),
            ],
            className=f"border-{colour} h-100",
        ),
        md=4,
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **query):
    state, notices = read_url(query, URL_FIELDS, scope)
    who = "all houses" if scope.all_houses else f"{len(scope.house_ids)} house(s)"
    return html.Div(
        [
            html.H2("Overview"),
            url_location(URL_PREFIX, PATH, state, URL_FIELDS),
            url_notice(URL_PREFIX, notices),
            html.P(f"Signed in as {scope.username} ({scope.role}), seeing {who}.", id="overview-who"),
            dbc.Row(
                [
                    _energy_card("Total demand", "demand", "primary"),
                    _energy_card("Total production", "production", "success"),
                    _energy_card("Net energy balance (demand - production)", "net", "secondary"),
                ],
                className="g-3",
            ),
            html.P(id=NOW_NOTE, className="text-muted small mt-2 mb-3"),
            html.Div(id=COST, className="mb-3"),
            html.H5("User distribution"),
            dbc.Row(
                [
                    stat_card("Houses", COUNTS["houses"], hint="in your scope"),
                    stat_card("Consumers", COUNTS["consumers"], hint="users: no production at their houses"),
                    stat_card("Prosumers", COUNTS["prosumers"], hint="users: a house with PV or production"),
                    stat_card("Community members", COUNTS["members"], hint="users in an energy community"),
                ],
                className="g-3 mb-3",
            ),
            html.H5("Last 24 hours"),
            dcc.Graph(id=CHART, config=GRAPH_CONFIG, style={"height": "280px"}),
            html.P(id=UPDATED, className="text-muted small"),
            field("Auto-refresh", refresh_picker(REFRESH_EVERY, state["refresh"]), md=6),
            dcc.Interval(
                id=REFRESH,
                interval=REFRESH_CHOICES[state["refresh"]] or REFRESH_MS,
                disabled=REFRESH_CHOICES[state["refresh"]] is None,
            ),  # fmt: skip
        ]
    )
