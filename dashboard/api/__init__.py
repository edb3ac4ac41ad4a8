"""The REST API: its blueprints, error handlers, access log and the request session's teardown."""

from __future__ import annotations

from flask import Flask

from dashboard.api import (
    admin_routes,
    aggregator_routes,
    alert_routes,
    analytics_routes,
    auth_routes,
    data_routes,
    export_routes,
    household_routes,
    metadata_routes,
    model_routes,
    openapi,
    privacy_routes,
    tariff_routes,
    weather_routes,
)
from dashboard.api.access_log import install_access_log
from dashboard.api.common import install_input_guards
from dashboard.api.errors import register_error_handlers
from dashboard.context import close_request_session


def register_api(app: Flask) -> None:
    install_input_guards(app)  # first: the bounded <int:> converter must be in place before the routes
    for blueprint in (
        auth_routes.bp,
        auth_routes.browser,
        data_routes.bp,
        metadata_routes.bp,
        admin_routes.bp,
        aggregator_routes.bp,
        model_routes.bp,
        analytics_routes.bp,
        export_routes.bp,
        weather_routes.bp,
        privacy_routes.bp,
        tariff_routes.bp,
        household_routes.bp,
        alert_routes.bp,
        openapi.bp,
    ):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    install_access_log(app)
    app.teardown_appcontext(close_request_session)
