"""The access scope: who is asking and which houses they may see.

Resolved once per request on the server (from the JWT or the API key, never from client input) and
passed into every query, which filters in SQL. A house id sent by a client is only ever intersected
with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.errors import Forbidden, NotFound
from dashboard.policy import AGGREGATES_ONLY


@dataclass(frozen=True)
class Scope:
    role: str
    user_id: int | None = None
    api_key_id: int | None = None
    # None means every house (admin, analyst, and third-party aggregates); else exactly these.
    house_ids: frozenset[int] | None = None
    community_ids: frozenset[int] | None = None
    username: str | None = None

    @property
    def all_houses(self) -> bool:
        return self.house_ids is None

    @property
    def per_house_allowed(self) -> bool:
        """Third-party apps see aggregates only (all houses or a community), never one house."""
        return self.role not in AGGREGATES_ONLY

    def can_see_house(self, house_id: int) -> bool:
        return self.per_house_allowed and (self.house_ids is None or house_id in self.house_ids)

    def require_house(self, house_id: int) -> None:
        if not self.per_house_allowed:
            raise Forbidden("Third-party apps may read aggregates only, not single houses")
        if not self.can_see_house(house_id):
            raise NotFound(f"House {house_id} not found")

    def can_see_community(self, community_id: int) -> bool:
        return self.community_ids is None or community_id in self.community_ids

    def to_fields(self) -> dict:
        """Plain data a job can carry (RQ pickles arguments; frozensets travel as sorted lists)."""
        return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_fields(cls, fields: dict) -> Scope:
        """The inverse of `to_fields`."""
        return cls(**{k: frozenset(v) if isinstance(v, list) else v for k, v in fields.items()})


def system_scope() -> Scope:
    """Scope of CLI commands and the built-in simulator: the operator's own machine, all houses."""
    return Scope(role="admin", username="system")
