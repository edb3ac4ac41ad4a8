"""A data subject's export (GDPR art. 15 and 20, docs/privacy.md): the account, its houses, their devices
and every reading, as JSON, or above EXPORT_ZIP_THRESHOLD readings as a zip of CSVs streamed in bounded
memory."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.clock import iso_utc, utcnow
from dashboard.errors import NotFound
from dashboard.schema import Device, House, Measurement, User

EXPORT_ZIP_THRESHOLD = 100_000  # readings: above this the export is a zip of CSVs, streamed

READING_COLUMNS = ("device_id", "timestamp", "power_w", "energy_wh", "energy_derived", "voltage_v",
                   "current_a", "power_factor")  # fmt: skip


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


def _account(user: User) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
        "created_at": iso_utc(user.created_at) if user.created_at else None,
        "house_ids": sorted(h.id for h in user.houses),
        "community_ids": sorted(c.id for c in user.communities),
    }


def _house(h: House) -> dict:
    return {"id": h.id, "name": h.name, "address": h.address, "created_at": iso_utc(h.created_at) if h.created_at else None,
            "timezone": h.timezone, "country": h.country, "latitude": h.latitude, "longitude": h.longitude,
            "share_with_third_parties": h.share_with_third_parties,
            "community_ids": sorted(c.id for c in h.communities)}  # fmt: skip


def _devices(session: Session, house_ids: list[int]) -> list[Device]:
    return list(session.scalars(select(Device).where(Device.house_id.in_(house_ids)).order_by(Device.id)))


def _device(d: Device) -> dict:
    return {"id": d.id, "device_id": d.serial, "name": d.name, "kind": d.kind, "direction": d.direction,
            "house_id": d.house_id, "pv_id": d.pv_id}  # fmt: skip


def _reading_rows(session: Session, devices: list[Device]) -> Iterator[tuple]:
    """Every reading of the devices, by device and time, streamed from the database in chunks."""
    serials = {d.id: d.serial for d in devices}
    if not serials:
        return
    m = Measurement
    stmt = (
        select(m.device_id, m.ts, m.power_w, m.energy_wh, m.energy_derived, m.voltage_v, m.current_a,
               m.power_factor)
        .where(m.device_id.in_(sorted(serials)))
        .order_by(m.device_id, m.ts)
        .execution_options(yield_per=10_000)
    )  # fmt: skip
    for device_id, ts, *values in session.execute(stmt):
        stamp = iso_utc(ts) if ts.microsecond == 0 else ts.isoformat() + "Z"
        yield (serials[device_id], stamp, *values)


@dataclass
class ExportPlan:
    user_id: int
    readings: int

    @property
    def as_zip(self) -> bool:
        return self.readings > EXPORT_ZIP_THRESHOLD


def export_plan(session: Session, user_id: int) -> ExportPlan:
    user = _user(session, user_id)
    house_ids = [h.id for h in user.houses]
    n = 0
    if house_ids:
        devices = select(Device.id).where(Device.house_id.in_(house_ids))
        n = session.scalar(
            select(func.count()).select_from(Measurement).where(Measurement.device_id.in_(devices))
        )
    return ExportPlan(user_id, n or 0)


def export_json(session: Session, user_id: int) -> dict:
    """Everything stored about the user: account, houses, devices and every reading of those devices."""
    user = _user(session, user_id)
    houses = sorted(user.houses, key=lambda h: h.id)
    devices = _devices(session, [h.id for h in houses])
    return {
        "exported_at": iso_utc(utcnow().replace(microsecond=0)),
        "account": _account(user),
        "houses": [_house(h) for h in houses],
        "devices": [_device(d) for d in devices],
        "readings": [dict(zip(READING_COLUMNS, row, strict=True)) for row in _reading_rows(session, devices)],
    }


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream that hands what was written to the caller in pieces."""

    def __init__(self):
        self.pieces: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.pieces.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out, self.pieces = b"".join(self.pieces), []
        return out


def _csv_text(rows: Iterable[Iterable]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def export_zip(session_factory, user_id: int, chunk_rows: int = 20_000) -> Iterator[bytes]:
    """The export as a zip streamed in pieces, in bounded memory: account.json, houses.csv, devices.csv and
    readings.csv (written chunk by chunk as the rows arrive from the database)."""
    sink = _Sink()
    with session_factory() as session, zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        user = _user(session, user_id)
        houses = sorted(user.houses, key=lambda h: h.id)
        devices = _devices(session, [h.id for h in houses])
        archive.writestr("account.json", json.dumps(_account(user), indent=2))
        house_rows = [_house(h) for h in houses]
        columns = list(house_rows[0]) if house_rows else ["id"]
        archive.writestr("houses.csv", _csv_text([columns, *([r[c] for c in columns] for r in house_rows)]))
        device_rows = [_device(d) for d in devices]
        columns = list(device_rows[0]) if device_rows else ["id"]
        archive.writestr("devices.csv", _csv_text([columns, *([r[c] for c in columns] for r in device_rows)]))
        yield sink.take()
        with archive.open("readings.csv", "w", force_zip64=True) as member:
            member.write(_csv_text([READING_COLUMNS]).encode())
            chunk = []
            for row in _reading_rows(session, devices):
                chunk.append(row)
                if len(chunk) >= chunk_rows:
                    member.write(_csv_text(chunk).encode())
                    chunk = []
                    yield sink.take()
            member.write(_csv_text(chunk).encode())
    yield sink.take()
