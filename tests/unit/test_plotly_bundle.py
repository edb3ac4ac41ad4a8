"""The charts' plotly.js: the basic bundle, of the version plotly.py was built with, where dcc.Graph loads it."""

from __future__ import annotations

from plotly.offline import get_plotlyjs_version

from app import PLOTLY_BASIC, PLOTLY_JS_PATH, bundle_version


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
