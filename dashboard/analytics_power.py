"""Power quality and load shape, pure maths over readings or 15-minute rollups: EN 50160 voltage events,
daily power factor, weekday/weekend load profiles. A reading lasts until the meter's next one, capped at
`max_gap_s` (docs/data-rules.md, "Power quality").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SAG_FRACTION, SWELL_FRACTION, INTERRUPTION_FRACTION = 0.90, 1.10, 0.05
VOLTAGE_KINDS = ("interruption", "sag", "swell")
LOW_POWER_FACTOR = 0.9
VOLTAGE_EVENT_COLUMNS = [
    "house_id", "device", "kind", "start", "end", "duration_s", "min_voltage_v", "max_voltage_v", "readings",
]  # fmt: skip


def voltage_class(voltage_v: np.ndarray, nominal_v: float = 230.0) -> np.ndarray:
    """'interruption', 'sag', 'swell' or '' per reading.

    Thresholds are rounded to the millivolt so that floating point cannot move a boundary: at 230 V,
    207.0 V is not a sag and 206.9 V is; 253.0 V is not a swell; 11.5 V is an interruption.
    """
    v = np.asarray(voltage_v, dtype=float)
    sag = round(SAG_FRACTION * nominal_v, 3)
    swell = round(SWELL_FRACTION * nominal_v, 3)
    interruption = round(INTERRUPTION_FRACTION * nominal_v, 3)
    out = np.full(v.shape, "", dtype=object)
    out[v < sag] = "sag"
    out[v > swell] = "swell"
    out[v <= interruption] = "interruption"
    return out


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Seconds since 1970 (UTC), whatever the datetime resolution of the column."""
    return ((pd.to_datetime(ts, utc=True) - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
        float
    )


def interval_seconds(ts: pd.Series, max_gap_s: float) -> np.ndarray:
    """How long each reading of one meter (sorted by time) stands for: the gap to the next, capped."""
    t = epoch_seconds(ts)
    if len(t) == 0:
        return np.zeros(0)
    gaps = np.diff(t)
    cadence = float(np.median(gaps)) if len(gaps) else max_gap_s
    return np.minimum(np.append(gaps, min(cadence, max_gap_s)), max_gap_s)


def voltage_events_frame(df: pd.DataFrame, nominal_v: float = 230.0, max_gap_s: float = 900) -> pd.DataFrame:
    """Events from readings with columns house_id, device, ts (UTC), voltage_v.

    An event ends where the meter's next reading begins (or after the capped interval of its last
    reading); a silence longer than `max_gap_s` also ends it. Readings without a voltage are ignored.
    """
    rows: list[dict] = []
    df = df.dropna(subset=["voltage_v"])
    for (house_id, device), g in df.groupby(["house_id", "device"], sort=True):
        g = g.assign(ts=pd.to_datetime(g["ts"], utc=True)).sort_values("ts")
        cls = voltage_class(g["voltage_v"].to_numpy(), nominal_v)
        dur = interval_seconds(g["ts"], max_gap_s)
        stamps = list(g["ts"])
        t = epoch_seconds(g["ts"])
        v = g["voltage_v"].to_numpy(float)
        new = np.ones(len(g), dtype=bool)
        new[1:] = (cls[1:] != cls[:-1]) | (np.diff(t) > max_gap_s)
        group = np.cumsum(new)
        for gid in np.unique(group[cls != ""]):
            sel = group == gid
            start = stamps[int(np.argmax(sel))]
            duration = float(dur[sel].sum())
            rows.append(
                {
                    "house_id": house_id,
                    "device": device,
                    "kind": cls[sel][0],
                    "start": start,
                    "end": start + pd.Timedelta(seconds=duration),
                    "duration_s": duration,
                    "min_voltage_v": float(v[sel].min()),
                    "max_voltage_v": float(v[sel].max()),
                    "readings": int(sel.sum()),
                }
            )
    out = pd.DataFrame(rows, columns=VOLTAGE_EVENT_COLUMNS)
    return out.sort_values(["start", "house_id", "device"], kind="stable").reset_index(drop=True)


def voltage_summary(events: pd.DataFrame, house_ids=()) -> list[dict]:
    """Per house and kind: count and total duration. Every kind is listed for every house given or seen."""
    houses = sorted(set(house_ids) | set(events["house_id"].tolist()))
    out = []
    for house_id in houses:
        mine = events[events["house_id"] == house_id]
        for kind in VOLTAGE_KINDS:
            k = mine[mine["kind"] == kind]
            out.append(
                {
                    "house_id": house_id,
                    "kind": kind,
                    "count": len(k),
                    "total_duration_s": float(k["duration_s"].sum()),
                }
            )
    return out


def power_factor_daily_frame(
    df: pd.DataFrame, timezone: str = "Europe/Athens", max_gap_s: float = 900
) -> pd.DataFrame:
    """Per house and local day: time-weighted mean power factor and share of time below 0.9.

    Input columns: house_id, device, ts (UTC), power_factor. A reading belongs to the local day of its
    timestamp (DST-aware, so a day may hold 23 or 25 hours of readings). Output columns: house_id,
    day (datetime.date), mean_power_factor, share_below_0_9, hours, readings.
    """
    cols = ["house_id", "day", "mean_power_factor", "share_below_0_9", "hours", "readings"]
    df = df.dropna(subset=["power_factor"])
    if df.empty:
        return pd.DataFrame(columns=cols)
    parts = []
    for (_house, _device), g in df.groupby(["house_id", "device"], sort=True):
        g = g.assign(ts=pd.to_datetime(g["ts"], utc=True)).sort_values("ts")
        parts.append(g.assign(weight_s=interval_seconds(g["ts"], max_gap_s)))
    f = pd.concat(parts, ignore_index=True)
    f["day"] = f["ts"].dt.tz_convert(timezone).dt.date
    pf = f["power_factor"].abs()  # a leading/lagging sign says direction, not quality
    f["w_pf"] = pf * f["weight_s"]
    f["w_low"] = (pf < LOW_POWER_FACTOR) * f["weight_s"]
    g = f.groupby(["house_id", "day"], sort=True).agg(
        w=("weight_s", "sum"), w_pf=("w_pf", "sum"), w_low=("w_low", "sum"), readings=("ts", "size"),
        pf=("power_factor", "mean"),
    )  # fmt: skip
    weighted = g["w"] > 0
    out = pd.DataFrame(
        {
            "mean_power_factor": np.where(weighted, g["w_pf"] / g["w"].where(weighted, 1), g["pf"].abs()),
            "share_below_0_9": np.where(weighted, g["w_low"] / g["w"].where(weighted, 1), np.nan),
            "hours": g["w"] / 3600,
            "readings": g["readings"],
        },
        index=g.index,
    ).reset_index()
    return out[cols]


def load_profile_frame(df: pd.DataFrame, timezone: str = "Europe/Athens") -> dict:
    """Load shape from 15-minute energy: columns ts (UTC bucket start) and energy_kwh (summed over the
    houses wanted). Buckets absent from the frame are gaps, not zero load.

    Returns weekday and weekend profiles (mean kW per local 15-minute slot, None where no data), the
    peak 15-minute mean power and when it began, the mean power and the load factor (mean / peak).
    """
    if df.empty:
        empty = [{"slot": f"{h:02d}:{m:02d}", "mean_kw": None} for h in range(24) for m in (0, 15, 30, 45)]
        return {"weekday": empty, "weekend": list(empty), "peak_kw": None, "peak_at": None,
                "mean_kw": None, "load_factor": None, "energy_kwh": 0.0, "days": {"weekday": 0, "weekend": 0}}  # fmt: skip
    f = df.groupby(pd.to_datetime(df["ts"], utc=True))["energy_kwh"].sum().sort_index()
    power_kw = f * 4.0  # kWh in a quarter hour -> mean kW over it
    local = power_kw.index.tz_convert(timezone)
    slot = np.asarray(local.hour) * 4 + np.asarray(local.minute) // 15
    weekend = np.asarray(local.day_of_week >= 5)
    profiles = {}
    for name, mask in (("weekday", ~weekend), ("weekend", weekend)):
        means = pd.Series(power_kw.to_numpy()[mask]).groupby(slot[mask]).mean()
        profiles[name] = [
            {
                "slot": f"{s // 4:02d}:{s % 4 * 15:02d}",
                "mean_kw": round(float(means[s]), 4) if s in means.index else None,
            }
            for s in range(96)
        ]
    peak_at = power_kw.idxmax()
    peak_kw = float(power_kw.max())
    mean_kw = float(power_kw.mean())
    days = pd.Series(local.date)
    return {
        **profiles,
        "peak_kw": round(peak_kw, 4),
        "peak_at": peak_at,
        "mean_kw": round(mean_kw, 4),
        "load_factor": round(mean_kw / peak_kw, 4) if peak_kw > 0 else None,
        "energy_kwh": round(float(f.sum()), 4),
        "days": {"weekday": int(days[~weekend].nunique()), "weekend": int(days[weekend].nunique())},
    }
