"""Split-conformal prediction intervals, per lead, tracked at forecast time.

Absolute residuals of forecasts the model did not train on give, per lead, the quantile q such that
|actual - point| <= q for the requested share of calibration cases (with the finite-sample correction
ceil((n + 1) * level) / n). The band is point +- q, clipped at zero for energy, so
lower <= point <= upper always holds.

A calibration made at training time drifts: the season turns, and the hours a product is asked for
(midnight day-ahead, the evening ramp short-term) are not the average hour. `track` is quantile tracking
(Angelopoulos, Candes and Tibshirani 2023, the proportional part of conformal PID control; the
multiplicative form of Gibbs and Candes' adaptive conformal inference, 2021): the band's width is
multiplied by a factor replayed over the same time of day on each of the TRACK_DAYS days before the
origin, widened after each of those forecasts that missed more than the allowed share, narrowed after
each that missed less. Forecasting is stateless, so the replay runs at every forecast (the forecasts it
needs are cached; models/base.py).
"""

from __future__ import annotations

import math

import numpy as np


def conformal_quantiles(residuals: np.ndarray, level: float) -> np.ndarray:
    """residuals: (n_cases, n_leads) absolute errors, NaN where unknown -> one quantile per lead."""
    out = []
    for column in residuals.T:
        column = column[~np.isnan(column)]
        n = len(column)
        if n == 0:
            out.append(np.nan)
            continue
        rank = min(1.0, math.ceil((n + 1) * level) / n)
        out.append(float(np.quantile(column, rank, method="higher")))
    return np.array(out)


def band(point: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    point = np.clip(np.asarray(point, float), 0, None)
    q = np.nan_to_num(np.asarray(q, float), nan=0.0)
    lower = np.clip(point - q, 0, None)
    upper = point + q
    return lower, point, upper


TRACK_DAYS = 14  # the same time of day on each of this many days before the origin
# log-width step per unit of excess miss share (after a replayed forecast that missed every point: x2.5)
TRACK_RATE = 1.0
TRACK_LIMIT = 1.5  # the factor stays within exp(+-1.5) = 0.22 ... 4.5


def track(misses: np.ndarray, informative: np.ndarray, level: float) -> np.ndarray:
    """misses: (n, days, leads) of |actual - point| / half-width of the calibrated band, oldest day first;
    informative: where that ratio means something (known actual, daylight for production). Returns each
    origin's width factor: replayed day by day, the log factor moves by TRACK_RATE times (share of
    informative points outside the band so far widened - (1 - level))."""
    n, days, _leads = misses.shape
    log_factor = np.zeros(n)
    alpha = 1 - level
    for day in range(days):
        ok = informative[:, day, :]
        count = ok.sum(axis=1)
        outside = ((misses[:, day, :] > np.exp(log_factor)[:, None]) & ok).sum(axis=1)
        share = np.where(count > 0, outside / np.maximum(count, 1), alpha)
        log_factor = np.clip(log_factor + TRACK_RATE * (share - alpha), -TRACK_LIMIT, TRACK_LIMIT)
    return np.exp(log_factor)
