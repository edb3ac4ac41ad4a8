"""Rolling-origin backtest over the last `origins` days: one fit before the first origin, then forecasts
from back-to-back origins, so every interval of those days is forecast once (next-24-hours: one origin
a day; short-term at horizon 8: twelve a day).

Covering the whole day matters: with one origin a day at a fixed clock time, the score depends on
that time (at 09:00 persistence is hard to beat, at 17:00 easy) and rests on a handful of points.

Honest by construction: the model is trained only on data before the first origin, and each forecast
sees only values before its own origin (Forecaster.predict enforces it). Baselines on the same points:
persistence (the last known value) and weekly seasonal naive (the same interval a week earlier).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models import make_forecaster
from models.config import ForecastConfig
from models.metrics import mape


def backtest(
    y: pd.Series, cfg: ForecastConfig, origins: int = 28, exog: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per-lead MAE and MAPE of the model and both baselines over the last `origins` days of y."""
    y = y.dropna().sort_index()
    step, h = cfg.step, cfg.horizon
    last_origin = y.index[-1].floor(step) + step - h * step
    per_day = math.ceil(cfg.steps_per_day / h)  # back-to-back windows: every interval of the day once
    times = sorted(last_origin - pd.Timedelta(days=d) - k * h * step
                   for d in range(origins) for k in range(per_day))  # fmt: skip
    model = make_forecaster(cfg)
    model.fit(y[y.index < times[0]], exog=None if exog is None else exog[exog.index < times[0]])
    rows = []
    for origin in times:
        fc = model.predict(y, origin, exog)
        actual = y.reindex(fc.index).to_numpy()
        before = y[y.index < origin]
        persistence = np.full(h, before.iloc[-1] if len(before) else np.nan)
        weekly = y.reindex(fc.index - pd.Timedelta(days=7)).to_numpy()
        for lead in range(h):
            rows.append((lead + 1, actual[lead], fc["point"].iloc[lead], persistence[lead], weekly[lead]))
    frame = pd.DataFrame(rows, columns=["lead", "actual", "model", "persistence", "weekly_naive"])
    out = {}
    for lead, group in frame.groupby("lead"):
        out[lead] = {
            f"{stat}_{name}": fn(group["actual"].to_numpy(), group[name].to_numpy())
            for name in ("model", "persistence", "weekly_naive")
            for stat, fn in (("mae", lambda a, p: float(np.nanmean(np.abs(p - a)))), ("mape", mape))
        }
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index.name = "lead"
    table.attrs["overall"] = {
        name: mape(frame["actual"].to_numpy(), frame[name].to_numpy())
        for name in ("model", "persistence", "weekly_naive")
    }
    return table
