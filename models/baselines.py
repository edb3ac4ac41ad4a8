"""The baselines every forecast is measured against, and served when no model beats them.

All are computed from values strictly before the origin (a lead-h target t = origin + h - 1 looks back
whole days, which are known while h <= one day):
- persistence: the last known value;
- weekly_naive: the same interval a week earlier (else yesterday, else the last value);
- weekly_naive_adjusted: a week earlier, shifted by the latest deviation from a week earlier;
- yesterday: the same interval a day earlier;
- mean_7d: the mean of the same interval over the last 7 days (for single homes, hard to beat).
"""

from __future__ import annotations

import warnings

import numpy as np

from models.base import Forecaster
from models.features import Grid, take

BASELINES = ("persistence", "weekly_naive", "weekly_naive_adjusted", "yesterday", "mean_7d")


def baseline_paths(name: str, y: np.ndarray, origins: np.ndarray, horizon: int, spd: int) -> np.ndarray:
    """(len(origins), horizon) forecasts of baseline `name` on the regular series `y` (NaN = unknown)."""
    o = np.asarray(origins, dtype=int)[:, None]
    t = o + np.arange(horizon)[None, :]
    last = np.repeat(take(y, o[:, 0] - 1)[:, None], horizon, axis=1)
    if name == "persistence":
        return last
    if name == "yesterday":
        return take(y, t - spd)
    if name == "weekly_naive":
        week, day = take(y, t - 7 * spd), take(y, t - spd)
        return np.where(np.isnan(week), np.where(np.isnan(day), last, day), week)
    if name == "weekly_naive_adjusted":
        return take(y, t - 7 * spd) + (last - take(y, o - 1 - 7 * spd))
    if name == "mean_7d":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN stays NaN
            return np.nanmean(np.stack([take(y, t - d * spd) for d in range(1, 8)]), axis=0)
    raise ValueError(f"unknown baseline {name!r}")


class BaselineForecaster(Forecaster):
    """A baseline served as a model: what `model=auto` serves when no candidate beats the baselines."""

    def __init__(self, cfg, kind: str = "weekly_naive"):
        super().__init__(cfg)
        if kind not in BASELINES:
            raise ValueError(f"unknown baseline {kind!r}")
        self.kind = kind

    @property
    def name(self) -> str:
        return self.kind

    def fit_origins(self, grid: Grid, origins: np.ndarray) -> None:
        self.feature_list = [self.kind]

    def forecast_paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        paths = baseline_paths(self.kind, grid.y, origins, self.cfg.horizon, grid.spd)
        fallback = baseline_paths("persistence", grid.y, origins, self.cfg.horizon, grid.spd)
        return np.where(np.isnan(paths), fallback, paths)


class SeasonalNaiveForecaster(BaselineForecaster):
    """`model=seasonal_naive`: the same interval last week, else yesterday, else the last value."""

    def __init__(self, cfg):
        super().__init__(cfg, "weekly_naive")
