"""The forecaster template: fit with an honest time-ordered hold-out, conformal bands, serialisation.

Fitting: origins whose whole horizon ends before the last 15 % of the data train the model; the last
15 % is the hold-out. Hold-out origins on even local days calibrate the conformal band, those on odd
days measure its coverage; point metrics (mse, mae, r2, mape, skill) use the whole hold-out. The served
model is the one fitted without the hold-out, so its band is calibrated on residuals it never saw.
"""

from __future__ import annotations

import io
import pickle
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.config import ForecastConfig
from models.features import Grid, make_grid
from models.intervals import band, conformal_quantiles
from models.metrics import coverage, mape, point_metrics

HOLDOUT_SHARE = 0.15
MIN_HISTORY_DAYS = 7


@dataclass
class FitReport:
    metrics: dict[str, float]
    n_train: int
    data_start: str
    data_end: str
    features: list[str]
    seconds: float
    libraries: dict[str, str] = field(default_factory=dict)


def _libraries() -> dict[str, str]:
    import statsmodels
    import xgboost

    return {"numpy": np.__version__, "pandas": pd.__version__, "xgboost": xgboost.__version__,
            "statsmodels": statsmodels.__version__}  # fmt: skip


class Forecaster:
    """Subclasses implement `_fit(grid, origins)` and `_paths(grid, origins) -> (n, horizon)`."""

    max_eval_origins = 1500

    def __init__(self, cfg: ForecastConfig):
        self.cfg = cfg
        self.quantiles = np.zeros(cfg.horizon)
        self.report: FitReport | None = None
        self.feature_list: list[str] = []

    # -- to implement ---------------------------------------------------------------------------------
    def _fit(self, grid: Grid, origins: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------------
    def fit(self, y: pd.Series, exog: pd.DataFrame | None = None) -> FitReport:
        started = time.perf_counter()
        y = y.dropna()
        if len(y) < 2:
            raise ValueError(
                f"Not enough data: need at least {MIN_HISTORY_DAYS + 8} days, got {len(y)} values"
            )
        grid = make_grid(y, self.cfg, exog=exog)
        h, spd = self.cfg.horizon, grid.spd
        origins = np.arange(MIN_HISTORY_DAYS * spd + 1, len(grid.y) - h + 1)
        if len(origins) < 7 * spd:
            raise ValueError(
                f"Not enough data: need at least {MIN_HISTORY_DAYS + 8} days at {self.cfg.step} resolution, "
                f"got {len(grid.y) / spd:.1f} days"
            )
        split = origins[int(len(origins) * (1 - HOLDOUT_SHARE))]
        train = origins[origins + h - 1 < split]
        train = train[~np.isnan(grid.y[train])]
        self._fit(grid, train)
        hold = origins[origins >= split]
        if len(hold) > self.max_eval_origins:
            hold = hold[np.linspace(0, len(hold) - 1, self.max_eval_origins).astype(int)]
        self.report = self._evaluate(grid, hold)
        self.report.n_train = int(len(train))
        self.report.data_start = str(y.index[0])
        self.report.data_end = str(y.index[-1])
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def _evaluate(self, grid: Grid, hold: np.ndarray) -> FitReport:
        h, spd = self.cfg.horizon, grid.spd
        leads = np.arange(h)
        targets = hold[:, None] + leads[None, :]
        actual = grid.y[targets]
        paths = np.clip(self._paths(grid, hold), 0, None)
        residuals = np.abs(actual - paths)
        day = ((hold - hold[0]) // spd) % 2
        self.quantiles = conformal_quantiles(residuals[day == 0], self.cfg.interval)
        lower, point, upper = band(paths[day == 1], self.quantiles[None, :])
        weekly = grid.y[targets - 7 * spd]
        persistence = np.repeat(grid.y[hold - 1][:, None], h, axis=1)
        metrics = point_metrics(actual.ravel(), paths.ravel())
        ok = ~np.isnan(actual) & ~np.isnan(weekly)
        mae_weekly = float(np.mean(np.abs(weekly - actual)[ok]))
        metrics |= {
            "coverage": coverage(actual[day == 1].ravel(), lower.ravel(), upper.ravel()),
            "interval": self.cfg.interval,
            "mape_weekly_naive": mape(actual.ravel(), weekly.ravel()),
            "mape_persistence": mape(actual.ravel(), persistence.ravel()),
            "skill_vs_weekly_naive": 1 - float(np.mean(np.abs(paths - actual)[ok])) / mae_weekly if mae_weekly else float("nan"),
            "holdout_origins": int(len(hold)),
        }  # fmt: skip
        return FitReport({k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}, 0, "", "",
                         list(self.feature_list), 0.0, _libraries())  # fmt: skip

    def predict(
        self, y_history: pd.Series, origin: pd.Timestamp, exog: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Forecast the horizon starting at `origin` from values strictly before it (nothing later leaks)."""
        origin = pd.Timestamp(origin).tz_convert("UTC").floor(self.cfg.step)
        history = y_history[y_history.index < origin].dropna()
        if history.empty:
            raise ValueError("No history before the forecast origin")
        if exog is not None:
            exog = exog[exog.index < origin]
        end = origin + self.cfg.horizon * self.cfg.step
        grid = make_grid(history, self.cfg, end=end, exog=exog)
        o = grid.position(origin)
        point = self._paths(grid, np.array([o]))[0]
        lower, point, upper = band(point, self.quantiles)
        index = pd.date_range(origin, periods=self.cfg.horizon, freq=self.cfg.step)
        return pd.DataFrame({"point": point, "lower": lower, "upper": upper}, index=index)

    def to_bytes(self) -> bytes:
        """Pickle (XGBoost and statsmodels objects serialise themselves inside). Only ever loaded from our
        own store, where AES-GCM authenticates the bytes before they are unpickled."""
        buf = io.BytesIO()
        pickle.dump(self, buf, protocol=pickle.HIGHEST_PROTOCOL)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> Forecaster:
        obj = pickle.loads(data)  # noqa: S301 - authenticated bytes from our own store
        if not isinstance(obj, Forecaster):
            raise TypeError("Not a forecaster")
        return obj
