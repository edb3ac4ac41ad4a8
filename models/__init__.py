"""Forecasting domain: features, forecasters, intervals and metrics.

Pure pandas/numpy/xgboost/statsmodels: no SQL, no Flask, no RQ. `make_forecaster(cfg)` gives a
`Forecaster` (`auto`: the best of several candidates on a hold-out, models/selection.py) with `fit(y) -> FitReport`, `predict(history, origin) -> DataFrame[point, lower, upper]`
and `to_bytes()` / `Forecaster.from_bytes()`.
"""

from models.base import FitReport, Forecaster
from models.config import ForecastConfig


def make_forecaster(cfg: ForecastConfig) -> Forecaster:
    if cfg.model == "auto":
        from models.selection import AutoForecaster

        return AutoForecaster(cfg)
    if cfg.model == "ridge":
        from models.residual import RidgeForecaster

        return RidgeForecaster(cfg)
    if cfg.model == "xgboost":
        from models.xgb import XGBoostForecaster

        return XGBoostForecaster(cfg)
    if cfg.model == "sarima":
        from models.sarima import SarimaForecaster

        return SarimaForecaster(cfg)
    if cfg.model == "mstl":
        from models.mstl import MstlForecaster

        return MstlForecaster(cfg)
    from models.baselines import SeasonalNaiveForecaster

    return SeasonalNaiveForecaster(cfg)


__all__ = ["FitReport", "ForecastConfig", "Forecaster", "make_forecaster"]
