"""Real-Time page (placeholder until built). Callbacks: callbacks/realtime.py."""

import dash
from dash import html

from dashboard.ui_auth import PAGE_ROLES, page_guard

dash.register_page(__name__, path="/real-time", title="Real-Time - Aggregator")


@page_guard("/real-time", PAGE_ROLES["/real-time"])
def layout(scope, **_kwargs):
    return html.Div([html.H2("Real-Time"), html.P("Coming soon.")])
