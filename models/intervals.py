"""Split-conformal prediction intervals, per lead.

Absolute residuals of forecasts the model did not train on give, per lead, the quantile q such that
|actual - point| <= q for the requested share of calibration cases (with the finite-sample correction
ceil((n + 1) * level) / n). The band is point +- q, clipped at zero for energy, so
lower <= point <= upper always holds.
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
