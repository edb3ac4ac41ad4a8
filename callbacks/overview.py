"""Overview callbacks: the scope always comes from the server-side cookie, never from the browser."""

from datetime import UTC, datetime, timedelta

from dash import Input, Output, no_update

from dashboard.api.common import db
from dashboard.queries import energy_series
from dashboard.ui_auth import ui_scope


def last_24h_totals(scope) -> tuple[float, float, float]:
    end = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) + timedelta(hours=1)
    series = energy_series(db(), scope, "hour", end - timedelta(hours=24), end)
    consumption = sum(p["consumption_kwh"] for p in series)
    production = sum(p["production_kwh"] for p in series)
    return consumption, production, consumption - production


def register_callbacks(app) -> None:
    @app.callback(
        Output("overview-demand", "children"),
        Output("overview-production", "children"),
        Output("overview-net", "children"),
        Input("overview-refresh", "n_intervals"),
    )
    def update_totals(_n):
        scope = ui_scope()
        if scope is None:  # the request guard already refused anonymous calls; belt and braces
            return no_update, no_update, no_update
        return tuple(f"{value:,.1f}" for value in last_24h_totals(scope))
