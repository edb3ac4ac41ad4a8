"""One scope helper for "the houses a request sums" (dashboard/house_scope.py), serving the cost and the
household view with their own refusal texts, on PostgreSQL with the tests' small world (house 1 in the
community, house 2 not)."""

from __future__ import annotations

import pytest

from dashboard.costs import scope_houses
from dashboard.errors import Forbidden, NotFound
from dashboard.household import houses_in_scope
from dashboard.scope import Scope


def test_each_caller_refuses_third_parties_in_its_own_words(factory, world):
    third = Scope(role="third_party")
    with factory() as s:
        with pytest.raises(Forbidden, match="tariffs are the households' contracts"):
            scope_houses(s, third, world.house1)
        with pytest.raises(Forbidden, match="not a household's energy"):
            houses_in_scope(s, third, world.house1)


def test_houses_communities_and_whole_scopes(factory, world):
    consumer = Scope(
        role="consumer", user_id=1, house_ids=frozenset({world.house1}), community_ids=frozenset()
    )
    analyst = Scope(role="analyst")
    with factory() as s:
        assert scope_houses(s, consumer) == houses_in_scope(s, consumer, None) == [world.house1]
        assert scope_houses(s, analyst) is None  # the cost sums every house
        with pytest.raises(NotFound, match="Choose a house"):  # the household view needs one
            houses_in_scope(s, analyst, None)
        for call in (scope_houses, houses_in_scope):
            with pytest.raises(NotFound, match=f"House {world.house2} not found"):
                call(s, consumer, world.house2)  # another's house is as missing as a missing one
            with pytest.raises(NotFound, match="House 999999 not found"):
                call(s, analyst, 999999)
        assert scope_houses(s, analyst, community_id=world.community) == [world.house1]
        with pytest.raises(NotFound, match=f"Community {world.community} not found"):
            scope_houses(s, consumer, community_id=world.community)  # not a member
