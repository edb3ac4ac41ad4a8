"""MSTL: the load as a daily and a weekly seasonal cycle plus a deseasonalised rest (statsmodels MSTL,
Bandara, Hyndman and Bergmeir 2021: STL repeated for each cycle; the double-seasonal view of load that
Taylor 2003 takes with exponential smoothing).

The forecast follows statsmodels' STLForecast recipe: each seasonal component repeats its last cycle
(seasonal naive), and the deseasonalised series (trend + remainder) is forecast by an autoregression
with a mean, AR(p) over the last AR_HOURS (ARIMA(p,0,0), least squares on the fit's window): it starts
from where the deseasonalised load stands at the origin and decays towards the window's mean. The
periods are one day and one week in steps of the series' resolution.

Bounded cost: a decomposition is fitted on the WINDOW_DAYS before the start of each (grid) day that holds
an origin, never per origin, so every origin sees only values before it and a day's origins share one
decomposition. The loess smoothers of the trend and low-pass steps are evaluated every tenth of their
window and interpolated in between (R's stl default; statsmodels evaluates every point), which makes a
15-minute decomposition about ten times faster and changes its seasonal components by under 1 %.
"""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np
import pandas as pd
from statsmodels.tsa.seasonal import MSTL

from models import progress
from models.base import Forecaster
from models.features import Grid, day_kind, take

WINDOW_DAYS = {"next-24-hours": 28, "short-term": 21}  # four and three weekly cycles
CACHED_DECOMPOSITIONS = 8  # a warm model's requests within a day reuse that day's decomposition
AR_HOURS = 3  # the autoregression looks back this many hours of steps


def decompose(values: np.ndarray, spd: int) -> tuple[np.ndarray, np.ndarray]:
    """(daily, weekly) seasonal components of `values` (gaps interpolated). With under two weeks of
    values the weekly cycle cannot be estimated and is left out (zero), as MSTL itself does."""
    series = pd.Series(values).interpolate(limit_direction="both").to_numpy()
    if np.isnan(series).any() or len(series) < 2 * spd + 1:
        raise ValueError("MSTL needs at least two days of values before each origin")
    jump = math.ceil(1.5 * spd / 10)  # a tenth of the daily cycle's trend window
    periods = (spd, 7 * spd) if len(series) > 2 * 7 * spd else (spd,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = MSTL(series, periods=periods,
                      stl_kwargs={"trend_jump": jump, "low_pass_jump": jump}).fit()  # fmt: skip
    seasonal = np.asarray(result.seasonal).reshape(len(series), -1)
    weekly = seasonal[:, 1] if seasonal.shape[1] > 1 else np.zeros(len(series))
    return seasonal[:, 0], weekly


class MstlForecaster(Forecaster):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.coef = np.zeros(2)  # AR(p) coefficients, then the constant
        self.decompositions: dict = {}

    def __getstate__(self) -> dict:
        return self.__dict__ | {"decompositions": {}}  # a cache, never stored

    @property
    def name(self) -> str:
        return "mstl"

    def order(self, grid: Grid) -> int:
        return max(1, AR_HOURS * grid.spd // 24)

    def seasonal(self, grid: Grid, end: int, until: int) -> tuple[int, np.ndarray]:
        """(start, seasonal sum over positions start..until-1): the decomposition of the window before
        `end`, continued after it by repeating each component's last cycle. The weekly cycle continues
        by kind of day, as the similar-day baseline does (models/features.day_kind): a public holiday
        repeats the latest Sunday, a weekday the latest same weekday that was not a holiday."""
        spd = grid.spd
        start = max(0, end - WINDOW_DAYS[self.cfg.product] * spd)
        daily, weekly = self.decomposition(grid.y[start:end], spd)
        target = np.arange(end, until)
        later = daily[len(daily) - spd + (target - end) % spd]
        days = min(7, len(weekly) // spd)
        source = target - ((target - end) // spd + 1) * spd  # the same time on the latest day before end
        kind = day_kind(grid)
        found = np.zeros(len(target), dtype=bool)
        pick = source - (days - 1) * spd  # no day of its kind in the last cycle: a week before, plainly
        for back in range(days):
            candidate = source - back * spd
            match = ~found & (candidate >= start) & (take(kind, candidate) == take(kind, target))
            pick = np.where(match, candidate, pick)
            found |= match
        pick = np.clip(pick, start, end - 1)
        later = later + weekly[pick - start]
        return start, np.concatenate([daily + weekly, later])

    def decomposition(self, values: np.ndarray, spd: int) -> tuple[np.ndarray, np.ndarray]:
        """decompose(), remembered by the window's values (any late reading makes a new one)."""
        key = (spd, hashlib.blake2b(np.ascontiguousarray(values).tobytes(), digest_size=16).digest())
        cache = self.__dict__.setdefault("decompositions", {})
        if key not in cache:
            if len(cache) >= CACHED_DECOMPOSITIONS:
                cache.pop(next(iter(cache)))
            cache[key] = decompose(values, spd)
        return cache[key]

    def fit_origins(self, grid: Grid, origins: np.ndarray) -> None:
        end = min(int(origins[-1]) + self.cfg.horizon, len(grid.y))  # the training targets' end
        start, seasonal = self.seasonal(grid, end, end)
        rest = pd.Series(grid.y[start:end] - seasonal).interpolate().to_numpy()
        p, n = self.order(grid), len(rest)
        lags = np.column_stack([rest[p - k - 1 : n - k - 1] for k in range(p)] + [np.ones(n - p)])
        target = rest[p:]
        ok = np.isfinite(target) & np.isfinite(lags).all(axis=1)
        self.coef = np.linalg.lstsq(lags[ok], target[ok], rcond=None)[0]
        self.feature_list = [f"MSTL periods {grid.spd} and {7 * grid.spd} steps",
                             f"AR({p}) with a mean on the deseasonalised load"]  # fmt: skip

    def forecast_paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        """One decomposition per day of origins; each origin's AR path starts from its own latest values."""
        h, spd, p = self.cfg.horizon, grid.spd, len(self.coef) - 1
        origins = np.asarray(origins, dtype=int)
        out = np.empty((len(origins), h))
        days = np.unique(origins // spd)
        for done, day in enumerate(days):
            progress.tick(done, len(days), f"day {done + 1} of {len(days)}")
            mine = np.flatnonzero(origins // spd == day)
            o = origins[mine]
            start, seasonal = self.seasonal(grid, int(day * spd), int(o.max()) + h)
            known = grid.y[start : int(o.max())]
            rest = pd.Series(known - seasonal[: len(known)]).ffill().to_numpy()
            at = o - start  # the origins in the window's positions
            lags = np.nan_to_num(np.column_stack([rest[at - k - 1] for k in range(p)] + [np.ones(len(at))]))
            for step in range(h):
                level = lags @ self.coef
                lags = np.column_stack([level, lags[:, : p - 1], lags[:, p:]])
                out[mine, step] = level + seasonal[at + step]
        return out
