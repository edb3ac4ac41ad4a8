"""Forecasts page (placeholder until built). Callbacks: callbacks/forecasts.py."""

import dash
from dash import html

from dashboard.ui_auth import PAGE_ROLES, page_guard

dash.register_page(__name__, path="/forecasts", title="Forecasts - Aggregator")


@page_guard("/forecasts", PAGE_ROLES["/forecasts"])
def layout(scope, **_kwargs):
    return html.Div([html.H2("Forecasts"), html.P("Coming soon.")])
