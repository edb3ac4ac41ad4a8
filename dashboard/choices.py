"""A browser's scope choice checked against the caller's Scope: the rule that a client-sent house id is
never trusted, as the API applies it.

The browser only ever sends back a *choice* ("all", "c<community id>" or "<house id>"); `resolve_choice`
checks it against the caller's scope from the cookie, so a forged id yields NotFound and no data.
Houses and communities are listed in natural order (`natural_key`), everywhere a page lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from dashboard.errors import NotFound
from dashboard.schema import Community, House
from dashboard.scope import Scope

ALL = "all"
COMMUNITY_PREFIX = "c"
NO_HOUSE = "That house is not in your scope: no data."
NO_COMMUNITY = "That community is not in your scope: no data."
_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str | None) -> tuple:
    """Natural order of names people read: "House 2" before "House 10" (text order puts 10 first).
    Runs of digits compare as numbers, the rest case-insensitively; None first. House names are encrypted
    at rest (dashboard/fieldcrypt.py), so the app sorts them after loading, with this key."""
    parts = _DIGITS.split(text or "")  # text and numbers alternate, so two keys always compare
    return tuple(int(part) if i % 2 else part.casefold() for i, part in enumerate(parts))


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
        communities_by_name = sorted(
            session.execute(select(Community.id, Community.name)).all(),
            key=lambda r: (natural_key(r[1]), r[0]),
        )
        for community_id, name in communities_by_name:
            options.append({"label": f"Community: {name}", "value": f"{COMMUNITY_PREFIX}{community_id}"})
    stmt = select(House.id, House.name)
    if not scope.all_houses:
        stmt = stmt.where(House.id.in_(sorted(scope.house_ids)))
    # house names are encrypted at rest (dashboard/fieldcrypt.py): sorted here, not by the database, and
    # naturally ("House 2" before "House 10")
    houses = sorted(session.execute(stmt).all(), key=lambda r: (natural_key(r[1]), r[0]))
    options += [{"label": f"{name} (#{house_id})", "value": str(house_id)} for house_id, name in houses]
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
