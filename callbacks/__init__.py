"""Dash callbacks, one module per page, each exposing register_callbacks(app)."""

from callbacks import (
    admin,
    admin_tariffs,
    alerts,
    analytics,
    exports,
    forecasts,
    historical,
    home,
    overview,
    realtime,
)

PAGES = (overview, realtime, historical, forecasts, analytics, exports, admin, admin_tariffs, home, alerts)


def register_all(app) -> None:
    for module in PAGES:
        module.register_callbacks(app)
