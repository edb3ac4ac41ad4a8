"""Security headers on every kind of answer: pages, login, API (answered and refused), API docs, health,
readiness, assets and Dash's bundles; the CSP lets exactly the page's own inline scripts run."""

from __future__ import annotations

import re

import pytest

from dashboard.http_headers import script_hashes

PATHS = ["/", "/login", "/historical", "/api/v1/auth/me", "/api/v1/energy", "/api/docs", "/api/openapi.json",
         "/healthz", "/readyz", "/assets/bootstrap-5.3.8.min.css", "/_dash-layout",
         "/api/v1/no-such-route"]  # fmt: skip


def csp_directives(value: str) -> dict[str, list[str]]:
    parts = (d.strip().split() for d in value.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_carries_the_security_headers(client, path):
    response = client.get(path)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    script_src = csp["script-src"]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert all(s == "'self'" or re.fullmatch(r"'sha256-[A-Za-z0-9+/=]{44}'", s) for s in script_src)
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP, no COOKIE_SECURE


def test_a_login_post_and_an_api_post_carry_them_too(client, world):
    login = client.post("/api/v1/auth/login", json={"username": "consumer", "password": "wrong-password"})
    assert login.status_code == 401
    assert login.headers["X-Frame-Options"] == "DENY"
    form = client.post("/auth/login", data={"username": "x", "password": "y"})
    assert "frame-ancestors 'none'" in form.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/", "/login", "/api/docs"])
def test_every_inline_script_a_page_renders_is_allowed_by_hash(client, path):
    response = client.get(path)
    inline = script_hashes(response.get_data(as_text=True))
    assert inline, "the page renders inline scripts (Dash's renderer, Swagger UI's start)"
    allowed = csp_directives(response.headers["Content-Security-Policy"])["script-src"]
    assert set(inline) <= set(allowed), f"inline scripts the CSP would block: {set(inline) - set(allowed)}"


def test_script_hashes_skip_data_blocks_external_and_commented_scripts():
    html = """<!--[if IE]><script>alert(1)</script><![endif]-->
    <script id="_dash-config" type="application/json">{"a": 1}</script>
    <script src="/x.js"></script><script>var renderer = new DashRenderer();</script>"""
    assert script_hashes(html) == ["'sha256-jZlsGVOhUAIcH+4PVs7QuGZkthRMgvT2n0ilH6/zTM0='"]


def test_hsts_whenever_the_request_is_https(client):
    response = client.get("/healthz", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    page = client.get("/login", base_url="https://localhost")
    assert "max-age=31536000" in page.headers["Strict-Transport-Security"]


def test_hsts_on_every_answer_of_a_deployment_that_says_it_is_https(tmp_path, pg_url):
    from app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, DATABASE_URL=pg_url, COOKIE_SECURE="1"))
    try:
        for path in ("/healthz", "/login", "/api/v1/auth/me"):
            assert (
                "max-age=31536000" in app.server.test_client().get(path).headers["Strict-Transport-Security"]
            )
    finally:
        app.server.extensions["aggregator"].engine.dispose()


def test_the_pages_own_assets_are_cached_until_their_file_changes(client):
    """Every asset the index names carries its file's mtime (?m=...): a fresh tab takes it from the cache
    without asking again; an asset asked for without it is revalidated, and a missing one is not cached."""
    index = client.get("/login").get_data(as_text=True)
    named = re.findall(r'(?:src|href)="(/assets/[^"]+\?m=[^"]+)"', index)
    assert any(n.startswith("/assets/bootstrap-5.3.8.min.css?m=") for n in named)
    assert any(n.startswith("/assets/theme.js?m=") for n in named)  # the theme script in <head> too
    for url in named:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable", url
    assert "immutable" not in client.get("/assets/theme.css").headers.get("Cache-Control", "")
    assert "immutable" not in client.get("/assets/no-such-file.css?m=1").headers.get("Cache-Control", "")
    assert "immutable" not in client.get("/_dash-layout?m=1").headers.get("Cache-Control", "")
