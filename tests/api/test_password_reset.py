"""One-time password reset links on PostgreSQL: the public /reset page and its form (POST /auth/reset),
CSRF-checked like the login form and throttled like logins. A link works once, until it expires; unknown,
used and expired links say so and change nothing; using one ends every session of the user."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from dashboard.accounts import issue_reset_link
from dashboard.clock import utcnow
from dashboard.schema import User
from dashboard.schema_features import PasswordReset
from tests.factories import PASSWORD, login_form_fields
from tests.ui.helpers import router_payload

NEW = "reset-to-this-passphrase"


def issue(app, world, username="consumer") -> str:
    services = app.server.extensions["aggregator"]
    with services.session_factory() as s:
        _user, token, _expires = issue_reset_link(
            s, services.settings, world.users[username], world.users["admin"]
        )
        s.commit()
    return token


def submit(client, token, password=NEW, repeat=None, csrf=True, headers=None):
    data = {"token": token, "password": password, "repeat": password if repeat is None else repeat}
    if csrf:
        data |= login_form_fields(client)
    return client.post("/auth/reset", data=data, headers=headers or {})


def login_status(app, username, password) -> int:
    r = app.server.test_client().post("/api/v1/auth/login", json={"username": username, "password": password})
    return r.status_code


def password_hash(factory, username) -> str:
    with factory() as s:
        return s.scalar(select(User.password_hash).where(User.username == username))


def page(client, token) -> str:
    payload = router_payload("/reset")
    payload["inputs"][1]["value"] = f"?token={token}"
    r = client.post("/_dash-update-component", json=payload)
    assert r.status_code == 200
    return r.get_data(as_text=True)


def test_a_link_sets_the_password_once_and_ends_every_session(app, client, world, factory):
    token = issue(app, world)
    r = app.server.test_client().post(
        "/api/v1/auth/login", json={"username": "consumer", "password": PASSWORD}
    )
    session = {"Authorization": f"Bearer {r.json['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=session).status_code == 200
    assert "For the account" in page(client, token) and "consumer" in page(client, token)

    r = submit(client, token)
    assert r.status_code == 303 and r.headers["Location"] == "/reset?done=1"
    assert client.get("/api/v1/auth/me", headers=session).status_code == 401  # the old session ended
    assert login_status(app, "consumer", NEW) == 200
    assert login_status(app, "consumer", PASSWORD) == 401
    with factory() as s:
        assert s.scalar(select(PasswordReset.used_at)) is not None

    # a second use: refused, and the page says why; nothing changes
    before = password_hash(factory, "consumer")
    r = submit(client, token, password="yet-another-passphrase")
    assert r.status_code == 303 and "error=422" in r.headers["Location"]
    assert password_hash(factory, "consumer") == before
    assert "already been used" in page(client, token)
    assert "reset-password" not in page(client, token)  # no form


def test_expired_and_unknown_links_change_nothing(app, client, world, factory):
    token = issue(app, world)
    with factory() as s:
        s.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(minutes=1)))
        s.commit()
    before = password_hash(factory, "consumer")
    for bad in (token, "not-a-token", ""):
        r = submit(client, bad)
        assert r.status_code == 303 and "error=422" in r.headers["Location"]
    assert password_hash(factory, "consumer") == before
    assert "has expired" in page(client, token)
    assert "not valid" in page(client, "not-a-token")
    assert login_status(app, "consumer", PASSWORD) == 200


def test_a_newer_link_replaces_the_older_one(app, client, world, factory):
    older, newer = issue(app, world), issue(app, world)
    assert "not valid" in page(client, older)
    assert submit(client, older).headers["Location"].endswith("error=422")
    assert submit(client, newer).headers["Location"] == "/reset?done=1"


def test_the_rule_of_the_role_applies_and_a_refused_password_keeps_the_link(app, client, world, factory):
    token = issue(app, world, "admin")
    before = password_hash(factory, "admin")
    for password, repeat in (("only-11char", None), ("twelve-chars-1", "twelve-chars-2")):
        r = submit(client, token, password=password, repeat=repeat)
        assert r.status_code == 303 and "error=password" in r.headers["Location"]
    assert password_hash(factory, "admin") == before
    assert "At least 12 characters" in page(client, token)
    assert submit(client, token, password="twelve-chars-ok").headers["Location"] == "/reset?done=1"
    assert login_status(app, "admin", "twelve-chars-ok") == 200


def test_the_form_is_csrf_protected_like_the_login_form(app, client, world, factory):
    token = issue(app, world)
    before = password_hash(factory, "consumer")
    r = submit(client, token, csrf=False)  # no nonce cookie, no form token: another site's post
    assert r.status_code == 303 and "error=403" in r.headers["Location"]
    r = submit(client, token, headers={"Origin": "https://evil.example"})
    assert r.status_code == 303 and "error=403" in r.headers["Location"]
    assert password_hash(factory, "consumer") == before
    assert "For the account" in page(client, token)  # the link is still good
    assert submit(client, token).headers["Location"] == "/reset?done=1"


def test_guessing_tokens_is_throttled_per_client(app, client, world, factory):
    token = issue(app, world)
    for i in range(5):
        submit(client, f"guess-{i}")
    before = password_hash(factory, "consumer")
    r = submit(client, token)  # even the right token waits now
    assert r.status_code == 303 and "error=429" in r.headers["Location"]
    assert password_hash(factory, "consumer") == before
    other = app.server.test_client()
    r = submit(other, token, headers={"X-Forwarded-For": "198.51.100.7"})  # not trusted: same client
    assert "error=429" in r.headers["Location"]


def test_a_deactivated_user_gets_no_link_and_an_open_link_stops(app, client, world, factory):
    token = issue(app, world)
    with factory() as s:
        s.get(User, world.users["consumer"]).is_active = False
        s.commit()
    assert "deactivated" in page(client, token)
    assert submit(client, token).headers["Location"].endswith("error=422")
