"""Analytics service: anomalies, voltage events, power-factor trends and load profiles, within a scope.

Thin database wrappers: each reads only the houses its Scope may see (filtered in SQL; a house id from
a client is checked with `Scope.require_house`, so another house is NotFound and a third-party app is
Forbidden), turns rows into a pandas frame and hands it to the pure maths in `analytics_anomalies`
and `analytics_power`, which tests exercise without a database.

Sources, per the architecture: load shapes and anomalies read 15-minute house rollups (plus hourly
appliance sub-meter rollups, which explain recurring appliance sessions); voltage and power factor need
the raw meter readings, limited to MAX_ANALYTICS_ROWS per request.

`start` and `end` are UTC (naive, as stored, or aware) and bound [start, end). Days are local days of
`timezone`, which callers take from `Settings.timezone`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from dashboard.analytics_anomalies import AnomalyConfig, detect_anomalies_frame
from dashboard.analytics_power import (
    load_profile_frame,
    power_factor_daily_frame,
    voltage_events_frame,
    voltage_summary,
)
from dashboard.errors import Forbidden, ValidationFailed
from dashboard.queries import _entity_filter, iso_utc
from dashboard.schema import Device, EnergyRollup, Measurement
from dashboard.scope import Scope

DEFAULT_TIMEZONE = "Europe/Athens"  # Settings.timezone's default; callers pass the configured one
MAX_RANGE = timedelta(days=366)
ANOMALY_HISTORY = timedelta(days=28)  # extra history before `start` that the baselines learn from
MAX_ANALYTICS_ROWS = 500_000
MAX_GAP_S = 900  # a longer silence between readings is an outage (as in ingest's energy derivation)


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def _check_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = _naive_utc(start), _naive_utc(end)
    if end <= start:
        raise ValidationFailed(details=[{"field": "end", "message": "must be after start"}])
    if end - start > MAX_RANGE:
        raise ValidationFailed(details=[{"field": "end", "message": "at most 366 days per request"}])
    return start, end


def _per_house(scope: Scope, house_id: int | None) -> None:
    """Per-house analytics reveal single houses: third-party apps may not have them."""
    if not scope.per_house_allowed:
        raise Forbidden("Third-party apps may read aggregates only, not per-house analytics")
    if house_id is not None:
        scope.require_house(house_id)


def _house_rollups(session: Session, scope: Scope, house_id: int | None) -> ColumnElement[bool]:
    """House rollups (never PV parks) the scope may see, reusing the query layer's scope filter."""
    return and_(_entity_filter(session, scope, house_id, None), EnergyRollup.entity_kind == "house")


def _house_devices(scope: Scope, house_id: int | None) -> ColumnElement[bool]:
    """Devices in the houses the request covers (the caller has already checked `house_id`)."""
    if house_id is not None:
        return Device.house_id == house_id
    if scope.all_houses:
        return Device.house_id.is_not(None)
    return Device.house_id.in_(scope.house_ids)


def _meters(scope: Scope, house_id: int | None) -> ColumnElement[bool]:
    """House meters: the quality readings of a house, as in the rollups."""
    return and_(Device.kind == "meter", _house_devices(scope, house_id))


def _utc_index(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True)


def _raw_meter_readings(session, scope, start, end, house_id, column) -> pd.DataFrame:
    m = Measurement
    rows = session.execute(
        select(Device.house_id, Device.serial, m.ts, column)
        .join(Device, Device.id == m.device_id)
        .where(_meters(scope, house_id), m.ts >= start, m.ts < end, column.is_not(None))
        .order_by(m.device_id, m.ts)
        .limit(MAX_ANALYTICS_ROWS + 1)
    ).all()
    if len(rows) > MAX_ANALYTICS_ROWS:
        raise ValidationFailed(
            details=[
                {"field": "end", "message": f"more than {MAX_ANALYTICS_ROWS} readings; shorten the range"}
            ]
        )
    df = pd.DataFrame(rows, columns=["house_id", "device", "ts", column.key])
    df["ts"] = _utc_index(df["ts"])
    return df


# ---- anomalies ------------------------------------------------------------------------------------------


def consumption_frame(
    session: Session, scope: Scope, start: datetime, end: datetime, house_id: int | None = None
) -> pd.DataFrame:
    """15-minute main-meter power and sub-metered appliance power per house: house_id, ts, power_kw,
    explained_kw. Appliance sub-meters have hourly rollups; their mean power stands for each quarter."""
    r = EnergyRollup
    rows = session.execute(
        select(r.entity_id, r.bucket_start, r.consumption_wh).where(
            r.resolution == "15min",
            r.bucket_start >= start,
            r.bucket_start < end,
            _house_rollups(session, scope, house_id),
        )
    ).all()
    df = pd.DataFrame(rows, columns=["house_id", "ts", "consumption_wh"])
    df["ts"] = _utc_index(df["ts"])
    df["power_kw"] = df["consumption_wh"].astype(float) * 4.0 / 1000.0
    appliances = select(Device.id).where(Device.kind == "appliance", _house_devices(scope, house_id))
    hourly = session.execute(
        select(Device.house_id, r.bucket_start, func.sum(r.consumption_wh))
        .join(Device, and_(r.entity_kind == "device", Device.id == r.entity_id))
        .where(
            r.resolution == "hour", r.bucket_start >= start, r.bucket_start < end, r.entity_id.in_(appliances)
        )
        .group_by(Device.house_id, r.bucket_start)
    ).all()
    explained = pd.DataFrame(hourly, columns=["house_id", "hour", "appliance_wh"])
    explained["hour"] = _utc_index(explained["hour"])
    explained["house_id"] = explained["house_id"].astype("int64")
    df["house_id"] = df["house_id"].astype("int64")
    explained["explained_kw"] = explained["appliance_wh"].astype(float) / 1000.0  # kWh in an hour = mean kW
    df = df.assign(hour=df["ts"].dt.floor("h")).merge(
        explained[["house_id", "hour", "explained_kw"]], on=["house_id", "hour"], how="left"
    )
    df["explained_kw"] = df["explained_kw"].fillna(0.0)
    return df[["house_id", "ts", "power_kw", "explained_kw"]]


def anomalies(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    house_id: int | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    config: AnomalyConfig | None = None,
) -> list[dict]:
    """Consumption anomalies overlapping [start, end): {house_id, kind, start, end, score, detail}.

    kind is consumption_spike, night_load or stuck_meter; start/end are ISO UTC; score is the mean
    unexplained power over the house's usual level (high loads) or the hours stuck (stuck meters).
    """
    start, end = _check_range(start, end)
    _per_house(scope, house_id)
    frame = consumption_frame(session, scope, start - ANOMALY_HISTORY, end, house_id)
    events = detect_anomalies_frame(frame, timezone, start, end, config)
    return [
        {
            "house_id": int(e.house_id),
            "kind": e.kind,
            "start": iso_utc(e.start.to_pydatetime()),
            "end": iso_utc(e.end.to_pydatetime()),
            "score": float(e.score),
            "detail": e.detail,
        }
        for e in events.itertuples()
    ]


# ---- voltage events -------------------------------------------------------------------------------------


def voltage_events(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    house_id: int | None = None,
    nominal_v: float = 230.0,
) -> dict:
    """EN 50160 voltage events of house meters in [start, end).

    Returns {"nominal_v", "thresholds_v": {sag, swell, interruption}, "events": [{house_id, device,
    kind, start, end, duration_s, min_voltage_v, max_voltage_v, readings}], "summary": [{house_id,
    kind, count, total_duration_s}] for every house with readings and every kind}.
    """
    start, end = _check_range(start, end)
    _per_house(scope, house_id)
    if nominal_v <= 0:
        raise ValidationFailed(details=[{"field": "nominal_v", "message": "must be > 0"}])
    df = _raw_meter_readings(session, scope, start, end, house_id, Measurement.voltage_v)
    events = voltage_events_frame(df, nominal_v, MAX_GAP_S)
    return {
        "nominal_v": nominal_v,
        "thresholds_v": {
            "sag_below": round(0.9 * nominal_v, 3),
            "swell_above": round(1.1 * nominal_v, 3),
            "interruption_at_or_below": round(0.05 * nominal_v, 3),
        },
        "events": [
            {
                "house_id": int(e.house_id),
                "device": e.device,
                "kind": e.kind,
                "start": iso_utc(e.start.to_pydatetime()),
                "end": iso_utc(e.end.to_pydatetime()),
                "duration_s": float(e.duration_s),
                "min_voltage_v": float(e.min_voltage_v),
                "max_voltage_v": float(e.max_voltage_v),
                "readings": int(e.readings),
            }
            for e in events.itertuples()
        ],
        "summary": [
            s | {"house_id": int(s["house_id"])}
            for s in voltage_summary(events, df["house_id"].unique().tolist())
        ],
    }


# ---- power factor -----------------------------------------------------------------------------------------


def power_factor_trend(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    house_id: int | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[dict]:
    """Per house and local day: {house_id, day (YYYY-MM-DD), mean_power_factor, share_below_0_9,
    hours, readings}; mean and share are weighted by each reading's interval (time, not counts)."""
    start, end = _check_range(start, end)
    _per_house(scope, house_id)
    df = _raw_meter_readings(session, scope, start, end, house_id, Measurement.power_factor)
    daily = power_factor_daily_frame(df, timezone, MAX_GAP_S)
    return [
        {
            "house_id": int(d.house_id),
            "day": d.day.isoformat(),
            "mean_power_factor": round(float(d.mean_power_factor), 4),
            "share_below_0_9": round(float(d.share_below_0_9), 4),
            "hours": round(float(d.hours), 3),
            "readings": int(d.readings),
        }
        for d in daily.itertuples()
    ]


# ---- load profile -----------------------------------------------------------------------------------------


def load_profile(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    house_id: int | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> dict:
    """Average daily load shape of one house, or of every house in the scope summed (an aggregate,
    which third-party apps may read too), from 15-minute consumption rollups.

    Returns {house_id, weekday: [{slot "HH:MM" local, mean_kw}] x 96, weekend: same, peak_kw, peak_at
    (ISO UTC), peak_at_local, mean_kw, load_factor, energy_kwh, days: {weekday, weekend}}.
    """
    start, end = _check_range(start, end)
    if house_id is not None:
        scope.require_house(house_id)
    r = EnergyRollup
    rows = session.execute(
        select(r.bucket_start, func.sum(r.consumption_wh))
        .where(
            r.resolution == "15min",
            r.bucket_start >= start,
            r.bucket_start < end,
            _house_rollups(session, scope, house_id),
        )
        .group_by(r.bucket_start)
    ).all()
    df = pd.DataFrame(rows, columns=["ts", "energy_wh"])
    df = pd.DataFrame({"ts": _utc_index(df["ts"]), "energy_kwh": df["energy_wh"].astype(float) / 1000.0})
    profile = load_profile_frame(df, timezone)
    peak_at = profile.pop("peak_at")
    return {
        "house_id": house_id,
        **profile,
        "peak_at": None if peak_at is None else iso_utc(peak_at.to_pydatetime()),
        "peak_at_local": None if peak_at is None else peak_at.tz_convert(timezone).isoformat(),
    }
