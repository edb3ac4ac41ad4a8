"""Tariffs per house and the grid's hourly carbon intensity: validation and storage (the API and the Admin
page write through here; dashboard/costs.py prices energy with what is stored).

Rules, so a price is never ambiguous:
- validity is local days `valid_from`..`valid_to`, both included (`valid_to` null: open-ended); two tariffs
  of one house may not share a day (409 naming the clash). Ending a tariff is setting its `valid_to`.
- a flat tariff has one `import_price`; a time-of-use tariff has periods of whole local hours
  (`"07:00"`-`"23:00"`, `"23:00"`-`"07:00"` wraps past midnight) for `all` days, `weekday`s or `weekend`s
  (Saturday, Sunday), which must cover every hour of weekdays and of weekends exactly once: a gap would
  leave hours without a price (cost silently too low), an overlap two prices. Whole hours because costs
  are priced from the hourly rollups (one import/export figure per house and hour).
- `export_price` (feed-in, per kWh exported) and `standing_charge_per_day` are optional.
Prices are per kWh (per day for the standing charge) in CURRENCY; finite, within +-PRICE_LIMIT.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.clock import utcnow
from dashboard.errors import Conflict, NotFound, ValidationFailed
from dashboard.schema import House
from dashboard.schema_features import TARIFF_DAYS, TARIFF_KINDS, GridIntensity, Tariff, TariffPeriod
from dashboard.scope import Scope

PRICE_LIMIT = 1000.0
MAX_PERIODS = 48
MAX_CO2_G_PER_KWH = 5000.0
FIELDS = ("name", "kind", "import_price", "export_price", "standing_charge_per_day", "valid_from",
          "valid_to", "periods")  # fmt: skip
DAY_KINDS = {"all": ("weekday", "weekend"), "weekday": ("weekday",), "weekend": ("weekend",)}


def tariff_json(tariff: Tariff) -> dict:
    return {
        "id": tariff.id,
        "house_id": tariff.house_id,
        "name": tariff.name,
        "kind": tariff.kind,
        "import_price": tariff.import_price,
        "export_price": tariff.export_price,
        "standing_charge_per_day": tariff.standing_charge_per_day,
        "valid_from": tariff.valid_from.isoformat(),
        "valid_to": tariff.valid_to.isoformat() if tariff.valid_to else None,
        "periods": [
            {"days": p.days, "start": f"{p.start_hour:02d}:00", "end": f"{p.end_hour:02d}:00",
             "import_price": p.import_price}
            for p in tariff.periods
        ],
    }  # fmt: skip


# ---- validation ---------------------------------------------------------------------------------------


def _price(value: Any, field: str, problems: list, required: bool = False, minimum: float = -PRICE_LIMIT):
    if value is None:
        if required:
            problems.append({"field": field, "message": "is required (a price per kWh)"})
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append({"field": field, "message": "must be a finite number"})
        return None
    if not minimum <= value <= PRICE_LIMIT:
        problems.append({"field": field, "message": f"must be within [{minimum:g}, {PRICE_LIMIT:g}]"})
        return None
    return float(value)


def _date(value: Any, field: str, problems: list, required: bool) -> date | None:
    if value is None:
        if required:
            problems.append({"field": field, "message": "is required (a local date, YYYY-MM-DD)"})
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        problems.append({"field": field, "message": "must be a date YYYY-MM-DD"})
        return None


def _hour(value: Any, field: str, end: bool) -> int:
    """'07:00' -> 7; an end may be '24:00' (or '00:00', read as midnight at the end of the day)."""
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":" or not value[:2].isdigit():
        raise ValueError(f"{field}: a whole local hour HH:00, e.g. 07:00")
    if value[3:] != "00":
        raise ValueError(f"{field}: whole hours only (HH:00): costs are priced per hour")
    hour = int(value[:2])
    if end and hour == 0:
        hour = 24
    if not (1 <= hour <= 24 if end else 0 <= hour <= 23):
        raise ValueError(f"{field}: {'01:00 to 24:00' if end else '00:00 to 23:00'}")
    return hour


def _hours_of(start: int, end: int) -> list[int]:
    return list(range(start, end)) if start < end else [*range(start, 24), *range(0, end)]


def _periods(value: Any, problems: list) -> list[TariffPeriod]:
    if not isinstance(value, list) or not value:
        problems.append(
            {"field": "periods", "message": "a time-of-use tariff needs a non-empty list of periods"}
        )
        return []
    if len(value) > MAX_PERIODS:
        problems.append({"field": "periods", "message": f"at most {MAX_PERIODS} periods"})
        return []
    periods, owner = [], {}  # (day kind, hour) -> index of the period pricing it
    for index, item in enumerate(value):
        where = f"periods[{index}]"
        if not isinstance(item, dict) or set(item) - {"days", "start", "end", "import_price"}:
            problems.append({"field": where, "message": "an object {days, start, end, import_price}"})
            continue
        days = item.get("days", "all")
        if days not in TARIFF_DAYS:
            problems.append({"field": f"{where}.days", "message": f"one of {', '.join(TARIFF_DAYS)}"})
            continue
        try:
            start, end = _hour(item.get("start"), "start", False), _hour(item.get("end"), "end", True)
        except ValueError as exc:
            problems.append({"field": where, "message": str(exc)})
            continue
        if start == end:
            problems.append(
                {"field": where, "message": "start and end are the same hour; 00:00-24:00 is a whole day"}
            )
            continue
        price = _price(item.get("import_price"), f"{where}.import_price", problems, required=True)
        if price is None:
            continue
        for kind in DAY_KINDS[days]:
            for hour in _hours_of(start, end):
                if (kind, hour) in owner:
                    problems.append({"field": where, "message": f"overlaps periods[{owner[kind, hour]}] on "
                                                                f"{kind}s at {hour:02d}:00-{hour + 1:02d}:00"})  # fmt: skip
                    break
                owner[kind, hour] = index
        periods.append(TariffPeriod(days=days, start_hour=start, end_hour=end, import_price=price))
    if not problems:
        for kind in ("weekday", "weekend"):
            gaps = [hour for hour in range(24) if (kind, hour) not in owner]
            if gaps:
                spans = ", ".join(f"{h:02d}:00-{h + 1:02d}:00" for h in gaps[:4]) + (
                    " ..." if len(gaps) > 4 else ""
                )
                problems.append({"field": "periods", "message": f"{kind} hours without a price: {spans}; "
                                                                "periods must cover all 24 hours"})  # fmt: skip
    return periods


def validate_tariff(data: dict, current: Tariff | None = None) -> dict:
    """The tariff's values from a create body (`current` None) or a patch body merged over `current`;
    ValidationFailed listing every problem."""
    problems = [{"field": name, "message": f"unknown field; expected {', '.join(FIELDS)}"}
                for name in sorted(set(data) - set(FIELDS))]  # fmt: skip
    merged = {} if current is None else tariff_json(current)
    merged |= data
    kind = merged.get("kind")
    if kind not in TARIFF_KINDS:
        problems.append({"field": "kind", "message": "flat or tou (time of use)"})
    name = merged.get("name") or ("Flat" if kind == "flat" else "Time of use")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 120:
        problems.append({"field": "name", "message": "1 to 120 characters"})
    out: dict = {"name": name.strip() if isinstance(name, str) else name, "kind": kind}
    out["import_price"] = _price(
        merged.get("import_price"), "import_price", problems, required=kind == "flat"
    )
    out["export_price"] = _price(merged.get("export_price"), "export_price", problems)
    out["standing_charge_per_day"] = _price(
        merged.get("standing_charge_per_day"), "standing_charge_per_day", problems, minimum=0.0
    )
    out["valid_from"] = _date(merged.get("valid_from"), "valid_from", problems, required=True)
    out["valid_to"] = _date(merged.get("valid_to"), "valid_to", problems, required=False)
    if out["valid_from"] and out["valid_to"] and out["valid_to"] < out["valid_from"]:
        problems.append(
            {"field": "valid_to", "message": "must be on or after valid_from (both days included)"}
        )
    out["periods"] = []
    if kind == "tou":
        if out["import_price"] is not None:
            problems.append(
                {"field": "import_price", "message": "a time-of-use tariff prices its periods; omit it"}
            )
        out["periods"] = _periods(merged.get("periods"), problems)
    elif kind == "flat" and merged.get("periods"):
        problems.append({"field": "periods", "message": "a flat tariff has no periods (use kind tou)"})
    if problems:
        raise ValidationFailed(details=problems)
    return out


# ---- storage ------------------------------------------------------------------------------------------


def _house(session: Session, scope: Scope, house_id: int, lock: bool = False) -> House:
    scope.require_house(house_id)
    stmt = select(House).where(House.id == house_id)
    house = session.scalar(stmt.with_for_update() if lock else stmt)
    if house is None:
        raise NotFound(f"House {house_id} not found")
    return house


def _shown(day: date | None) -> str:
    return day.isoformat() if day else "open-ended"


def _check_overlap(session: Session, house_id: int, values: dict, own_id: int | None) -> None:
    start, end = values["valid_from"], values["valid_to"] or date.max
    for other in session.scalars(
        select(Tariff).where(Tariff.house_id == house_id).order_by(Tariff.valid_from)
    ):
        if other.id != own_id and other.valid_from <= end and start <= (other.valid_to or date.max):
            raise Conflict(
                f"Overlaps tariff {other.id} ({other.name!r}, {other.valid_from.isoformat()} to "
                f"{_shown(other.valid_to)}) of house {house_id}: end that one first (PATCH its valid_to) or "
                "choose other dates"
            )


def list_tariffs(session: Session, scope: Scope, house_id: int) -> list[Tariff]:
    _house(session, scope, house_id)
    return list(
        session.scalars(select(Tariff).where(Tariff.house_id == house_id).order_by(Tariff.valid_from))
    )


def get_tariff(session: Session, scope: Scope, house_id: int, tariff_id: int) -> Tariff:
    _house(session, scope, house_id)
    tariff = session.get(Tariff, tariff_id)
    if tariff is None or tariff.house_id != house_id:
        raise NotFound(f"Tariff {tariff_id} of house {house_id} not found")
    return tariff


def _apply(tariff: Tariff, values: dict) -> None:
    for name in ("name", "kind", "import_price", "export_price", "standing_charge_per_day", "valid_from",
                 "valid_to"):  # fmt: skip
        setattr(tariff, name, values[name])
    tariff.periods = values["periods"]


def create_tariff(session: Session, scope: Scope, house_id: int, data: dict) -> Tariff:
    """Validate, lock the house (two concurrent writes cannot both pass the overlap check), check overlaps,
    add. The caller commits."""
    values = validate_tariff(data)
    _house(session, scope, house_id, lock=True)
    _check_overlap(session, house_id, values, None)
    tariff = Tariff(house_id=house_id, created_at=utcnow())
    _apply(tariff, values)
    session.add(tariff)
    session.flush()
    return tariff


def update_tariff(session: Session, scope: Scope, house_id: int, tariff_id: int, data: dict) -> Tariff:
    _house(session, scope, house_id, lock=True)
    tariff = get_tariff(session, scope, house_id, tariff_id)
    values = validate_tariff(data, tariff)
    _check_overlap(session, house_id, values, tariff.id)
    _apply(tariff, values)
    session.flush()
    return tariff


def delete_tariff(session: Session, scope: Scope, house_id: int, tariff_id: int) -> None:
    session.delete(get_tariff(session, scope, house_id, tariff_id))
    session.flush()


# ---- grid carbon intensity ----------------------------------------------------------------------------


def validate_intensity(values: Any, parse_timestamp, limit: int) -> list[tuple[datetime, float]]:
    """[(naive-UTC hour, g/kWh)] from `[{"hour": ISO with offset, "g_per_kwh": n}]`; every problem listed."""
    if not isinstance(values, list) or not values:
        raise ValidationFailed(
            details=[{"field": "values", "message": "a non-empty list of {hour, g_per_kwh}"}]
        )
    if len(values) > limit:
        raise ValidationFailed(details=[{"field": "values", "message": f"at most {limit} hours per request"}])
    problems, rows, seen = [], [], set()
    for index, item in enumerate(values):
        if not isinstance(item, dict) or set(item) != {"hour", "g_per_kwh"}:
            problems.append({"index": index, "field": "values", "message": "an object {hour, g_per_kwh}"})
            continue
        try:
            hour = parse_timestamp(item["hour"]) if isinstance(item["hour"], str) else None
        except ValueError as exc:
            problems.append({"index": index, "field": "hour", "message": str(exc)})
            continue
        if hour is None or hour.minute or hour.second or hour.microsecond:
            problems.append(
                {"index": index, "field": "hour", "message": "the start of an hour, ISO 8601 with offset"}
            )
            continue
        value = item["g_per_kwh"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= MAX_CO2_G_PER_KWH
        ):
            problems.append(
                {"index": index, "field": "g_per_kwh", "message": f"a number in [0, {MAX_CO2_G_PER_KWH:g}]"}
            )
            continue
        if hour in seen:
            problems.append({"index": index, "field": "hour", "message": "given twice"})
            continue
        seen.add(hour)
        rows.append((hour, float(value)))
    if problems:
        raise ValidationFailed(details=problems[:200])
    return rows


def store_intensity(session: Session, rows: list[tuple[datetime, float]]) -> tuple[int, int]:
    """Insert or replace each hour's value (idempotent on the hour). Returns (inserted, updated)."""
    existing = {
        row.hour: row
        for row in session.scalars(select(GridIntensity).where(GridIntensity.hour.in_([h for h, _ in rows])))
    }
    inserted = 0
    for hour, value in rows:
        if hour in existing:
            existing[hour].g_per_kwh = value
        else:
            session.add(GridIntensity(hour=hour, g_per_kwh=value))
            inserted += 1
    session.flush()
    return inserted, len(rows) - inserted
