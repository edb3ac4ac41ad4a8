"""Analytics service: anomalies, voltage events, power-factor trends and load profiles, within a scope.

Thin database wrappers: each reads only the houses its Scope may see (filtered in SQL; a house id from a
client is checked with `Scope.require_house`) and hands a pandas frame to the pure maths in
`analytics_anomalies` and `analytics_power`. Load shapes and anomalies read 15-minute house rollups (and
hourly appliance rollups); voltage and power factor read raw meter readings, at most MAX_ANALYTICS_ROWS
per request. `start`/`end` are UTC, [start, end); days are local days of `timezone`. Frames are read
with COPY on PostgreSQL (speed: docs/benchmarks.md). Every house in batches: `analytics_scan`.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, and_, cast, false, func, select, union_all
from sqlalchemy.orm import Session

from dashboard.analytics_anomalies import AnomalyConfig, detect_anomalies_frame
from dashboard.analytics_power import (
    load_profile_frame,
    power_factor_daily_frame,
    voltage_events_frame,
    voltage_summary,
)
from dashboard.clock import iso_utc
from dashboard.errors import Forbidden, ValidationFailed
from dashboard.queries import scope_filter
from dashboard.schema import Device, EnergyRollup, House, Measurement
from dashboard.scope import Scope

DEFAULT_TIMEZONE = "Europe/Athens"  # Settings.timezone's default; callers pass the configured one
MAX_RANGE = timedelta(days=366)
ANOMALY_HISTORY = timedelta(days=28)  # extra history before `start` that the baselines learn from
MAX_ANALYTICS_ROWS = 500_000
MAX_UNION_ENTITIES = 200  # more houses or appliances than this: one range scan, filtered
MAX_GAP_S = 900  # a longer silence between readings is an outage (as in ingest's energy derivation)


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def check_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = _naive_utc(start), _naive_utc(end)
    if end <= start:
        raise ValidationFailed(details=[{"field": "end", "message": "must be after start"}])
    if end - start > MAX_RANGE:
        raise ValidationFailed(details=[{"field": "end", "message": "at most 366 days per request"}])
    return start, end


def require_per_house(scope: Scope, house_id: int | None) -> None:
    """Per-house analytics reveal single houses: third-party apps may not have them."""
    if not scope.per_house_allowed:
        raise Forbidden("Third-party apps may read aggregates only, not per-house analytics")
    if house_id is not None:
        scope.require_house(house_id)


def _house_rollups(session: Session, scope: Scope, house_id: int | None) -> ColumnElement[bool]:
    """House rollups (never PV parks) the scope may see, reusing the query layer's scope filter."""
    return and_(scope_filter(session, scope, house_id, None), EnergyRollup.entity_kind == "house")


def _house_devices(
    scope: Scope, house_id: int | None, houses: list[int] | None = None
) -> ColumnElement[bool]:
    """Devices in the houses the request covers (the caller has already checked `house_id`, and
    `houses`, a batch, holds only houses the scope may see)."""
    if house_id is not None:
        return Device.house_id == house_id
    if houses is not None:
        return Device.house_id.in_(houses) if houses else false()
    if scope.all_houses:
        return Device.house_id.is_not(None)
    return Device.house_id.in_(scope.house_ids)


def _meters(scope: Scope, house_id: int | None, houses: list[int] | None = None) -> ColumnElement[bool]:
    """House meters: the quality readings of a house, as in the rollups."""
    return and_(Device.kind == "meter", _house_devices(scope, house_id, houses))


def _utc_index(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True)


class TooManyReadings(ValidationFailed):
    """More than MAX_ANALYTICS_ROWS raw readings in one request (a batch of houses may be split)."""


def _raw_meter_readings(session, scope, start, end, house_id, column, houses=None) -> pd.DataFrame:
    m = Measurement
    df = _read_frame(
        session,
        select(Device.house_id, Device.serial, _epoch_us(session, m.ts), column)
        .join(Device, Device.id == m.device_id)
        .where(_meters(scope, house_id, houses), m.ts >= start, m.ts < end, column.is_not(None))
        .order_by(m.device_id, m.ts)
        .limit(MAX_ANALYTICS_ROWS + 1),
        ["house_id", "device", "ts", column.key],
        times=("ts",),
        text=("device",),
    )
    if len(df) > MAX_ANALYTICS_ROWS:
        raise TooManyReadings(
            details=[
                {"field": "end", "message": f"more than {MAX_ANALYTICS_ROWS} readings; shorten the range"}
            ]
        )
    return df


# ---- anomalies ------------------------------------------------------------------------------------------


def _epoch_us(session: Session, column):
    """A timestamp column as microseconds since 1970 (naive UTC) on PostgreSQL, so a frame can be read
    with COPY and parsed in C (exact: EXTRACT gives a numeric); the plain column elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", column) * 1_000_000, BigInteger)
    return column


def _read_frame(
    session: Session, stmt, columns: list[str], times: tuple[str, ...] = (), text: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The rows of a Core select as a DataFrame, without a Python object per row where possible.

    On PostgreSQL (psycopg2) the select runs inside the session's transaction as `COPY (...) TO STDOUT
    WITH CSV` (parameters bound by psycopg2, never pasted) and pandas parses the CSV in C, without
    building a Row per reading. Other databases fetch tuples. `times` name columns that are UTC
    timestamps (microseconds from `_epoch_us` on PostgreSQL, datetimes elsewhere), returned tz-aware;
    `text` name columns kept as strings (a serial like "0012" stays "0012").
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql" and bind.dialect.driver == "psycopg2":
        compiled = stmt.compile(dialect=bind.dialect, compile_kwargs={"render_postcompile": True})
        raw = session.connection().connection.dbapi_connection
        buf = io.StringIO()
        with raw.cursor() as cur:
            sql = cur.mogrify(str(compiled), compiled.params).decode()
            cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH CSV", buf)
        buf.seek(0)
        if buf.getvalue():
            df = pd.read_csv(buf, header=None, names=columns, dtype={c: str for c in text})
        else:
            df = pd.DataFrame({c: pd.Series(dtype=str if c in text else "float64") for c in columns})
        for c in times:
            df[c] = pd.to_datetime(df[c].astype("int64"), unit="us", utc=True)
        return df
    df = pd.DataFrame.from_records(session.execute(stmt).all(), columns=columns)
    for c in times:
        df[c] = _utc_index(df[c])
    return df


def _per_entity(stmt, column, ids: list[int] | None):
    """`stmt` limited to the entities `ids` (None: no limit), written so that each entity is a range scan
    of the rollups' primary key (resolution, entity_kind, entity_id, bucket_start) whatever the planner
    believes: a few entities become a UNION ALL of `entity_id = x` selects (an `IN` list may be planned
    as a filter over every entity's rows in the range when table statistics are missing or stale)."""
    if ids is None:
        return stmt
    if not ids:
        return stmt.where(false())
    if len(ids) > MAX_UNION_ENTITIES:
        return stmt.where(column.in_(ids))
    return union_all(*(stmt.where(column == i) for i in ids))


def scope_houses(session: Session, scope: Scope) -> list[int]:
    """Ids of the houses the scope may see, ascending."""
    stmt = select(House.id).order_by(House.id)
    if not scope.all_houses:
        stmt = stmt.where(House.id.in_(sorted(scope.house_ids)))
    return list(session.scalars(stmt))


def _houses(scope: Scope, house_id: int | None, houses: list[int] | None) -> list[int] | None:
    """The houses a request reads: one checked house, the given ones the scope may see, or the scope's
    (None: every house)."""
    require_per_house(scope, house_id)
    if house_id is not None:
        return [house_id]
    if houses is not None:
        return sorted({h for h in houses if scope.can_see_house(h)})
    return None if scope.all_houses else sorted(scope.house_ids)


def consumption_frame(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    house_id: int | None = None,
    houses: list[int] | None = None,
) -> pd.DataFrame:
    """15-minute main-meter power and sub-metered appliance power per house: house_id, ts, power_kw,
    explained_kw. Appliance sub-meters have hourly rollups; their mean power stands for each quarter.
    `houses` limits an all-houses read to those of them the scope may see (a batch)."""
    r = EnergyRollup
    houses = _houses(scope, house_id, houses)
    quarters = select(r.entity_id, _epoch_us(session, r.bucket_start), r.consumption_wh).where(
        r.resolution == "15min", r.entity_kind == "house", r.bucket_start >= start, r.bucket_start < end
    )
    df = _read_frame(
        session, _per_entity(quarters, r.entity_id, houses), ["house_id", "ts", "consumption_wh"], ("ts",)
    )
    frame = pd.DataFrame(
        {
            "house_id": df["house_id"].astype("int64"),
            "ts": df["ts"],
            "power_kw": df["consumption_wh"].astype(float) * 4.0 / 1000.0,
            "explained_kw": 0.0,
        }
    )
    # the appliances first (a small table), then their hourly rollups without a join per rollup row
    appliances = dict(
        session.execute(
            select(Device.id, Device.house_id).where(
                Device.kind == "appliance",
                Device.house_id.is_not(None) if houses is None else Device.house_id.in_(houses),
            )
        ).all()
    )
    if frame.empty or not appliances:
        return frame
    hours = select(r.entity_id, _epoch_us(session, r.bucket_start), r.consumption_wh).where(
        r.resolution == "hour", r.entity_kind == "device", r.bucket_start >= start, r.bucket_start < end
    )
    ids = sorted(appliances)
    # many appliances: read every device's hours in the range once and keep the appliances' rows
    stmt = _per_entity(hours, r.entity_id, ids if len(ids) <= MAX_UNION_ENTITIES else None)
    hourly = _read_frame(session, stmt, ["device_id", "hour", "appliance_wh"], ("hour",))
    hourly = hourly[hourly["device_id"].isin(ids)].sort_values(["device_id", "hour"], kind="stable")
    if hourly.empty:
        return frame
    hourly["house_id"] = hourly["device_id"].map(appliances).astype("int64")
    # kWh in an hour = mean kW over it
    explained = hourly.groupby(["house_id", "hour"])["appliance_wh"].sum().astype(float) / 1000.0
    key = pd.MultiIndex.from_arrays([frame["house_id"], frame["ts"].dt.floor("h")])
    frame["explained_kw"] = explained.reindex(key).fillna(0.0).to_numpy()
    return frame


def anomalies(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    house_id: int | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    config: AnomalyConfig | None = None,
    houses: list[int] | None = None,
) -> list[dict]:
    """Consumption anomalies overlapping [start, end): {house_id, kind, start, end, score, detail},
    ordered by start, then house.

    kind is consumption_spike, night_load or stuck_meter; start/end are ISO UTC; score is the mean
    unexplained power over the house's usual level (high loads) or the hours stuck (stuck meters).
    `houses` limits an all-houses request to those of them the scope may see.
    """
    start, end = check_range(start, end)
    frame = consumption_frame(session, scope, start - ANOMALY_HISTORY, end, house_id, houses)
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


def voltage_thresholds(nominal_v: float) -> dict:
    return {
        "sag_below": round(0.9 * nominal_v, 3),
        "swell_above": round(1.1 * nominal_v, 3),
        "interruption_at_or_below": round(0.05 * nominal_v, 3),
    }


def voltage_events(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    house_id: int | None = None,
    nominal_v: float = 230.0,
    houses: list[int] | None = None,
) -> dict:
    """EN 50160 voltage events of house meters in [start, end). `houses` limits an all-houses request
    to those of them the scope may see (a batch of `analytics_scan.scan_in_batches`).

    Returns {"nominal_v", "thresholds_v": {sag, swell, interruption}, "events": [{house_id, device,
    kind, start, end, duration_s, min_voltage_v, max_voltage_v, readings}], "summary": [{house_id,
    kind, count, total_duration_s}] for every house with readings and every kind}.
    """
    start, end = check_range(start, end)
    batch = _houses(scope, house_id, houses) if houses is not None else None
    require_per_house(scope, house_id)
    if nominal_v <= 0:
        raise ValidationFailed(details=[{"field": "nominal_v", "message": "must be > 0"}])
    df = _raw_meter_readings(session, scope, start, end, house_id, Measurement.voltage_v, batch)
    events = voltage_events_frame(df, nominal_v, MAX_GAP_S)
    return {
        "nominal_v": nominal_v,
        "thresholds_v": voltage_thresholds(nominal_v),
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
    houses: list[int] | None = None,
) -> list[dict]:
    """Per house and local day: {house_id, day (YYYY-MM-DD), mean_power_factor, share_below_0_9,
    hours, readings}; mean and share are weighted by each reading's interval (time, not counts).
    `houses` limits an all-houses request to those of them the scope may see (a batch)."""
    start, end = check_range(start, end)
    batch = _houses(scope, house_id, houses) if houses is not None else None
    require_per_house(scope, house_id)
    df = _raw_meter_readings(session, scope, start, end, house_id, Measurement.power_factor, batch)
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
    start, end = check_range(start, end)
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
