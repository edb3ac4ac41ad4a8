"""Consumption anomalies of house meters (spikes, night load, stuck meters): pure maths over a frame of
15-minute mean power, judged against the house's own history with robust statistics a few anomalies
cannot drag along. The statistics and why: docs/data-rules.md, "Anomalies".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STEP = pd.Timedelta(minutes=15)
EVENT_COLUMNS = ["house_id", "kind", "start", "end", "score", "detail"]


@dataclass(frozen=True)
class AnomalyConfig:
    quantile: float = 0.97  # the house's ordinary ceiling at an hour: this quantile of its history
    ceiling_margin: float = 1.25  # ... times this margin
    ratio_min: float = 2.0  # and at least this many times the usual (median) level
    mad_k: float = 4.0  # and at least the median plus this many robust standard deviations
    min_excess_kw: float = 0.2  # and at least this much above the median (a 50 W blip is no anomaly)
    pool_hours: int = 1  # hours either side pooled into an hour's median and spread
    ceiling_pool_hours: int = 2  # hours either side pooled into its ceiling (appliances drift in time)
    ceiling_by_daytype: bool = False  # appliance habits differ less by day type than the base load
    min_high_slots: int = 4  # a high-load event lasts at least an hour
    min_flat_slots: int = 8  # a stuck meter repeats one value for at least two hours
    max_gap_slots: int = 1  # flagged slots this close are one event
    night_hours: tuple[int, int] = (0, 6)  # local [from, to) hours that count as night
    flat_tolerance_kw: float = 1e-6
    min_samples: int = 12  # fewer history samples at an hour: no level judgement there


def _utc(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _regular(df: pd.DataFrame) -> pd.DataFrame:
    """One house's power and explained power on a gap-preserving 15-minute UTC grid (gaps are NaN)."""
    cols = ["power_kw", "explained_kw"] if "explained_kw" in df else ["power_kw"]
    s = df.set_index("ts")[cols].astype(float).sort_index()
    s = s[~s.index.duplicated(keep="last")]
    if "explained_kw" not in s:
        s["explained_kw"] = 0.0
    s["explained_kw"] = s["explained_kw"].fillna(0.0)
    if s.empty:
        return s
    grid = pd.date_range(s.index[0], s.index[-1], freq=STEP)
    return s.reindex(grid)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a boolean array."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _merge(runs: list[tuple[int, int]], max_gap: int) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] <= max_gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def flat_mask(power_kw: np.ndarray, cfg: AnomalyConfig) -> np.ndarray:
    """True where the value is part of a run of identical non-zero readings of `min_flat_slots` or more."""
    same = np.zeros(len(power_kw), dtype=bool)
    if len(power_kw) > 1:
        with np.errstate(invalid="ignore"):
            same[1:] = np.abs(np.diff(power_kw)) <= cfg.flat_tolerance_kw
    out = np.zeros(len(power_kw), dtype=bool)
    for a, b in _runs(same):  # a run of k "same as previous" flags spans k + 1 readings
        first = a - 1
        if b - first >= cfg.min_flat_slots and np.nanmax(np.abs(power_kw[first:b])) > cfg.flat_tolerance_kw:
            out[first:b] = True
    return out


def _hour_distances(local_hour: np.ndarray) -> np.ndarray:
    """[hour, reading]: hours between the reading's local hour and `hour`, around the clock (0..12)."""
    return np.abs((local_hour[None, :] - np.arange(24)[:, None] + 12) % 24 - 12)


def leave_one_day_out_quantiles(
    y: np.ndarray, y_day: np.ndarray, days: np.ndarray, q: float, min_samples: int
) -> np.ndarray:
    """For each day in `days`: the `q` quantile (numpy's default "linear" method) of the samples `y`
    whose day (`y_day`) is another day; NaN where fewer than `min_samples` such samples remain.

    Exact and vectorised: `y` is sorted once; a day's own samples are at known ranks of the sorted
    array, so the k-th order statistic of the rest is found by stepping k over those ranks (a day holds
    a few dozen samples at most), then interpolated exactly as `np.quantile` does.
    """
    out = np.full(len(days), np.nan)
    n = len(y)
    if n == 0 or len(days) == 0:
        return out
    order = np.argsort(y, kind="stable")
    ys = y[order]
    by_day = np.lexsort((np.arange(n), y_day[order]))  # ranks in the sorted array, grouped by day
    grouped = y_day[order][by_day]
    lo = np.searchsorted(grouped, days, side="left")
    own = np.searchsorted(grouped, days, side="right") - lo  # samples of each day in the pool
    m = n - own  # samples left when the day is out
    width = int(own.max())
    if width:
        j = np.arange(width)
        take = np.minimum(lo[:, None] + j, n - 1)
        ranks = np.where(j < own[:, None], by_day[take], n)  # ascending per day; n = padding
    ok = m >= max(min_samples, 1)
    if not ok.any():
        return out
    m, ranks = m[ok], (ranks[ok] if width else None)
    virtual = (m - 1) * q
    prev = np.floor(virtual)
    gamma = virtual - prev
    prev = prev.astype(np.intp)
    nxt = np.minimum(prev + 1, m - 1)

    def position(k: np.ndarray) -> np.ndarray:
        """Index in `ys` of the k-th (0-based) sample left when each day's own ranks are skipped."""
        k = k.copy()
        for col in range(width):
            k += ranks[:, col] <= k
        return k

    a, b = ys[position(prev)], ys[position(nxt)]
    diff = b - a  # np.quantile's interpolation (numpy's _lerp), operation for operation
    value = a + diff * gamma
    value = np.where(gamma >= 0.5, b - diff * (1 - gamma), value)
    out[ok] = value
    return out


def hourly_baseline(
    power_kw: np.ndarray, local_hour: np.ndarray, weekend: np.ndarray, day: np.ndarray, cfg: AnomalyConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per reading: the usual level (median), robust spread (1.4826 MAD) and ordinary ceiling (high
    quantile) of the house at that local hour and day type, pooling the hours either side.

    The ceiling of a reading is learned from the OTHER days only (leave one day out): a three-hour
    anomaly would otherwise be a tenth of a month's weekend samples at those hours and raise its own bar.
    `day` is any integer label of the reading's local day (one day type per day).
    """
    n = len(power_kw)
    median, sigma, ceiling = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    valid = ~np.isnan(power_kw)
    distance = _hour_distances(local_hour)
    # the ceiling pool ignores the day type unless configured: one leave-one-day-out table per hour then
    ceilings: dict[tuple[bool | None, int], tuple[np.ndarray, np.ndarray]] = {}

    def ceiling_table(is_weekend: bool, hour: int) -> tuple[np.ndarray, np.ndarray]:
        key = (is_weekend if cfg.ceiling_by_daytype else None, hour)
        if key not in ceilings:
            wide = valid & (distance[hour] <= cfg.ceiling_pool_hours)
            if cfg.ceiling_by_daytype:
                wide &= weekend == is_weekend
            at_hour = local_hour == hour
            if cfg.ceiling_by_daytype:
                at_hour &= weekend == is_weekend
            target_days = np.unique(day[at_hour])
            values = leave_one_day_out_quantiles(
                power_kw[wide], day[wide], target_days, cfg.quantile, cfg.min_samples
            )
            ceilings[key] = (target_days, values)
        return ceilings[key]

    for is_weekend in (False, True):
        of_type = weekend == is_weekend
        for hour in range(24):
            target = of_type & (local_hour == hour)
            if not target.any():
                continue
            x = power_kw[valid & of_type & (distance[hour] <= cfg.pool_hours)]
            if len(x) < cfg.min_samples:
                continue
            med = float(np.median(x))
            median[target] = med
            sigma[target] = float(np.median(np.abs(x - med))) * 1.4826
            days, values = ceiling_table(is_weekend, hour)
            ceiling[target] = values[np.searchsorted(days, day[target])]
    return median, sigma, ceiling


def _house_events(house_id, frame: pd.DataFrame, timezone: str, cfg: AnomalyConfig) -> list[dict]:
    series = frame["power_kw"]
    values = series.to_numpy(float)
    unexplained = values - frame["explained_kw"].to_numpy(float)
    local = series.index.tz_convert(timezone)
    local_hour = np.asarray(local.hour)
    weekend = np.asarray(local.day_of_week >= 5)
    flat = flat_mask(values, cfg)

    day = np.asarray(local.normalize().asi8)
    median, sigma, high = hourly_baseline(np.where(flat, np.nan, unexplained), local_hour, weekend, day, cfg)
    ceiling = np.fmax.reduce(
        [
            high * cfg.ceiling_margin,
            median * cfg.ratio_min,
            median + cfg.mad_k * sigma,
            median + cfg.min_excess_kw,
        ]
    )
    with np.errstate(invalid="ignore"):
        above = (unexplained > ceiling) & ~flat

    events = []
    for a, b in _runs(flat):
        events.append(
            {
                "house_id": house_id,
                "kind": "stuck_meter",
                "start": series.index[a],
                "end": series.index[b - 1] + STEP,
                "score": (b - a) / 4,  # hours stuck
                "detail": {"value_kw": round(float(values[a]), 4), "hours": (b - a) / 4},
            }
        )
    for a, b in _merge(_runs(above), cfg.max_gap_slots):
        if int(above[a:b].sum()) < cfg.min_high_slots:
            continue
        seg = unexplained[a:b]
        usual = np.nanmedian(median[a:b])
        hours = local_hour[a:b]
        night = np.mean((hours >= cfg.night_hours[0]) & (hours < cfg.night_hours[1])) >= 0.5
        events.append(
            {
                "house_id": house_id,
                "kind": "night_load" if night else "consumption_spike",
                "start": series.index[a],
                "end": series.index[b - 1] + STEP,
                "score": round(float(np.nanmean(seg) / usual), 3) if usual > 0 else float("inf"),
                "detail": {
                    "mean_unexplained_kw": round(float(np.nanmean(seg)), 4),
                    "peak_unexplained_kw": round(float(np.nanmax(seg)), 4),
                    "usual_kw": round(float(usual), 4),
                    "excess_kw": round(float(np.nanmean(seg - median[a:b])), 4),
                    "peak_meter_kw": round(float(np.nanmax(values[a:b])), 4),
                },
            }
        )
    return events


def detect_anomalies_frame(
    df: pd.DataFrame,
    timezone: str = "Europe/Athens",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    config: AnomalyConfig | None = None,
) -> pd.DataFrame:
    """Anomaly events in a frame of `house_id`, `ts` (UTC interval start), `power_kw` (the main meter's
    mean power over the 15 minutes) and optionally `explained_kw` (sub-metered appliances' mean power).

    The whole frame is the history the baselines learn from; only events overlapping [start, end) are
    returned (so a caller can pass extra history before the window it reports on). Columns: house_id,
    kind, start, end (UTC, end exclusive), score (mean power over the usual level for high loads; hours
    for a stuck meter) and detail (a dict).
    """
    cfg = config or AnomalyConfig()
    if df.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    df = df.assign(ts=pd.to_datetime(df["ts"], utc=True))
    events: list[dict] = []
    for house_id, group in df.groupby("house_id", sort=True):
        frame = _regular(group)
        if len(frame) >= 2:
            events += _house_events(house_id, frame, timezone, cfg)
    out = pd.DataFrame(events, columns=EVENT_COLUMNS)
    if start is not None:
        out = out[out["end"] > _utc(start)]
    if end is not None:
        out = out[out["start"] < _utc(end)]
    return out.sort_values(["start", "house_id"], kind="stable").reset_index(drop=True)
