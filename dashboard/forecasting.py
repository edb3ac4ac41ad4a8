"""Forecasting service: series from rollups (scoped), training into the model store, forecasts out of it,
and the run log. The faces (endpoints, jobs) call these; the maths lives in models/.

`as_of` makes backtests honest: training uses only intervals that start before it, and a forecast
starts at `as_of` floored to the resolution with history strictly before it. Without it, training ends
and forecasting starts at the first interval after the last complete one; training on data that ended
before its window ends after the latest reading instead, and says so (`training_task`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.orm import Session

from dashboard.clock import iso_utc, utcnow
from dashboard.errors import ValidationFailed
from dashboard.forecast_cache import cache_key, data_view, is_settled, ttl_s
from dashboard.model_store import ModelStore, Slot, current_version
from dashboard.places import Place, place_of
from dashboard.queries import energy_series, has_production_devices, installed_pv_kw, latest_bucket
from dashboard.schema import ModelRun
from dashboard.scope import Scope
from dashboard.untrusted import ID_MAX
from dashboard.weather.store import weather_frame
from models import FitReport, ForecastConfig, make_forecaster
from models.config import MAX_SHORT_TERM_HORIZON, MODELS, PRODUCTS, STRATEGIES
from models.intervals import TRACK_DAYS

TRAIN_DAYS = {"next-24-hours": 365, "short-term": 90}
# a forecast needs a few weeks of lags (4 weekly same-time values), and its band replays the same time of
# day on the TRACK_DAYS days before it (models/intervals.py)
HISTORY_DAYS = 35 + TRACK_DAYS
RUN_LOG_RETENTION_DAYS = 90  # spec 1.7


@dataclass(frozen=True)
class ForecastTask:
    cfg: ForecastConfig
    slot: Slot
    as_of: datetime | None  # naive UTC

    def origin(self) -> pd.Timestamp:
        step = self.cfg.step
        if self.as_of is not None:
            return pd.Timestamp(self.as_of, tz="UTC").floor(step)
        return pd.Timestamp(datetime.now(UTC)).floor(step)  # the interval now under way is incomplete


def resolve_task(
    scope: Scope, target: str, product: str, params: dict, defaults: Place | None = None
) -> ForecastTask:
    """Validate parameters (query string or JSON body) against the spec and the caller's scope.

    `defaults`: the environment's place (`places.default_place`), else ForecastConfig's own; `train` puts
    the scope's own place (house, community) over it."""
    problems: list[dict] = []

    def integer(name):
        value = params.get(name)
        if value in (None, ""):
            return None
        try:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            number = int(float(value))
        except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400
            problems.append({"field": name, "message": "must be an integer"})
            return None
        if not -ID_MAX - 1 <= number <= ID_MAX:  # an id past 64 bits names nothing (SQLite: OverflowError)
            problems.append({"field": name, "message": f"out of range (at most {ID_MAX})"})
            return None
        return number

    horizon = integer("horizon") if product == "short-term" else 24
    house_id, community_id = integer("house_id"), integer("community_id")
    model = params.get("model") or "auto"
    strategy = params.get("strategy") or "direct"
    as_of = None
    if params.get("as_of"):
        try:
            from dashboard.readings import parse_timestamp

            as_of = parse_timestamp(str(params["as_of"]).replace(" ", "+"))
        except ValueError as exc:
            problems.append({"field": "as_of", "message": str(exc)})
    if product == "short-term" and not any(p["field"] == "horizon" for p in problems):
        if horizon is None or not 1 <= horizon <= MAX_SHORT_TERM_HORIZON:
            problems.append(
                {"field": "horizon", "message": f"an integer from 1 to {MAX_SHORT_TERM_HORIZON} is required"}
            )
    if not isinstance(product, str) or product not in PRODUCTS:  # the API: its URL; the page: the browser
        problems.append({"field": "product", "message": f"one of {', '.join(PRODUCTS)}"})
    if model not in MODELS:
        problems.append({"field": "model", "message": f"one of {', '.join(MODELS)}"})
    if strategy not in STRATEGIES:
        problems.append({"field": "strategy", "message": f"one of {', '.join(STRATEGIES)}"})
    if problems:
        raise ValidationFailed(details=problems)
    if model == "auto":
        strategy = "direct"  # auto weighs both strategies itself: one slot
    place = defaults.config_fields() if defaults is not None else {}
    kind, scope_id = _scope_of(scope, house_id, community_id)
    selection = "rmse" if kind == "house" else "mae"  # a single home is judged by CV(RMSE)
    cfg = ForecastConfig(product=product, horizon=horizon, model=model, strategy=strategy, target=target,
                         selection=selection, **place)  # fmt: skip
    return ForecastTask(cfg, Slot(target, product, cfg.horizon, kind, scope_id, model, strategy), as_of)


def _scope_of(scope: Scope, house_id: int | None, community_id: int | None) -> tuple[str, int | None]:
    if house_id is not None and community_id is not None:
        raise ValidationFailed(
            details=[{"field": "house_id", "message": "give house_id or community_id, not both"}]
        )
    if house_id is not None:
        if not scope.per_house_allowed:
            raise ValidationFailed(
                details=[{"field": "house_id", "message": "third-party apps get aggregates only"}]
            )
        if not scope.can_see_house(house_id):
            raise ValidationFailed(details=[{"field": "house_id", "message": "not a house you may see"}])
        return "house", house_id
    if community_id is not None:
        if not scope.can_see_community(community_id):
            raise ValidationFailed(
                details=[{"field": "community_id", "message": "not a community you may see"}]
            )
        return "community", community_id
    if scope.all_houses:
        return "all", None
    if scope.house_ids and len(scope.house_ids) == 1:
        return "house", next(iter(scope.house_ids))  # a consumer's only house is their default
    raise ValidationFailed(details=[{"field": "house_id", "message": "name one of your houses"}])


def load_series(
    session: Session, scope: Scope, task: ForecastTask, end: pd.Timestamp, days: int
) -> pd.Series:
    resolution = "hour" if task.cfg.product == "next-24-hours" else "15min"
    start = end - pd.Timedelta(days=days)
    kwargs = {"house_id": task.slot.scope_id} if task.slot.scope_kind == "house" else {}
    if task.slot.scope_kind == "community":
        kwargs = {"community_id": task.slot.scope_id}
    rows = energy_series(session, scope, resolution, start.tz_localize(None).to_pydatetime(),
                         end.tz_localize(None).to_pydatetime(), **kwargs)  # fmt: skip
    column = f"{task.cfg.target}_kwh"
    if not rows:
        return pd.Series(dtype=float)
    index = pd.DatetimeIndex([r["timestamp"] for r in rows]).tz_convert("UTC")
    return pd.Series([r[column] for r in rows], index=index, dtype=float)


def with_place(session: Session, task: ForecastTask) -> ForecastTask:
    """The task with the scope's place in its config: the house's or community's own fields over the
    defaults the task was resolved with (dashboard/places.py)."""
    place = place_of(session, task.slot.scope_kind, task.slot.scope_id, Place.of_config(task.cfg))
    return replace(task, cfg=replace(task.cfg, **place.config_fields()))


def load_weather(
    session: Session, place: Place, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame | None:
    """Hourly weather of the stored location nearest the place (within 50 km) in [start, end), forecast
    rows included where no observation is stored yet: UTC-indexed `temperature_c`, `irradiance_wm2`,
    `cloud_cover` (NaN where unknown), or None."""
    return weather_frame(session, place, start, end)


def train(
    session: Session, store: ModelStore, scope: Scope, task: ForecastTask
) -> tuple[int, str, FitReport]:
    """Fit on the scope's history before the origin, store and activate. Returns (id, version, report)."""
    task = with_place(session, task)  # the model keeps this place: its calendar, sun and weather
    if task.cfg.target == "production":  # its bound: forecasts and bands never exceed the installed PV
        capacity = installed_pv_kw(session, scope, **_scope_kwargs(task))
        task = replace(task, cfg=replace(task.cfg, capacity_kw=capacity))
    end = task.origin()
    y = load_series(session, scope, task, end, TRAIN_DAYS[task.cfg.product])
    place = Place.of_config(task.cfg)
    weather = load_weather(session, place, end - pd.Timedelta(days=TRAIN_DAYS[task.cfg.product] + 8), end)
    if y.empty:
        raise _no_readings(
            session, scope, task, end, TRAIN_DAYS[task.cfg.product], "to train on the data up to it"
        )
    _refuse_constant(session, scope, task, y, end)
    forecaster = make_forecaster(task.cfg)
    try:
        report = forecaster.fit(y, exog=weather)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details=[{"field": "data", "message": str(exc)}]) from exc
    row = store.save(session, task.slot, forecaster, report, scope.user_id)
    return row.id, row.version, report


def training_task(session: Session, scope: Scope, task: ForecastTask) -> tuple[ForecastTask, str | None]:
    """Without as_of, data that ended long ago trains on the window up to its latest reading (the next
    interval as origin) instead of failing, and the note says so. An explicit as_of is kept as given."""
    if task.as_of is not None:
        return task, None
    origin, days, step = task.origin(), TRAIN_DAYS[task.cfg.product], task.cfg.step
    latest = _latest_reading(session, scope, task, origin)
    if latest is None or latest >= origin - pd.Timedelta(days=days):
        return task, None
    as_of = (latest.floor(step) + step).tz_localize(None).to_pydatetime()
    note = (f"No readings in the last {days} days; trained on the {days} days up to the latest reading "
            f"at {_utc(latest)}")  # fmt: skip
    return replace(task, as_of=as_of), note


def _scope_kwargs(task: ForecastTask) -> dict:
    if task.slot.scope_kind == "house":
        return {"house_id": task.slot.scope_id}
    return {"community_id": task.slot.scope_id} if task.slot.scope_kind == "community" else {}


def _scope_name(task: ForecastTask) -> str:
    kind = task.slot.scope_kind
    return f"{kind} {task.slot.scope_id}" if kind != "all" else "the fleet (all houses and PV parks)"


def _utc(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%MZ")


def _latest_reading(session: Session, scope: Scope, task: ForecastTask, before) -> pd.Timestamp | None:
    """Start of the scope's latest 15-minute interval with readings (before `before`, a UTC Timestamp)."""
    bound = None if before is None else before.tz_localize(None).to_pydatetime()
    latest = latest_bucket(session, scope, bound, **_scope_kwargs(task))
    return None if latest is None else pd.Timestamp(latest, tz="UTC")


def _no_readings(session, scope, task, origin: pd.Timestamp, days: int, remedy: str) -> ValidationFailed:
    """Say where the scope's data ends and which as_of reaches it, not only "no readings"."""
    latest = _latest_reading(session, scope, task, origin)
    if latest is not None:
        as_of = iso_utc(latest.floor(task.cfg.step) + task.cfg.step)
        message = (f"No readings in the {days} days before {_utc(origin)}; the latest reading is at "
                   f"{_utc(latest)}: pass as_of={as_of} {remedy}")  # fmt: skip
    elif _latest_reading(session, scope, task, None) is None:
        message = f"No readings at all for {_scope_name(task)}"
    else:
        message = f"No readings for {_scope_name(task)} before {_utc(origin)}: its readings start later"
    return ValidationFailed(message, details=[{"field": "as_of", "message": message}])


def _refuse_constant(session: Session, scope: Scope, task: ForecastTask, y: pd.Series, end) -> None:
    """A constant series (zeros: a scope without PV) has nothing to learn and gives only NaN metrics."""
    values = y.dropna()
    if values.empty or float(values.max() - values.min()) > 1e-9:
        return
    target, name = task.cfg.target, _scope_name(task)
    if target == "production" and not has_production_devices(session, scope, **_scope_kwargs(task)):
        message = f"{name} has no production devices (PV or inverter): nothing to forecast"
    else:
        message = (f"the {target} of {name} is {values.iloc[0]:g} kWh in each of the {len(values)} intervals "
                   f"with readings before {_utc(end)}: a constant series has nothing to forecast")  # fmt: skip
    raise ValidationFailed(message, details=[{"field": "data", "message": message}])


def forecast(session: Session, store: ModelStore, scope: Scope, task: ForecastTask):
    """Forecast from the slot's active model (falling back to older versions). Returns (version, frame)."""
    row, frame = _forecast(session, store, scope, task)
    return row.version, frame


def _forecast(session: Session, store: ModelStore, scope: Scope, task: ForecastTask):
    origin = task.origin()
    row, forecaster = store.load_active(session, task.slot)
    y = load_series(session, scope, task, origin, HISTORY_DAYS)
    if y.empty:
        raise _no_readings(session, scope, task, origin, HISTORY_DAYS, "to forecast from there")
    # a model is served with the place it was trained for (its stored config), never another one's
    cfg = forecaster.cfg
    weather = load_weather(session, Place.of_config(cfg), origin - pd.Timedelta(days=HISTORY_DAYS),
                           origin + cfg.horizon * cfg.step)  # fmt: skip
    frame = forecaster.predict(y, origin, weather)
    if task.cfg.target == "production":  # the PV installed now, whatever it was when the model was trained
        capacity = installed_pv_kw(session, scope, **_scope_kwargs(task))
        if capacity is not None:
            frame = frame.clip(lower=0.0, upper=capacity * (cfg.step / pd.Timedelta(hours=1)))
    return row, frame


def forecast_rows(frame) -> list[dict]:
    """The spec's rows: UTC interval start, kWh, and the band around it."""
    return [
        {
            "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
            "forecasted_energy_usage": round(float(r.point), 6),
            "lower": round(float(r.lower), 6),
            "upper": round(float(r.upper), 6),
        }
        for ts, r in frame.iterrows()
    ]


def cached_forecast(
    session: Session, cache, scope: Scope, task: ForecastTask, settled_only: bool = False
) -> dict | None:
    """The answer `{"version", "forecast": rows}` already issued for the task's current version and origin,
    else None. The caller has resolved (checked) the task against its scope."""
    row = current_version(session, task.slot)
    return None if row is None else issued_answer(cache, scope, task, row, settled_only)


def issued_answer(cache, scope: Scope, task: ForecastTask, row, settled_only: bool = False) -> dict | None:
    """`cached_forecast` for a known current version `row` (`model_store.current_version`)."""
    hit = cache.get(cache_key(row.object_key, task.origin(), data_view(scope, task.slot)))
    if hit is None or (settled_only and not hit["settled"]):
        return None
    return hit["answer"]


def issue_forecast(session: Session, store: ModelStore, cache, scope: Scope, task: ForecastTask) -> dict:
    """Forecast and cache the answer `{"version", "forecast": rows}` (dashboard/forecast_cache.py)."""
    origin = task.origin()
    row, frame = _forecast(session, store, scope, task)
    answer = {"version": row.version, "forecast": forecast_rows(frame)}
    settled = is_settled(origin)
    key = cache_key(row.object_key, origin, data_view(scope, task.slot))
    cache.put(key, {"answer": answer, "settled": settled}, ttl_s(origin, task.cfg.step, settled))
    return answer


def log_run(session: Session, kind: str, scope: Scope | None, params: dict, started: float, outcome: str,
            error: str | None = None, metrics: dict | None = None, version: str | None = None,
            job_id: str | None = None) -> None:  # fmt: skip
    session.add(
        ModelRun(
            kind=kind,
            at=utcnow(),
            user_id=scope.user_id if scope else None,
            api_key_id=scope.api_key_id if scope else None,
            job_id=job_id,
            parameters_json=json.dumps(params, default=str),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            outcome=outcome,
            error=error,
            metrics_json=json.dumps(metrics) if metrics else None,
            model_version=version,
        )  # fmt: skip
    )
