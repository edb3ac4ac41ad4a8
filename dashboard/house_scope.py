"""The houses a request sums, checked against the caller's scope like every query: one house, a community's
houses in the scope, or every house the scope sees. Shared by the cost (dashboard/costs.py) and the household
view (dashboard/household.py), which differ only in what they tell a third-party app."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.errors import Forbidden, NotFound
from dashboard.schema import Community, House, community_houses
from dashboard.scope import Scope


def houses_in_scope(
    session: Session,
    scope: Scope,
    refusal: str,
    house_id: int | None = None,
    community_id: int | None = None,
) -> list[int] | None:
    """One house (another's is NotFound, like a missing one), a community's houses that the scope sees (a
    community outside the scope is NotFound), or with neither every house of the scope (None: all houses).
    Third-party apps are refused with Forbidden(`refusal`): they see aggregates only, never a house's data."""
    if not scope.per_house_allowed:
        raise Forbidden(refusal)
    if house_id is not None:
        scope.require_house(house_id)
        if session.get(House, house_id) is None:
            raise NotFound(f"House {house_id} not found")
        return [house_id]
    if community_id is not None:
        if not scope.can_see_community(community_id) or session.get(Community, community_id) is None:
            raise NotFound(f"Community {community_id} not found")
        houses = session.scalars(
            select(community_houses.c.house_id).where(community_houses.c.community_id == community_id)
        )
        return sorted(h for h in houses if scope.all_houses or h in scope.house_ids)
    return None if scope.all_houses else sorted(scope.house_ids or ())
