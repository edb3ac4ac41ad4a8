"""Forecast accuracy on a real grid series (Victoria 2014, models/realdata.py) beside the baselines:
the issue-11 targets on the first 14 days of the 8-week test (`make bench-accuracy` runs all 56)."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from models import ForecastConfig
from models.backtest import evaluate
from models.realdata import VIC_PLACE, load_vic, vic_path, vic_product


@pytest.fixture(scope="module")
def victoria():
    if not vic_path().exists():
        message = (
            f"{vic_path()} is missing: set ACCURACY_DATA_DIR to the folder holding vic-elecdemand-2014.csv"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return load_vic()


def _run(victoria, product: str, weather: bool, train_days: int | None = None) -> dict:
    demand, temperature = victoria
    y, origins = vic_product(demand, product)
    horizon = 24 if product == "next-24-hours" else 8
    cfg = ForecastConfig(product=product, horizon=horizon, **VIC_PLACE)
    return evaluate(
        y, cfg, origins[: len(origins) // 4], exog=temperature if weather else None, train_days=train_days
    )


def test_next_24_hours_without_weather_beats_weekly_naive_by_31_percent(victoria):
    r = _run(victoria, "next-24-hours", weather=False)
    assert r["mape"] <= 0.048, r
    assert r["skill_vs_weekly_naive"] >= 0.31 and r["skill_vs_weekly_naive_adjusted"] > 0, r
    assert r["mape"] < r["mape_yesterday"] and r["mape"] < r["mape_persistence"], r
    assert 0.88 <= r["coverage"] <= 0.92, r
    assert r["train_seconds"] < 300, r  # the 60 s target is measured by `make bench-accuracy`, not here


def test_next_24_hours_with_ex_post_temperature_meets_3_8_percent_and_its_band_covers_90(victoria):
    r = _run(victoria, "next-24-hours", weather=True)
    assert r["mape"] <= 0.038, r
    assert 0.88 <= r["coverage"] <= 0.92, r


def test_short_term_on_the_products_90_days_beats_the_level_adjusted_naive_by_30_percent(victoria):
    r = _run(victoria, "short-term", weather=False, train_days=90)
    assert r["mape"] <= 0.012, r
    assert r["skill_vs_weekly_naive_adjusted"] >= 0.30 and r["skill_vs_persistence"] > 0.5, r
    assert 0.88 <= r["coverage"] <= 0.92, r


def test_the_protocol_scores_the_issues_baselines(victoria):
    """The baselines as the issue measured them on all 56 days: the protocol is the issue's."""
    demand, _ = victoria
    y, origins = vic_product(demand, "next-24-hours")
    from models.backtest import forecast_origins, scores
    from models.baselines import BaselineForecaster

    model = BaselineForecaster(ForecastConfig(**VIC_PLACE), "weekly_naive")
    s = scores(forecast_origins(model, y, origins))
    assert s["mape_weekly_naive"] == pytest.approx(0.0699, abs=5e-4)
    y, origins = vic_product(demand, "short-term")
    model = BaselineForecaster(ForecastConfig(product="short-term", horizon=8, **VIC_PLACE), "persistence")
    s = scores(forecast_origins(model, y, origins))
    assert s["mape_persistence"] == pytest.approx(0.0562, abs=5e-4)
    assert s["mape_weekly_naive_adjusted"] == pytest.approx(0.0172, abs=5e-4)
    assert isinstance(y.index, pd.DatetimeIndex) and len(origins) == 224
