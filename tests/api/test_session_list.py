"""A user's own sessions (issue 15, section 4), against the real PostgreSQL app: `GET /api/v1/auth/sessions`
lists one row per login that survives refreshes, with the device in plain words and the network only;
`DELETE /api/v1/auth/sessions/{id}` ends one session, whose tokens are refused at their next request; another
user's session id is a 404; API keys and anonymous callers get the API's 403 and 401; the last activity is
written at most once a minute; rows go when their session ends or expires."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from dashboard.clients import describe_user_agent
from dashboard.clock import utcnow
from dashboard.maintenance import prune_logs
from dashboard.schema import User
from dashboard.schema_features import UserSession
from dashboard.sessions import forget_touches
from tests.factories import PASSWORD

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def login(client, username="consumer", agent=CHROME_LINUX, address="203.0.113.77") -> dict:
    r = client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": PASSWORD},
        headers={"User-Agent": agent},
        environ_base={"REMOTE_ADDR": address},
    )
    assert r.status_code == 200, r.json
    return r.json


def bearer(tokens: dict, kind: str = "access_token") -> dict:
    return {"Authorization": f"Bearer {tokens[kind]}"}


def listed(client, tokens) -> list[dict]:
    r = client.get("/api/v1/auth/sessions", headers=bearer(tokens))
    assert r.status_code == 200, r.json
    return r.json["sessions"]


def works(client, tokens) -> tuple[int, int]:
    me = client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(tokens, "refresh_token")).status_code
    return me, refreshed


def rows(factory, **where) -> int:
    with factory() as s:
        query = select(func.count()).select_from(UserSession)
        for name, value in where.items():
            query = query.where(getattr(UserSession, name) == value)
        return s.scalar(query)


@pytest.mark.parametrize(
    ("agent", "plain"),
    [
        (CHROME_LINUX, "Chrome on Linux"),
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/18.1 Safari/605.1.15", "Safari on macOS"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iOS"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
         "Safari/537.36", "Chrome on Linux"),
        ("python-requests/2.32.3", "API client (python-requests)"),
        ("curl/8.5.0", "API client (curl)"),
        ("", "Unknown device"),
        (None, "Unknown device"),
    ],
)  # fmt: skip
def test_a_user_agent_is_described_in_plain_words(agent, plain):
    assert describe_user_agent(agent) == plain


def test_a_login_is_one_session_across_refreshes_with_device_and_network_only(client, world, factory):
    tokens = login(client)
    for _ in range(2):
        assert works(client, tokens) == (200, 200)
    [session] = listed(client, tokens)
    assert session["device"] == "Chrome on Linux" and session["current"] is True
    assert session["network"] == "203.0.113.0/24"  # never the full address
    assert session["signed_in_at"] <= session["last_active_at"] < session["expires_at"]
    assert set(session) == {"id", "device", "network", "signed_in_at", "last_active_at", "expires_at",
                            "current"}  # fmt: skip
    with factory() as s:
        stored = s.scalar(select(UserSession).where(UserSession.id == session["id"]))
        assert (stored.device, stored.network) == ("Chrome on Linux", "203.0.113.0/24")
        assert "203.0.113.77" not in repr(stored.__dict__) and "Mozilla" not in repr(stored.__dict__)

    # a second login is a second session; each caller sees which one is theirs
    other = login(client, agent=FIREFOX_WINDOWS)
    seen = {s["device"]: s["current"] for s in listed(client, other)}
    assert seen == {"Chrome on Linux": False, "Firefox on Windows": True}


def test_ending_a_session_logs_it_out_at_its_next_request(client, world, factory):
    mine, lost_phone = login(client), login(client, agent=FIREFOX_WINDOWS)
    assert works(client, lost_phone) == (200, 200)
    target = next(s["id"] for s in listed(client, mine) if not s["current"])
    r = client.delete(f"/api/v1/auth/sessions/{target}", headers=bearer(mine))
    assert r.status_code == 200, r.json
    # its access token and its refresh token are both refused now, long before they expire
    assert works(client, lost_phone) == (401, 401)
    assert works(client, mine) == (200, 200)
    assert [s["device"] for s in listed(client, mine)] == ["Chrome on Linux"]
    assert rows(factory, id=target) == 0
    # ending it again: it is gone
    assert client.delete(f"/api/v1/auth/sessions/{target}", headers=bearer(mine)).status_code == 404


def test_ending_ones_own_current_session_is_a_logout(client, world):
    tokens = login(client)
    own = listed(client, tokens)[0]["id"]
    assert client.delete(f"/api/v1/auth/sessions/{own}", headers=bearer(tokens)).status_code == 200
    assert works(client, tokens) == (401, 401)


def test_a_user_cannot_see_or_end_another_users_session(client, world):
    theirs = login(client, "analyst")
    their_id = listed(client, theirs)[0]["id"]
    mine = login(client, "consumer")
    assert their_id not in {s["id"] for s in listed(client, mine)}
    for bad in (their_id, "0" * 32, "x" * 33, "no-such-session"):
        r = client.delete(f"/api/v1/auth/sessions/{bad}", headers=bearer(mine))
        assert r.status_code == 404 and r.json["error"] == "Not found", (bad, r.json)
    assert works(client, theirs) == (200, 200)  # untouched


def test_api_keys_and_anonymous_callers_get_the_apis_errors(client, world):
    their_id = listed(client, login(client))[0]["id"]
    for method, path in (("GET", "/api/v1/auth/sessions"), ("DELETE", f"/api/v1/auth/sessions/{their_id}")):
        r = client.open(path, method=method)
        assert r.status_code == 401 and r.json["error"] == "Authentication required"
        r = client.open(path, method=method, headers=world.headers["api_key"])  # a third-party key
        assert r.status_code == 403 and r.json["error"] == "Forbidden"
        assert "API keys may not use sessions:manage" in r.json["detail"], r.json


def test_a_third_party_account_lists_and_ends_its_own_api_logins(client, world):
    """A third-party app that logs in with its account's password has sessions like a person: it sees each
    login (the integration's device and network) and ends one it no longer trusts."""
    integration = login(client, "partner", agent="python-requests/2.32.3", address="198.51.100.20")
    other = login(client, "partner", agent="curl/8.5.0", address="192.0.2.9")
    shown = listed(client, integration)
    assert len(shown) == 2 and [s["current"] for s in shown].count(True) == 1
    assert {s["network"] for s in shown} == {"198.51.100.0/24", "192.0.2.0/24"}
    theirs = next(s["id"] for s in shown if not s["current"])
    r = client.delete(f"/api/v1/auth/sessions/{theirs}", headers=bearer(integration))
    assert r.status_code == 200, r.json
    assert works(client, other) == (401, 401) and works(client, integration)[0] == 200
    assert [s["current"] for s in listed(client, integration)] == [True]


def test_a_password_change_by_an_admin_leaves_no_session_listed(client, world, factory):
    first, second = login(client), login(client)
    r = client.patch(
        f"/api/v1/users/{world.users['consumer']}",
        json={"password": "another-long-password"},
        headers=world.headers["admin"],
    )
    assert r.status_code == 200, r.json
    assert works(client, first) == (401, 401) and works(client, second) == (401, 401)
    assert rows(factory, user_id=world.users["consumer"]) == 0  # the rows went with the sessions


def test_the_last_activity_is_written_at_most_once_a_minute(client, world, factory):
    tokens = login(client)
    sid = listed(client, tokens)[0]["id"]

    def set_last_seen(ago: timedelta):
        at = (utcnow() - ago).replace(microsecond=0)
        with factory() as s:
            s.execute(update(UserSession).where(UserSession.id == sid).values(last_seen_at=at))
            s.commit()
        forget_touches()  # as if this process had not seen the session for a while either
        return at

    def last_seen():
        with factory() as s:
            return s.scalar(select(UserSession.last_seen_at).where(UserSession.id == sid))

    stale = set_last_seen(timedelta(minutes=10))
    assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 200
    assert last_seen() > stale + timedelta(minutes=9)  # written: ten minutes old
    recent = set_last_seen(timedelta(seconds=20))
    for _ in range(3):
        assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 200
    assert last_seen() == recent  # another worker wrote it 20 s ago: no write


def test_a_session_from_before_the_rows_is_listed_from_its_next_request(client, world, factory):
    tokens = login(client)
    sid = listed(client, tokens)[0]["id"]
    with factory() as s:
        s.query(UserSession).filter(UserSession.id == sid).delete()
        s.commit()
    forget_touches()
    [session] = listed(client, tokens)
    assert session["id"] == sid and session["current"] is True


def test_rows_are_deleted_when_the_session_ends_or_expires(client, world, factory):
    logged_out, expiring, kept = login(client), login(client), login(client)
    assert client.post("/api/v1/auth/logout", headers=bearer(logged_out)).status_code == 200
    assert rows(factory, user_id=world.users["consumer"]) == 2  # the logout deleted its row
    expiring_id = next(s["id"] for s in listed(client, expiring) if s["current"])
    with factory() as s:
        s.execute(
            update(UserSession)
            .where(UserSession.id == expiring_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        s.commit()
    assert expiring_id not in {s["id"] for s in listed(client, kept)}  # an expired one is not shown
    with factory() as s:
        assert prune_logs(s, 90)["sessions"] == 1
        s.commit()
        assert s.scalar(select(func.count()).select_from(UserSession)) == 1
        # a deactivated user's rows go too
        s.execute(update(User).where(User.id == world.users["consumer"]).values(is_active=False))
        s.commit()
        assert prune_logs(s, 90)["sessions"] == 1
        s.commit()
