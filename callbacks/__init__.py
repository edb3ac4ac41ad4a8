"""Dash callbacks, one module per page, each exposing register_callbacks(app)."""

from callbacks import admin, analytics, exports, forecasts, historical, home, overview, realtime

PAGES = (overview, realtime, historical, forecasts, analytics, exports, admin, home)


def register_all(app) -> None:
    for module in PAGES:
        module.register_callbacks(app)
