"""The Dash UI on the shared Flask server, and `python app.py`, the development server of `make run`.

`create_app()` builds a fresh app (tests build several in one process, so callbacks are registered
explicitly per app rather than with the global `@dash.callback`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Dash, html

from callbacks import register_all
from dashboard.api.outages import BANNER_ID, MESSAGES, outage_service
from dashboard.config import Settings, load_settings
from dashboard.http_headers import allow_inline_scripts, tls_context
from dashboard.policy import allowed
from dashboard.server import create_server
from dashboard.ui_auth import PAGE_IDS, install_callback_guard, ui_scope
from pages import CHART_PAGES, register_pages
from pages.alerts import bell

ROOT = Path(__file__).resolve().parent
log = logging.getLogger(__name__)
# plotly.js "basic" (scatter, bar, pie: every chart of these pages), from npm's plotly.js-basic-dist-min
PLOTLY_BASIC = ROOT / "vendor" / "plotly.js-basic-dist-min" / "plotly-basic.min.js"
PLOTLY_JS_PATH = "/_dash-component-suites/plotly/package_data/plotly.min.js"  # where dcc.Graph loads it
# Dash's first script is @babel/polyfill 7 (core-js 2 for browsers before 2017, and regenerator-runtime):
# 99 KB whose evaluation, and the core-js wrappers it installs, cost a fresh tab ~70-140 ms of main thread
# in chromium. The bundles need only its regeneratorRuntime global; the same library is served in its place.
REGENERATOR_RUNTIME = ROOT / "vendor" / "regenerator-runtime" / "runtime.js"
POLYFILL_PATH = re.compile(r"/_dash-component-suites/dash/deps/polyfill@7\.[^/]*\.min\.js")

# assets/theme.js runs in <head>, before the first paint (no flash of the light theme); Dash would
# otherwise add it with the other assets at the end of <body>
THEME_SCRIPT = "theme.js"
THEMES = [("system", "Theme: system"), ("light", "Theme: light"), ("dark", "Theme: dark")]
INDEX = """<!DOCTYPE html>
<html>
    <head>
        {%metas%}
        <meta name="aggregator-chart-pages" content="CHART_PAGES">
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <script src="/assets/THEME_SCRIPT"></script>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
API_DOCS = {"name": "API docs", "path": "/api/docs", "permission": "page:api-docs"}  # not a Dash page


def navigation() -> list[dict]:
    """The registered pages that carry a permission (not the login page), in their order, then the API
    docs: each with its name, path and permission (dashboard/policy.py PAGE_MATRIX)."""
    pages = sorted((p for p in dash.page_registry.values() if p.get("permission")), key=lambda p: p["order"])
    return [*pages, API_DOCS]


def navbar():
    scope = ui_scope()
    if scope is None:
        links = [dbc.NavItem(dbc.NavLink("Log in", href="/login", id="nav-login"))]
    else:
        links = [
            dbc.NavItem(dbc.NavLink(page["name"], href=page["path"],
                                    id=f"nav-{page['permission'].removeprefix('page:')}"))
            for page in navigation()
            if allowed(page["permission"], scope.role)
        ]  # fmt: skip
        links.append(bell(scope))  # unread notifications (pages/alerts.py)
        links.append(dbc.NavItem(logout_form(scope.username)))
    links.append(theme_choice())
    return dbc.NavbarSimple(links, brand="Aggregator", brand_href="/", color="primary", dark=True,
                            className="app-navbar")  # fmt: skip


def theme_choice() -> dbc.NavItem:
    """Light, dark or the system's theme: applied and remembered in the browser by assets/theme.js."""
    options = [html.Option(label, value=value) for value, label in THEMES]
    return dbc.NavItem(
        html.Select(
            options,
            id="theme-choice",
            className="form-select form-select-sm theme-choice ms-md-2",
            title="Colour theme",
            **{"aria-label": "Colour theme"},
        ),
        className="d-flex align-items-center",
    )


def logout_form(username: str) -> html.Form:
    """Logout is a POST (a link or an image elsewhere cannot log anyone out) carrying the session's refresh
    CSRF value, which /auth/logout checks (dashboard/api/auth_routes.py)."""
    from flask import request

    csrf = request.cookies.get("csrf_refresh_token") or request.cookies.get("csrf_access_token") or ""
    return html.Form(
        [
            dbc.Input(type="hidden", name="csrf_token", value=csrf),
            html.Button(
                f"Log out ({username})", type="submit", id="nav-logout", className="nav-link btn btn-link"
            ),
        ],
        action="/auth/logout",
        method="POST",
        className="d-flex",
    )


def outage_banner(message: str | None = None):
    """Opened by a callback answered during an outage (dashboard/api/outages.py), or here by the layout."""
    return dbc.Alert(message, id=BANNER_ID, color="warning", is_open=message is not None, dismissable=True,
                     className="m-2 mb-0")  # fmt: skip


def serve_layout():
    try:
        bar, message = navbar(), None
    except Exception as exc:
        service = outage_service(exc)
        if service is None:
            raise
        bar = dbc.NavbarSimple([theme_choice()], brand="Aggregator", brand_href="/", color="primary", dark=True,
                               className="app-navbar")  # fmt: skip
        message = f"{MESSAGES[service]}: this page cannot load now. Reload it in a few seconds."
    container = dash.page_container if message else page_container()
    return html.Div([bar, outage_banner(message), dbc.Container(container, className="pt-3", fluid=True)])


def page_container():
    """Dash's page container with the tab's first page already in it, when the layout request names the
    page (assets/first_page.js sends its path and query as X-Dash-Page): the renderer draws the page with the
    layout instead of asking the page router for it in a second round trip. The location starts at that
    path and query, so mounting it changes neither and the router is not called; in-app navigation goes
    through the router as before. Dash's own empty container otherwise, or when drawing the page fails (the
    router then draws it, or shows its error, as before)."""
    from urllib.parse import urlsplit

    from dash import dcc
    from dash._pages import _parse_query_string, _path_to_page
    from flask import request

    named = request.headers.get("X-Dash-Page", "")
    if not named.startswith("/") or named.startswith("//") or len(named) > 4096:
        return dash.page_container
    target = urlsplit(named)
    page, variables = _path_to_page(target.path.strip("/"))
    if not page:
        return dash.page_container
    search = f"?{target.query}" if target.query else ""
    try:
        layout = page["layout"](**{**(variables or {}), **_parse_query_string(search)})
    except Exception:  # the router call that follows shows what went wrong, as it did before
        log.exception("drawing %s into the layout failed; the page router draws it", target.path)
        return dash.page_container
    return html.Div(
        [
            dcc.Location(
                id=PAGE_IDS["location"], refresh="callback-nav", pathname=target.path, search=search
            ),
            html.Div(layout, id=PAGE_IDS["content"], disable_n_clicks=True),
            dcc.Store(id=PAGE_IDS["store"], data={"title": page["title"]}),
            html.Div(id=PAGE_IDS["dummy"], disable_n_clicks=True),
        ]
    )


def bundle_version(path: Path) -> str | None:
    """The version in a plotly.js bundle's banner ('plotly.js (basic - minified) v4.1.1')."""
    with path.open("rb") as f:
        found = re.search(rb"plotly\.js[^\n]* v(\d+\.\d+\.\d+)", f.read(400))
    return found.group(1).decode() if found else None


def serve_plotly_basic(server) -> bool:
    """Serve the basic plotly.js bundle (1.2 MB) where dcc.Graph asks for the full one (4.8 MB, every trace
    type): a fresh tab parses a quarter of the code before its first chart. Only when the bundle has the
    version plotly.py and Dash were built with; otherwise Dash's own bundle is served and a warning says so."""
    from plotly.offline import get_plotlyjs_version

    expected, found = get_plotlyjs_version(), bundle_version(PLOTLY_BASIC)
    if found != expected:
        log.warning(
            "vendor plotly.js basic is %s, plotly.py wants %s: serving the full bundle", found, expected
        )
        return False
    serve_vendored_script(server, PLOTLY_JS_PATH.__eq__, PLOTLY_BASIC)
    return True


def serve_regenerator_runtime(server) -> None:
    """Serve regenerator-runtime where Dash loads @babel/polyfill (its URL carries Dash's version)."""
    serve_vendored_script(server, POLYFILL_PATH.fullmatch, REGENERATOR_RUNTIME)


def serve_vendored_script(server, matches, script: Path) -> None:
    """Answer a request whose path `matches` with a vendored script (cached a day) instead of Dash's."""
    from flask import request, send_file

    @server.before_request
    def vendored_script():
        if matches(request.path):
            return send_file(script, mimetype="text/javascript", max_age=24 * 3600, conditional=True)
        return None


def index_page() -> str:
    """Dash's index page with the theme script in <head> (versioned like Dash's own assets) and the paths of
    the pages with charts (assets/first_page.js loads plotly.js with a fresh tab's layout on those)."""
    version = int((ROOT / "assets" / THEME_SCRIPT).stat().st_mtime)
    charts = " ".join(page.PATH for page in CHART_PAGES)
    return INDEX.replace("THEME_SCRIPT", f"{THEME_SCRIPT}?m={version}").replace("CHART_PAGES", charts)


def create_app(settings: Settings | None = None) -> Dash:
    settings = settings or load_settings()
    server = create_server(settings)
    install_callback_guard(server)
    serve_plotly_basic(server)
    serve_regenerator_runtime(server)
    app = Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder="",  # registered explicitly below
        assets_folder=str(ROOT / "assets"),
        serve_locally=True,
        suppress_callback_exceptions=True,
        title="Aggregator",
        index_string=index_page(),
        assets_ignore=rf"^{THEME_SCRIPT}$",
        # flask-jwt-extended's double-submit CSRF: Dash echoes the cookie in this header.
        csrf_token_name="csrf_access_token",
        csrf_header_name="X-CSRF-TOKEN",
    )
    register_pages()
    app.layout = serve_layout
    register_all(app)
    # Dash fills its registry of script bundles in a hook on a process's first request, and sets its
    # "done" flag before the work: another thread arriving meanwhile validates against an empty registry
    # and every bundle it asks for answers 500 ("dash is not a registered library"), a blank first page
    # under `gunicorn --threads` or `make run` (plotly/dash#3971, open). One request here, before any
    # thread serves, runs that hook to the end.
    app.server.test_client().get("/healthz")
    # Dash's inline scripts (clientside callbacks, its pages' among them, registered by that first
    # request; the renderer's start line), by hash, in the Content-Security-Policy
    allow_inline_scripts(server, app.csp_hashes())
    return app


def create_app_or_exit(settings: Settings | None = None) -> Dash:
    """create_app, or one line saying which service is unreachable and what to check (no traceback)."""
    try:
        return create_app(settings)
    except Exception as exc:
        service = outage_service(exc)
        if service is None:
            raise
        hint = {"database": "check DATABASE_URL and that PostgreSQL is running",
                "redis": "check REDIS_URL", "object_store": "check S3_ENDPOINT"}[service]  # fmt: skip
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise SystemExit(
            f"Cannot start: {MESSAGES[service]} ({exc.__class__.__name__}: {first}); {hint}"
        ) from None


def request_handler():
    """Werkzeug's handler without the `Server: Werkzeug/x Python/y` detail."""
    from werkzeug.serving import WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        sys_version = ""

        @property
        def server_version(self) -> str:  # type: ignore[override]
            return "aggregator"

    return Handler


def prepare(settings: Settings) -> None:
    """`python app.py --prepare`, the stack's one-shot `init` service (docker-compose.yml): what `python
    app.py` does before it serves, once, before gunicorn and the workers start: migrate the database,
    create the object store's bucket, and with DEMO_DATA=1 seed the demo on the first start (a backfill
    later) and print its logins. Then it exits."""
    from dashboard.context import EXTENSION
    from jobs.embedded import prepare_embedded

    server = create_server(settings)  # migrates (PostgreSQL: under an advisory lock)
    server.extensions[EXTENSION].object_store.ping()  # an S3 store creates its bucket when built
    prepare_embedded(server, settings)
    print(
        "Prepared: database migrated, object store ready"
        + (", demo data in place" if settings.demo_data else "")
    )


def start_mqtt_bridge(server, settings: Settings):
    """MQTT ingestion as a thread of `python app.py` when MQTT_URL is set (None otherwise). Only here: a
    gunicorn deployment runs the bridge as its own process (`python -m dashboard mqtt-bridge`), never one
    per worker (workers sharing one MQTT_CLIENT_ID would take the session from each other)."""
    if not settings.mqtt_url:
        return None
    from dashboard.context import EXTENSION
    from dashboard.mqtt_bridge import MqttBridge

    return MqttBridge(settings, server.extensions[EXTENSION].session_factory).start()


def main(argv: list[str] | None = None) -> None:
    import sys

    from jobs.embedded import prepare_embedded, start_background

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ValueError as exc:  # a setting that is wrong or unsafe: say which and how to fix it, no traceback
        raise SystemExit(f"Configuration error: {exc}") from None
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--prepare"]):
        raise SystemExit(
            "usage: python app.py [--prepare]  (--prepare: migrate, bucket, demo data; then exit)"
        )
    if args:
        try:
            return prepare(settings)
        except Exception as exc:
            if outage_service(exc) is None:
                raise
            raise SystemExit(
                f"Cannot prepare: {MESSAGES[outage_service(exc)]} ({exc.__class__.__name__})"
            ) from None
    app = create_app_or_exit(settings)
    prepare_embedded(app.server, settings)
    start_background(app.server, settings)
    start_mqtt_bridge(app.server, settings)
    tls = tls_context(settings.tls_cert_file, settings.tls_key_file) if settings.tls_cert_file else None
    scheme = "https" if tls else "http"
    print(
        f"\nAggregator Web App: {scheme}://{settings.host}:{settings.port}  (API docs: /api/docs)\n",
        flush=True,
    )
    app.run(host=settings.host, port=settings.port, debug=False, threaded=True, ssl_context=tls,
            request_handler=request_handler())  # fmt: skip


if __name__ == "__main__":
    main()
