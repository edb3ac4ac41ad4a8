"""The figure helpers' old name: they live in pages/_charts.py (pages draw figures too). Kept until the
other callbacks modules import them from there."""

from pages._charts import (  # noqa: F401
    BAND_ORANGE,
    BAND_ORANGE_LINE,
    CONSUMPTION,
    FORECAST_RED,
    GRID,
    HISTORY_BLUE,
    MAX_POINTS,
    NET,
    PRODUCTION,
    STEPS,
    base_layout,
    empty_figure,
    max_trace_points,
    resolution_for,
    warm_up,
    with_gaps,
)
