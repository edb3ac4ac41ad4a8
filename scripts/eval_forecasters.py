"""Forecaster skill, training time, prediction latency and peak memory on the demo aggregate.

`.venv/bin/python scripts/eval_forecasters.py` generates one year of the 20-house demo (no database),
fits each model/strategy on its hold-out scheme (models/base.py) and prints a Markdown table. Each fit
runs in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CASES = [
    ("consumption", "next-24-hours", 24, "xgboost", "direct", True),
    ("consumption", "next-24-hours", 24, "xgboost", "direct", False),
    ("consumption", "next-24-hours", 24, "xgboost", "recursive", True),
    ("consumption", "next-24-hours", 24, "sarima", "direct", False),
    ("consumption", "short-term", 8, "xgboost", "direct", True),
    ("consumption", "short-term", 8, "xgboost", "recursive", True),
    ("consumption", "short-term", 8, "sarima", "direct", False),
    ("production", "next-24-hours", 24, "xgboost", "direct", True),
]


def series():
    import pandas as pd

    from dashboard import demo

    plan = demo.plan_demo(20)
    end = pd.Timestamp("2026-11-01", tz="UTC")
    frame = pd.concat(demo.generate_readings(plan, end - pd.Timedelta(days=365), end))
    part = frame["device_key"].str.split("-").str[1]
    cons = frame[part == "MAIN"].groupby("timestamp")["energy_wh"].sum() / 1000
    prod = frame[part.isin(["PV", "INV"])].groupby("timestamp")["energy_wh"].sum() / 1000
    weather = demo.generate_weather(plan, end - pd.Timedelta(days=365), end).set_index("time")
    return {"consumption": cons, "production": prod}, weather


def run(case, queue):
    warnings.simplefilter("ignore")

    from models import ForecastConfig, make_forecaster

    target, product, horizon, model, strategy, with_weather = case
    data, weather = series()
    y = data[target]
    y = y.resample("1h").sum() if product == "next-24-hours" else y.iloc[-90 * 96 :]
    cfg = ForecastConfig(product=product, horizon=horizon, model=model, strategy=strategy, target=target)
    f = make_forecaster(cfg)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    m = f.fit(y, exog=weather if with_weather else None).metrics
    fit_s = time.perf_counter() - started
    latencies = []
    for origin in y.index[-10 * horizon :: horizon][:10]:
        t = time.perf_counter()
        f.predict(y, origin, weather if with_weather else None)
        latencies.append((time.perf_counter() - t) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"case": case, "fit_s": fit_s, "predict_ms": sorted(latencies)[len(latencies) // 2],
               "peak_mb": peak / 1024, "data_mb": before / 1024, "metrics": m})  # fmt: skip


def main() -> None:
    print("| target | product | model | strategy | weather | MAPE | weekly naive | persistence | better than weekly | "
          "coverage (90 %) | fit s | predict ms (p50) | peak RSS MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ctx = mp.get_context("spawn")
    for case in CASES:
        queue = ctx.Queue()
        proc = ctx.Process(target=run, args=(case, queue))
        proc.start()
        r = queue.get()
        proc.join()
        m = r["metrics"]
        target, product, horizon, model, strategy, with_weather = case
        print(f"| {target} | {product} (h={horizon}) | {model} | {strategy} | {'yes' if with_weather else 'no'} | "
              f"{m['mape']:.3f} | {m['mape_weekly_naive']:.3f} | {m['mape_persistence']:.3f} | "
              f"{1 - m['mape'] / m['mape_weekly_naive']:.0%} | {m['coverage']:.3f} | {r['fit_s']:.1f} | "
              f"{r['predict_ms']:.0f} | {r['peak_mb']:.0f} |", flush=True)  # fmt: skip
    print(json.dumps({"note": "peak RSS includes generating one year of demo data in the same process"}))


if __name__ == "__main__":
    main()
