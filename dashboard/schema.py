"""The relational schema (SQLAlchemy 2.x declarative), shared by SQLite and PostgreSQL.

All timestamps are stored as naive UTC (`DateTime` without zone) so both databases compare them the same
way; the faces convert to and from ISO 8601 with offsets. A measurement's timestamp labels the START of
its interval. Alembic migrations in `dashboard/migrations` are the source of truth for the database;
this module is what the code reads and writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dashboard.fieldcrypt import EncryptedText
from dashboard.policy import KEY_ROLES, ROLES, THIRD_PARTY

DEVICE_KINDS = ("meter", "appliance", "pv")
DIRECTIONS = ("consumption", "production")
RESOLUTIONS = ("15min", "hour", "day")
VOLTAGE_OUTSIDE = "voltage_min < 207 OR voltage_max > 253"  # 0.9 / 1.1 x 230 V, as dashboard.exports
ROLLUP_ENTITIES = ("house", "pv_park", "device", "all")  # "all": the pre-summed fleet (rollups.FLEET)


class Base(DeclarativeBase):
    pass


# Big integer ids on PostgreSQL, plain INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")

user_houses = Table(
    "user_houses",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("house_id", ForeignKey("houses.id", ondelete="CASCADE"), primary_key=True),
)

user_communities = Table(
    "user_communities",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("community_id", ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True),
)

community_houses = Table(
    "community_houses",
    Base.metadata,
    Column("community_id", ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True),
    Column("house_id", ForeignKey("houses.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="ck_users_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # every token carries the generation it was issued under; a password, role or activation change
    # bumps it (dashboard/auth.py), which ends every session of the user at once
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # personal data, AES-256-GCM at rest (dashboard/fieldcrypt.py); the username stays a plain identifier
    full_name: Mapped[str | None] = mapped_column(EncryptedText("users.full_name"))
    email: Mapped[str | None] = mapped_column(EncryptedText("users.email"))

    houses: Mapped[list[House]] = relationship(secondary=user_houses, back_populates="users")
    communities: Mapped[list[Community]] = relationship(secondary=user_communities, back_populates="users")


class House(Base):
    __tablename__ = "houses"

    id: Mapped[int] = mapped_column(primary_key=True)
    # personal data, AES-256-GCM at rest (dashboard/fieldcrypt.py): the database cannot sort or filter them
    name: Mapped[str] = mapped_column(EncryptedText("houses.name"))
    address: Mapped[str | None] = mapped_column(EncryptedText("houses.address"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # its place (dashboard/places.py): NULL means the community's, else the environment's default
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA
    country: Mapped[str | None] = mapped_column(String(40))  # ISO 3166-1 alpha-2 or 3166-2 (AU-VIC)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # the owner's consent to per-house rows (under a pseudonym) for third-party apps (docs/privacy.md)
    share_with_third_parties: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    users: Mapped[list[User]] = relationship(secondary=user_houses, back_populates="houses")
    communities: Mapped[list[Community]] = relationship(secondary=community_houses, back_populates="houses")
    devices: Mapped[list[Device]] = relationship(back_populates="house", passive_deletes=True)
    pvs: Mapped[list[PV]] = relationship(back_populates="house", cascade="all, delete-orphan")


class Community(Base):
    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # its place (dashboard/places.py): NULL means the environment's default
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA
    country: Mapped[str | None] = mapped_column(String(40))  # ISO 3166-1 alpha-2 or 3166-2 (AU-VIC)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)

    users: Mapped[list[User]] = relationship(secondary=user_communities, back_populates="communities")
    houses: Mapped[list[House]] = relationship(secondary=community_houses, back_populates="communities")
    pv_parks: Mapped[list[PVPark]] = relationship(back_populates="community")


class PVPark(Base):
    """A community-level solar installation; its inverters are devices with `pv_park_id` set."""

    __tablename__ = "pv_parks"
    __table_args__ = (CheckConstraint("capacity_kw > 0", name="ck_pv_parks_capacity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id", ondelete="SET NULL"))
    capacity_kw: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    community: Mapped[Community | None] = relationship(back_populates="pv_parks")


class PV(Base):
    """A PV installation on a house (capacity in kWp); its inverter is a device of kind `pv`."""

    __tablename__ = "pvs"
    __table_args__ = (CheckConstraint("capacity_kwp > 0", name="ck_pvs_capacity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    house_id: Mapped[int] = mapped_column(ForeignKey("houses.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    capacity_kwp: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    house: Mapped[House] = relationship(back_populates="pvs")


class Device(Base):
    """A meter, appliance sub-meter or PV inverter, in a house or (inverters only) in a PV park."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint(f"kind IN {DEVICE_KINDS}", name="ck_devices_kind"),
        CheckConstraint(f"direction IN {DIRECTIONS}", name="ck_devices_direction"),
        CheckConstraint("(house_id IS NULL) <> (pv_park_id IS NULL)", name="ck_devices_one_location"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(20))
    house_id: Mapped[int | None] = mapped_column(ForeignKey("houses.id", ondelete="CASCADE"), index=True)
    pv_park_id: Mapped[int | None] = mapped_column(ForeignKey("pv_parks.id", ondelete="CASCADE"), index=True)
    pv_id: Mapped[int | None] = mapped_column(ForeignKey("pvs.id", ondelete="SET NULL"))
    # The device's own plausibility bound on power (W), below MAX_POWER_W; NULL: MAX_POWER_W applies
    max_power_w: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    house: Mapped[House | None] = relationship(back_populates="devices")


class Measurement(Base):
    """Raw readings: one row per device and interval start. Idempotent on (device_id, ts)."""

    __tablename__ = "measurements"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    power_w: Mapped[float] = mapped_column(Float)
    energy_wh: Mapped[float] = mapped_column(Float)
    energy_derived: Mapped[bool] = mapped_column(Boolean, default=False)
    voltage_v: Mapped[float | None] = mapped_column(Float)
    current_a: Mapped[float | None] = mapped_column(Float)
    power_factor: Mapped[float | None] = mapped_column(Float)


class EnergyRollup(Base):
    """Pre-aggregated energy per entity and bucket, so dashboards cost O(points shown).

    Sums and counts (not means) are stored so late readings can be folded in with an upsert.
    `day` buckets start at local midnight (Settings.timezone), stored as UTC.
    """

    __tablename__ = "energy_rollups"
    __table_args__ = (
        CheckConstraint(f"resolution IN {RESOLUTIONS}", name="ck_rollups_resolution"),
        CheckConstraint(f"entity_kind IN {ROLLUP_ENTITIES}", name="ck_rollups_entity"),
        Index("ix_rollups_bucket", "resolution", "bucket_start"),
        # intervals whose voltage left 0.9-1.1 x 230 V: rare, counted by the Exports (migration 0003)
        Index(
            "ix_rollups_voltage_outside",
            "resolution",
            "bucket_start",
            postgresql_where=text(VOLTAGE_OUTSIDE),
            sqlite_where=text(VOLTAGE_OUTSIDE),
        ),
    )

    resolution: Mapped[str] = mapped_column(String(8), primary_key=True)
    entity_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    entity_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    consumption_wh: Mapped[float] = mapped_column(Float, default=0.0)
    production_wh: Mapped[float] = mapped_column(Float, default=0.0)
    voltage_min: Mapped[float | None] = mapped_column(Float)
    voltage_max: Mapped[float | None] = mapped_column(Float)
    voltage_sum: Mapped[float] = mapped_column(Float, default=0.0)
    voltage_count: Mapped[int] = mapped_column(Integer, default=0)
    pf_sum: Mapped[float] = mapped_column(Float, default=0.0)
    pf_count: Mapped[int] = mapped_column(Integer, default=0)
    readings_count: Mapped[int] = mapped_column(Integer, default=0)
    # house rows only: grid import and export settled per 15-minute interval, summed into hour and day
    # (dashboard/settlement.py; migration 0014)
    import_wh: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    export_wh: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))


class WeatherLocation(Base):
    """A point weather is stored for; houses and communities read the nearest one within 50 km."""

    __tablename__ = "weather_locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)


class WeatherObservation(Base):
    """Hourly weather of one location. `is_forecast` rows are a provider's forecast for an hour without an
    observation yet; the observation replaces them (same row) when it arrives."""

    __tablename__ = "weather_observations"
    __table_args__ = (UniqueConstraint("location", "time", name="uq_weather_location_time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    location: Mapped[str] = mapped_column(
        String(120),
        ForeignKey("weather_locations.name", ondelete="CASCADE", name="fk_weather_observations_location"),
    )
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    time: Mapped[datetime] = mapped_column(DateTime)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    irradiance_wm2: Mapped[float | None] = mapped_column(Float)
    cloud_cover_pct: Mapped[float | None] = mapped_column(Float)
    is_forecast: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ApiKey(Base):
    """A third-party app's or a field gateway's key. Only a SHA-256 of the key is stored; the key is shown
    once. A gateway key writes readings for the devices of its houses (`api_key_houses`) and reads nothing."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(f"role IN {KEY_ROLES}", name="ck_api_keys_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    role: Mapped[str] = mapped_column(String(20), default=THIRD_PARTY, server_default=THIRD_PARTY)


# A gateway key's houses; a deleted house or key takes its links with it (a key left with none writes nothing).
api_key_houses = Table(
    "api_key_houses",
    Base.metadata,
    Column("api_key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("house_id", ForeignKey("houses.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class ApiAccessLog(Base):
    __tablename__ = "api_access_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(255))
    status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    client: Mapped[str | None] = mapped_column(String(64))  # IPv4 /24 or IPv6 /48 (dashboard/privacy.py)
    target: Mapped[str | None] = mapped_column(String(255))  # the object or house asked for, e.g. house_id=3
    user_pseudonym: Mapped[str | None] = mapped_column(String(40))  # an erased user's keyed pseudonym


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class LoginFailure(Base):
    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_user_at", "username", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)


class InjectedAnomaly(Base):
    """Ground truth of the anomalies the demo generator injected, to score analytics against."""

    __tablename__ = "injected_anomalies"

    id: Mapped[int] = mapped_column(primary_key=True)
    house_id: Mapped[int | None] = mapped_column(ForeignKey("houses.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    start: Mapped[datetime] = mapped_column(DateTime)
    end: Mapped[datetime] = mapped_column(DateTime)


class ModelVersion(Base):
    """One trained model stored (encrypted) in the object store; at most one active per slot.

    A slot is what a forecast request names: target, product, horizon, scope, model and strategy.
    Activating an older version is the rollback.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint("target IN ('consumption', 'production')", name="ck_model_versions_target"),
        CheckConstraint("product IN ('next-24-hours', 'short-term')", name="ck_model_versions_product"),
        Index(
            "ix_model_versions_slot",
            "target",
            "product",
            "horizon",
            "scope_kind",
            "scope_id",
            "model",
            "strategy",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(40), unique=True)
    target: Mapped[str] = mapped_column(String(16))
    product: Mapped[str] = mapped_column(String(16))
    horizon: Mapped[int] = mapped_column(Integer)
    scope_kind: Mapped[str] = mapped_column(String(16))  # all | community | house
    scope_id: Mapped[int | None] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(20))
    strategy: Mapped[str] = mapped_column(String(12))
    object_key: Mapped[str] = mapped_column(String(255))
    trained_at: Mapped[datetime] = mapped_column(DateTime)
    trained_by: Mapped[int | None] = mapped_column(Integer)
    data_start: Mapped[datetime | None] = mapped_column(DateTime)
    data_end: Mapped[datetime | None] = mapped_column(DateTime)
    metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    features_json: Mapped[str] = mapped_column(Text, default="[]")
    libraries_json: Mapped[str] = mapped_column(Text, default="{}")
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)


class ModelRun(Base):
    """Audit log of training and forecast runs (spec 1.7: kept 90 days)."""

    __tablename__ = "model_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # train | forecast
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(64))
    parameters_json: Mapped[str] = mapped_column(Text, default="{}")
    duration_ms: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | failed
    error: Mapped[str | None] = mapped_column(Text)
    metrics_json: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(40))


# Tariffs and alerts are in dashboard/schema_features.py (this file's size); importing it here registers
# their tables in Base.metadata whenever the schema is loaded (migrations, backups, erasure, tests).
import dashboard.schema_features  # noqa: E402, F401
