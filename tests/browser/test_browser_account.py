"""Accounts in real chromium on the demo-seeded PostgreSQL server: a user changes their password on My
account (this browser stays logged in, another browser of theirs is logged out), and an admin issues a
reset link in the Admin page that the user opens, uses once, and logs in with. Users of their own, so the
demo logins of the other browser tests are untouched."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session

from dashboard.auth import hash_password
from dashboard.clock import utcnow
from dashboard.schema import User
from tests.browser.helpers import shot
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
NEW = "my-new-browser-passphrase"


@pytest.fixture
def own_user(demo_db_url):
    """A consumer of this test only, removed afterwards."""
    engine = create_engine(demo_db_url)
    name = f"acct-{uuid.uuid4().hex[:6]}"
    with Session(engine) as s:
        s.add(
            User(username=name, password_hash=hash_password(PASSWORD), role="consumer", created_at=utcnow())
        )
        s.commit()
    yield name
    with Session(engine) as s:
        s.execute(delete(User).where(User.username == name))
        s.commit()
    engine.dispose()


def login(page, username, password):
    page.goto("/login")
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#login-submit")


def test_a_user_changes_their_password_and_other_sessions_end(open_as, own_user, demo_db_url):
    elsewhere = open_as(own_user, "/account")  # another browser of the same user
    page = open_as(own_user, "/account")
    page.wait_for_selector("#account-who")
    page.fill("#account-current", "not-my-password")
    page.fill("#account-new", NEW)
    page.fill("#account-repeat", NEW)
    page.click("#account-change")
    page.wait_for_selector("#account-message.alert-danger")
    assert "current password is wrong" in page.inner_text("#account-message")
    shot(page, "account-wrong-current-password")

    page.fill("#account-current", PASSWORD)
    page.fill("#account-new", NEW)
    page.fill("#account-repeat", NEW)
    page.click("#account-change")
    page.wait_for_url("**/account?done=password")
    page.wait_for_selector("#account-message.alert-success")
    assert "Every other session of yours" in page.inner_text("#account-message")
    assert page.is_visible("#nav-logout")  # still logged in here
    shot(page, "account-password-changed")
    page.goto("/historical")  # and it goes on working
    page.wait_for_selector("#nav-logout")

    elsewhere.goto("/account")  # the other browser is out
    elsewhere.wait_for_selector("#login-link, #login-username")
    with Session(create_engine(demo_db_url)) as s:
        assert s.scalar(select(User.password_hash).where(User.username == own_user)) is not None
    fresh = elsewhere.context.browser.new_context(base_url=page.url.split("/account")[0]).new_page()
    login(fresh, own_user, NEW)
    fresh.wait_for_selector("#nav-logout")
    fresh.context.close()
    assert page.errors == []


def test_an_admin_issues_a_reset_link_that_works_once(open_as, own_user, browser):
    admin = open_as("admin", "/admin")
    admin.get_by_role("tab", name="Links, resets and sessions").click()
    admin.click("#admin-acc-user")
    admin.keyboard.type(own_user)
    admin.keyboard.press("Enter")
    admin.click("#admin-acc-reset")
    admin.wait_for_selector("#admin-reset-link")
    link = admin.inner_text("#admin-reset-link").strip()
    assert "/reset?token=" in link
    shot(admin, "admin-reset-link-issued")

    base = link.split("/reset")[0]
    user = browser.new_context(base_url=base, viewport={"width": 1000, "height": 800}).new_page()
    user.goto(link)
    user.wait_for_selector("#reset-username")
    assert user.inner_text("#reset-username") == own_user
    user.fill("#reset-password", "short")
    user.fill("#reset-repeat", "short")
    user.click("#reset-submit")
    user.wait_for_selector("#reset-error")
    assert "refused" in user.inner_text("#reset-error")
    user.fill("#reset-password", NEW)
    user.fill("#reset-repeat", NEW)
    shot(user, "reset-form")
    user.click("#reset-submit")
    user.wait_for_selector("#reset-done")
    shot(user, "reset-done")
    user.click("#reset-login-link")
    user.wait_for_selector("#login-username")
    login(user, own_user, NEW)
    user.wait_for_selector("#nav-logout")

    user.goto(link)  # a second use
    user.wait_for_selector("#reset-error")
    assert "already been used" in user.inner_text("#reset-error")
    assert user.locator("#reset-password").count() == 0
    shot(user, "reset-link-used")
    user.context.close()
    assert admin.errors == []


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)


def test_a_user_sees_their_sessions_and_ends_the_one_of_a_lost_phone(open_as, own_user, browser):
    page = open_as(own_user, "/account")
    base = page.url.split("/account")[0]
    phone = browser.new_context(base_url=base, user_agent=IPHONE, viewport={"width": 390, "height": 844})
    lost = phone.new_page()
    login(lost, own_user, PASSWORD)
    lost.wait_for_selector("#nav-logout", state="attached")  # in the phone's collapsed menu

    page.reload()
    page.wait_for_selector("#account-sessions .session-row")
    rows = page.locator("#account-sessions .session-row")
    assert rows.count() == 2
    current = page.locator("#account-sessions .session-current")
    assert "This browser" in current.inner_text() and "Chrome on Linux" in current.inner_text()
    assert "Safari on iOS" in page.inner_text("#account-sessions")
    shot(page, "account-sessions")

    page.get_by_role("button", name="End this session").click()
    page.wait_for_selector("#account-sessions-message.alert-success")
    assert "Safari on iOS" in page.inner_text("#account-sessions-message")
    assert rows.count() == 1 and "Safari on iOS" not in page.inner_text("#account-sessions")
    shot(page, "account-session-ended")

    lost.goto("/home")  # the phone's next request: logged out
    lost.wait_for_selector("#login-link, #login-username")
    phone.close()
    page.goto("/historical")  # this browser goes on working
    page.wait_for_selector("#nav-logout")
    assert page.errors == []
