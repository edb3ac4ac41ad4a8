"""Privacy rules (docs/privacy.md): k-anonymity of what third parties see, a data subject's erasure, removal
of a house's models and cached forecasts, and the access log's keyed pseudonyms (its truncated client
address: dashboard/clients.py). A data subject's export: dashboard/subject_export.py.

Erasure and house deletion change the database in the caller's one transaction and return the object-store
keys of the models they dropped; `purge_models` removes those objects and their cached forecasts after the
commit (a failure there is logged and retried, never undoes the erasure: the rows pointing at the objects
are gone, so nothing can read them).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from dashboard.clock import iso_utc
from dashboard.crypto import derive_key
from dashboard.errors import Forbidden, NotFound
from dashboard.forecast_cache import PREFIX as FORECAST_PREFIX
from dashboard.rollups import delete_rollups_of, merge_fleet_shares, subtract_from_fleet
from dashboard.schema import (
    ApiAccessLog,
    Community,
    Device,
    EnergyRollup,
    House,
    LoginFailure,
    Measurement,
    ModelRun,
    ModelVersion,
    User,
    community_houses,
    user_houses,
)
from dashboard.scope import Scope

log = logging.getLogger(__name__)
PURGE_ATTEMPTS = 3


# ---- the access log -----------------------------------------------------------------------------------


def user_pseudonym(user_id: int, secret_key: str) -> str:
    """The keyed, one-way pseudonym that replaces an erased user's id in the access log: the same user gives
    the same pseudonym (their rows stay linkable to each other for audits), no one without the key can
    tell whose it was."""
    key = derive_key(secret_key, b"aggregator access-log pseudonym")  # HKDF, like every other key
    digest = hmac.new(key, f"user:{user_id}".encode(), hashlib.sha256)
    return "u-" + digest.hexdigest()[:24]


# ---- k-anonymity for third parties -----------------------------------------------------------------------


def _house_counts():
    return (
        select(community_houses.c.community_id, func.count().label("n"))
        .group_by(community_houses.c.community_id)
        .subquery()
    )


def communities_of_size(k: int):
    """SELECT of the ids of communities with at least k houses (what a third party may see)."""
    counts = _house_counts()
    return select(counts.c.community_id).where(counts.c.n >= k)


def community_visible(scope: Scope, k: int):
    """SQL condition on Community for the scope's list and reads: third parties see only communities of at
    least k houses; others their scope's communities."""
    from sqlalchemy import true

    if not scope.per_house_allowed:
        return Community.id.in_(communities_of_size(k))
    return true() if scope.community_ids is None else Community.id.in_(scope.community_ids)


def _houses_in(session: Session, community_id: int | None) -> int:
    if community_id is None:
        return session.scalar(select(func.count()).select_from(House)) or 0
    return (
        session.scalar(
            select(func.count())
            .select_from(community_houses)
            .where(community_houses.c.community_id == community_id)
        )
        or 0
    )


def _refuse(k: int, what: str) -> Forbidden:
    return Forbidden(
        f"Third-party apps see aggregates of at least {k} houses (MIN_AGGREGATE_HOUSES): {what}. "
        "Ask for a range or community where at least that many houses have readings"
    )


def check_community_visible(session: Session, scope: Scope, k: int, community_id: int | None) -> None:
    """A community of fewer than k houses does not exist for a third party (404, as an unknown one)."""
    if scope.per_house_allowed or community_id is None:
        return
    if session.get(Community, community_id) is None or _houses_in(session, community_id) < k:
        raise NotFound(f"Community {community_id} not found")


def check_aggregate(
    session: Session,
    scope: Scope,
    k: int,
    community_id: int | None = None,
    resolution: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """For a third party: a community of fewer than k houses does not exist (404, as if unknown), and an
    aggregate (the fleet or a community) with a bucket of `resolution` in [start, end) to which fewer than
    k houses contributed readings is refused (403). Other roles pass untouched."""
    if scope.per_house_allowed:
        return
    check_community_visible(session, scope, k, community_id)
    if _houses_in(session, community_id) < k:
        raise _refuse(k, "this scope has fewer houses")
    if resolution is None or start is None or end is None:
        return
    r = EnergyRollup
    houses = r.entity_id.in_(
        select(community_houses.c.house_id).where(community_houses.c.community_id == community_id)
    ) if community_id is not None else r.entity_kind == "house"  # fmt: skip
    thin = session.execute(
        select(r.bucket_start, func.count())
        .where(r.resolution == resolution, r.entity_kind == "house", houses, r.readings_count > 0,
               r.bucket_start >= start, r.bucket_start < end)
        .group_by(r.bucket_start)
        .having(func.count() < k)
        .order_by(r.bucket_start)
        .limit(1)
    ).first()  # fmt: skip
    if thin is not None:
        raise _refuse(k, f"the {resolution} bucket at {iso_utc(thin[0])} has readings of {thin[1]} houses")


def check_forecast_scope(
    session: Session, scope: Scope, k: int, scope_kind: str, scope_id: int | None
) -> None:
    """A forecast or training request names a house or community that exists (a deleted house answers 404,
    not an old model's forecast), and a third party's scope has at least k houses."""
    if scope_kind == "house" and session.get(House, scope_id) is None:
        raise NotFound(f"House {scope_id} not found")
    if scope_kind == "community" and session.get(Community, scope_id) is None:
        raise NotFound(f"Community {scope_id} not found")
    check_aggregate(session, scope, k, community_id=scope_id if scope_kind == "community" else None)


def consenting_houses():
    """SELECT of the ids of houses whose owners consented to per-house rows for third parties."""
    return select(House.id).where(House.share_with_third_parties.is_(True))


# ---- models and cached forecasts of houses and communities ---------------------------------------------


def drop_models(session: Session, house_ids: Iterable[int], community_ids: Iterable[int] = ()) -> list[str]:
    """Delete the model_versions rows trained on these houses (house scope) and communities; the object
    keys to purge after the commit (`purge_models`)."""
    house_ids, community_ids = sorted(set(house_ids)), sorted(set(community_ids))
    m = ModelVersion
    conditions = []
    if house_ids:
        conditions.append((m.scope_kind == "house") & m.scope_id.in_(house_ids))
    if community_ids:
        conditions.append((m.scope_kind == "community") & m.scope_id.in_(community_ids))
    if not conditions:
        return []
    keys = list(session.scalars(delete(m).where(or_(*conditions)).returning(m.object_key)))
    return sorted(set(keys))


def purge_models(object_store, cache, keys: list[str]) -> list[str]:
    """After the commit: delete the models' objects (retried) and their cached forecasts. Returns the keys
    that could not be deleted (logged; the rows pointing at them are gone already)."""
    failed = []
    for key in keys:
        for attempt in range(PURGE_ATTEMPTS):
            try:
                object_store.delete(key)
                break
            except Exception as exc:  # noqa: BLE001 - any store failure: retry, then log
                if attempt + 1 == PURGE_ATTEMPTS:
                    log.error(
                        "Could not delete model object %s after %d attempts: %s", key, PURGE_ATTEMPTS, exc
                    )
                    failed.append(key)
                else:
                    time.sleep(0.2 * (attempt + 1))
        if cache is not None and hasattr(cache, "delete_prefix"):
            cache.delete_prefix(f"{FORECAST_PREFIX}{key}|")
    return failed


# ---- erasure ------------------------------------------------------------------------------------------


@dataclass
class Erasure:
    user_id: int
    username: str
    pseudonym: str
    house_ids: list[int] = field(default_factory=list)
    devices: int = 0
    readings: int = 0
    model_keys: list[str] = field(default_factory=list)
    access_log_rows: int = 0
    failed_objects: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "user_id": self.user_id,
            "pseudonym": self.pseudonym,
            "houses_erased": self.house_ids,
            "devices_erased": self.devices,
            "readings_erased": self.readings,
            "models_erased": len(self.model_keys),
            "access_log_rows_pseudonymised": self.access_log_rows,
            "objects_not_deleted": self.failed_objects,
        }


def sole_houses(session: Session, user_id: int) -> list[int]:
    """The houses linked to this user and to no other user."""
    uh = user_houses.c
    others = select(uh.house_id).where(uh.user_id != user_id)
    return sorted(
        session.scalars(select(uh.house_id).where(uh.user_id == user_id, uh.house_id.not_in(others)))
    )


def delete_houses(session: Session, houses: list[House]) -> tuple[list[str], list[dict], int, int]:
    """Delete houses with their devices, readings, rollups and models, in the caller's transaction.

    Returns (model object keys to purge after the commit, the fleet's share to subtract last with
    `subtract_from_fleet`, devices deleted, readings deleted). Communities need nothing: their sums are
    read from the houses' rollups, so they lose exactly the deleted houses' share."""
    ids = [h.id for h in houses]
    if not ids:
        return [], [], 0, 0
    devices = select(Device.id).where(Device.house_id.in_(ids))
    n_devices = session.scalar(select(func.count()).select_from(Device).where(Device.house_id.in_(ids))) or 0
    shares = [delete_rollups_of(session, house) for house in sorted(houses, key=lambda h: h.id)]
    n_readings = session.execute(delete(Measurement).where(Measurement.device_id.in_(devices))).rowcount
    session.execute(delete(Device).where(Device.house_id.in_(ids)))
    community_ids = session.scalars(
        select(community_houses.c.community_id).where(community_houses.c.house_id.in_(ids))
    ).all()
    keys = drop_models(session, ids, community_ids)
    for house in houses:
        session.delete(house)
    return keys, merge_fleet_shares(shares), n_devices, n_readings


def erase_user(session: Session, user_id: int, secret_key: str) -> Erasure:
    """Erase a user (GDPR art. 17) in the caller's transaction: the account, the houses linked only to them
    with their devices, readings, rollups (the fleet's adjusted by subtraction, communities by construction)
    and the models trained on them; their access-log rows keep only a keyed pseudonym. The caller commits,
    then calls `purge_models(..., erasure.model_keys)`."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    erasure = Erasure(user_id, user.username, user_pseudonym(user_id, secret_key))
    houses = [session.get(House, h) for h in sole_houses(session, user_id)]
    keys, fleet_share, erasure.devices, erasure.readings = delete_houses(session, houses)
    erasure.house_ids, erasure.model_keys = [h.id for h in houses], keys
    erasure.access_log_rows = session.execute(
        update(ApiAccessLog)
        .where(ApiAccessLog.user_id == user_id)
        .values(user_id=None, user_pseudonym=erasure.pseudonym)
    ).rowcount
    session.execute(update(ModelRun).where(ModelRun.user_id == user_id).values(user_id=None))
    session.execute(update(ModelVersion).where(ModelVersion.trained_by == user_id).values(trained_by=None))
    session.execute(delete(LoginFailure).where(LoginFailure.username == user.username))
    session.delete(user)
    session.flush()
    subtract_from_fleet(session, fleet_share)  # the fleet's hot rows last, just before the commit
    return erasure
