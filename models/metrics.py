"""Forecast metrics in the data's own units (kWh per interval).

MAPE ignores actuals whose magnitude is below 5 % of the mean absolute actual (night-time PV, empty
houses): a percentage of nearly nothing is noise, not error. `skill_vs_weekly_naive` is
1 - MAE(model) / MAE(weekly seasonal naive) on the same points. Production (zero at night) is judged by
normalised MAE (MAE / mean actual), single homes by CV(RMSE) (RMSE / mean actual): both stay finite
where MAPE would divide by nearly nothing.
"""

from __future__ import annotations

import numpy as np


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    ok = ~np.isnan(actual) & ~np.isnan(predicted)
    actual, predicted = actual[ok], predicted[ok]
    if not len(actual):
        return float("nan")
    floor = 0.05 * np.mean(np.abs(actual))
    keep = np.abs(actual) >= max(floor, 1e-12)
    return float(np.mean(np.abs(predicted[keep] - actual[keep]) / np.abs(actual[keep])))


def point_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    ok = ~np.isnan(actual) & ~np.isnan(predicted)
    a, p = actual[ok], predicted[ok]
    err = p - a
    var = np.var(a)
    mean = float(np.mean(a)) if len(a) else float("nan")
    finite = len(a) > 0 and mean > 0
    return {
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1 - np.mean(err**2) / var) if var > 0 else float("nan"),
        "mape": mape(a, p),
        "nmae": float(np.mean(np.abs(err)) / mean) if finite else float("nan"),
        "cv_rmse": float(np.sqrt(np.mean(err**2)) / mean) if finite else float("nan"),
    }


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    ok = ~np.isnan(actual) & ~np.isnan(predicted)
    return float(np.mean(np.abs(predicted[ok] - actual[ok]))) if ok.any() else float("nan")


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    ok = ~np.isnan(actual)
    return float(np.mean((actual[ok] >= lower[ok]) & (actual[ok] <= upper[ok])))
