"""The 90 % band tracked at forecast time (models/intervals.py `track`, Forecaster.tracked_factor): it
widens after the same hour's forecasts missed, narrows after they never did, ignores what carries no
information (unknown actuals, production at night), and replays forecasts it has made before from its
cache only while the data behind them is unchanged."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from models import ForecastConfig, make_forecaster
from models.features import make_grid
from models.intervals import TRACK_DAYS, TRACK_LIMIT, track


def _ratios(days: int, leads: int, value: float) -> np.ndarray:
    return np.full((1, days, leads), value)


def test_misses_widen_the_band_and_hits_narrow_it():
    everywhere = np.ones((1, TRACK_DAYS, 24), dtype=bool)
    widened = track(_ratios(TRACK_DAYS, 24, 3.0), everywhere, 0.9)[0]  # every point 3x outside
    narrowed = track(_ratios(TRACK_DAYS, 24, 0.1), everywhere, 0.9)[0]  # every point well inside
    assert widened > 2.9  # wide enough to have covered them
    assert narrowed < 1.0 and narrowed >= np.exp(-TRACK_LIMIT) - 1e-12


def test_the_miss_share_allowed_by_the_level_leaves_the_band_as_calibrated():
    ratios = np.full((1, TRACK_DAYS, 10), 0.5)
    ratios[:, :, 0] = 2.0  # one lead in ten outside: exactly the 10 % a 90 % band allows
    factor = track(ratios, np.ones_like(ratios, dtype=bool), 0.9)[0]
    assert factor == pytest.approx(1.0)


def test_points_without_information_do_not_move_it():
    ratios = _ratios(TRACK_DAYS, 24, 5.0)
    assert track(ratios, np.zeros_like(ratios, dtype=bool), 0.9)[0] == pytest.approx(1.0)
    night = np.zeros_like(ratios, dtype=bool)
    night[:, :, 10:14] = True  # only the daylight hours of production inform it
    ratios[:, :, 10:14] = 0.2
    assert track(ratios, night, 0.9)[0] < 1.0


def test_the_factor_stays_within_its_limits():
    everywhere = np.ones((1, 200, 8), dtype=bool)
    assert track(_ratios(200, 8, 1e9), everywhere, 0.9)[0] == pytest.approx(np.exp(TRACK_LIMIT))
    assert track(_ratios(200, 8, 0.0), everywhere, 0.9)[0] == pytest.approx(np.exp(-TRACK_LIMIT))


@pytest.fixture(scope="module")
def ridge(synthetic_hourly):
    load, _weather = synthetic_hourly
    model = make_forecaster(ForecastConfig(model="ridge"))
    model.fit(load)
    return load, model


def test_a_band_calibrated_too_narrow_is_widened_and_one_too_wide_narrowed(ridge):
    """The same model and data with its calibration made 3x too narrow or 3x too wide: replaying the
    same hour of the 14 days before each origin, tracking moves the band back towards 90 % coverage of
    the weeks that follow."""
    load, model = ridge
    origins = load.index[-24 * 22 : -24 : 7]  # three weeks of origins at every hour of the day in turn
    grid = make_grid(load, model.cfg)
    pos = np.array([grid.position(o) for o in origins])
    actual = grid.y[pos[:, None] + np.arange(24)[None, :]]
    coverage = {}
    for name, scale in (("narrow", 1 / 3), ("as calibrated", 1.0), ("wide", 3.0)):
        skewed = copy.copy(model)
        skewed.__dict__.pop("_past", None)
        skewed.quantiles = model.quantiles * scale
        factor = skewed.tracked_factor(grid, pos)
        lower, _point, upper = skewed.band_for(grid, pos, skewed.forecast_paths(grid, pos))
        static = copy.copy(skewed)
        static.tracked_factor = lambda g, o: np.ones(len(o))
        s_lower, _p, s_upper = static.band_for(grid, pos, static.forecast_paths(grid, pos))
        inside = (actual >= lower) & (actual <= upper)
        coverage[name] = (inside.mean(), ((actual >= s_lower) & (actual <= s_upper)).mean(), factor.mean())
    (narrow, narrow_static, narrow_factor) = coverage["narrow"]
    (wide, wide_static, wide_factor) = coverage["wide"]
    assert narrow_factor > 2 and wide_factor < 0.6, coverage
    assert narrow_static < 0.6 and 0.85 <= narrow <= 0.95, coverage  # measured: 47 % -> 90 %
    assert wide_static > 0.99 and wide < 0.95, coverage  # measured: 99.7 % -> 92.2 %
    assert 0.8 <= coverage["as calibrated"][0] <= 0.97, coverage


def test_replayed_forecasts_are_cached_until_the_data_behind_them_changes(ridge):
    load, model = ridge
    calls = []
    original = model.forecast_paths

    def counting(grid, origins):
        calls.append(len(origins))
        return original(grid, origins)

    model.forecast_paths = counting
    model.__dict__.pop("_past", None)  # start cold: the test before replayed some of the same days
    try:
        origin = load.index[-24 * 2]
        history = load[load.index < origin]
        first = model.predict(history, origin)
        assert calls == [1, TRACK_DAYS]  # the origin, then the same hour on each of the days before
        calls.clear()
        again = model.predict(history, origin)
        assert calls == [1]  # only the origin itself: its 14 replayed days come from the cache
        pd.testing.assert_frame_equal(first, again)
        calls.clear()
        corrected = history.copy()
        corrected.iloc[-30] *= 1.5  # 30 h before the origin: only the day before saw it, and is redone
        model.predict(corrected, origin)
        assert calls == [1, 1]
    finally:
        del model.forecast_paths
    assert "_past" not in model.__getstate__()  # the cache is never stored with the model
