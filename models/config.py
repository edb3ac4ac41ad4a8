"""What a forecast is asked for, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

PRODUCTS = {"next-24-hours": ("1h", 24), "short-term": ("15min", None)}
MODELS = ("auto", "xgboost", "ridge", "sarima", "mstl", "seasonal_naive")
STRATEGIES = ("direct", "recursive")
TARGETS = ("consumption", "production")
# What model=auto minimises on the hold-out: MAE for aggregates; RMSE for single homes, which are judged
# by CV(RMSE) against the 7-day same-hour mean (a mean, so squared error is its home ground).
SELECTION = ("mae", "rmse")
MAX_SHORT_TERM_HORIZON = 20


@dataclass(frozen=True)
class ForecastConfig:
    product: str = "next-24-hours"
    horizon: int = 24
    model: str = "auto"
    strategy: str = "direct"
    target: str = "consumption"
    interval: float = 0.9
    timezone: str = "Europe/Athens"
    country: str = "GR"
    latitude: float = 37.98
    longitude: float = 23.73
    selection: str = "mae"
    # production only: the scope's installed PV (sum of the rated kW(p) of its PVs and parks), None when
    # unknown; forecasts and bands never exceed it times the interval, and nMAE is normalised by it
    capacity_kw: float | None = None

    def __post_init__(self) -> None:
        if self.product not in PRODUCTS:
            raise ValueError(f"product must be one of {', '.join(PRODUCTS)}")
        if self.product == "next-24-hours" and self.horizon != 24:
            raise ValueError("next-24-hours forecasts exactly 24 hourly steps")
        if self.product == "short-term" and not (
            isinstance(self.horizon, int) and 1 <= self.horizon <= MAX_SHORT_TERM_HORIZON
        ):
            raise ValueError(f"short-term horizon must be an integer from 1 to {MAX_SHORT_TERM_HORIZON}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}")
        if self.selection not in SELECTION:
            raise ValueError(f"selection must be one of {', '.join(SELECTION)}")
        if not 0.5 <= self.interval < 1:
            raise ValueError("interval must be within [0.5, 1)")
        if self.capacity_kw is not None and not self.capacity_kw > 0:
            raise ValueError("capacity_kw must be positive when given")

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(PRODUCTS[self.product][0])

    @property
    def capacity_kwh(self) -> float | None:
        """The most a production scope can yield in one interval (kWh), None for consumption or unknown."""
        if self.target != "production" or self.capacity_kw is None:
            return None
        return self.capacity_kw * self.step / pd.Timedelta(hours=1)

    @property
    def steps_per_day(self) -> int:
        return int(pd.Timedelta(days=1) / self.step)

    def as_dict(self) -> dict:
        return asdict(self)
