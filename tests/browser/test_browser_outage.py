"""The UI during a database outage, in the real browser: `python app.py` on a PostgreSQL of the test's
own; with the database stopped, the next page change shows the outage banner (not a blank page or a
console full of 500s); with it back, the page works again without a reload of the server. With the web
server itself stopped, the page's own script (assets/server_unreachable.js) shows a banner and, once
the server is back, a reload that works."""

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


def _serve_on(port: int, data_dir):
    """`python app.py` on a given port (a restarted server keeps the address the open page uses)."""
    import os
    import subprocess
    import sys
    import time

    import requests

    from tests.browser.conftest import ROOT
    from tests.conftest import TEST_SECRET

    env = os.environ | {
        "DATA_DIR": str(data_dir),
        "PORT": str(port),
        "SECRET_KEY": TEST_SECRET,
        "DEMO_DATA": "0",
    }
    env |= CHEAP_HASHING
    for name in ("REDIS_URL", "S3_ENDPOINT", "DATABASE_URL"):
        env.pop(name, None)
    log = (data_dir / f"server-{port}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    for _ in range(240):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.25)
    proc.kill()
    raise AssertionError(f"the server did not start on port {port}")


def test_when_the_web_server_stops_a_banner_says_so_and_offers_a_reload(browser, tmp_path):
    """The server process itself gone (review B14): Dash alone only logs to the console. The page shows a
    banner, dims the stale content, and once /healthz answers again offers a reload that works."""
    from app import create_app
    from tests.browser.conftest import free_port
    from tests.browser.helpers import shot

    seeding = create_app(make_settings(tmp_path))  # the embedded SQLite file the server will use
    build_world(seeding)
    seeding.server.extensions["aggregator"].engine.dispose()
    port = free_port()
    proc = _serve_on(port, tmp_path)
    try:
        context = browser.new_context(
            base_url=f"http://127.0.0.1:{port}", viewport={"width": 1400, "height": 1000}
        )
        page = context.new_page()
        page.goto("/login")
        page.fill("#login-username", "admin")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#nav-logout")
        page.click("#nav-historical")
        page.wait_for_selector("#historical-range")
        assert not page.locator("#server-unreachable-banner").is_visible()

        proc.terminate()
        proc.wait(timeout=30)
        page.click("#nav-forecasts")  # the page router's callback cannot reach the server
        page.wait_for_selector("#server-unreachable-banner", state="visible", timeout=10_000)
        assert "The server is not answering" in page.inner_text("#server-unreachable-banner")
        assert float(page.eval_on_selector("#_pages_content", "e => getComputedStyle(e).opacity")) < 1
        shot(page, "outage-web-server-down")

        proc = _serve_on(port, tmp_path)
        page.wait_for_selector("text=The server is back", timeout=20_000)  # /healthz probed every 5 s
        shot(page, "outage-web-server-back")
        page.click("#server-unreachable-banner-reload")
        page.wait_for_selector("#nav-logout")
        page.wait_for_selector("#_pages_content > *")
        assert not page.locator("#server-unreachable-banner").is_visible()
        context.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
