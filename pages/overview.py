"""Overview: totals for the caller's scope over the last 24 hours (the full page comes with issue 4)."""

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.ui_auth import PAGE_ROLES, page_guard

dash.register_page(__name__, path="/", title="Overview - Aggregator")


def _card(title: str, value_id: str) -> dbc.Col:
    return dbc.Col(
        dbc.Card(dbc.CardBody([html.H6(title, className="text-muted"), html.H3("-", id=value_id)])),
        md=4,
    )


@page_guard("/", PAGE_ROLES["/"])
def layout(scope, **_kwargs):
    who = "all houses" if scope.all_houses else f"{len(scope.house_ids)} house(s)"
    return html.Div(
        [
            html.H2("Overview"),
            html.P(f"Signed in as {scope.username} ({scope.role}), seeing {who}.", id="overview-who"),
            dbc.Row(
                [
                    _card("Demand, last 24 h (kWh)", "overview-demand"),
                    _card("Production, last 24 h (kWh)", "overview-production"),
                    _card("Net balance, last 24 h (kWh)", "overview-net"),
                ],
                className="g-3",
            ),
            dcc.Interval(id="overview-refresh", interval=30_000),
        ]
    )
