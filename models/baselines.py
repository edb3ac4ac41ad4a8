"""Seasonal naive: the same interval last week (else yesterday, else the last value). The reference
every skill score is measured against, and the fallback when a trained model cannot be used."""

from __future__ import annotations

import numpy as np

from models.base import Forecaster
from models.features import Grid


class SeasonalNaiveForecaster(Forecaster):
    def _fit(self, grid: Grid, origins: np.ndarray) -> None:
        self.feature_list = ["same_time_7d", "same_time_1d", "lag_1"]

    def _paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        h, spd = self.cfg.horizon, grid.spd
        t = origins[:, None] + np.arange(h)[None, :]
        week = np.where(t - 7 * spd >= 0, grid.y[np.clip(t - 7 * spd, 0, None)], np.nan)
        day = np.where(t - spd >= 0, grid.y[np.clip(t - spd, 0, None)], np.nan)
        last = np.repeat(grid.y[np.clip(origins - 1, 0, None)][:, None], h, axis=1)
        return np.where(np.isnan(week), np.where(np.isnan(day), last, day), week)
