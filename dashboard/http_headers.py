"""Security headers on every answer (pages, login, API, API docs, health, assets) and the TLS context.

The Content-Security-Policy allows scripts from this origin only, plus the inline scripts the app itself
renders, each by its SHA-256 hash (Dash's clientside-callback block and its renderer start line,
`Dash.csp_hashes()`; Swagger UI's start line). Dash's config is a `<script type="application/json">`,
which is data, not script, so CSP does not apply to it. Styles allow 'unsafe-inline': React, Plotly and
Bootstrap's components set style attributes and insert <style> elements at run time.

HSTS goes out whenever the request arrived over HTTPS (direct TLS, or X-Forwarded-Proto from a proxy
that werkzeug's ProxyFix trusts, both making `request.is_secure`) or the deployment says it is HTTPS
(`COOKIE_SECURE=1` or TLS configured); browsers ignore it over plain HTTP (RFC 6797 8.1).
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
from collections.abc import Iterable

from flask import Flask, request

from dashboard.config import Settings

EXTENSION = "aggregator.csp_script_hashes"
HSTS = "max-age=31536000; includeSubDomains"
STATIC_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


ASSET_CACHE = "public, max-age=31536000, immutable"


def script_hashes(html: str) -> list[str]:
    """The CSP hash source of every inline <script> (no src, not a data block) in an HTML page."""
    hashes = []
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)  # commented out: never run
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S):
        if "src=" in attrs or "application/json" in attrs:
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        hashes.append(f"'sha256-{digest}'")
    return hashes


def allow_inline_scripts(server: Flask, hashes: Iterable[str]) -> None:
    """Add inline scripts (as CSP hash sources) the pages may run."""
    known = server.extensions.setdefault(EXTENSION, [])
    known.extend(h for h in hashes if h not in known)


def content_security_policy(hashes: Iterable[str]) -> str:
    directives = {
        "default-src": "'self'",
        "script-src": " ".join(["'self'", *hashes]),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def https_deployment(settings: Settings) -> bool:
    return bool(settings.cookie_secure or (settings.tls_cert_file and settings.tls_key_file))


def install_security_headers(server: Flask, settings: Settings) -> None:
    hashes = server.extensions.setdefault(EXTENSION, [])
    always_hsts = https_deployment(settings)
    cached: dict[tuple, str] = {}

    @server.after_request
    def _security_headers(response):
        key = tuple(hashes)
        if key not in cached:
            cached.clear()
            cached[key] = content_security_policy(hashes)
        response.headers["Content-Security-Policy"] = cached[key]
        for name, value in STATIC_HEADERS.items():
            response.headers.setdefault(name, value)
        if always_hsts or request.is_secure:
            response.headers["Strict-Transport-Security"] = HSTS
        if response.status_code == 200 and request.path.startswith("/assets/") and "m" in request.args:
            # Dash names every asset with its file's mtime (?m=...), the theme script too (app.py): a changed
            # file gets a new URL, so a tab need not ask again. Without this Flask answers "no-cache", and
            # each fresh tab waited for the render-blocking stylesheets to be revalidated before any script.
            response.headers["Cache-Control"] = ASSET_CACHE
        return response


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context that refuses TLS 1.0 and 1.1 (`python app.py`; gunicorn.conf.py sets the same)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
