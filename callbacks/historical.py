"""Historical page callbacks (placeholder until built)."""


def register_callbacks(app) -> None:
    return None
