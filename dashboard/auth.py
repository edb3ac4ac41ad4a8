"""Identity: passwords, API keys, JWTs, login rate limiting, and the resolution of a request to a Scope.

Browsers carry the JWT in HTTP-only cookies with CSRF double-submit; API clients send
`Authorization: Bearer`; third-party apps and field gateways send `X-API-Key`. All three end in one `Scope`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, g, has_request_context, request
from flask_jwt_extended import (
    JWTManager,
    get_jwt,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dashboard import crypto
from dashboard.clock import utcnow
from dashboard.config import Settings
from dashboard.errors import NotFound, RateLimited, Unauthorized, ValidationFailed
from dashboard.policy import GATEWAY, KEY_ROLES, ROLES, SEES_EVERY_HOUSE, THIRD_PARTY
from dashboard.schema import ApiKey, House, LoginFailure, User, api_key_houses, user_houses
from dashboard.scope import Scope
from dashboard.sessions import LOGIN_NONCE_COOKIE, token_is_revoked, touch_session

_hasher = PasswordHasher()
API_KEY_HEADER = "X-API-Key"


# ---- passwords -------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so timing does not reveal valid usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def configure_password_hashing(settings: Settings) -> None:
    """New hashes at the settings' Argon2 cost (verification reads the cost from each hash)."""
    global _hasher, _DUMMY_HASH
    time_cost, memory_kib = settings.password_hash_time_cost, settings.password_hash_memory_kib
    if (_hasher.time_cost, _hasher.memory_cost) != (time_cost, memory_kib):
        _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        _DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


MIN_PASSWORD = 8
MIN_ADMIN_PASSWORD = 12  # an admin account reaches every house, key and user


def password_problem(password, role: str) -> dict | None:
    """The password rule's complaint ({field, message}) for an account of `role`, or None."""
    least = MIN_ADMIN_PASSWORD if role == "admin" else MIN_PASSWORD
    if not isinstance(password, str) or len(password) < least:
        message = f"at least {least} characters" + (" for an admin" if role == "admin" else "")
        return {"field": "password", "message": message}
    return None


def set_password(user: User, password: str) -> None:
    """Check the rule for the user's (new) role, then store the hash; every old token of the user ends."""
    problem = password_problem(password, user.role)
    if problem:
        raise ValidationFailed(details=[problem])
    user.password_hash = hash_password(password)


def create_user(
    session: Session, username: str, password: str, role: str, house_ids: list[int] | None = None
) -> User:
    problems = []
    if not username or len(username) > 80:
        problems.append({"field": "username", "message": "1 to 80 characters"})
    problem = password_problem(password or "", role)
    if problem:
        problems.append(problem)
    if role not in ROLES:
        problems.append({"field": "role", "message": f"one of {', '.join(ROLES)}"})
    if problems:
        raise ValidationFailed(details=problems)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValidationFailed(details=[{"field": "username", "message": "already taken"}])
    user = User(username=username, password_hash=hash_password(password), role=role, created_at=utcnow())
    session.add(user)  # before linking houses, so autoflush sees a pending user
    for house_id in house_ids or []:
        house = session.get(House, house_id)
        if house is None:
            raise ValidationFailed(details=[{"field": "house_ids", "message": f"no house {house_id}"}])
        user.houses.append(house)
    session.flush()
    return user


# ---- API keys --------------------------------------------------------------------------------------


def _key_hash(key: str) -> str:
    # Keys are 256-bit random, so a fast hash is safe (no dictionary to attack) and keeps requests fast.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_problems(session: Session, name, role, house_ids) -> list[dict]:
    """What is wrong with a new key's name, role and houses ({field, message} each; empty when nothing).
    A gateway needs at least one house, a third-party key none; every house must exist (named if not)."""
    problems = []
    if not isinstance(name, str) or not name or len(name) > 120:
        problems.append({"field": "name", "message": "1 to 120 characters"})
    if role not in KEY_ROLES:
        problems.append({"field": "role", "message": f"one of {', '.join(KEY_ROLES)}"})
    ids = house_ids or []
    if not isinstance(ids, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in ids):
        return problems + [{"field": "house_ids", "message": "a list of house ids (integers)"}]
    if role == GATEWAY and not ids:
        problems.append({"field": "house_ids", "message": "a gateway key needs at least one house id"})
    elif role == THIRD_PARTY and ids:
        problems.append(
            {"field": "house_ids", "message": "a third_party key reads aggregates and takes no houses"}
        )
    elif ids:
        found = set(session.scalars(select(House.id).where(House.id.in_(set(ids)))))
        missing = sorted(set(ids) - found)
        if missing:
            problems.append(
                {
                    "field": "house_ids",
                    "message": f"no house {', '.join(map(str, missing))} (GET /api/v1/houses lists them)",
                }
            )
    return problems


def create_api_key(
    session: Session, name: str, role: str = THIRD_PARTY, house_ids: list[int] | None = None
) -> tuple[ApiKey, str]:
    """Create a key (a third-party app's by default, or a gateway's for `house_ids`); returns the row and
    the key itself, which is never stored or shown again. ValidationFailed (nothing written) on bad input."""
    problems = api_key_problems(session, name, role, house_ids)
    if problems:
        raise ValidationFailed(details=problems)
    key = "agk_" + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:12], key_hash=_key_hash(key), role=role, created_at=utcnow())
    session.add(row)
    session.flush()
    if house_ids:
        session.execute(
            api_key_houses.insert(), [{"api_key_id": row.id, "house_id": h} for h in sorted(set(house_ids))]
        )
    return row, key


def api_key_house_ids(session: Session, key_ids: list[int]) -> dict[int, list[int]]:
    """Each key's house ids, sorted (keys without houses are absent)."""
    out: dict[int, list[int]] = {}
    if key_ids:
        c = api_key_houses.c
        rows = session.execute(
            select(c.api_key_id, c.house_id).where(c.api_key_id.in_(key_ids)).order_by(c.house_id)
        )
        for key_id, house_id in rows:
            out.setdefault(key_id, []).append(house_id)
    return out


def revoke_api_key(session: Session, key_id: int) -> ApiKey:
    """Revoke a key (idempotent: the first revocation time is kept); NotFound for an unknown id."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    row.revoked_at = row.revoked_at or utcnow()
    return row


def api_key_scope(session: Session, key: str) -> Scope | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _key_hash(key), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    if row.role == GATEWAY:  # its houses as they are now: a deleted house's link is gone with it
        houses = frozenset(
            session.scalars(select(api_key_houses.c.house_id).where(api_key_houses.c.api_key_id == row.id))
        )
        return Scope(role=GATEWAY, api_key_id=row.id, house_ids=houses, community_ids=frozenset(),
                     username=f"api-key:{row.name}")  # fmt: skip
    return Scope(role=THIRD_PARTY, api_key_id=row.id, username=f"api-key:{row.name}")


# ---- login and its rate limit ------------------------------------------------------------------------


def client_key(address: str | None) -> str:
    """The client a login failure is counted against: its IPv4 address, or its IPv6 /64 (one subscriber
    holds a whole /64, so a per-address count would be trivially evaded). `request.remote_addr` is the
    real client's address once TRUSTED_PROXIES tells ProxyFix how many proxy hops to believe."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return (address or "unknown")[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def check_login_allowed(session: Session, settings: Settings, username: str, client: str) -> None:
    """Raise RateLimited after LOGIN_MAX_FAILURES wrong passwords for this username from this client
    (`client_key`) within LOGIN_WINDOW_MINUTES.

    The count is per (username, client) only, so failures can never lock out anyone but the one guessing:
    - the same account still logs in from every other client;
    - other accounts still log in from this client. A count per client over all usernames would stop one
      client spraying a password over many accounts, but every user sharing that address (an office NAT, a
      proxy when TRUSTED_PROXIES is not set) would be locked out with it, which is the lockout this
      replaces (probe 3.11): a spray gets one try per account either way;
    - there is deliberately no count per username across clients: any such cap is reachable by anyone who
      knows a username, and a few clients' wrong passwords would lock the real user out everywhere.

    Guessing is instead bounded per client (each IPv4 address, each IPv6 /64: LOGIN_MAX_FAILURES tries per
    account per window), slowed by Argon2id on every try, and made hopeless for the accounts that matter by
    the length rule (admins: 12 characters or more). Behind a proxy, TRUSTED_PROXIES makes each real client
    its own.
    """
    since = utcnow() - timedelta(minutes=settings.login_window_minutes)
    failures = session.scalar(
        select(func.count()).where(
            LoginFailure.username == username[:80], LoginFailure.client == client, LoginFailure.at >= since
        )
    )
    if failures >= settings.login_max_failures:
        raise RateLimited(
            retry_after_s=settings.login_window_minutes * 60,
            message=f"Too many failed logins; try again in {settings.login_window_minutes} minutes",
        )


def authenticate(session: Session, settings: Settings, username: str, password: str, client: str) -> User:
    """The user for a right password; `client` is the caller's `client_key`."""
    check_login_allowed(session, settings, username, client)
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if not ok or user is None or not user.is_active:
        session.add(LoginFailure(username=username[:80], client=client[:64], at=utcnow()))
        session.commit()  # the failure must count even though the request fails
        raise Unauthorized("Wrong username or password")
    session.execute(
        delete(LoginFailure).where(LoginFailure.username == username[:80], LoginFailure.client == client)
    )
    return user


# ---- scope resolution --------------------------------------------------------------------------------


def user_scope(session: Session, user: User) -> Scope:
    if user.role in SEES_EVERY_HOUSE:
        houses = None
        communities = None
    elif user.role == "consumer":
        houses = frozenset(
            session.scalars(select(user_houses.c.house_id).where(user_houses.c.user_id == user.id)).all()
        )
        # Consumers see their own houses only; community aggregates include other households.
        communities = frozenset()
    else:  # a third_party user account: aggregates only
        houses = None
        communities = None
    return Scope(
        role=user.role,
        user_id=user.id,
        house_ids=houses,
        community_ids=communities,
        username=user.username,
    )


def init_jwt(app: Flask, settings: Settings, session_factory, request_session=None) -> JWTManager:
    """`request_session()`: the request's own session (dashboard/context.py db), used for the revocation
    check inside a request; outside one (or without it) a session of its own."""
    configure_password_hashing(settings)
    app.config.update(
        JWT_SECRET_KEY=crypto.jwt_key(settings.secret_key),  # its own key, not the secret itself
        JWT_TOKEN_LOCATION=["headers", "cookies"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=settings.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(days=settings.refresh_token_days),
        JWT_COOKIE_SECURE=settings.cookie_secure,
        JWT_COOKIE_SAMESITE="Lax",
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_CSRF_IN_COOKIES=True,
        JWT_SESSION_COOKIE=False,  # cookies are given Max-Age = the token's remaining life where set
        LOGIN_FORM_KEY=crypto.login_form_key(settings.secret_key),
    )
    jwt = JWTManager(app)

    @jwt.token_in_blocklist_loader
    def _revoked(_header, payload) -> bool:
        """Checked for every token of every request; a token that passes notes its session's activity."""
        if request_session is not None and has_request_context():  # one connection; the user stays loaded
            revoked = token_is_revoked(request_session(), payload)
        else:
            with session_factory() as session:
                revoked = token_is_revoked(session, payload)
        if revoked:
            return True
        with session_factory() as session:  # its own transaction (a write at most once a minute); lazy
            touch_session(session, payload, settings.refresh_token_days)
        return False

    @app.after_request
    def _set_login_nonce(response):
        nonce = g.get("new_login_nonce")  # dashboard/sessions.py login_form_token
        if nonce and not request.cookies.get(LOGIN_NONCE_COOKIE):
            response.set_cookie(
                LOGIN_NONCE_COOKIE, nonce, max_age=12 * 3600, httponly=True, samesite="Strict",
                secure=settings.cookie_secure, path="/",
            )  # fmt: skip
        return response

    return jwt


def resolve_scope(session: Session) -> Scope | None:
    """The caller's scope from an API key or a valid JWT (header or cookie), or None if anonymous.

    Cached on `flask.g` for the request. An invalid or revoked token counts as anonymous.
    """
    if "scope" in g:
        return g.scope
    scope = None
    key = request.headers.get(API_KEY_HEADER)
    if key:
        scope = api_key_scope(session, key)
    else:
        try:
            verify_jwt_in_request(optional=True)
            claims = get_jwt()
        except (JWTExtendedException, PyJWTError):
            claims = {}
        if claims and claims.get("type") == "access":
            user = session.get(User, int(claims["sub"]))
            if user is not None and user.is_active:
                scope = user_scope(session, user)
    g.scope = scope
    return scope
