"""Admin page (placeholder until built). Callbacks: callbacks/admin.py."""

import dash
from dash import html

from dashboard.ui_auth import PAGE_ROLES, page_guard

dash.register_page(__name__, path="/admin", title="Admin - Aggregator")


@page_guard("/admin", PAGE_ROLES["/admin"])
def layout(scope, **_kwargs):
    return html.Div([html.H2("Admin"), html.P("Coming soon.")])
