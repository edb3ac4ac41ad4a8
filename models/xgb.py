"""XGBoost on the seasonal residual (models/residual.py): `direct` (one model per lead, non-recursive)
and `recursive` (a one-step model fed its own predictions)."""

from __future__ import annotations

from models.residual import ResidualForecaster


class XGBoostForecaster(ResidualForecaster):
    regressor = "xgboost"
