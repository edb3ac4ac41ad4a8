"""Dash callbacks, one module per page, each exposing register_callbacks(app)."""

from callbacks import admin, alerts, analytics, exports, forecasts, historical, overview, realtime

PAGES = (overview, realtime, historical, forecasts, analytics, exports, admin, alerts)


def register_all(app) -> None:
    for module in PAGES:
        module.register_callbacks(app)
