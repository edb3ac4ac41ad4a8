"""Dash page layouts, one module per page, each owning its path, permission, component ids, options and
defaults (callbacks/ imports them from here). The pages are registered explicitly by `register_pages()`,
so importing a page module has no side effect."""

import dash

import pages._first_draw as first_draw
from pages import (
    account,
    admin,
    alerts,
    analytics,
    exports,
    forecasts,
    historical,
    home,
    login,
    overview,
    realtime,
    reset,
)

PAGES = (overview, realtime, historical, forecasts, analytics, exports, admin, alerts, login, home)
PAGES += (account, reset)
# the pages that draw charts (dcc.Graph) for some role: a fresh tab of one loads plotly.js with its layout
CHART_PAGES = (overview, home, realtime, historical, forecasts, analytics)


def register_pages() -> None:
    """Put every page in Dash's registry (after the app exists); the navbar reads it (app.py)."""
    for page in PAGES:
        dash.register_page(page.__name__, path=page.PATH, name=page.NAME, order=page.ORDER,
                           layout=first_draw.drawn(page.PATH, page.layout),
                           title=f"{page.NAME} - Aggregator", permission=page.PERMISSION)  # fmt: skip
