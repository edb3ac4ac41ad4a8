"""Seasonal-residual forecasters: a similar-day baseline plus a learned correction, one model per lead.

The baseline (models.features.similar_day_base) carries the daily and weekly shape and the calendar;
the regressor learns, in units of the level of the week before the origin, how far the target will be
from it, from how far the latest values were from theirs (heat waves, cold snaps and holidays persist),
the calendar and, when given, the weather of the target hours. Learning the residual in level units
instead of the load itself is what lets trees work on load: they cannot extrapolate a level they never
saw, but a hot day "0.2 above its baseline" looks the same in any season.

Short-term models are anchored on the latest reading: their target is the residual minus the latest
deviation, so a model that learns nothing forecasts the baseline shifted by where the load stands now.

Two regressors: XGBoost (absolute-error loss, shallow regularised trees) and ridge regression
(scikit-learn, standardised features): the linear model extrapolates and is hard to beat without weather;
the trees find the non-linear temperature response.
"""

from __future__ import annotations

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBRegressor

from models import progress
from models.base import Forecaster, level_at
from models.features import Grid, similar_day_base, take, target_weather, window_mean

# Absolute-error loss forecasts the conditional median, which MAE and MAPE reward on spiky load.
XGB_PARAMS = {
    "objective": "reg:absoluteerror",
    "n_estimators": 200,
    "max_depth": 5,
    "learning_rate": 0.06,
    "max_bin": 64,
    "subsample": 0.7,
    "colsample_bytree": 0.8,
    "min_child_weight": 20,
    "reg_lambda": 5.0,
    "tree_method": "hist",
    # One thread: with a few thousand rows a lead, OpenMP hand-offs cost more than they save, and
    # spinning threads beside a busy core made training 4x slower (docs/benchmarks.md).
    "n_jobs": 1,
    "random_state": 0,
}
RIDGE_ALPHA = 1.0
# Deviations of the latest values from their baseline, counted back from the origin in steps.
DEVIATION_LAGS = {
    "next-24-hours": (1, 2, 3, 4, 6, 12, 24),
    "short-term": (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 48, 96),
}


def _regressor(kind: str):
    if kind == "xgboost":
        return XGBRegressor(**XGB_PARAMS)
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         Ridge(alpha=RIDGE_ALPHA))  # fmt: skip


class ResidualForecaster(Forecaster):
    regressor = "ridge"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.models: list = []
        self.anchored = cfg.product == "short-term"
        if cfg.strategy == "recursive":
            self.max_eval_origins = 120  # each hold-out path is predicted step by step

    @property
    def name(self) -> str:
        return f"{self.regressor}_{self.cfg.strategy}"

    def design(
        self, grid: Grid, origins: np.ndarray, lead: int
    ) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Features of (origin, lead) cases: (x, names, baseline at the targets, level, anchor). Where no
        earlier day gives a baseline (a gap in the data), the week's level stands in, in training and in
        forecasting alike."""
        y, spd = grid.y, grid.spd
        o = np.asarray(origins, dtype=int)
        t = o + lead - 1
        base_all = similar_day_base(grid)
        level = level_at(grid, o)
        base = take(base_all, t)
        base = np.where(np.isfinite(base), base, level)
        cols: dict[str, np.ndarray] = {"base": base / level}
        for k in DEVIATION_LAGS[self.cfg.product]:
            cols[f"deviation_{k}"] = (take(y, o - k) - take(base_all, o - k)) / level
        cols["deviation_mean_1d"] = (window_mean(y, o, spd) - window_mean(base_all, o, spd)) / level
        cols["yesterday"] = (take(y, t - spd) - base) / level
        cols["last_week"] = (take(y, t - 7 * spd) - base) / level
        cols["slope"] = (take(y, o - 1) - take(y, o - 2)) / level
        cols["base_slope"] = (base - take(base_all, o - 1)) / level
        cal = grid.calendar
        for name in (
            "hour_sin",
            "hour_cos",
            "hour",
            "dow",
            "weekend_or_holiday",
            "holiday",
            "doy_sin",
            "doy_cos",
        ):
            cols[name] = take(cal[name], t)
        cols["yesterday_off"] = take(cal["weekend_or_holiday"], t - spd)
        if "sun_elevation" in grid.extra:
            cols["sun_elevation"] = take(grid.extra["sun_elevation"], t)
        cols |= target_weather(grid, t)
        x = np.column_stack(list(cols.values()))
        anchor = cols["deviation_1"] if self.anchored else np.zeros(len(o))
        return x, list(cols), base, level, np.nan_to_num(anchor)

    def fit_origins(self, grid: Grid, origins: np.ndarray) -> None:
        leads = range(1, self.cfg.horizon + 1) if self.cfg.strategy == "direct" else [1]
        self.models = []
        for lead in leads:
            progress.tick(lead - 1, len(leads), f"lead {lead} of {len(leads)}")
            x, names, base, level, anchor = self.design(grid, origins, lead)
            target = (grid.y[origins + lead - 1] - base) / level - anchor
            ok = np.isfinite(target)
            model = _regressor(self.regressor)
            model.fit(x[ok], target[ok])
            self.models.append(model)
            self.feature_list = names

    def _lead(self, model, grid: Grid, origins: np.ndarray, lead: int) -> np.ndarray:
        x, _names, base, level, anchor = self.design(grid, origins, lead)
        return base + (model.predict(x) + anchor) * level

    def forecast_paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        if self.cfg.strategy == "direct":
            return np.column_stack(
                [self._lead(m, grid, origins, lead) for lead, m in enumerate(self.models, 1)]
            )
        out = np.empty((len(origins), self.cfg.horizon))
        similar_day_base(grid)  # cached from the known values before predictions overwrite the future
        saved = grid.y
        for i, origin in enumerate(origins):
            progress.tick(i, len(origins), f"path {i + 1} of {len(origins)}")
            y = saved.copy()
            y[origin:] = np.nan  # the future is unknown; predictions fill it step by step
            grid.y = y
            for step in range(self.cfg.horizon):
                value = float(self._lead(self.models[0], grid, np.array([origin + step]), 1)[0])
                y[origin + step] = max(value, 0.0)
                out[i, step] = y[origin + step]
        grid.y = saved
        return out


class RidgeForecaster(ResidualForecaster):
    regressor = "ridge"
