"""Rolling-origin evaluation: one fit before the test period, then forecasts from many origins in it,
scored beside the baselines on the same points.

Honest by construction: the model is fitted only on data before the first test origin, and each
forecast sees only values before its own origin (the same positional code as Forecaster.predict, run
for every origin at once on one grid; a test checks the two agree). Weather, when given, is the
observed weather of the target hours: "ex-post", reported apart from weather-free figures.

- `evaluate`: the issue-11 protocol (`make bench-accuracy`): a test period from `test_start`, origins
  every `every` (local midnights for next-24-hours), MAPE, MAE, NMAE, CV(RMSE), skill against every
  baseline, band coverage and training time.
- `backtest`: the CLI's per-lead table over the last `origins` days, from back-to-back origins so every
  interval of those days is forecast once.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from models import make_forecaster
from models.base import Forecaster
from models.baselines import BASELINES, baseline_paths
from models.config import ForecastConfig
from models.features import make_grid
from models.metrics import coverage, mae, mape, point_metrics


def forecast_origins(
    model: Forecaster, y: pd.Series, origins: pd.DatetimeIndex, exog: pd.DataFrame | None = None
) -> dict[str, np.ndarray]:
    """Forecasts of a fitted model from each origin, with the actuals and every baseline, (n, horizon)."""
    cfg = model.cfg
    grid = make_grid(y.dropna(), cfg, end=origins.max() + cfg.horizon * cfg.step, exog=exog)
    pos = np.array([grid.position(o) for o in origins])
    targets = pos[:, None] + np.arange(cfg.horizon)[None, :]
    actual = np.where(targets < len(grid.y), grid.y[np.clip(targets, 0, len(grid.y) - 1)], np.nan)
    lower, paths, upper = model.band_for(grid, pos, model.forecast_paths(grid, pos))
    out = {"actual": actual, "model": paths, "lower": lower, "upper": upper}
    for name in BASELINES:
        out[name] = baseline_paths(name, grid.y, pos, cfg.horizon, grid.spd)
    return out


def scores(result: dict[str, np.ndarray]) -> dict:
    """MAPE, MAE, NMAE, CV(RMSE) of the model, each baseline's MAPE/MAE and the model's skill against it
    (1 - MAE model / MAE baseline), and the band's coverage."""
    a = result["actual"].ravel()
    m = point_metrics(a, result["model"].ravel())
    out = {k: m[k] for k in ("mape", "mae", "nmae", "cv_rmse")}
    out["coverage"] = coverage(a, result["lower"].ravel(), result["upper"].ravel())
    for name in BASELINES:
        p = result[name].ravel()
        out[f"mape_{name}"] = mape(a, p)
        out[f"mae_{name}"] = mae(a, p)
        out[f"cv_rmse_{name}"] = point_metrics(a, p)["cv_rmse"]
        out[f"skill_vs_{name}"] = 1 - out["mae"] / out[f"mae_{name}"] if out[f"mae_{name}"] else float("nan")
    return out


def test_origins(start: pd.Timestamp, days: int, every: pd.Timedelta) -> pd.DatetimeIndex:
    return pd.date_range(start, start + pd.Timedelta(days=days), freq=every, inclusive="left")


def evaluate(
    y: pd.Series, cfg: ForecastConfig, origins: pd.DatetimeIndex, exog: pd.DataFrame | None = None,
    train_days: int | None = None,
) -> dict:  # fmt: skip
    """Fit on everything before the first origin (the last `train_days` of it when given), forecast from
    every origin, score. Returns the scores plus `chosen`, `train_seconds` (wall), `train_cpu_seconds`
    (this process's CPU time: the fit's cost whatever else shares the machine) and the hold-out metrics.
    """
    first = origins.min()
    history = y[y.index < first]
    if train_days is not None:
        history = history[history.index >= first - pd.Timedelta(days=train_days)]
    model = make_forecaster(cfg)
    started, cpu = time.perf_counter(), time.process_time()
    report = model.fit(history, exog=None if exog is None else exog[exog.index < first])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = scores(forecast_origins(model, y, origins, exog))
    return out | {"chosen": model.name, "train_seconds": seconds, "train_cpu_seconds": cpu,
                  "holdout": report.metrics}  # fmt: skip


def backtest(
    y: pd.Series, cfg: ForecastConfig, origins: int = 28, exog: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per-lead MAE and MAPE of the model and the persistence and weekly-naive baselines over the last
    `origins` days of y; `table.attrs["overall"]` holds the MAPE of each over every point."""
    y = y.dropna().sort_index()
    step, h = cfg.step, cfg.horizon
    last_origin = y.index[-1].floor(step) + step - h * step
    per_day = math.ceil(cfg.steps_per_day / h)  # back-to-back windows: every interval of the day once
    times = pd.DatetimeIndex(sorted(last_origin - pd.Timedelta(days=d) - k * h * step
                                    for d in range(origins) for k in range(per_day)))  # fmt: skip
    model = make_forecaster(cfg)
    model.fit(y[y.index < times[0]], exog=None if exog is None else exog[exog.index < times[0]])
    result = forecast_origins(model, y, times, exog)
    names = ("model", "persistence", "weekly_naive")
    rows = {}
    for lead in range(h):
        a = result["actual"][:, lead]
        rows[lead + 1] = {f"{stat}_{name}": fn(a, result[name][:, lead])
                          for name in names for stat, fn in (("mae", mae), ("mape", mape))}  # fmt: skip
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "lead"
    table.attrs["overall"] = {name: mape(result["actual"].ravel(), result[name].ravel()) for name in names}
    return table
