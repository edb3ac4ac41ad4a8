"""The series on a regular grid, with its calendar, sun and weather, and the seasonal baseline.

Everything is positional. `origin` is the first interval whose value is unknown; the latest known value
is at origin - 1. For lead h (1-based) the target is at t = origin + h - 1. Features built from the
series look only at values before the origin; seasonal ones look back whole days from the target,
which are known while h <= one day. Weather is different by design: a model may use the weather of the
target hours, which at run time is a weather forecast and in backtests the observed weather ("ex-post",
reported apart). Where the target hour's weather is unknown, the same hour a day earlier stands in.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.calendar import calendar_features, solar_elevation_deg
from models.config import ForecastConfig

WEATHER = ("temperature_c", "irradiance_wm2", "cloud_cover")
SIMILAR_DAYS = 4  # the baseline averages this many earlier days of the target's kind...
SIMILAR_LOOKBACK_DAYS = 35  # ...found within this many days


@dataclass
class Grid:
    times: pd.DatetimeIndex
    y: np.ndarray
    calendar: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    spd: int
    cache: dict = field(default_factory=dict)

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
    spd = cfg.steps_per_day
    if cfg.target == "production":
        extra["sun_elevation"] = solar_elevation_deg(times, cfg.latitude, cfg.longitude, step)
    if exog is not None:
        hour_steps = max(1, int(pd.Timedelta("1h") / step))
        for col in WEATHER:
            if col in exog and exog[col].notna().any():
                series = exog[col].sort_index()
                series = series[~series.index.duplicated(keep="last")].dropna()
                # hourly weather on a 15-minute grid: each hour's value holds for its quarters
                fill = {"method": "ffill", "limit": hour_steps - 1} if hour_steps > 1 else {}
                weather = series.reindex(times, **fill).to_numpy(float)
                yesterday = np.concatenate([np.full(spd, np.nan), weather[:-spd]])
                extra[col] = np.where(np.isnan(weather), yesterday, weather)
    return Grid(times, values, calendar_features(times, cfg.timezone, cfg.country), extra, spd)


def take(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """values[pos] with NaN where pos falls outside the array."""
    pos = np.asarray(pos)
    out = np.full(pos.shape, np.nan)
    ok = (pos >= 0) & (pos < len(values))
    out[ok] = values[pos[ok]]
    return out


def window_mean(values: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Mean of values[end - width : end] ignoring NaN (NaN when all are missing)."""
    filled = np.concatenate([[0.0], np.cumsum(np.nan_to_num(values))])
    counts = np.concatenate([[0], np.cumsum(~np.isnan(values))])
    hi = np.clip(end, 0, len(values))
    lo = np.clip(end - width, 0, len(values))
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (filled[hi] - filled[lo]) / np.maximum(n, 1), np.nan)


def day_kind(grid: Grid) -> np.ndarray:
    """0-4 a working Monday-Friday, 5 a Saturday, 6 a Sunday or public holiday."""
    dow = grid.calendar["dow"]
    return np.where(grid.calendar["holiday"] > 0, 6, np.where(dow >= 6, 6, dow))


def similar_day_base(grid: Grid) -> np.ndarray:
    """At every position t: the mean of the same time on the latest SIMILAR_DAYS earlier days of t's
    kind (the same working weekday; Saturdays; Sundays and holidays together), within
    SIMILAR_LOOKBACK_DAYS. Falls back to the latest earlier day. A holiday is forecast from Sundays, and
    a Tuesday after a holiday Tuesday is not. Values only from whole days before t."""
    if "similar_day_base" in grid.cache:
        return grid.cache["similar_day_base"]
    y, spd, n = grid.y, grid.spd, len(grid.y)
    kind = day_kind(grid)
    positions = np.arange(n)
    total, count = np.zeros(n), np.zeros(n)
    for d in range(1, SIMILAR_LOOKBACK_DAYS + 1):
        past = positions - d * spd
        value = take(y, past)
        use = (take(kind, past) == kind) & ~np.isnan(value) & (count < SIMILAR_DAYS)
        total += np.where(use, value, 0.0)
        count += use
    with np.errstate(invalid="ignore", divide="ignore"):
        base = np.where(count > 0, total / np.maximum(count, 1), take(y, positions - spd))
    grid.cache["similar_day_base"] = base
    return base


def target_weather(grid: Grid, t: np.ndarray) -> dict[str, np.ndarray]:
    """Weather features of target positions t (empty without weather)."""
    cols: dict[str, np.ndarray] = {}
    spd = grid.spd
    temp = grid.extra.get("temperature_c")
    if temp is not None:
        cols["temperature_c"] = take(temp, t)
        cols["temperature_change_1d"] = cols["temperature_c"] - take(temp, t - spd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            window = np.stack([take(temp, t - k) for k in range(0, spd, max(1, spd // 24))])
            cols["temperature_mean_24h"] = np.nanmean(window, axis=0)
            cols["temperature_max_24h"] = np.nanmax(window, axis=0)
    for name in ("irradiance_wm2", "cloud_cover"):
        if name in grid.extra:
            cols[name] = take(grid.extra[name], t)
    return cols
