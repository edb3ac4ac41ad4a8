"""Analytics page (placeholder until built). Callbacks: callbacks/analytics.py."""

import dash
from dash import html

from dashboard.ui_auth import PAGE_ROLES, page_guard

dash.register_page(__name__, path="/analytics", title="Analytics - Aggregator")


@page_guard("/analytics", PAGE_ROLES["/analytics"])
def layout(scope, **_kwargs):
    return html.Div([html.H2("Analytics"), html.P("Coming soon.")])
