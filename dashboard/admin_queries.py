"""The Admin page's reads and writes: users, houses and devices, API keys, model versions and runs.

Writes take ids the caller has already parsed (never the browser's payload) and commit, or roll back and
raise a DomainError, so nothing is half-written. They go through the same services as the API
(`create_user`, `revoke_api_key`, the model store's `activate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dashboard.auth import api_key_house_ids, create_api_key, create_user, revoke_api_key
from dashboard.choices import Choice, natural_key
from dashboard.errors import NotFound, ValidationFailed
from dashboard.model_store import ModelStore
from dashboard.schema import (
    ApiKey,
    Community,
    Device,
    House,
    Measurement,
    ModelRun,
    ModelVersion,
    PVPark,
    User,
    community_houses,
)

# ---- users -------------------------------------------------------------------------------------------


def add_user(session: Session, username: str, password: str, role: str, house_ids: list[int]) -> User:
    user = create_user(session, username, password, role, house_ids)
    try:
        session.commit()
    except IntegrityError:  # a concurrent create of the same username
        session.rollback()
        raise ValidationFailed(details=[{"field": "username", "message": "already taken"}]) from None
    return user


def set_user_active(session: Session, actor_id: int | None, user_id: int, active: bool) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user")
    if user.id == actor_id and not active:
        raise ValidationFailed("You cannot deactivate your own account")
    user.is_active = active
    session.commit()
    return user


def users(session: Session) -> list[User]:
    """Every user with their houses, by username."""
    return list(session.scalars(select(User).options(selectinload(User.houses)).order_by(User.username)))


# ---- houses and devices ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseRow:
    id: int
    name: str
    devices: int
    communities: list[str]


def houses(session: Session, limit: int, offset: int = 0) -> tuple[list[HouseRow], int]:
    """`limit` houses by name from `offset` on, with their device counts and communities, and the total."""
    # house names are encrypted at rest (dashboard/fieldcrypt.py): sorted here, not by the database
    named = sorted(
        session.execute(select(House.id, House.name)).all(), key=lambda r: (natural_key(r[1]), r[0])
    )
    total, first = len(named), named[offset : offset + limit]
    counts = dict(
        session.execute(
            select(Device.house_id, func.count(Device.id))
            .where(Device.house_id.in_([i for i, _ in first]))
            .group_by(Device.house_id)
        ).all()
    )
    rows = [(i, name, counts.get(i, 0)) for i, name in first]
    communities: dict[int, list[str]] = {}
    for house_id, name in session.execute(
        select(community_houses.c.house_id, Community.name)
        .join(Community, Community.id == community_houses.c.community_id)
        .where(community_houses.c.house_id.in_([r[0] for r in rows]))
        .order_by(Community.name)
    ):
        communities.setdefault(house_id, []).append(name)
    return [HouseRow(i, name, n, communities.get(i, [])) for i, name, n in rows], total


@dataclass(frozen=True)
class DeviceRow:
    serial: str
    name: str
    kind: str
    direction: str
    house_id: int | None
    house: str | None
    park: str | None
    last_reading: datetime | None


def devices(session: Session, choice: Choice, limit: int, offset: int = 0) -> tuple[list[DeviceRow], int]:
    """`limit` devices from `offset` on of a checked choice (a house, a community's houses, or all), each
    with its last reading: one index probe per device shown on the (device_id, ts) primary key, never a
    scan of the readings."""
    where = []
    if choice.house_id is not None:
        where.append(Device.house_id == choice.house_id)
    elif choice.community_id is not None:
        members = select(community_houses.c.house_id).where(
            community_houses.c.community_id == choice.community_id
        )
        where.append(Device.house_id.in_(members))
    total = session.scalar(select(func.count(Device.id)).where(*where))
    # house names are encrypted at rest (dashboard/fieldcrypt.py): sorted here (houses without a name,
    # i.e. PV-park inverters, last), then the last reading of the page's devices only
    rows = session.execute(
        select(
            Device.id,
            Device.serial,
            Device.name,
            Device.kind,
            Device.direction,
            House.id,
            House.name,
            PVPark.name,
        )
        .outerjoin(House, House.id == Device.house_id)
        .outerjoin(PVPark, PVPark.id == Device.pv_park_id)
        .where(*where)
    ).all()
    rows = sorted(rows, key=lambda r: (r[6] is None, natural_key(r[6]), natural_key(r[1])))[
        offset : offset + limit
    ]
    newest = select(func.max(Measurement.ts)).where(Measurement.device_id == Device.id).scalar_subquery()
    last = dict(session.execute(select(Device.id, newest).where(Device.id.in_([r[0] for r in rows]))).all())
    return [DeviceRow(*row[1:], last.get(row[0])) for row in rows], total


# ---- API keys ----------------------------------------------------------------------------------------


def add_api_key(session: Session, name: str, role: str, house_ids: list[int]) -> tuple[ApiKey, str]:
    """A new key and its secret (shown once, never stored); a gateway's for `house_ids`."""
    row, key = create_api_key(session, name, role, house_ids)
    session.commit()
    return row, key


def revoke_key(session: Session, key_id: int) -> ApiKey:
    row = revoke_api_key(session, key_id)  # as DELETE /api/v1/api-keys/<id>
    session.commit()
    return row


def api_keys(session: Session, limit: int) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id).limit(limit)))


def key_house_labels(session: Session, keys: list[ApiKey]) -> dict[int, str]:
    """Each gateway key's houses as "name (#id), ..." (keys without houses are absent)."""
    by_key = api_key_house_ids(session, [k.id for k in keys])
    wanted = sorted({h for ids in by_key.values() for h in ids})
    names = (
        dict(session.execute(select(House.id, House.name).where(House.id.in_(wanted))).all())
        if wanted
        else {}
    )
    return {k: ", ".join(f"{names.get(h, '?')} (#{h})" for h in ids) for k, ids in by_key.items()}


# ---- models and runs ---------------------------------------------------------------------------------


def slot_key(row: ModelVersion) -> tuple:
    return (row.target, row.product, row.horizon, row.scope_kind, row.scope_id or 0, row.model, row.strategy)


def model_versions(session: Session, limit: int) -> tuple[list[ModelVersion], int]:
    """The newest `limit` versions grouped by slot, newest first within a slot (so a rollback target sits
    under the active version), and the total."""
    total = session.scalar(select(func.count(ModelVersion.id)))
    rows = session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc()).limit(limit)).all()
    return sorted(rows, key=lambda r: (slot_key(r), -r.id)), total


def scope_names(session: Session, rows) -> dict[tuple[str, int], str]:
    """Names of the houses and communities that rows with (scope_kind, scope_id) name."""
    names = {}
    houses_ = {r.scope_id for r in rows if r.scope_kind == "house" and r.scope_id is not None}
    communities = {r.scope_id for r in rows if r.scope_kind == "community" and r.scope_id is not None}
    if houses_:
        for house_id, name in session.execute(select(House.id, House.name).where(House.id.in_(houses_))):
            names[("house", house_id)] = name
    if communities:
        for cid, name in session.execute(
            select(Community.id, Community.name).where(Community.id.in_(communities))
        ):
            names[("community", cid)] = name
    return names


def activate_version(session: Session, store: ModelStore, version_id: int) -> ModelVersion:
    row = store.activate(session, version_id)  # NotFound for an unknown id
    session.commit()
    return row


@dataclass(frozen=True)
class Runs:
    runs: list[ModelRun]
    usernames: dict[int, str]
    key_names: dict[int, str]


def recent_runs(session: Session, limit: int) -> Runs:
    """The latest training and forecast runs with the names of who asked."""
    runs = session.scalars(
        select(ModelRun).order_by(ModelRun.at.desc(), ModelRun.id.desc()).limit(limit)
    ).all()
    user_ids = {r.user_id for r in runs if r.user_id is not None}
    key_ids = {r.api_key_id for r in runs if r.api_key_id is not None}
    usernames = (
        dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())
        if user_ids
        else {}
    )
    key_names = (
        dict(session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(key_ids))).all())
        if key_ids
        else {}
    )
    return Runs(list(runs), usernames, key_names)
