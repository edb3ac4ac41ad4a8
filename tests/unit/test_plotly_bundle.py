"""The charts' plotly.js: the basic bundle, of the version plotly.py was built with, where dcc.Graph loads it."""

from __future__ import annotations

from plotly.offline import get_plotlyjs_version

from app import PLOTLY_BASIC, PLOTLY_JS_PATH, REGENERATOR_RUNTIME, bundle_version


def test_the_vendored_bundle_matches_plotly_py():
    # fails when plotly is upgraded without the bundle: `npm pack plotly.js-basic-dist-min@<version>`
    assert bundle_version(PLOTLY_BASIC) == get_plotlyjs_version()


def test_graphs_get_the_basic_bundle_cached_for_a_day(sqlite_app):
    client = sqlite_app.server.test_client()
    r = client.get(PLOTLY_JS_PATH)  # no login: a static asset, like Dash's own bundles
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    body = r.get_data()
    assert b"plotly.js (basic - minified) v" + get_plotlyjs_version().encode() in body[:200]
    assert len(body) == PLOTLY_BASIC.stat().st_size < 2_000_000
    assert "max-age=86400" in r.headers["Cache-Control"]
    again = client.get(PLOTLY_JS_PATH, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_regenerator_runtime_is_served_where_dash_loads_babel_polyfill(sqlite_app):
    """Dash's first script is @babel/polyfill (core-js 2 for pre-2017 browsers); its bundles need only the
    regeneratorRuntime global, so the page gets regenerator-runtime (25 KB, vendored from npm) there."""
    import json
    import re

    client = sqlite_app.server.test_client()
    page = client.get("/login").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', page)
    polyfill = [url for url in scripts if "/deps/polyfill@7." in url]
    assert len(polyfill) == 1 and scripts.index(polyfill[0]) == scripts.index(
        next(url for url in scripts if "/_dash-component-suites/" in url)
    )  # still the first of Dash's scripts: regeneratorRuntime exists before any bundle runs
    r = client.get(polyfill[0])
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert (
        r.get_data() == REGENERATOR_RUNTIME.read_bytes() and b"regeneratorRuntime = runtime" in r.get_data()
    )
    assert b"core-js" not in r.get_data() and "max-age=86400" in r.headers["Cache-Control"]
    package = json.loads((REGENERATOR_RUNTIME.parent / "package.json").read_text())
    assert package["name"] == "regenerator-runtime" and package["license"] == "MIT"
    # only that one: React, next, is Dash's own
    react = client.get(next(url for url in scripts if "/deps/react@" in url))
    assert react.status_code == 200 and b"regeneratorRuntime" not in react.get_data()


def test_a_new_app_serves_dash_bundles_to_concurrent_first_requests(sqlite_app):
    """Dash registers its bundles on a process's first request and flags that done before doing it, so
    threads arriving together got 500s (plotly/dash#3971). create_app runs that setup before serving."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    assert "dash" in sqlite_app.registered_paths  # filled before any request of ours
    client = sqlite_app.server.test_client()
    page = client.get("/login").get_data(as_text=True)
    bundles = re.findall(r'src="(/_dash-component-suites/[^"]+)"', page)
    assert len(bundles) >= 5
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda url: sqlite_app.server.test_client().get(url).status_code, bundles * 2)
        )
    assert statuses == [200] * len(statuses)
