"""Importable job functions for the job-queue tests (RQ workers resolve jobs by dotted path)."""

import time
from pathlib import Path

from dashboard.jobqueue import report_progress


def add(a, b):
    return a + b


def always_fails():
    raise ValueError("the data is not there yet")


def fails_until_third_attempt(counter_file: str):
    path = Path(counter_file)
    attempts = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempts))
    if attempts < 3:
        raise RuntimeError(f"attempt {attempts} failed")
    return attempts


def slow_with_progress(steps: int, delay_s: float):
    for i in range(steps):
        report_progress((i + 1) / steps, f"step {i + 1} of {steps}")
        time.sleep(delay_s)
    return "done"
