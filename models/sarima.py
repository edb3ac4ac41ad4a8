"""SARIMA (statsmodels SARIMAX) sized to train in seconds.

The series less its similar-day baseline (models/features.py) is modelled as ARIMA(2,0,1) errors around
daily Fourier terms (4 pairs) and a weekend/holiday flag, fitted on the last 4 weeks (hourly) or 2
weeks (15-minute); the forecast is the baseline plus the forecast residual. Modelling the level itself
with weekly Fourier terms (the first version) missed the shape of each kind of day (docs/benchmarks.md).
A seasonal order of 24 or 96 steps would make the state space large and the fit slow. Forecasting from
an origin re-runs the Kalman filter with the fitted parameters over a short window before it (no refit,
and no parameter covariance, which dominated the forecast's time), then forecasts the horizon.
"""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tsa.statespace.sarimax import SARIMAX

from models import progress
from models.base import Forecaster
from models.features import Grid, similar_day_base

WINDOW_DAYS = {"next-24-hours": 28, "short-term": 14}
# Forecasting needs only the ARMA state at the origin, which the filter settles within hours: two days
# before the origin are plenty, and a longer window costs time per origin (docs/benchmarks.md).
FILTER_DAYS = 2


class SarimaForecaster(Forecaster):
    max_eval_origins = 300  # one Kalman pass (a few ms) per hold-out origin

    def __init__(self, cfg):
        super().__init__(cfg)
        self.params: np.ndarray | None = None

    def _orders(self):
        return (2, 0, 1), (0, 0, 0, 0)

    def _exog(self, grid: Grid, positions: np.ndarray) -> np.ndarray:
        hour = grid.calendar["hour"][positions]
        cols = [grid.calendar["weekend_or_holiday"][positions]]
        for k in range(1, 5):  # the daily cycle
            cols += [np.sin(2 * np.pi * k * hour / 24), np.cos(2 * np.pi * k * hour / 24)]
        return np.column_stack(cols)

    def _model(self, grid: Grid, end: int, days: int | None = None) -> SARIMAX:
        start = max(0, end - (days or WINDOW_DAYS[self.cfg.product]) * grid.spd)
        positions = np.arange(start, end)
        order, seasonal = self._orders()
        residual = grid.y[positions] - similar_day_base(grid)[positions]
        # A filter window of a long weekend has a constant weekend flag beside the constant trend: harmless
        # with fitted parameters, so only the fit's (weeks long) window is validated.
        return SARIMAX(residual, exog=self._exog(grid, positions), order=order, seasonal_order=seasonal,
                       trend="c", enforce_stationarity=True, enforce_invertibility=False,
                       validate_specification=days is None)  # fmt: skip

    def fit_origins(self, grid: Grid, origins: np.ndarray) -> None:
        end = int(origins[-1]) + self.cfg.horizon  # every training target lies before the hold-out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the hold-out metrics judge the fit
            done = iter(range(1, 61))
            result = self._model(grid, end).fit(
                disp=False, maxiter=60, method="lbfgs",
                callback=lambda _params: progress.tick(next(done, 60), 60, "optimiser iteration"),
            )  # fmt: skip
        self.params = np.asarray(result.params)
        self.feature_list = ["similar-day baseline", "arima(2,0,1)", "daily fourier x4", "weekend_or_holiday"]

    def forecast_paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        h = self.cfg.horizon
        out = np.empty((len(origins), h))
        for i, origin in enumerate(origins):
            progress.tick(i, len(origins), f"path {i + 1} of {len(origins)}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = self._model(grid, int(origin), FILTER_DAYS).filter(
                    self.params, cov_type="none"
                )  # no parameter covariance: 10x faster
                future = self._exog(grid, np.arange(origin, origin + h))
                base = similar_day_base(grid)[origin : origin + h]
                out[i] = base + np.asarray(result.forecast(h, exog=future))
        return out
