"""UI speed benchmark (`make bench-ui`): every page in real chromium through gunicorn over PostgreSQL.

Data: the demo generator's houses (200 x 365 days of 15-minute readings by default) seeded into a
PostgreSQL database of its own, `aggbench_ui` (`aggbench_ui_<houses>x<days>` for other sizes; a
smoke run: `--houses 20 --days 30 --loads 1`). Seeding takes most of an hour, so the database is KEPT
between runs and reused when its comment records a finished seed of the same size (`--reseed` drops
and seeds it again; `--seed-only` stops after seeding). A reused database is first backfilled up to
now (at most 14 days, as `make run` does), so "last 24 h" views have data. Every demo user gets the
password below; every house a tariff when none has one (even houses time-of-use, odd ones flat) and the
grid a constant carbon intensity, so the cost card, Historical's cost and Exports' cost columns are measured.

Stack, shaped like docker-compose.yml: `gunicorn -w 2 --threads 4 wsgi:server`, one RQ training worker
and two forecast workers (Redis db 11), models in the local object store under var/bench-ui/<database>
(kept with the database). The Forecasts page's default models (xgboost direct, both targets, both
products) are trained once for all houses and for the consumer's house when no forecast answers.

Measures, for each page and role (analyst: all houses; consumer: one house; admin: /admin and /alerts), over
`--loads` fresh tabs in Playwright-driven Debian chromium (`/usr/bin/chromium`, logged in once per role,
so the static assets come from the browser cache after the first load):
1. load: from navigation start (performance.timeOrigin) until the page content is in, no Dash
   callback is pending (no `._dash-loading-callback`, no fetch/XHR in flight), every dcc.Graph has
   drawn, and it stays so for 500 ms (the moment it first settled is reported);
2. in-app navigation: from a click on the page's navbar link (coming from another page, no reload)
   until settled, the same way;
3. toggles: on every page but /admin (whose controls change data: there only its tabs, Tariffs among
   them), each radio option, inactive tab and the second option of each dropdown is clicked once per load
   (at most --max-interactions),
   from the click until settled;
4. every `/_dash-update-component` request: its time from request sent to response end (Chromium's
   resource timing: the server's time plus localhost transfer), per callback (named by its first
   graph output, else its first output, "+N" the others);
5. the most points of any trace on any graph of the page (x/y/z... lengths; heatmap cells);
6. memory: the RSS of each gunicorn worker (and the forecast worker) after the run.
A click that starts no request within 1.5 s (a form field read only on submit) is not a toggle, and a
dcc.Interval's tick never counts as a click's request (it still keeps the page from settling while in flight).
Targets (issue 15): callback p95 <= 200 ms, fresh-tab load p95 <= 1.5 s, in-app navigation and toggle
<= 2 s, <= 5,000 points per trace, web worker RSS < 400 MB. Misses are printed as MISSED; the exit status is 0 unless
`--strict`. Prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench_forecast import pct, wait_http, wait_workers
from bench_ingest import PG_ADMIN, Client, free_port, rss_mb, worker_pids
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.config import load_settings  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate  # noqa: E402
from jobs.worker import worker_command  # noqa: E402

PASSWORD = "bench-ui-password"
REDIS_URL = os.environ.get(
    "BENCH_UI_REDIS_URL", "redis://127.0.0.1:6379/11"
)  # tests use 13, bench-forecast 12
SHORT_TERM_HORIZON = 8
# The Forecasts page's default models (xgboost direct), trained once per kept database for the
# analyst's scope (all houses) and the consumer's house, so the page forecasts rather than says "no model".
TRAIN = [
    (target, product, {"horizon": SHORT_TERM_HORIZON} if product == "short-term" else {})
    for target in ("consumption", "production")
    for product in ("next-24-hours", "short-term")
]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",  # as tests/ui
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]  # fmt: skip
PAGES = [
    "/",
    "/home",
    "/real-time",
    "/historical",
    "/forecasts",
    "/analytics",
    "/exports",
    "/alerts",
    "/admin",
]
ADMIN_PAGES = (
    "/admin",
    "/alerts",
)  # the admin's own pages here (the others are the analyst's, measured as such)
ROLES = {"analyst": "analyst", "consumer": "consumer", "admin": "admin"}  # demo username -> role
TARGET_CALLBACK_MS = 200  # issue 15 (was 300)
TARGET_LOAD_S = 1.5  # a fresh tab, issue 15 (was 2 s)
TARGET_PAGE_S = 2.0  # in-app navigation and toggles
REQUEST_WITHIN_MS = 1500  # a click that starts no request by then fired none
TARGET_POINTS = 5000
TARGET_RSS_MB = 400
SETTLE_MS = 500
ROUTER = "_pages_content.children+_pages_store.data"

# Installed before any page script: counts fetch/XHR in flight and, on every animation frame, notes
# when the page first became settled (content in, nothing loading, every graph drawn).
BENCH_JS = """
(() => {
  const st = {pending: 0, lastStart: -1, readyAt: null, contentAt: null};
  window.__bench = st;
  const done = () => { st.pending--; };
  // A dcc.Interval's tick is no click's doing: it counts as pending, but not as the latest start.
  const timerOnly = (init) => {
    try {
      const ids = JSON.parse((init && init.body) || '{}').changedPropIds || [];
      return ids.length > 0 && ids.every((id) => id.endsWith('.n_intervals'));
    } catch (e) { return false; }
  };
  const origFetch = window.fetch;
  window.fetch = function (...args) {
    st.pending++;
    if (!timerOnly(args[1])) st.lastStart = performance.now();
    return origFetch.apply(this, args).finally(done);
  };
  const origSend = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    st.pending++; st.lastStart = performance.now();
    this.addEventListener('loadend', done);
    return origSend.apply(this, args);
  };
  const settled = () => {
    const content = document.getElementById('_pages_content');
    if (!content || content.children.length === 0 || st.pending > 0) return false;
    const busy = '._dash-loading, ._dash-loading-callback, .dash-graph--pending, [data-dash-is-loading="true"]';
    if (document.querySelector(busy)) return false;
    for (const g of document.querySelectorAll('#_pages_content .dash-graph')) {
      const plot = g.classList.contains('js-plotly-plot') ? g : g.querySelector('.js-plotly-plot');
      if (!plot || !plot._fullLayout) return false;
    }
    return true;
  };
  const tick = () => {
    if (st.contentAt === null) {
      const content = document.getElementById('_pages_content');
      if (content && content.children.length) st.contentAt = performance.now();
    }
    if (settled()) { if (st.readyAt === null) st.readyAt = performance.now(); } else st.readyAt = null;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""
SETTLED_JS = f"""() => {{ const st = window.__bench;
  return !!st && st.readyAt !== null && performance.now() - st.readyAt > {SETTLE_MS}; }}"""
STARTED_AFTER_JS = "(t) => window.__bench.lastStart > t"
SETTLED_AFTER_JS = f"""(t) => {{ const st = window.__bench;
  return st.lastStart > t && st.readyAt !== null && st.readyAt > st.lastStart
         && performance.now() - st.readyAt > {SETTLE_MS}; }}"""
MAX_POINTS_JS = """() => {
  let most = 0, graphs = 0;
  for (const g of document.querySelectorAll('#_pages_content .js-plotly-plot')) {
    graphs++;
    for (const t of (g._fullData || [])) {
      for (const k of ['x', 'y', 'z', 'lat', 'lon', 'values', 'r', 'theta']) {
        const v = t[k];
        if (!v || typeof v === 'string' || typeof v.length !== 'number') continue;
        const n = (k === 'z' && v.length && v[0] && typeof v[0].length === 'number')
          ? v.length * v[0].length : v.length;
        most = Math.max(most, n);
      }
    }
  }
  return [most, graphs];
}"""
# Controls worth one click each: radio options, inactive tabs (dbc and dcc), dropdowns (second option).
CONTROLS_JS = """() => {
  const out = [];
  const root = document.getElementById('_pages_content');
  if (!root) return out;
  root.querySelectorAll('input[type=radio]').forEach((el) => {
    if (!el.checked && !el.disabled && el.id) out.push({kind: 'radio', id: el.id});
  });
  root.querySelectorAll('.nav-tabs .nav-link:not(.active), .tab:not(.tab--selected)').forEach((el, i) => {
    el.setAttribute('data-bench-tab', String(i));
    out.push({kind: 'tab', id: String(i)});
  });
  root.querySelectorAll('.dash-dropdown').forEach((el, i) => {
    if (!el.closest('[id]')) return;
    el.setAttribute('data-bench-dropdown', String(i));
    out.push({kind: 'dropdown', id: String(i)});
  });
  return out;
}"""


# An open dropdown's option to pick: the one after the selected one (another house), else any other.
PICK_OPTION_JS = """() => {
  const options = [...document.querySelectorAll('[role="option"]')];
  const selected = options.findIndex((o) => o.getAttribute('aria-selected') === 'true');
  if (selected >= 0 && selected + 1 < options.length) return selected + 1;
  return options.findIndex((o) => o.getAttribute('aria-selected') !== 'true');
}"""


def db_name_for(houses: int, days: int) -> str:
    return "aggbench_ui" if (houses, days) == (200, 365) else f"aggbench_ui_{houses}x{days}"


def seed_info(admin, name: str) -> dict | None:
    """The seed record kept as the database's comment, or None if the database is missing or unfinished."""
    with admin.connect() as c:
        comment = c.execute(
            text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
            {"n": name},
        ).first()
    if comment is None or not comment[0]:
        return None
    try:
        return json.loads(comment[0])
    except ValueError:
        return None


def drop_database(admin, name: str) -> None:
    with admin.connect() as c:
        c.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        )
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def prepare_database(args, admin, name: str, env: dict) -> dict:
    """Seed (or reuse and backfill) the benchmark database; set the demo users' passwords."""
    from dashboard.auth import hash_password
    from dashboard.schema import House, User
    from dashboard.seed import backfill_demo, seed_demo

    info = None if args.reseed else seed_info(admin, name)
    if info and (info.get("houses"), info.get("days")) != (args.houses, args.days):
        info = None
    settings = load_settings(env)
    if info is None:
        print(
            f"Seeding {name}: {args.houses} demo houses x {args.days} days of 15-minute readings", flush=True
        )
        drop_database(admin, name)
        shutil.rmtree(Path(env["DATA_DIR"]), ignore_errors=True)
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(settings)
    try:
        migrate(engine)
        factory = make_session_factory(engine)
        if info is None:
            started = time.perf_counter()
            seed_demo(factory, settings.timezone, houses=args.houses, days=args.days, progress=True)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))  # what autovacuum would have done on a live database
            seconds = time.perf_counter() - started
            info = {"houses": args.houses, "days": args.days, "seed_s": round(seconds),
                    "seeded_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}  # fmt: skip
            with admin.connect() as c:
                c.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(info)}'"))
            info["reused"] = False
            print(f"Seeded in {seconds:.0f} s", flush=True)
        else:
            started = time.perf_counter()
            added = backfill_demo(factory, settings.timezone, progress=False)
            print(f"Reusing {name} (seeded {info['seeded_at']} in {info['seed_s']} s); backfilled {added:,} "
                  f"readings up to now in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
            info["reused"] = True
        with factory() as s:
            for user in s.scalars(select(User)):
                user.password_hash = hash_password(PASSWORD)
            info["tariffs_added"] = ensure_tariffs(s)
            s.commit()
            info["houses_in_db"] = s.scalar(select(func.count()).select_from(House))
            info["readings"] = s.execute(text("SELECT count(*) FROM measurements")).scalar()
            info["rollups"] = dict(
                s.execute(text("SELECT resolution, count(*) FROM energy_rollups GROUP BY resolution")).all()
            )
            info["db_size"] = s.execute(
                text("SELECT pg_size_pretty(pg_database_size(current_database()))")
            ).scalar()
    finally:
        engine.dispose()
    return info


TOU = [(0, 7, 0.10), (7, 23, 0.30), (23, 24, 0.10)]  # as scripts/bench_cost.py


def ensure_tariffs(session) -> int:
    """Give every house a tariff when none has one (a kept database seeded before tariffs existed): even
    houses time-of-use, odd ones flat, so the cost card, Historical's cost and Exports' columns are measured.
    Returns how many were added."""
    from datetime import date

    from dashboard.schema import House
    from dashboard.schema_features import Tariff, TariffPeriod

    if session.scalar(select(func.count()).select_from(Tariff)):
        return 0
    added = 0
    for house_id in session.scalars(select(House.id).order_by(House.id)):
        tou = house_id % 2 == 0
        tariff = Tariff(house_id=house_id, name="Time of use" if tou else "Flat", kind="tou" if tou else "flat",
                        import_price=None if tou else 0.20, export_price=0.05, standing_charge_per_day=0.4,
                        valid_from=date(2020, 1, 1), valid_to=None, created_at=datetime.now(UTC).replace(tzinfo=None))  # fmt: skip
        if tou:
            tariff.periods = [
                TariffPeriod(days="all", start_hour=a, end_hour=b, import_price=p) for a, b, p in TOU
            ]
        session.add(tariff)
        added += 1
    return added


def consumer_house(factory) -> int:
    from dashboard.schema import User

    with factory() as s:
        user = s.scalar(select(User).where(User.username == "consumer"))
        return user.houses[0].id


def train_missing(port: int, factory) -> list[str]:
    """Train the default models the Forecasts page uses where none answers a forecast yet (a kept
    database keeps its models under DATA_DIR). The forecast requests also load them into the forecast
    worker's cache, as in a running deployment."""
    house = consumer_house(factory)
    status, body = Client(port, "").post(
        "/api/v1/auth/login", json.dumps({"username": "admin", "password": PASSWORD}).encode()
    )
    assert status == 200, (status, body)
    client = Client(port, json.loads(body)["access_token"])
    client.conn.timeout = 900  # a training request waits for its job (TRAIN_WAIT_S)
    done = []
    for scope_kind, extra in (("all houses", {}), (f"house {house}", {"house_id": house})):
        for target, product, params in TRAIN:
            payload = json.dumps(params | extra).encode()
            if client.post(f"/aggregator/{target}/forecast/{product}", payload)[0] == 200:
                continue
            started = time.perf_counter()
            status, body = client.post(f"/aggregator/{target}/train/{product}", payload)
            label = f"{target} {product} ({scope_kind})"
            if status != 200:
                print(f"training {label} failed: {status} {body[:300]!r}", flush=True)
                continue
            client.post(f"/aggregator/{target}/forecast/{product}", payload)
            done.append(f"{label} {time.perf_counter() - started:.0f} s")
            print(f"trained {done[-1]}", flush=True)
    return done


@dataclass
class Row:
    page: str
    role: str
    render_s: list[float] = field(default_factory=list)
    toggle_s: list[float] = field(default_factory=list)
    nav_s: list[float] = field(default_factory=list)
    content_s: list[float] = field(default_factory=list)
    callbacks: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    by_trigger: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    points: int = 0
    graphs: int = 0
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)

    @property
    def all_ms(self) -> list[float]:
        return [ms for values in self.callbacks.values() for ms in values]


def component_name(component_id: str) -> str:
    """A component id for the tables; a pattern-matching id ({"type": ..., "index": ...}) as type[*]."""
    if component_id.startswith("{"):
        try:
            return f"{json.loads(component_id).get('type', '?')}[*]"
        except ValueError:
            pass
    return component_id


def output_label(output: str) -> str:
    """A callback's name in the tables: its first graph output (else its first output), +N others."""
    parts = output[2:-2].split("...") if output.startswith("..") and output.endswith("..") else [output]
    if "+".join(parts) == ROUTER:
        return "(page router: layout)"
    main = next((p for p in parts if p.endswith(".figure")), parts[0])
    return main + (f" +{len(parts) - 1}" if len(parts) > 1 else "")


def login(browser, base: str, username: str):
    context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
    context.add_init_script(BENCH_JS)
    page = context.new_page()
    page.goto("/login")
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#nav-logout", timeout=30_000)
    page.close()
    return context


def settle_time(page, timeout_ms: float) -> float:
    """performance.now() when the page first settled (and stayed so for SETTLE_MS)."""
    page.wait_for_function(SETTLED_JS, timeout=timeout_ms)
    return page.evaluate("() => window.__bench.readyAt")


def interact(page, row: Row, timeout_ms: float, limit: int, tabs_only: bool = False) -> None:
    """Click each discovered control once (`tabs_only`: only tabs, on /admin whose other controls change
    data); time from the click to the settled page."""
    from playwright.sync_api import Error as PlaywrightError

    controls = [c for c in page.evaluate(CONTROLS_JS) if c["kind"] == "tab" or not tabs_only][:limit]
    for control in controls:
        try:
            clicked_at = page.evaluate("() => performance.now()")
            if control["kind"] == "radio":
                label = page.locator(f'label[for="{control["id"]}"]')
                target = label.first if label.count() else page.locator(f'[id="{control["id"]}"]')
                target.click(timeout=3000)
            elif control["kind"] == "tab":
                page.locator(f'[data-bench-tab="{control["id"]}"]').click(timeout=3000)
            else:
                dropdown = page.locator(f'[data-bench-dropdown="{control["id"]}"]')
                dropdown.click(timeout=3000)
                options = page.locator('[role="option"]')
                options.first.wait_for(timeout=3000)
                pick = page.evaluate(PICK_OPTION_JS)
                if pick < 0:
                    page.keyboard.press("Escape")
                    continue
                options.nth(pick).click(timeout=3000)
            try:  # Dash sends a control's callbacks at once: none within REQUEST_WITHIN_MS, none at all
                page.wait_for_function(STARTED_AFTER_JS, arg=clicked_at, timeout=REQUEST_WITHIN_MS)
            except PlaywrightError:
                continue  # the control fired no request (client-side only, or a form field read on submit)
            try:
                page.wait_for_function(SETTLED_AFTER_JS, arg=clicked_at, timeout=timeout_ms)
            except PlaywrightError:
                row.timeouts += 1
                continue
            row.toggle_s.append((page.evaluate("() => window.__bench.readyAt") - clicked_at) / 1000)
        except PlaywrightError as exc:
            row.notes.add(f"{control['kind']} click failed: {str(exc).splitlines()[0][:80]}")


def click_and_settle(page, selector: str, timeout_ms: float) -> float:
    """Click (an in-app link), then seconds from the click until the page settled again."""
    clicked_at = page.evaluate("() => performance.now()")
    page.locator(selector).first.click(timeout=5000)
    page.wait_for_function(SETTLED_AFTER_JS, arg=clicked_at, timeout=timeout_ms)
    return (page.evaluate("() => window.__bench.readyAt") - clicked_at) / 1000


def measure(context, path: str, role: str, args) -> Row:
    from playwright.sync_api import Error as PlaywrightError

    row = Row(path, role)
    recording = {"on": True}  # off while the in-app navigation visits another page

    def finished(request):
        if not recording["on"] or "/_dash-update-component" not in request.url.split("?")[0]:
            return
        try:
            payload = request.post_data_json or {}
            output = output_label(payload.get("output", "?"))
            changed = {component_name(p.rsplit(".", 1)[0]) for p in payload.get("changedPropIds") or []}
            trigger = ", ".join(sorted(changed)) or "(initial)"
            timing = request.timing
            response = request.response()
        except (PlaywrightError, ValueError):
            return
        if timing.get("responseEnd", -1) >= 0 and timing.get("requestStart", -1) >= 0:
            ms = timing["responseEnd"] - timing["requestStart"]
            row.callbacks[output].append(ms)
            row.by_trigger[(output, trigger)].append(ms)
        if response is not None:
            row.statuses[response.status] += 1

    def failed(request):
        if recording["on"] and "ERR_ABORTED" not in (request.failure or ""):
            row.errors.append(f"request failed: {request.url} {request.failure}")

    away = "/exports" if path == "/" else "/"
    for _ in range(args.loads):
        page = context.new_page()
        page.on("console", lambda m: row.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: row.errors.append(str(e)))
        page.on("requestfinished", finished)
        page.on("requestfailed", failed)
        recording["on"] = True
        try:
            page.goto(path, wait_until="commit")
            row.render_s.append(settle_time(page, args.timeout * 1000) / 1000)
            row.content_s.append(page.evaluate("() => window.__bench.contentAt") / 1000)
            points, graphs = page.evaluate(MAX_POINTS_JS)
            row.points = max(row.points, points)
            row.graphs = max(row.graphs, graphs)
            if page.locator("#forbidden").count():
                row.notes.add("forbidden")
            if args.interact:  # /admin: its tabs (Tariffs among them) only
                interact(page, row, args.timeout * 1000, args.max_interactions, tabs_only=path == "/admin")
                row.points = max(row.points, page.evaluate(MAX_POINTS_JS)[0])
            # in-app navigation (no reload, plotly.js already parsed): to another page and back by the navbar
            recording["on"] = False
            click_and_settle(page, f'a.nav-link[href="{away}"]', args.timeout * 1000)
            recording["on"] = True
            row.nav_s.append(click_and_settle(page, f'a.nav-link[href="{path}"]', args.timeout * 1000))
            row.points = max(row.points, page.evaluate(MAX_POINTS_JS)[0])
        except PlaywrightError as exc:
            row.timeouts += 1
            row.notes.add(str(exc).splitlines()[0][:80])
        finally:
            page.close()
            recording["on"] = True
    return row


def fmt_pair(values: list[float], scale: float, digits: int) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * scale:.{digits}f} / {pct(values, 0.95) * scale:.{digits}f}"


def table(rows: list[Row]) -> tuple[list[str], list[str]]:
    """Markdown lines and the list of misses."""
    lines = [
        "| page | role | layout shown p50 (s) | load p50 / p95 (s) | in-app nav p50 / p95 (s) "
        "| toggle p50 / p95 (s) | callbacks | callback p50 / p95 (ms) | slowest callback (p95 ms, count) "
        "| graphs | max points per trace | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    missed = []
    for row in rows:
        flags = []
        if not row.render_s or pct(row.render_s, 0.95) > TARGET_LOAD_S:
            flags.append(f"load > {TARGET_LOAD_S:g} s")
        if row.nav_s and pct(row.nav_s, 0.95) > TARGET_PAGE_S:
            flags.append(f"nav > {TARGET_PAGE_S:g} s")
        if row.toggle_s and pct(row.toggle_s, 0.95) > TARGET_PAGE_S:
            flags.append(f"toggle > {TARGET_PAGE_S:g} s")
        if row.all_ms and pct(row.all_ms, 0.95) > TARGET_CALLBACK_MS:
            flags.append(f"callback p95 > {TARGET_CALLBACK_MS} ms")
        if row.points > TARGET_POINTS:
            flags.append("> 5,000 points")
        if row.timeouts:
            flags.append(f"{row.timeouts} timeouts")
        bad = sum(n for status, n in row.statuses.items() if status >= 400)
        if bad:
            flags.append(f"{bad} HTTP errors")
        worst = "-"
        if row.callbacks:
            label, values = max(row.callbacks.items(), key=lambda kv: pct(kv[1], 0.95))
            worst = f"`{label}` ({pct(values, 0.95):.0f}, {len(values)})"
        status = "MISSED: " + ", ".join(flags) if flags else "ok"
        if row.errors:
            status += f"; {len(row.errors)} console errors"
        if "forbidden" in row.notes:
            status += "; forbidden"
        if flags:
            missed.append(f"{row.page} as {row.role}: {', '.join(flags)}")
        lines.append(
            f"| `{row.page}` | {row.role} | {statistics.median(row.content_s) if row.content_s else 0:.2f} "
            f"| {fmt_pair(row.render_s, 1, 2)} | {fmt_pair(row.nav_s, 1, 2)} "
            f"| {fmt_pair(row.toggle_s, 1, 2)} "
            f"| {len(row.all_ms)} | {fmt_pair(row.all_ms, 1, 0)} | {worst} | {row.graphs} | {row.points:,} "
            f"| {status} |"
        )
    return lines, missed


def callback_table(rows: list[Row]) -> list[str]:
    """Every callback per page, role and trigger (the inputs that changed; "(initial)" on page load)."""
    lines = [
        "| page | role | callback | triggered by | count | p50 / p95 (ms) | max (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for (label, trigger), values in sorted(row.by_trigger.items()):
            lines.append(f"| `{row.page}` | {row.role} | `{label}` | {trigger} | {len(values)} "
                         f"| {fmt_pair(values, 1, 0)} | {max(values):.0f} |")  # fmt: skip
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--houses", type=int, default=200)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--reseed", action="store_true", help="drop the kept database and seed it again")
    ap.add_argument("--seed-only", action="store_true", help="prepare the database, then stop")
    ap.add_argument("--loads", type=int, default=5, help="fresh page loads per page and role")
    ap.add_argument("--no-interact", dest="interact", action="store_false", help="page loads only")
    ap.add_argument("--max-interactions", type=int, default=8, help="controls clicked per page load")
    ap.add_argument("--pages", nargs="*", default=PAGES)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--forecast-workers", type=int, default=2, help="RQ forecast workers (docker-compose: 2)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds to wait for a page to settle")
    ap.add_argument(
        "--no-train",
        dest="train",
        action="store_false",
        help="do not train the Forecasts page's default models when missing",
    )
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up (servers, workers) on kill

    name = db_name_for(args.houses, args.days)
    db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    env = os.environ | {
        "DATABASE_URL": db_url,
        "DATA_DIR": str(ROOT / "var" / "bench-ui" / name),  # kept with the database (models, exports)
        "DEMO_DATA": "0",
        "SECRET_KEY": "bench-" + "k" * 40,
        "REDIS_URL": REDIS_URL,  # RQ training and forecast workers, as in docker-compose
        "TRAIN_WAIT_S": "600",
        "GRID_CO2_G_PER_KWH": "350",  # CO2 beside the cost (the cost card, Historical, Exports)
    }
    env.pop("S3_ENDPOINT", None)  # models in the local object store under DATA_DIR, kept with the database
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    wall = time.perf_counter()
    info = prepare_database(args, admin, name, env)
    prepared_s = time.perf_counter() - wall
    rollups = ", ".join(f"{res} {n:,}" for res, n in sorted(info["rollups"].items()))
    data_line = (f"data: database {name} ({info['db_size']}), {info['houses_in_db']} demo houses x {args.days} days "
                 f"of 15-minute readings: {info['readings']:,} readings; rollup rows {rollups}; seeded "
                 f"{info['seeded_at']} in {info['seed_s']:,} s")  # fmt: skip
    print(data_line, flush=True)
    if args.seed_only:
        return 0
    if not Path(CHROMIUM).exists():
        print("Debian chromium is missing: `make browser` installs it", file=sys.stderr)
        return 2

    import redis as redis_lib
    from playwright.sync_api import sync_playwright

    Path(env["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    redis = redis_lib.Redis.from_url(REDIS_URL)
    redis.flushdb()
    port = free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "--threads", str(args.threads), "-b",
         f"127.0.0.1:{port}", "--timeout", "120", "--log-level", "warning", "wsgi:server"], cwd=ROOT, env=env,
    )]  # fmt: skip
    gunicorn = procs[0]
    rq = str(Path(sys.executable).parent / "rq")
    kinds = ["training"] + ["forecast"] * args.forecast_workers  # the web workers never load a model
    for kind in kinds:
        procs.append(subprocess.Popen(worker_command(kind, REDIS_URL, rq), cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
    trained: list[str] = []
    rows: list[Row] = []
    try:
        wait_http(port)
        wait_workers(redis, len(kinds))
        if args.train:
            engine = make_engine(load_settings(env))
            try:
                trained = train_missing(port, make_session_factory(engine))
            finally:
                engine.dispose()
        bench_started = time.perf_counter()
        load_before = os.getloadavg()[0]
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for username, role in ROLES.items():
                    paths = [
                        path
                        for path in args.pages
                        if (path in ADMIN_PAGES if role == "admin" else path != "/admin")
                    ]
                    if not paths:
                        continue
                    context = login(browser, base, username)
                    for path in paths:
                        row = measure(context, path, role, args)
                        rows.append(row)
                        print(f"{path} as {role}: load {fmt_pair(row.render_s, 1, 2)} s, "
                              f"nav {fmt_pair(row.nav_s, 1, 2)} s, toggle {fmt_pair(row.toggle_s, 1, 2)} s, "
                              f"{len(row.all_ms)} callbacks {fmt_pair(row.all_ms, 1, 0)} ms, "
                              f"{row.points:,} points", flush=True)  # fmt: skip
                    context.close()
            finally:
                browser.close()
        bench_s = time.perf_counter() - bench_started
        load_after = os.getloadavg()[0]
        rss = [rss_mb(pid) for pid in worker_pids(gunicorn.pid)]
        forecast_rss = [rss_mb(proc.pid) for proc in procs[2:]]
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.flushdb()

    lines, missed = table(rows)
    if max(rss, default=0) >= TARGET_RSS_MB:
        missed.append(f"gunicorn worker RSS {max(rss):.0f} MB")
    today = time.strftime("%Y-%m-%d")
    print(f"\n{today}, {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}; gunicorn "
          f"-w {args.workers} --threads {args.threads}, {args.forecast_workers} RQ forecast workers; {args.loads} "
          f"loads per page and role"
          f"{', with interactions' if args.interact else ''}; load average (1 min) {load_before:.1f} before, "
          f"{load_after:.1f} after")  # fmt: skip
    print(data_line)
    print(f"wall time: database ready in {prepared_s:.0f} s ({'reused' if info['reused'] else 'seeded'}), "
          f"benchmark {bench_s:.0f} s" + (f"; trained first: {'; '.join(trained)}" if trained else ""))  # fmt: skip
    print(f"gunicorn worker RSS after the run: {', '.join(f'{v:.0f}' for v in rss)} MB (target < {TARGET_RSS_MB}); "
          f"forecast workers {', '.join(f'{v:.0f}' for v in forecast_rss)} MB\n")  # fmt: skip
    print("\n".join(lines))
    print()
    print("\n".join(callback_table(rows)))
    errors = [(row.page, row.role, e) for row in rows for e in row.errors]
    notes = [(row.page, row.role, n) for row in rows for n in sorted(row.notes - {"forbidden"})]
    for page, role, message in (errors + notes)[:20]:
        print(f"note: {page} as {role}: {message[:200]}")
    if missed:
        print("\nMISSED targets:\n" + "\n".join(f"  MISSED {m}" for m in missed))
        return 1 if args.strict else 0
    print("\nAll targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
