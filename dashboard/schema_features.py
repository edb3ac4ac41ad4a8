"""Tariffs (dashboard/tariffs.py, costs.py), alerts (dashboard/alerts.py), password reset links
(dashboard/accounts.py) and login sessions (dashboard/sessions.py): tables beside dashboard/schema.py,
which imports this module so that Base.metadata always holds them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy import Column as C
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.fieldcrypt import EncryptedText
from dashboard.schema import Base, BigId

TARIFF_KINDS = ("flat", "tou")
TARIFF_DAYS = ("all", "weekday", "weekend")


class Tariff(Base):
    """A house's electricity tariff over local days valid_from..valid_to (both included; no end: open).
    Flat: `import_price` per kWh; time-of-use: its periods' prices. Prices in Settings.currency
    (dashboard/tariffs.py validates; dashboard/costs.py prices the settled import and export)."""

    __tablename__ = "tariffs"
    __table_args__ = (CheckConstraint(f"kind IN {TARIFF_KINDS}", name="ck_tariffs_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    house_id: Mapped[int] = mapped_column(ForeignKey("houses.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(8))
    import_price: Mapped[float | None] = mapped_column(Float)  # flat only, per kWh imported
    export_price: Mapped[float | None] = mapped_column(Float)  # feed-in, per kWh exported
    standing_charge_per_day: Mapped[float | None] = mapped_column(Float)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    periods: Mapped[list[TariffPeriod]] = relationship(
        cascade="all, delete-orphan", order_by="TariffPeriod.id", passive_deletes=True
    )


class TariffPeriod(Base):
    """A time-of-use price: local whole hours [start_hour, end_hour) (end < start wraps past midnight)."""

    __tablename__ = "tariff_periods"
    __table_args__ = (CheckConstraint(f"days IN {TARIFF_DAYS}", name="ck_tariff_periods_days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id", ondelete="CASCADE"), index=True)
    days: Mapped[str] = mapped_column(String(8))
    start_hour: Mapped[int] = mapped_column(Integer)  # 0-23
    end_hour: Mapped[int] = mapped_column(Integer)  # 1-24
    import_price: Mapped[float] = mapped_column(Float)


class GridIntensity(Base):
    """The grid's carbon intensity (g CO2 per kWh) of one UTC hour (its start); GRID_CO2_G_PER_KWH fills
    the hours without a row."""

    __tablename__ = "grid_intensity"

    hour: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    g_per_kwh: Mapped[float] = mapped_column(Float)


DAY_SLOTS = 25  # hours of a local day, counted from its midnight: 23, 24 or 25 (DST)
# A house's settled import and export (dashboard/settlement.py) per local day and hour slot k = the quarters in
# [midnight + k h, midnight + (k + 1) h), midnight being the day's local midnight (naive UTC, as the daily
# rollups' bucket_start): in a zone on whole hours from UTC slot k is the hourly rollup row midnight + k h, and
# `hours` has bit k set when that row exists. Written in the house rollups' transaction; dashboard/costs.py
# prices whole local days from it (a row per house and day instead of 23-25). Migration 0016.
HOUSE_DAY_HOURS = Table(
    "house_day_hours",
    Base.metadata,
    C("house_id", Integer, ForeignKey("houses.id", ondelete="CASCADE"), primary_key=True),
    C("day_start", DateTime, primary_key=True),
    C("hours", Integer, nullable=False, server_default=text("0")),
    *(C(f"{d}{k}", Float, nullable=False, server_default=text("0")) for d in "ie" for k in range(DAY_SLOTS)),
    Index("ix_house_day_hours_day", "day_start"),
)


ALERT_KINDS = ("anomaly", "voltage_event", "silent_device", "threshold")  # alerts: dashboard/alerts.py
ALERT_SCOPES = ("house", "community", "fleet")


class AlertRule(Base):
    """A user's rule on a house, community or the fleet; kind parameters in `params_json`."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint(f"kind IN {ALERT_KINDS}", name="ck_alert_rules_kind"),
        CheckConstraint(f"scope_kind IN {ALERT_SCOPES}", name="ck_alert_rules_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    scope_kind: Mapped[str] = mapped_column(String(12))
    scope_id: Mapped[int | None] = mapped_column(Integer)  # a house or community id; NULL for the fleet
    params_json: Mapped[str] = mapped_column(Text, default="{}")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[bool] = mapped_column(Boolean, default=False)  # to the owner's (encrypted) address
    webhook_url: Mapped[str | None] = mapped_column(EncryptedText("alert_rules.webhook_url"))  # personal
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText("alert_rules.webhook_secret"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class AlertEvent(Base):
    """One episode of a rule: open (resolved_at NULL; one per rule) until its condition clears."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("uq_alert_events_open", "rule_id", unique=True, postgresql_where=text(
        "resolved_at IS NULL"), sqlite_where=text("resolved_at IS NULL")),)  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True)
    fired_at: Mapped[datetime] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    message: Mapped[str] = mapped_column(Text)
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    deliveries_json: Mapped[str] = mapped_column(Text, default="{}")
    delivery_pending: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class Notification(Base):
    """An in-app notification of one user (unread while read_at is NULL)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"), index=True)  # fmt: skip
    created_at: Mapped[datetime] = mapped_column(DateTime)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)


class PasswordReset(Base):
    """A one-time password reset link an admin issued for a user: only its token's SHA-256 is stored (the
    token is 256 random bits, shown once); usable until expires_at, once (used_at)."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class UserSession(Base):
    """A login (dashboard/sessions.py): one row per session id (`sid`, shared by the session's access and
    refresh tokens across refreshes), so its user can see and end it. Only what lets a person recognise it:
    the device in plain words and the network (dashboard/clients.py), never the full address or User-Agent.
    Deleted when the session ends (logout, ended by id, a password or role change) or expires."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the tokens' `sid`
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(Integer)  # the user's token generation at sign-in
    device: Mapped[str] = mapped_column(String(80))  # "Chrome on Linux"
    network: Mapped[str | None] = mapped_column(String(64))  # IPv4 /24 or IPv6 /48
    created_at: Mapped[datetime] = mapped_column(DateTime)  # signed in
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)  # at most a minute behind
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # the refresh token's end
