"""Dash callbacks, one module per page, each exposing register_callbacks(app)."""

from callbacks import (
    account,
    admin,
    admin_accounts,
    admin_houses,
    admin_resources,
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
PAGES += (account, admin_resources, admin_accounts, admin_houses)


def register_all(app) -> None:
    for module in PAGES:
        module.register_callbacks(app)
