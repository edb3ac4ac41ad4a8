"""How long a household waits for its first forecast (issue 15: bar 3 minutes on 5 weeks of data).

Embedded mode, as `make run` serves it: a fresh SQLite database seeded with the demo (20 houses, DAYS
days of 15-minute readings), the in-process job queue. The prosumer (houses 2 and 3, with PV) asks for
the Forecasts page's default view of their first house, consumption and production, as the page does:
the first request queues both trainings and answers the spec's 500 with the training's progress; the
script asks again every POLL_S until both answer 200, and prints the wait and the progress it saw.

    .venv/bin/python scripts/bench_autoforecast.py [--days 35]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

POLL_S = 2.0
TARGETS = ("consumption", "production")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=35, help="days of demo history (default 35: 5 weeks)")
    args = parser.parse_args()

    from flask_jwt_extended import create_access_token
    from sqlalchemy import select

    from app import create_app
    from dashboard.config import load_settings
    from dashboard.schema import User
    from dashboard.seed import seed_demo

    data_dir = Path(tempfile.mkdtemp(prefix="bench-autoforecast-"))
    settings = load_settings({"DATA_DIR": str(data_dir), "DEMO_DATA": "0", "SECRET_KEY": "x" * 48})
    app = create_app(settings)
    services = app.server.extensions["aggregator"]
    began = time.perf_counter()
    seed_demo(services.session_factory, settings.timezone, days=args.days)
    print(f"seeded 20 houses x {args.days} days in {time.perf_counter() - began:.0f} s", flush=True)
    with services.session_factory() as s:
        user = s.scalar(select(User).where(User.username == "prosumer"))
        house = min(h.id for h in user.houses)
        user_id = user.id
    with app.server.app_context():
        headers = {"Authorization": f"Bearer {create_access_token(identity=str(user_id))}"}
    client = app.server.test_client()

    started = time.perf_counter()
    done: dict[str, float] = {}
    seen: list[str] = []
    while len(done) < len(TARGETS) and time.perf_counter() - started < 900:
        for target in TARGETS:
            if target in done:
                continue
            r = client.post(f"/aggregator/{target}/forecast/next-24-hours", query_string={"house_id": house},
                            headers=headers)  # fmt: skip
            body = r.get_json()
            if r.status_code == 200:
                done[target] = time.perf_counter() - started
                print(
                    f"{target}: forecast after {done[target]:.1f} s ({len(body['forecast'])} rows)",
                    flush=True,
                )
            elif "training" in body:
                t = body["training"]
                line = f"{time.perf_counter() - started:6.1f} s {target}: {t['status']} {100 * t['progress']:.0f} % {t['message'] or ''}"
                if not seen or seen[-1].split(" s ", 1)[1] != line.split(" s ", 1)[1]:
                    print(line, flush=True)
                seen.append(line)
            else:
                print(f"{target}: {r.status_code} {body}", flush=True)
                return 1
        time.sleep(POLL_S)
    total = max(done.values()) if len(done) == len(TARGETS) else float("nan")
    print(f"both forecasts of house {house} ({args.days} days of data) after {total:.1f} s")
    return 0 if len(done) == len(TARGETS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
