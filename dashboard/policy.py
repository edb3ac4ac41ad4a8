"""The roles and what each may do: API permissions (ROLE_MATRIX), pages (PAGE_MATRIX) and which roles see
every house. The one place these rules live.

Routes declare a permission with `@requires(...)` (dashboard/api/common.py), pages with `page_guard` and
`dash.register_page(..., permission=...)`; the README's role table and the tests are generated from /
checked against these dicts. House scope (a consumer's own houses, a third-party app's aggregates-only
view, a gateway's houses) is enforced by `Scope` inside every query and every write.
"""

from __future__ import annotations

ADMIN, ANALYST, CONSUMER, THIRD_PARTY = "admin", "analyst", "consumer", "third_party"
ROLES = (ADMIN, ANALYST, CONSUMER, THIRD_PARTY)
SEES_EVERY_HOUSE = frozenset({ADMIN, ANALYST})  # staff; consumers see their own houses
AGGREGATES_ONLY = frozenset({THIRD_PARTY})  # never one house's data, only sums over several
BROWSER_ROLES = frozenset({ADMIN, ANALYST, CONSUMER})  # third-party apps and gateways have no UI
# API keys only (never a login): a field gateway writes the readings of its houses' devices and reads nothing
GATEWAY = "gateway"
KEY_ROLES = (THIRD_PARTY, GATEWAY)  # an API key's role; third_party is the default
MATRIX_ROLES = (*ROLES, GATEWAY)  # the role matrix's columns
# who may send corrections (POST /api/v1/measurements?replace=true): admins for every device, a gateway
# for its own houses' devices (its Scope; dashboard/ingest.py checks every reading against it)
REPLACES_READINGS = frozenset({ADMIN, GATEWAY})

ROLE_MATRIX: dict[str, frozenset[str]] = {
    # Any authenticated caller may ask who they are. A gateway too: its own key's name, role and house ids
    # are what its installer checks before pointing meters at it, and no reading or house data is in them
    # (its /auth/me/export is its key's record; logout refuses API keys).
    "auth:me": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY, GATEWAY}),
    # One's own login sessions (/api/v1/auth/sessions): list them, end one. Every login is a session, a
    # third-party account's API logins too; an API key is not a session (403, whatever its role).
    "sessions:manage": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY}),
    # Energy series from rollups; consumers get their houses, third parties aggregates only.
    "energy:read": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY}),
    # One household's energy flow and comparisons (/api/v1/houses/{id}/...): per house, never for third
    # parties; consumers their own houses (Scope).
    "household:read": frozenset({ADMIN, ANALYST, CONSUMER}),
    # Raw per-device readings are per-house data: never for third parties.
    "measurements:read": frozenset({ADMIN, ANALYST, CONSUMER}),
    # Meters of a consumer's own house may post through the consumer's account (home gateway); a gateway
    # key posts for the devices of its houses only (Scope). The one permission a gateway has besides auth:me.
    "measurements:write": frozenset({ADMIN, CONSUMER, GATEWAY}),
    # Houses, devices, PVs, PV parks: consumers see their own.
    "metadata:read": frozenset({ADMIN, ANALYST, CONSUMER}),
    # Community names and ids, needed to ask for community aggregates.
    "communities:read": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY}),
    "metadata:write": frozenset({ADMIN}),
    "users:read": frozenset({ADMIN}),
    "users:write": frozenset({ADMIN}),
    "api_keys:manage": frozenset({ADMIN}),
    "access_log:read": frozenset({ADMIN}),
    # The spec's /aggregator endpoints: training for analysts and admins, forecasts for every role
    # within its scope (third-party apps: all houses or a community only).
    "forecast:train": frozenset({ADMIN, ANALYST}),
    "forecast:read": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY}),
    "models:read": frozenset({ADMIN, ANALYST}),
    "models:activate": frozenset({ADMIN}),
    "jobs:read": frozenset({ADMIN, ANALYST}),
    # Anomalies, voltage events, power-factor trends and load profiles (/api/v1/analytics/...). Not for
    # third-party apps: three of the four are per-house by nature (dashboard.analytics answers them 403),
    # and the one aggregate, the scope's load profile, is derivable from the 15-minute series they
    # already get from energy:read. Granting the permission would make the matrix promise routes that
    # mostly refuse; consumers get their own houses only (Scope, checked inside dashboard.analytics).
    "analytics:read": frozenset({ADMIN, ANALYST, CONSUMER}),
    # Summary exports (/api/v1/exports/summary): every role within its scope; third-party apps get
    # aggregates, and per-house rows only under pseudonymous ids (dashboard/exports.py).
    "exports:read": frozenset({ADMIN, ANALYST, CONSUMER, THIRD_PARTY}),
    # Weather observations in (POST /api/v1/weather): operator data that every forecast reads.
    "weather:write": frozenset({ADMIN}),
    # Tariffs per house (/api/v1/houses/{id}/tariffs): consumers read their own houses', staff every house's;
    # admins write. Cost and CO2 (/api/v1/cost, and the pages and exports): never for third-party apps,
    # since a cost is a household's contract applied to its meter. The grid's carbon intensity: admins.
    "tariffs:read": frozenset({ADMIN, ANALYST, CONSUMER}),
    "tariffs:write": frozenset({ADMIN}),
    "cost:read": frozenset({ADMIN, ANALYST, CONSUMER}),
    "grid_intensity:write": frozenset({ADMIN}),
    # Alert rules (/api/v1/alert-rules): each user their own, within their scope: consumers on their own
    # houses, without webhooks (dashboard/alert_rules.py); third-party apps have no one to notify.
    "alerts:manage": frozenset({ADMIN, ANALYST, CONSUMER}),
    # A user's own in-app notifications (/api/v1/notifications): read and mark read.
    "notifications:read": frozenset({ADMIN, ANALYST, CONSUMER}),
}


# Pages of the browser UI (the navbar shows a page to the roles that may open it; its layout and every
# callback check again on the server). Each page's callbacks also check the API permission of their data.
PAGE_MATRIX: dict[str, frozenset[str]] = {
    "page:overview": BROWSER_ROLES,
    "page:home": BROWSER_ROLES,  # the household view; consumers land on it after logging in
    "page:real-time": BROWSER_ROLES,
    "page:historical": BROWSER_ROLES,
    "page:forecasts": BROWSER_ROLES,
    "page:analytics": BROWSER_ROLES,
    "page:exports": BROWSER_ROLES,
    "page:admin": frozenset({ADMIN}),
    "page:alerts": BROWSER_ROLES,  # each user's own rules and notifications
    "page:api-docs": frozenset({ADMIN, ANALYST}),  # /api/docs: for people who build on the API
    "page:account": BROWSER_ROLES,  # one's own password and sessions
}


# Where a login without a page to return to lands: consumers (and prosumers) on their household view.
LANDING_PAGES: dict[str, str] = {CONSUMER: "/home"}


def landing_page(role: str) -> str:
    return LANDING_PAGES.get(role, "/")


# Permissions of a login only: an API key never has them, whatever its role (403). Sessions are logins.
LOGINS_ONLY = frozenset({"sessions:manage"})


def allowed(permission: str, role: str) -> bool:
    matrix = PAGE_MATRIX if permission.startswith("page:") else ROLE_MATRIX
    try:
        return role in matrix[permission]
    except KeyError as exc:  # a typo in a route must fail loudly, not open or close silently
        raise KeyError(f"Unknown permission {permission!r}; add it to ROLE_MATRIX or PAGE_MATRIX") from exc


def routes_by_permission(app) -> dict[str, list[str]]:
    """'METHOD /path' strings per permission, read from the registered routes (for docs and tests)."""
    out: dict[str, list[str]] = {}
    for rule in app.url_map.iter_rules():
        permission = getattr(app.view_functions[rule.endpoint], "permission", None)
        if permission:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                out.setdefault(permission, []).append(f"{method} {rule.rule}")
    return out


def _compact(routes: list[str]) -> list[str]:
    """'GET /x' + 'GET /x/<int:id>' -> 'GET /x[/{id}]'; methods sharing a path are joined."""
    import re

    paths: dict[str, set[str]] = {}
    for route in routes:
        method, path = route.split(" ", 1)
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", "{id}", path)
        paths.setdefault(path, set()).add(method)
    merged: dict[str, set[str]] = {}
    for path, methods in paths.items():
        base = path.removesuffix("/{id}")
        suffix = "[/{id}]" if path != base and base in paths and paths[base] == methods else ""
        key = base + suffix if suffix else path
        if suffix and base in merged:
            del merged[base]
        if not (path == base and base + "/{id}" in paths and paths[base + "/{id}"] == methods):
            merged[key] = methods
    return sorted(f"{'/'.join(sorted(m))} {p}" for p, m in merged.items())


def role_table_markdown(app) -> str:
    """The README's role matrix, generated from ROLE_MATRIX and the routes that use each permission."""
    roles = MATRIX_ROLES
    routes = routes_by_permission(app)
    lines = [
        "| permission | endpoints | " + " | ".join(roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for permission, allowed_roles in ROLE_MATRIX.items():
        endpoints = "<br>".join(f"`{r}`" for r in _compact(routes.get(permission, [])))
        marks = " | ".join(
            ("logins" if permission in LOGINS_ONLY and role in KEY_ROLES else "yes")
            if role in allowed_roles
            else "-"
            for role in roles
        )  # "logins": a third-party account's logins, not its API keys
        lines.append(f"| `{permission}` | {endpoints} | {marks} |")
    return "\n".join(lines)
