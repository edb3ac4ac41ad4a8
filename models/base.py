"""The forecaster template: fit with an honest time-ordered hold-out, conformal bands, serialisation.

Fitting: origins whose whole horizon ends before the last 15 % of the data train the model; the last
15 % is the hold-out, where point metrics (and every baseline's, on the same points) are measured. The
conformal band is calibrated on residuals the model never trained on, from two seasons: the hold-out,
and the first 15 % forecast by a model fitted on the rest (blocked cross-validation); even local days
calibrate, odd days measure coverage. The served model is then refitted on every origin, so the
hold-out's recent weeks inform it. The band's width is in units of the last day's spread
around the similar-day baseline (`spread`), so it widens in volatile spells, and at forecast time it is
tracked (`band_for`, models/intervals.py): replayed over the same time of day on the days before the
origin, it widens where those forecasts missed too often and narrows where they never did.
"""

from __future__ import annotations

import io
import pickle
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models import progress
from models.config import ForecastConfig
from models.features import SIMILAR_LOOKBACK_DAYS, Grid, make_grid, window_mean
from models.intervals import TRACK_DAYS, band, conformal_quantiles, track
from models.metrics import coverage, mae, mape, point_metrics

HOLDOUT_SHARE = 0.15
MIN_HISTORY_DAYS = 7
# Serialised models carry this; a model pickled by an older layout is refused with "retrain" rather
# than run with state it does not have.
MODEL_FORMAT = 2
# replayed forecasts a loaded model keeps (14 days x 24 origin times x 12 scopes' worth)
PAST_PATHS_KEPT = 4096


@dataclass
class FitReport:
    metrics: dict
    n_train: int
    data_start: str
    data_end: str
    features: list[str]
    seconds: float
    libraries: dict[str, str] = field(default_factory=dict)


_PAST_LOCK = threading.Lock()


def _libraries() -> dict[str, str]:
    import sklearn
    import statsmodels
    import xgboost

    return {"numpy": np.__version__, "pandas": pd.__version__, "xgboost": xgboost.__version__,
            "statsmodels": statsmodels.__version__, "scikit-learn": sklearn.__version__}  # fmt: skip


def level_at(grid: Grid, origins: np.ndarray) -> np.ndarray:
    """The mean of the week before each origin; at least 5 % of the mean of the four weeks before it."""
    origins = np.asarray(origins, dtype=int)
    level = window_mean(grid.y, origins, 7 * grid.spd)
    floor = np.nan_to_num(0.05 * window_mean(np.abs(grid.y), origins, 28 * grid.spd), nan=0.0)
    floor = np.maximum(floor, 1e-6)
    return np.where(np.isfinite(level) & (level > floor), level, floor)


def spread(grid: Grid, origins: np.ndarray) -> np.ndarray:
    """How far the load strayed from its similar-day baseline in the day before each origin (mean
    absolute deviation; at least 1 % of the level): the band's unit. A volatile day (the first of a heat
    wave) widens the band, a calm one narrows it, so the band keeps its coverage when the weather turns.
    The day reacts sooner than the week did (docs/benchmarks.md)."""
    from models.features import similar_day_base

    origins = np.asarray(origins, dtype=int)
    deviation = np.abs(grid.y - similar_day_base(grid))
    value = window_mean(deviation, origins, grid.spd)
    floor = 0.01 * level_at(grid, origins)
    return np.where(np.isfinite(value) & (value > floor), value, floor)


def without_mape(metrics: dict, cfg: ForecastConfig) -> dict:
    """Production is zero at night, where a percentage error means nothing: its metrics carry normalised
    MAE and no MAPE at all. With the installed capacity known, nMAE is MAE / (capacity x interval), the
    normalisation of the solar-forecasting literature (Zhang et al. 2015, "A suite of metrics for
    assessing the performance of solar power forecasting", Solar Energy 111: 157-175; IEA PVPS Task 16):
    it compares scopes of any size and does not blow up in winter. Without it, MAE / mean production."""
    if cfg.target != "production":
        return metrics
    out = {k: v for k, v in metrics.items() if not k.startswith("mape")}
    capacity = cfg.capacity_kwh
    if capacity and isinstance(out.get("mae"), float):
        out["nmae"] = round(out["mae"] / capacity, 6)
    out["nmae_basis"] = "capacity" if capacity else "mean"
    return out


class Forecaster:
    """Subclasses implement `fit_origins(grid, origins)` and `forecast_paths(grid, origins) -> (n, horizon)`."""

    max_eval_origins = 1500

    def __init__(self, cfg: ForecastConfig):
        self.cfg = cfg
        self.format = MODEL_FORMAT
        self.quantiles = np.zeros(cfg.horizon)
        self.report: FitReport | None = None
        self.feature_list: list[str] = []

    @property
    def name(self) -> str:
        return self.cfg.model

    # -- to implement ---------------------------------------------------------------------------------
    def fit_origins(self, grid: Grid, origins: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def forecast_paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------------
    def split(self, y: pd.Series, exog: pd.DataFrame | None) -> tuple[Grid, np.ndarray, np.ndarray]:
        """The grid, the training origins and the hold-out origins (time-ordered, never overlapping)."""
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
        known = origins[~np.isnan(grid.y[origins])]
        train = known[known + h - 1 < split]
        hold = origins[origins >= split]
        if len(hold) > self.max_eval_origins:
            hold = hold[np.linspace(0, len(hold) - 1, self.max_eval_origins).astype(int)]
        return grid, train, hold, known

    def fit(self, y: pd.Series, exog: pd.DataFrame | None = None) -> FitReport:
        started = time.perf_counter()
        grid, train, hold, known = self.split(y, exog)
        early, later = self.early_block(grid, known)
        with progress.stage(0.0, 0.25, "calibration fit"):
            self.fit_origins(grid, later)
        with progress.stage(0.25, 0.35, "calibration forecasts"):
            early_paths = self.holdout_paths(grid, early)
        with progress.stage(0.35, 0.6, "hold-out fit"):
            self.fit_origins(grid, train)
        with progress.stage(0.6, 0.7, "hold-out forecasts"):
            self.report = self._evaluate(grid, hold, calibration=(early, early_paths))
        with progress.stage(0.7, 1.0, "final fit"):
            self.fit_origins(grid, known)  # served: refitted on every origin, the hold-out's weeks included
        return self._finish(y, known, started)

    def early_block(self, grid: Grid, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first HOLDOUT_SHARE of the origins (subsampled) and the origins a horizon after them, which
        fit the model that forecasts them: a second calibration block from another season."""
        cut = known[int(len(known) * HOLDOUT_SHARE)]
        early = known[known < cut]
        if len(early) > self.max_eval_origins:
            early = early[np.linspace(0, len(early) - 1, self.max_eval_origins).astype(int)]
        return early, known[known >= cut + self.cfg.horizon]

    def _finish(self, y: pd.Series, train: np.ndarray, started: float) -> FitReport:
        y = y.dropna()
        self.report.n_train = int(len(train))
        self.report.data_start = str(y.index[0])
        self.report.data_end = str(y.index[-1])
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def night(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        """(n, horizon) True where a production target's sun is below the horizon."""
        t = np.asarray(origins, dtype=int)[:, None] + np.arange(self.cfg.horizon)[None, :]
        sun = grid.extra.get("sun_elevation")
        if self.cfg.target != "production" or sun is None:
            return np.zeros(t.shape, dtype=bool)
        return sun[np.clip(t, 0, len(sun) - 1)] < -1.0

    def capacity_kwh(self) -> float | None:
        """The scope's installed PV times the interval (production), else None; a model pickled before
        the field existed has none."""
        return self.cfg.capacity_kwh  # a model pickled before the field: the class default, None

    def clean(self, grid: Grid, origins: np.ndarray, paths: np.ndarray) -> np.ndarray:
        """Physical limits: energy is never negative, PV produces nothing while the sun is down and never
        more than its installed capacity."""
        paths = np.clip(np.nan_to_num(paths, nan=0.0), 0, self.capacity_kwh())
        return np.where(self.night(grid, origins), 0.0, paths)

    def holdout_paths(self, grid: Grid, hold: np.ndarray) -> np.ndarray:
        return self.clean(grid, hold, self.forecast_paths(grid, hold))

    def _evaluate(
        self, grid: Grid, hold: np.ndarray, paths: np.ndarray | None = None,
        calibration: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> FitReport:  # fmt: skip
        """Hold-out metrics beside every baseline, and the conformal band: calibrated on even local days
        of the hold-out and of the `calibration` block (origins, paths), its coverage measured on odd
        days."""
        from models.baselines import BASELINES, baseline_paths

        h, spd = self.cfg.horizon, grid.spd
        paths = self.holdout_paths(grid, hold) if paths is None else paths
        blocks = [(hold, paths)] + ([calibration] if calibration is not None and len(calibration[0]) else [])
        scaled, odd = [], []
        for origins, block_paths in blocks:
            actual = grid.y[origins[:, None] + np.arange(h)[None, :]]
            unit = spread(grid, origins)[:, None]
            day = ((origins - origins[0]) // spd) % 2
            scaled.append(np.abs(actual - block_paths)[day == 0] / unit[day == 0])
            odd.append((actual[day == 1], block_paths[day == 1], unit[day == 1]))
        self.quantiles = conformal_quantiles(np.vstack(scaled), self.cfg.interval)
        inside = []
        for actual, block_paths, unit in odd:
            lower, _point, upper = band(block_paths, self.quantiles[None, :] * unit)
            inside.append(coverage(actual.ravel(), lower.ravel(), upper.ravel()) * actual.size)
        actual = grid.y[hold[:, None] + np.arange(h)[None, :]]
        metrics = point_metrics(actual.ravel(), paths.ravel())
        model_mae = metrics["mae"]
        metrics |= {"coverage": sum(inside) / max(1, sum(a.size for a, _p, _u in odd)),
                    "interval": self.cfg.interval, "holdout_origins": int(len(hold))}  # fmt: skip
        for name in BASELINES:
            base = baseline_paths(name, grid.y, hold, h, spd)
            base_mae = mae(actual.ravel(), base.ravel())
            metrics[f"mae_{name}"] = base_mae
            metrics[f"mape_{name}"] = mape(actual.ravel(), base.ravel())
            metrics[f"skill_vs_{name}"] = 1 - model_mae / base_mae if base_mae else float("nan")
        metrics = {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}
        return FitReport(
            without_mape(metrics, self.cfg), 0, "", "", list(self.feature_list), 0.0, _libraries()
        )

    def predict(
        self, y_history: pd.Series, origin: pd.Timestamp, exog: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Forecast the horizon starting at `origin` from values strictly before it (nothing later leaks).
        `exog` (weather) may reach to the end of the horizon: a weather forecast for the target hours."""
        origin = pd.Timestamp(origin).tz_convert("UTC").floor(self.cfg.step)
        history = y_history[y_history.index < origin].dropna()
        if history.empty:
            raise ValueError("No history before the forecast origin")
        end = origin + self.cfg.horizon * self.cfg.step
        if exog is not None:
            exog = exog[exog.index < end]
        grid = make_grid(history, self.cfg, end=end, exog=exog)
        o = np.array([grid.position(origin)])
        lower, point, upper = (a[0] for a in self.band_for(grid, o, self.forecast_paths(grid, o)))
        index = pd.date_range(origin, periods=self.cfg.horizon, freq=self.cfg.step)
        return pd.DataFrame({"point": point, "lower": lower, "upper": upper}, index=index)

    def band_for(
        self, grid: Grid, origins: np.ndarray, paths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lower, point and upper (n, horizon) of raw `paths` from `origins`: cleaned, with the calibrated
        band in units of the day's spread, widened or narrowed by tracking (models/intervals.py), and
        nothing at night for production, not even in the band."""
        origins = np.asarray(origins, dtype=int)
        paths = self.clean(grid, origins, paths)
        unit = spread(grid, origins) * self.tracked_factor(grid, origins)
        lower, point, upper = band(paths, self.quantiles[None, :] * unit[:, None])
        if self.capacity_kwh() is not None:  # within what the installed PV can produce
            upper = np.minimum(upper, self.capacity_kwh())
        return lower, point, np.where(self.night(grid, origins), 0.0, upper)

    def tracked_factor(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        """Each origin's band factor, replayed over the same time of day on the TRACK_DAYS days before
        it: how often this model's band (as calibrated) missed there. Origins without that history keep
        a factor of 1."""
        h, spd = self.cfg.horizon, grid.spd
        past = np.asarray(origins, dtype=int)[:, None] - spd * np.arange(TRACK_DAYS, 0, -1)[None, :]
        usable = (past > MIN_HISTORY_DAYS * spd) & (h <= spd)  # each replayed horizon ends before the origin
        known = np.unique(past[usable])
        if not len(known) or not np.any(self.quantiles > 0):
            return np.ones(len(past))
        targets = known[:, None] + np.arange(h)[None, :]
        half_width = self.quantiles[None, :] * spread(grid, known)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(grid.y[targets] - self.past_paths(grid, known)) / half_width
        informative = np.isfinite(ratio) & (half_width > 0) & ~self.night(grid, known)
        rows = np.searchsorted(known, np.where(usable, past, known[0]))
        return track(ratio[rows], informative[rows] & usable[:, :, None], self.cfg.interval)

    def past_paths(self, grid: Grid, origins: np.ndarray) -> np.ndarray:
        """Cleaned forecasts from past origins, as the model made (or would have made) them then. A loaded
        model keeps them, keyed by the origin's time and a digest of the values and weather before it, so
        the next request of the day forecasts no past origin again (SARIMA runs a filter and MSTL a
        decomposition per origin); data corrected since changes the digest and the forecast is redone."""
        cache, lock = self.__dict__.setdefault("_past", OrderedDict()), _PAST_LOCK
        span = SIMILAR_LOOKBACK_DAYS * grid.spd
        keys = []
        for o in origins:
            window = slice(max(0, o - span), o + self.cfg.horizon)
            digest = hash((grid.y[max(0, o - span):o].tobytes(),
                           *(v[window].tobytes() for v in grid.extra.values())))  # fmt: skip
            keys.append((grid.times[o], digest))
        with lock:
            missing = [i for i, key in enumerate(keys) if key not in cache]
        out = np.empty((len(origins), self.cfg.horizon))
        if missing:
            todo = np.asarray(origins)[missing]
            fresh = self.clean(grid, todo, self.forecast_paths(grid, todo))
            with lock:
                for i, path in zip(missing, fresh, strict=True):
                    cache[keys[i]] = path
                while len(cache) > PAST_PATHS_KEPT:
                    cache.popitem(last=False)
            out[missing] = fresh
        with lock:
            for i, key in enumerate(keys):
                if key in cache:
                    cache.move_to_end(key)
                    out[i] = cache[key]
        return out

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_past", None)  # a cache, not part of the model
        return state

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
        if obj.__dict__.get("format", 1) != MODEL_FORMAT:
            raise ValueError("A model stored by an older version of the forecasters: train it again")
        return obj
