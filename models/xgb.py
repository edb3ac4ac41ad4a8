"""XGBoost forecasters: `direct` (one model per lead, non-recursive) and `recursive` (a one-step model
fed its own predictions)."""

from __future__ import annotations

import numpy as np
from xgboost import XGBRegressor

from models.base import Forecaster
from models.features import Grid, _window_mean, features

# Features measured in the series' own units; divided by the level of the week before the origin, so
# the trees learn shapes and ratios rather than absolute kWh. Trees cannot extrapolate: a model trained
# on a mild autumn would cap a cold winter's load at the autumn's highest values. Normalised, a winter
# evening is "1.4x the weekly mean" like an autumn one, whatever the absolute level.
LEVEL_FEATURES = ("lag_", "same_time_", "mean_same", "max_same", "mean_last", "change_")

# Absolute-error loss forecasts the conditional median: household load is spiky (EV sessions, water
# heaters), and the median is what MAPE and MAE reward. Shallow, regularised trees: a year of hourly
# data is only ~8,000 rows per lead. Measured on the demo aggregate (docs/benchmarks.md).
PARAMS = {
    "objective": "reg:absoluteerror",
    "n_estimators": 400,
    "max_depth": 5,
    "learning_rate": 0.03,
    "subsample": 0.7,
    "colsample_bytree": 0.8,
    "min_child_weight": 20,
    "reg_lambda": 5.0,
    "tree_method": "hist",
    # One thread: with ~8,000 rows a lead, OpenMP's thread hand-offs cost more than they save (2 threads:
    # 10.9 s for a next-24-hours fit on a quiet 2-core machine, 39 s with one busy core beside it, as
    # its threads spin; 1 thread: 8.8 s and 9.7 s). Training jobs run side by side instead.
    "n_jobs": 1,
    "random_state": 0,
}


def _train(x: np.ndarray, y: np.ndarray) -> XGBRegressor:
    ok = ~np.isnan(y)
    model = XGBRegressor(**PARAMS)
    model.fit(x[ok], y[ok])
    return model


class XGBoostForecaster(Forecaster):
    max_eval_origins = 1500

    def __init__(self, cfg):
        super().__init__(cfg)
        self.models: list[XGBRegressor] = []
        self.level_floor = 1e-6
        if cfg.strategy == "recursive":
            self.max_eval_origins = 150  # each hold-out path is predicted step by step

    def _fit(self, grid: Grid, origins: np.ndarray) -> None:
        leads = range(1, self.cfg.horizon + 1) if self.cfg.strategy == "direct" else [1]
        self.models = []
        # a floor keeps near-empty weeks (a new PV, a vacant house) from dividing by almost nothing
        self.level_floor = max(1e-6, 0.05 * float(np.nanmean(np.abs(grid.y[: origins[-1]]))))
        for lead in leads:
            x, names, level = self._design(grid, origins, lead)
            self.models.append(_train(x, grid.y[origins + lead - 1] / level))
        self.feature_list = names

    def _design(self, grid: Grid, origins: np.ndarray, lead: int) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Features with the level-dependent ones divided by the weekly level; returns (x, names, level)."""
        x, names = features(grid, origins, lead, self.cfg)
        level = _window_mean(grid.y, np.asarray(origins, dtype=int), 7 * grid.spd)
        level = np.where(np.isfinite(level) & (level > self.level_floor), level, self.level_floor)
        cols = [i for i, name in enumerate(names) if name.startswith(LEVEL_FEATURES)]
        x = x.copy()
        x[:, cols] /= level[:, None]
        return np.column_stack([x, level]), [*names, "level_last_week"], level

    def _predict(self, model: XGBRegressor, grid: Grid, origins: np.ndarray, lead: int) -> np.ndarray:
        x, _names, level = self._design(grid, origins, lead)
        return model.predict(x) * level

    def _paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        if self.cfg.strategy == "direct":
            return np.column_stack(
                [self._predict(m, grid, origins, lead) for lead, m in enumerate(self.models, 1)]
            )
        out = np.empty((len(origins), self.cfg.horizon))
        model = self.models[0]
        saved = grid.y
        for i, origin in enumerate(origins):
            y = saved.copy()
            y[origin:] = np.nan  # the future is unknown; predictions fill it step by step
            grid.y = y
            for step in range(self.cfg.horizon):
                value = float(self._predict(model, grid, np.array([origin + step]), 1)[0])
                y[origin + step] = max(value, 0.0)
                out[i, step] = y[origin + step]
        grid.y = saved
        return out
