"""The UI during a database outage, in the real browser: `python app.py` on a PostgreSQL of the test's
own; with the database stopped, the next page change shows the outage banner (not a blank page or a
console full of 500s); with it back, the page works again without a reload of the server."""

from __future__ import annotations

import pytest

from tests.browser.conftest import start_server
from tests.conftest import CHEAP_HASHING, make_settings
from tests.factories import PASSWORD, build_world
from tests.private_services import start_private_postgres

pytestmark = pytest.mark.browser


def test_the_outage_banner_appears_and_the_ui_recovers(browser, tmp_path):
    from app import create_app

    pg = start_private_postgres()
    proc = None
    try:
        seeding = create_app(make_settings(tmp_path / "seed", DATABASE_URL=pg.url))
        build_world(seeding)
        seeding.server.extensions["aggregator"].engine.dispose()
        proc, base = start_server({"DATABASE_URL": pg.url, "DEMO_DATA": "0"} | CHEAP_HASHING, tmp_path)
        context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto("/login")
        page.fill("#login-username", "admin")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#nav-logout")
        assert not page.locator("#outage-banner").is_visible()

        pg.stop()
        page.click("#nav-historical")  # the page router's callback needs the database
        page.wait_for_selector("#outage-banner", state="visible", timeout=10_000)
        assert "The database is unreachable" in page.inner_text("#outage-banner")

        pg.start()
        page.goto("/historical")
        page.wait_for_selector("#_pages_content > *")
        page.wait_for_selector("#nav-logout")
        assert not page.locator("#outage-banner").is_visible()
        context.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        pg.remove()
