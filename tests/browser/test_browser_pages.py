"""Every page in a real browser, as every role, on the demo-seeded PostgreSQL server: the navigation shows
exactly the pages the role may open, each opens without console errors, and a screenshot is saved."""

from __future__ import annotations

import pytest

from dashboard.policy import allowed
from tests.browser.helpers import shot

pytestmark = pytest.mark.browser
PAGES = {"/": "overview", "/real-time": "real-time", "/historical": "historical", "/forecasts": "forecasts",
         "/analytics": "analytics", "/exports": "exports", "/admin": "admin", "/home": "home"}  # fmt: skip
ROLES = {"admin": "admin", "analyst": "analyst", "consumer": "consumer"}


@pytest.mark.parametrize("username", sorted(ROLES))
def test_navigation_and_every_page_per_role(open_as, username):
    role = ROLES[username]
    page = open_as(username)
    for path, name in PAGES.items():
        visible = page.locator(f"#nav-{name}").count() > 0
        assert visible == allowed(f"page:{name}", role), (path, role)
    for path, name in PAGES.items():
        page.goto(path)
        page.wait_for_selector("#_pages_content > *")
        if allowed(f"page:{name}", role):
            page.wait_for_selector("#forbidden", state="detached")
            page.wait_for_load_state("networkidle")
            shot(page, f"page-{name}-{username}")
        else:
            page.wait_for_selector("#forbidden")
    assert page.errors == []
