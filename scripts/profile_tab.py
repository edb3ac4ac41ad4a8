"""Where a fresh tab's time goes: open a page N times in a fresh tab of Debian chromium against the bench
server (gunicorn + RQ forecast workers on a kept bench-ui database) with the DevTools CPU profiler on, and
print per load the settle time (as `make bench-ui` measures it), a timeline (the scripts' and callbacks'
requests, plotly.js evaluated, each Plotly.react with its trace count) and the main thread's self time by
script (plotly.js, dash-renderer, ...). `--uncached` empties the forecast cache before each load.

    .venv/bin/python scripts/profile_tab.py --houses 10 --days 30 --path /forecasts --role consumer

Needs a database seeded by `scripts/bench_ui.py` with the same --houses/--days (its models trained)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections import defaultdict

import bench_ui as b

# Each Plotly.react / newPlot call in window.__marks: the graph, its traces, when it started and how long
# until its promise resolved ("done"); and when plotly.js itself was evaluated ("plotly loaded").
MARKS_JS = """
(() => {
  window.__marks = [];
  let real;
  const wrap = (P) => {
    for (const fn of ['react', 'newPlot']) {
      const orig = P[fn];
      P[fn] = function (gd, ...rest) {
        const t0 = performance.now();
        const out = orig.call(this, gd, ...rest);
        const n = (gd && gd.data) ? gd.data.length : '?';
        Promise.resolve(out).then(() => window.__marks.push(
          `${fn}(${(gd.id || (gd.parentElement && gd.parentElement.id) || '?').slice(0, 22)}, ${n} traces) `
          + `@${t0.toFixed(0)} done ${(performance.now() - t0).toFixed(0)}`));
        return out;
      };
    }
  };
  Object.defineProperty(window, 'Plotly', {
    configurable: true,
    get() { return real; },
    set(v) { real = v; window.__marks.push(`plotly loaded @${performance.now().toFixed(0)}`); wrap(v); },
  });
})();
"""


RESOURCES_JS = """() => performance.getEntriesByType('resource')
  .filter((r) => /async-|plotly|_dash-update|_dash-layout|_dash-dependencies|dash_renderer|\\.css/.test(r.name))
  .map((r) => `${r.name.split('/').pop().split('?')[0].slice(0, 24)} ${r.startTime.toFixed(0)}-${r.responseEnd.toFixed(0)}`)"""


def self_time_by_script(profile: dict) -> dict[str, float]:
    nodes = {n["id"]: n for n in profile["nodes"]}
    times = profile.get("timeDeltas") or []
    out: dict[str, float] = defaultdict(float)
    for sample, dt in zip(profile.get("samples") or [], times, strict=False):
        frame = nodes[sample]["callFrame"]
        url = frame.get("url") or f"({frame.get('functionName') or 'program'})"
        name = url.rsplit("/", 1)[-1].split("?")[0] or url
        out[name] += dt / 1000
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--houses", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--path", default="/forecasts")
    ap.add_argument("--role", default="consumer")
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--uncached", action="store_true", help="empty the forecast cache before each load")
    args = ap.parse_args()
    name = b.db_name_for(args.houses, args.days)
    env = os.environ | {
        "DATABASE_URL": b.PG_ADMIN.rsplit("/", 1)[0] + "/" + name,
        "DATA_DIR": str(b.ROOT / "var" / "bench-ui" / name),
        "DEMO_DATA": "0", "SECRET_KEY": "bench-" + "k" * 40, "REDIS_URL": b.REDIS_URL, "TRAIN_WAIT_S": "600",
    }  # fmt: skip
    env.pop("S3_ENDPOINT", None)
    import redis as redis_lib
    from playwright.sync_api import sync_playwright

    redis = redis_lib.Redis.from_url(b.REDIS_URL)
    redis.flushdb()
    port = b.free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                "2",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "wsgi:server",
            ],
            cwd=b.ROOT,
            env=env,
        )
    ]
    rq = str(b.Path(sys.executable).parent / "rq")
    for kind in ("forecast", "forecast"):
        procs.append(
            subprocess.Popen(
                b.worker_command(kind, b.REDIS_URL, rq),
                cwd=b.ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        b.wait_http(port)
        b.wait_workers(redis, 2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=b.CHROMIUM, args=b.CHROMIUM_ARGS)
            context = b.login(browser, f"http://127.0.0.1:{port}", args.role)
            context.add_init_script(MARKS_JS)
            settles, totals = [], defaultdict(list)
            for i in range(args.loads + 1):  # the first load warms the server's caches; not counted
                if args.uncached:
                    for key in redis.scan_iter("aggregator:forecast:*"):
                        redis.delete(key)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 200})
                cdp.send("Profiler.start")
                page.goto(args.path, wait_until="commit")
                settled = b.settle_time(page, 30_000) / 1000
                content = page.evaluate("() => window.__bench.contentAt") / 1000
                marks = page.evaluate("() => (window.__marks || [])")
                marks += page.evaluate(RESOURCES_JS)
                profile = cdp.send("Profiler.stop")["profile"]
                page.close()
                if i == 0:  # the server's forecast cache was flushed: this load waits for forecast jobs
                    print(
                        f"first load (forecast jobs): settled {settled:.2f} s; "
                        + "; ".join(m for m in marks if m.startswith("react"))
                    )
                    continue
                settles.append(settled)
                by = self_time_by_script(profile)
                for k, v in by.items():
                    totals[k].append(v)
                top = sorted(by.items(), key=lambda kv: -kv[1])[:6]
                print(
                    f"load {i}: settled {settled:.2f} s, content {content:.2f} s; "
                    + ", ".join(f"{k} {v:.0f}" for k, v in top)
                    + "\n    "
                    + "\n    ".join(
                        sorted(
                            marks,
                            key=lambda m: (
                                float(m.split("@")[-1].split()[0].split("-")[0])
                                if "@" in m
                                else float(m.split()[-1].split("-")[0])
                            ),
                        )
                    )
                )
            print(f"settled p50 {statistics.median(settles):.2f} s, max {max(settles):.2f} s")
            for k, v in sorted(totals.items(), key=lambda kv: -sum(kv[1]))[:12]:
                print(f"  {k:40s} {statistics.median(v):7.0f} ms (median self time)")
            browser.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
