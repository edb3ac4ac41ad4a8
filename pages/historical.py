"""Historical page (placeholder until built). Callbacks: callbacks/historical.py."""

import dash
from dash import html

from dashboard.ui_auth import PAGE_ROLES, page_guard

dash.register_page(__name__, path="/historical", title="Historical - Aggregator")


@page_guard("/historical", PAGE_ROLES["/historical"])
def layout(scope, **_kwargs):
    return html.Div([html.H2("Historical"), html.P("Coming soon.")])
