"""Overview: demand, production and net balance of the caller's scope (now, today, last 24 h), the user
distribution and the last 24 hours as a small chart. Callbacks: callbacks/overview.py."""

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.ui_auth import page_guard

PATH, PERMISSION = "/", "page:overview"
NAME, ORDER = "Overview", 0

REFRESH_MS = 30_000


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
    """Now (kW), today (kWh) and last 24 h (kWh); the 24-h id keeps its historical name (overview-<key>)."""
    return dbc.Col(
        dbc.Card(
            [
                dbc.CardHeader(html.Strong(title), className=f"border-{colour}"),
                dbc.CardBody(
                    [
                        _line("Now", f"overview-{key}-now", "kW"),
                        _line("Today", f"overview-{key}-today", "kWh"),
                        _line("Last 24 h", f"overview-{key}", "kWh", big=True),
                    ]
                ),
            ],
            className=f"border-{colour} h-100",
        ),
        md=4,
    )


def _count_card(title: str, value_id: str, hint: str) -> dbc.Col:
    return dbc.Col(
        dbc.Card(
            dbc.CardBody(
                [
                    html.H6(title, className="text-muted mb-1"),
                    html.H3("-", id=value_id, className="mb-0"),
                    html.Small(hint, className="text-muted"),
                ]
            ),
            className="h-100",
        ),
        md=3,
    )


@page_guard(PATH, PERMISSION)
def layout(scope, **_kwargs):
    who = "all houses" if scope.all_houses else f"{len(scope.house_ids)} house(s)"
    return html.Div(
        [
            html.H2("Overview"),
            html.P(f"Signed in as {scope.username} ({scope.role}), seeing {who}.", id="overview-who"),
            dbc.Row(
                [
                    _energy_card("Total demand", "demand", "primary"),
                    _energy_card("Total production", "production", "success"),
                    _energy_card("Net energy balance (demand - production)", "net", "secondary"),
                ],
                className="g-3",
            ),
            html.P(id="overview-now-note", className="text-muted small mt-2 mb-3"),
            html.H5("User distribution"),
            dbc.Row(
                [
                    _count_card("Houses", "overview-houses", "in your scope"),
                    _count_card("Consumers", "overview-consumers", "no production device or PV"),
                    _count_card("Prosumers", "overview-prosumers", "a production device or PV"),
                    _count_card("Community members", "overview-members", "in at least one community"),
                ],
                className="g-3 mb-3",
            ),
            html.H5("Last 24 hours"),
            dcc.Graph(id="overview-chart", config={"displaylogo": False}, style={"height": "280px"}),
            html.P(id="overview-updated", className="text-muted small"),
            dcc.Interval(id="overview-refresh", interval=REFRESH_MS),
        ]
    )
