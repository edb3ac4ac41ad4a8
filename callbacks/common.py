"""What every page's callbacks share: the scope dropdown built on the server, the checked choice, dates.

The browser only ever sends back a *choice* ("all", "c<community id>" or "<house id>"); `resolve_choice`
checks it against the caller's scope from the cookie (`ui_scope()`), so a forged id yields NotFound and
no data, exactly like the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from dashboard.errors import DomainError, NotFound, ValidationFailed
from dashboard.schema import Community, House
from dashboard.scope import Scope

ALL = "all"
COMMUNITY_PREFIX = "c"
NO_HOUSE = "That house is not in your scope: no data."
NO_COMMUNITY = "That community is not in your scope: no data."


@dataclass(frozen=True)
class Choice:
    """A checked scope choice: the whole scope, one community, or one house."""

    house_id: int | None = None
    community_id: int | None = None
    label: str = "All houses"

    @property
    def params(self) -> dict:
        """As keyword arguments of the query and forecasting services."""
        out = {}
        if self.house_id is not None:
            out["house_id"] = self.house_id
        if self.community_id is not None:
            out["community_id"] = self.community_id
        return out


def all_label(scope: Scope) -> str:
    return "All houses" if scope.all_houses else "All my houses"


def scope_options(session, scope: Scope, communities: bool = False) -> list[dict]:
    """ "All houses"/"All my houses", then (optionally) the communities, then each visible house.

    Built on the server from the caller's scope: a consumer's list holds only their houses and no
    community (a community total includes other households)."""
    options = [{"label": all_label(scope), "value": ALL}]
    if communities and scope.community_ids is None:
        for community_id, name in session.execute(
            select(Community.id, Community.name).order_by(Community.name)
        ):
            options.append({"label": f"Community: {name}", "value": f"{COMMUNITY_PREFIX}{community_id}"})
    stmt = select(House.id, House.name).order_by(House.name, House.id)
    if not scope.all_houses:
        stmt = stmt.where(House.id.in_(sorted(scope.house_ids)))
    options += [
        {"label": f"{name} (#{house_id})", "value": str(house_id)} for house_id, name in session.execute(stmt)
    ]
    return options


def resolve_choice(session, scope: Scope, choice) -> Choice:
    """The browser's choice checked against the scope; NotFound for anything it may not see."""
    if choice in (None, "", ALL):
        return Choice(label=all_label(scope))
    text = str(choice)
    if text.startswith(COMMUNITY_PREFIX):
        try:
            community_id = int(text[len(COMMUNITY_PREFIX) :])
        except ValueError:
            raise NotFound(NO_COMMUNITY) from None
        community = session.get(Community, community_id)
        if community is None or scope.community_ids is not None or not scope.can_see_community(community_id):
            raise NotFound(NO_COMMUNITY)
        return Choice(community_id=community_id, label=f"Community: {community.name}")
    try:
        house_id = int(text)
    except ValueError:
        raise NotFound(NO_HOUSE) from None
    house = session.get(House, house_id) if scope.can_see_house(house_id) else None
    if house is None:
        raise NotFound(NO_HOUSE)
    return Choice(house_id=house_id, label=f"{house.name} (#{house_id})")


def error_text(exc: DomainError) -> str:
    """A domain error as one line for an alert: the message, then each field's problem."""
    details = "; ".join(f"{d.get('field', '')}: {d.get('message', '')}".strip(": ") for d in exc.details)
    return f"{exc.message} ({details})" if details else exc.message


def local_today(timezone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def parse_date(raw, field: str) -> date:
    try:
        return date.fromisoformat(str(raw)[:10])
    except (TypeError, ValueError):
        raise ValidationFailed(details=[{"field": field, "message": "a date, YYYY-MM-DD"}]) from None


def local_midnight_utc(day: date, timezone: str) -> datetime:
    """The naive-UTC instant of a local midnight (DST-aware: a local day may last 23 or 25 hours)."""
    return (
        datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC).replace(tzinfo=None)
    )


def local_days_range(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) local, as naive-UTC bounds (both days included)."""
    if last < first:
        raise ValidationFailed(
            details=[{"field": "end_date", "message": "must not be before the start date"}]
        )
    return local_midnight_utc(first, timezone), local_midnight_utc(last + timedelta(days=1), timezone)
