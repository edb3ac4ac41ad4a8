"""Forecast accuracy on real and demo series beside the baselines (`make bench-accuracy`, issue 11).

Rolling-origin backtests through `models/` (models/backtest.py): one `model=auto` fit before each test
period, forecasts from every origin in it, scored with the baselines on the same points. Each case runs
in a fresh process, so its peak RSS is its own. Prints a Markdown table for docs/benchmarks.md.

- Victoria 2014 (models/realdata.py): next-24-hours weather-free and with ex-post temperature;
  short-term horizon 8 trained on everything before the test (the protocol) and on the product's
  90-day window.
- The demo's 20-house aggregate (consumption both products, production next-24-hours) and single demo
  houses: the last 28 days, origins at local midnight (next-24-hours) or every 6 hours (short-term).

`--quick` runs the Victoria cases on the first 14 test days only.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEMO_END = "2026-11-01"
HOUSES = 5


def _demo(target: str, house: int | None):
    import pandas as pd

    from dashboard import demo

    plan = demo.plan_demo(20)
    end = pd.Timestamp(DEMO_END, tz="UTC")
    start = end - pd.Timedelta(days=365)
    frame = pd.concat(demo.generate_readings(plan, start, end))
    part = frame["device_key"].str.split("-").str[1]
    if house is not None:
        mine = frame["device_key"].str.startswith(f"H{house:03d}-")
        frame, part = frame[mine], part[mine]
    rows = frame[part == "MAIN"] if target == "consumption" else frame[part.isin(["PV", "INV"])]
    y = rows.groupby("timestamp")["energy_wh"].sum() / 1000
    weather = demo.generate_weather(plan, start, end).set_index("time")
    return y, weather, {"timezone": "Europe/Athens", "country": "GR", "latitude": plan.latitude,
                        "longitude": plan.longitude}  # fmt: skip


def run(case: dict, queue) -> None:
    warnings.simplefilter("ignore")
    import pandas as pd

    from models import ForecastConfig
    from models.backtest import evaluate
    from models.realdata import VIC_PLACE, load_vic, vic_product

    product, horizon = case["product"], 24 if case["product"] == "next-24-hours" else 8
    if case["data"] == "victoria":
        demand, weather = load_vic()
        y, origins = vic_product(demand, product)
        if case.get("quick"):
            origins = origins[: len(origins) // 4]
        place = VIC_PLACE
    else:
        y, weather, place = _demo(case["target"], case.get("house"))
        end = pd.Timestamp(DEMO_END, tz="Europe/Athens").tz_convert("UTC")
        every = "1D" if product == "next-24-hours" else "6h"
        origins = pd.date_range(end - pd.Timedelta(days=28), end - pd.Timedelta(days=1), freq=every)
        if product == "next-24-hours":
            y = y.resample("1h").sum()
    selection = "rmse" if "house" in case else "mae"  # as the service trains a single home
    cfg = ForecastConfig(
        product=product, horizon=horizon, target=case["target"], selection=selection, **place
    )
    started = time.perf_counter()
    result = evaluate(y, cfg, origins, exog=weather if case["weather"] else None,
                      train_days=case.get("train_days"))  # fmt: skip
    result["wall_s"] = time.perf_counter() - started
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["points"] = int(len(origins) * horizon)
    queue.put(result)


def cases(quick: bool) -> list[dict]:
    vic = [
        {"data": "victoria", "product": "next-24-hours", "target": "consumption", "weather": False},
        {"data": "victoria", "product": "next-24-hours", "target": "consumption", "weather": True},
        {"data": "victoria", "product": "short-term", "target": "consumption", "weather": False},
        {
            "data": "victoria",
            "product": "short-term",
            "target": "consumption",
            "weather": False,
            "train_days": 90,
        },
    ]
    if quick:
        return [c | {"quick": True} for c in vic]
    demo = [
        {"data": "demo aggregate", "product": "next-24-hours", "target": "consumption", "weather": True},
        {"data": "demo aggregate", "product": "short-term", "target": "consumption", "weather": False,
         "train_days": 90},
        {"data": "demo aggregate", "product": "next-24-hours", "target": "production", "weather": True},
    ]  # fmt: skip
    houses = [{"data": f"demo house {h}", "house": h, "product": "next-24-hours", "target": "consumption",
               "weather": False} for h in range(1, HOUSES + 1)]  # fmt: skip
    return vic + demo + houses


def _pct(value) -> str:
    return "n/a" if value != value else f"{value * 100:.2f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Victoria only, the first 14 test days")
    args = parser.parse_args()
    print("| data | product | weather | trained on | served (auto) | error | MAE | skill vs persistence | "
          "vs weekly naive | vs level-adj. weekly | vs yesterday | vs 7-day mean | 90 % band coverage | "
          "train s (CPU s) | peak RSS MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ctx = mp.get_context("spawn")
    for case in cases(args.quick):
        queue = ctx.Queue()
        proc = ctx.Process(target=run, args=(case, queue))
        proc.start()
        r = queue.get()
        proc.join()
        if case["target"] == "production":
            error = f"NMAE {_pct(r['nmae'])}"
        elif case["data"].startswith("demo house"):
            error = f"CV(RMSE) {_pct(r['cv_rmse'])} (7-day mean {_pct(r['cv_rmse_mean_7d'])})"
        else:
            error = f"MAPE {_pct(r['mape'])} (weekly naive {_pct(r['mape_weekly_naive'])}, level-adj. " \
                    f"{_pct(r['mape_weekly_naive_adjusted'])})"  # fmt: skip
        trained = f"{case['train_days']} days" if case.get("train_days") else "all before the test"
        weather = "ex-post" if case["weather"] else "none"
        skills = " | ".join(f"{r[f'skill_vs_{b}']:+.1%}" for b in ("persistence", "weekly_naive",
                            "weekly_naive_adjusted", "yesterday", "mean_7d"))  # fmt: skip
        print(f"| {case['data']} | {case['product']} | {weather} | {trained} | {r['chosen']} | {error} | "
              f"{r['mae']:.4g} | {skills} | "
              f"{_pct(r['coverage'])} | {r['train_seconds']:.1f} ({r['train_cpu_seconds']:.1f}) | {r['peak_mb']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
