"""The role matrix: which role may use which permission. The one place these rules live.

Routes declare a permission with `@requires(...)` (dashboard/api/common.py); the README's role table and
the tests are generated from / checked against this dict. House scope (a consumer's own houses, a
third-party app's aggregates-only view) is enforced separately by `Scope` inside every query.
"""

from __future__ import annotations

ADMIN, ANALYST, CONSUMER, THIRD_PARTY = "admin", "analyst", "consumer", "third_party"

ROLE_MATRIX: dict[str, frozenset[str]] = {
    # Any authenticated caller may ask who they are.
    "auth:me": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY}),
    # Energy series from rollups; consumers get their houses, third parties aggregates only.
    "energy:read": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY}),
    # Raw per-device readings are per-house data: never for third parties.
    "measurements:read": frozenset({ADMIN, ANALYST, CONSUMER}),
    # Meters of a consumer's own house may post through the consumer's account (home gateway).
    "measurements:write": frozenset({ADMIN, CONSUMER}),
    # Houses, devices, PVs, PV parks: consumers see their own.
    "metadata:read": frozenset({ADMIN, ANALYST, CONSUMER}),
    # Community names and ids, needed to ask for community aggregates.
    "communities:read": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY}),
    "metadata:write": frozenset({ADMIN}),
    "users:read": frozenset({ADMIN}),
    "users:write": frozenset({ADMIN}),
    "api_keys:manage": frozenset({ADMIN}),
    "access_log:read": frozenset({ADMIN}),
}


def allowed(permission: str, role: str) -> bool:
    try:
        return role in ROLE_MATRIX[permission]
    except KeyError as exc:  # a typo in a route must fail loudly, not open or close silently
        raise KeyError(f"Unknown permission {permission!r}; add it to ROLE_MATRIX") from exc
