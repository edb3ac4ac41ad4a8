"""Real load series for evaluating forecasters, and the protocol they are scored with (issue 11).

Victoria 2014 (`shared/data/vic-elecdemand-2014.csv`): half-hourly operational demand of Victoria,
Australia (AEMO, via the fpp2 R package) with Melbourne's temperature; timestamps in AEST (UTC+10, no
daylight saving). The test period is the last 8 weeks, from 2014-11-03 00:00 AEST; models train on
everything before it. next-24-hours: hourly means, 56 origins at AEST midnight. short-term: the
half-hours interpolated to 15 minutes, horizon 8, 224 origins every 6 hours.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

VIC_PLACE = {"timezone": "Australia/Melbourne", "country": "AU-VIC", "latitude": -37.81, "longitude": 144.96}
VIC_TEST_START = pd.Timestamp("2014-11-03T00:00:00+10:00").tz_convert("UTC")
VIC_TEST_DAYS = 56


def vic_path() -> Path:
    """ACCURACY_DATA_DIR, else the workplace's shared/data beside the repository."""
    root = os.environ.get("ACCURACY_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(root) / "vic-elecdemand-2014.csv"


def load_vic(path: Path | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """(demand in GW at half-hour starts, UTC; weather frame with temperature_c)."""
    frame = pd.read_csv(path or vic_path())
    index = pd.to_datetime(frame["timestamp"], utc=True)
    demand = pd.Series(frame["demand_gw"].to_numpy(float), index=index, name="demand_gw")
    weather = pd.DataFrame({"temperature_c": frame["temperature_c"].to_numpy(float)}, index=index)
    return demand, weather


def vic_product(demand: pd.Series, product: str) -> tuple[pd.Series, pd.DatetimeIndex]:
    """The series and the test origins of a product under the protocol above."""
    if product == "next-24-hours":
        origins = pd.date_range(VIC_TEST_START, periods=VIC_TEST_DAYS, freq="1D")
        return demand.resample("1h").mean(), origins
    quarter = pd.date_range(demand.index[0], demand.index[-1], freq="15min")
    origins = pd.date_range(VIC_TEST_START, periods=VIC_TEST_DAYS * 4, freq="6h")
    return demand.reindex(quarter).interpolate(), origins
