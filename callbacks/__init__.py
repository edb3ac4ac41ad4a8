"""Dash callbacks, one module per page, each exposing register_callbacks(app)."""

from callbacks import exports, overview


def register_all(app) -> None:
    overview.register_callbacks(app)
    exports.register_callbacks(app)
