"""Feature matrices for forecasting from an origin.

Everything is positional on a regular grid. `origin` is the first interval whose value is unknown; the
latest known value is at origin - 1. For lead h (1-based) the target is at t = origin + h - 1. Lags are
counted back from the origin, so no feature ever uses a value at or after the origin: a lead-h model
never sees a lag shorter than h. Seasonal features look back whole days from the target (t - d days),
which are known as long as h <= one day. Weather enters as the last observation before the origin (no
weather forecast source is assumed; observed future weather would leak).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.calendar import calendar_features, solar_elevation_deg
from models.config import ForecastConfig

LAGS = (1, 2, 3, 4, 6, 8, 12, 24)
WEATHER = ("temperature_c", "irradiance_wm2")


@dataclass
class Grid:
    times: pd.DatetimeIndex
    y: np.ndarray
    calendar: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    spd: int

    def position(self, ts: pd.Timestamp) -> int:
        return int((ts - self.times[0]) / (self.times[1] - self.times[0]))


def make_grid(
    y: pd.Series, cfg: ForecastConfig, end: pd.Timestamp | None = None, exog: pd.DataFrame | None = None
) -> Grid:
    """The series on its regular grid (gaps as NaN), extended to `end` (exclusive) with unknowns."""
    step = cfg.step
    y = y.sort_index()
    y = y[~y.index.duplicated(keep="last")]
    start = y.index[0].floor(step)
    stop = y.index[-1] + step if end is None else max(end, y.index[-1] + step)
    times = pd.date_range(start, stop, freq=step, inclusive="left")
    values = y.reindex(times).to_numpy(float)
    extra: dict[str, np.ndarray] = {}
    if cfg.target == "production":
        extra["sun_elevation"] = solar_elevation_deg(times, cfg.latitude, cfg.longitude, step)
    if exog is not None:
        for col in WEATHER:
            if col in exog:
                series = exog[col].sort_index()
                series = series[~series.index.duplicated(keep="last")]
                extra[col] = series.reindex(times, method="ffill", limit=cfg.steps_per_day).to_numpy(float)
    return Grid(times, values, calendar_features(times, cfg.timezone, cfg.country), extra, cfg.steps_per_day)


def _take(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    out = np.full(pos.shape, np.nan)
    ok = (pos >= 0) & (pos < len(values))
    out[ok] = values[pos[ok]]
    return out


def _window_mean(values: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Mean of values[end - width : end] ignoring NaN (NaN when all are missing)."""
    filled = np.concatenate([[0.0], np.cumsum(np.nan_to_num(values))])
    counts = np.concatenate([[0], np.cumsum(~np.isnan(values))])
    hi = np.clip(end, 0, len(values))
    lo = np.clip(end - width, 0, len(values))
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (filled[hi] - filled[lo]) / np.maximum(n, 1), np.nan)


def feature_names(grid: Grid, cfg: ForecastConfig) -> list[str]:
    return list(features(grid, np.array([grid.spd * 8]), 1, cfg)[1])


def features(grid: Grid, origins: np.ndarray, lead: int, cfg: ForecastConfig) -> tuple[np.ndarray, list[str]]:
    if not 1 <= lead <= grid.spd:
        raise ValueError("leads beyond one day would make same-time-yesterday features leak")
    y, spd = grid.y, grid.spd
    o = np.asarray(origins, dtype=int)
    t = o + lead - 1
    cols: dict[str, np.ndarray] = {}
    for k in LAGS:
        if k <= spd:
            cols[f"lag_{k}"] = _take(y, o - k)
    seasonal = np.stack([_take(y, t - d * spd) for d in range(1, 8)])
    cols["same_time_1d"] = seasonal[0]
    cols["same_time_2d"] = seasonal[1]
    cols["same_time_7d"] = seasonal[6]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN, which XGBoost handles
        cols["mean_same_time_7d"] = np.nanmean(seasonal, axis=0)
        if cfg.target == "production":
            cols["max_same_time_7d"] = np.nanmax(seasonal, axis=0)  # the recent clear-sky envelope
    # similar day: the latest earlier day of the target's type (working day vs weekend/holiday)
    day_type = grid.calendar["weekend_or_holiday"]
    similar = np.full(len(o), np.nan)
    for d in range(7, 0, -1):  # the smallest matching d wins
        match = _take(day_type, t - d * spd) == _take(day_type, t)
        similar = np.where(match, _take(y, t - d * spd), similar)
    cols["same_time_similar_day"] = similar
    weekly = np.stack([_take(y, t - w * 7 * spd) for w in range(1, 5)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cols["mean_same_time_4w"] = np.nanmean(weekly, axis=0)  # the weekly profile, with less noise
    cols["mean_last_day"] = _window_mean(y, o, spd)
    cols["mean_last_week"] = _window_mean(y, o, 7 * spd)
    cols["mean_last_4"] = _window_mean(y, o, 4)
    cols["change_vs_yesterday"] = _take(y, o - 1) - _take(y, o - 1 - spd)
    for name, values in grid.calendar.items():
        cols[name] = _take(values, t)
    if "sun_elevation" in grid.extra:
        cols["sun_elevation"] = _take(grid.extra["sun_elevation"], t)
    for name in WEATHER:
        if name in grid.extra:
            cols[f"{name}_at_origin"] = _take(grid.extra[name], o - 1)
            cols[f"{name}_mean_last_day"] = _window_mean(grid.extra[name], o, spd)
    return np.column_stack(list(cols.values())), list(cols)
