"""Trained models: encrypted bytes in the object store, one `model_versions` row each, an active pointer
per slot, and a per-process cache of loaded models.

A slot is what a forecast names: target, product, horizon, scope, model and strategy. Saving a new
version activates it; `activate()` moves the pointer back (rollback). `load_active()` falls back to the
previous versions of the slot when the active one cannot be read or decrypted.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dashboard.clock import utcnow
from dashboard.config import Settings
from dashboard.crypto import DecryptionFailed, decrypt, encrypt, model_key
from dashboard.errors import NotFound
from dashboard.schema import ModelVersion
from dashboard.storage import ObjectNotFound, ObjectStore
from models import FitReport, Forecaster

log = logging.getLogger(__name__)
MODEL_CACHE_SIZE = 64  # loaded models per process; an XGBoost direct model is about 1-3 MB in memory


@dataclass(frozen=True)
class Slot:
    target: str
    product: str
    horizon: int
    scope_kind: str  # all | community | house
    scope_id: int | None
    model: str
    strategy: str

    def where(self):
        m = ModelVersion
        scope = m.scope_id.is_(None) if self.scope_id is None else m.scope_id == self.scope_id
        return (m.target == self.target, m.product == self.product, m.horizon == self.horizon,
                m.scope_kind == self.scope_kind, scope, m.model == self.model, m.strategy == self.strategy)  # fmt: skip

    def prefix(self) -> str:
        scope = self.scope_kind if self.scope_id is None else f"{self.scope_kind}-{self.scope_id}"
        return f"models/{self.target}/{self.product}-h{self.horizon}/{scope}/{self.model}-{self.strategy}"


class ModelUnavailable(Exception):
    """No version of the slot could be loaded."""


class ModelStore:
    def __init__(self, settings: Settings, objects: ObjectStore):
        self.objects = objects
        self.key = model_key(settings.secret_key, settings.model_encryption_key)
        # keyed by object key (unique per version, immutable), not by row id: ids are reused when a
        # database is restored or recreated while a worker keeps its cache
        self._cache: OrderedDict[str, Forecaster] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def save(self, session: Session, slot: Slot, forecaster: Forecaster, report: FitReport,
             trained_by: int | None) -> ModelVersion:  # fmt: skip
        """Store a new version (encrypted), register it and make it the slot's active version."""
        version = f"{utcnow():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
        object_key = f"{slot.prefix()}/{version}.bin"
        metadata = {"version": version, "target": slot.target, "product": slot.product, "model": slot.model,
                    "strategy": slot.strategy, "encryption": "AES-256-GCM"}  # fmt: skip
        self.objects.put_bytes(object_key, encrypt(self.key, forecaster.to_bytes(), object_key), metadata)
        row = ModelVersion(
            version=version, object_key=object_key, trained_at=utcnow(), trained_by=trained_by,
            data_start=_naive(report.data_start), data_end=_naive(report.data_end),
            metrics_json=json.dumps(report.metrics), features_json=json.dumps(report.features),
            libraries_json=json.dumps(report.libraries), is_active=False, **slot.__dict__,
        )  # fmt: skip
        session.add(row)
        session.flush()
        self.activate(session, row.id)
        return row

    def activate(self, session: Session, version_id: int) -> ModelVersion:
        row = session.get(ModelVersion, version_id)
        if row is None:
            raise NotFound(f"Model version {version_id} not found")
        slot = slot_of(row)
        session.execute(update(ModelVersion).where(*slot.where()).values(is_active=False))
        row.is_active = True
        session.flush()
        return row

    def load(self, row: ModelVersion) -> Forecaster:
        """The version's forecaster, from the process cache or the store. Versions are immutable, so the cache
        needs no invalidation: activating another version changes which key `load_active` asks for."""
        with self._lock:
            hit = self._cache.get(row.object_key)
            if hit is not None:
                self._cache.move_to_end(row.object_key)
                return hit
        blob = self.objects.get_bytes(row.object_key)
        forecaster = Forecaster.from_bytes(decrypt(self.key, blob, row.object_key))
        with self._lock:
            self._cache[row.object_key] = forecaster
            while len(self._cache) > MODEL_CACHE_SIZE:  # bounded: a worker serving many scopes stays small
                self._cache.popitem(last=False)
        return forecaster

    def load_active(self, session: Session, slot: Slot) -> tuple[ModelVersion, Forecaster]:
        """The active version, else the newest older one that loads (failover), else ModelUnavailable."""
        rows = session.scalars(
            select(ModelVersion).where(*slot.where()).order_by(ModelVersion.id.desc())
        ).all()
        active = next((r for r in rows if r.is_active), None)
        # the active version first, then the versions trained before it, newest first
        # (the first candidate is `current_version`)
        candidates = rows if active is None else [active] + [r for r in rows if r.id < active.id]
        for row in candidates:
            try:
                return row, self.load(row)
            except (ObjectNotFound, DecryptionFailed, TypeError, ValueError) as exc:  # try the previous one
                log.warning(
                    "Model version %s could not be loaded (%s); trying the previous one", row.version, exc
                )
        raise ModelUnavailable(f"No loadable model for {slot}")


def current_version(session: Session, slot: Slot) -> ModelVersion | None:
    """The version a forecast for the slot tries first: the active one, else the newest (`load_active`)."""
    return session.scalar(
        select(ModelVersion)
        .where(*slot.where())
        .order_by(ModelVersion.is_active.desc(), ModelVersion.id.desc())
        .limit(1)
    )


def slot_of(row: ModelVersion) -> Slot:
    return Slot(row.target, row.product, row.horizon, row.scope_kind, row.scope_id, row.model, row.strategy)


def _naive(text: str) -> datetime | None:
    if not text:
        return None
    from datetime import UTC

    ts = datetime.fromisoformat(text)
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts
