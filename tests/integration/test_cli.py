"""`python -m dashboard ...` against the real PostgreSQL, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.schema import ApiKey, EnergyRollup, Measurement, User
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


def cli(pg_url, tmp_path, *args, check=True):
    env = os.environ | {
        "DATABASE_URL": pg_url,
        "DATA_DIR": str(tmp_path),
        "DEMO_DATA": "0",
        "SECRET_KEY": TEST_SECRET,
    }
    result = subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    if check:
        assert result.returncode == 0, result.stderr
    return result


def count(factory, model):
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_init_db_and_create_user_and_api_key(app, pg_url, tmp_path, factory):
    assert "Database ready" in cli(pg_url, tmp_path, "init-db").stdout
    out = cli(
        pg_url,
        tmp_path,
        "create-user",
        "--username",
        "ops",
        "--password",
        "long-password",
        "--role",
        "analyst",
    )
    assert "Created analyst 'ops'" in out.stdout
    bad = cli(
        pg_url,
        tmp_path,
        "create-user",
        "--username",
        "x",
        "--password",
        "short",
        "--role",
        "admin",
        check=False,
    )
    assert bad.returncode == 2 and "password" in bad.stderr
    key = cli(pg_url, tmp_path, "create-api-key", "--name", "partner").stdout.strip().splitlines()[-1]
    assert key.startswith("agk_")
    with factory() as s:
        assert s.scalar(select(User.role).where(User.username == "ops")) == "analyst"
        assert s.scalar(select(ApiKey.key_hash)) != key


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("device_id,timestamp,power_w,energy_wh,voltage_v\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("n_rows", [50, 1500])  # below and above the COPY threshold
def test_import_csv_is_idempotent_and_feeds_rollups(world, pg_url, tmp_path, factory, n_rows):
    rows = [
        f"H1-MAIN,2026-02-{1 + i // 96:02d}T{(i % 96) // 4:02d}:{15 * (i % 4):02d}:00Z,1000,250,230"
        for i in range(n_rows)
    ]
    path = write_csv(tmp_path / "readings.csv", rows)
    out = cli(pg_url, tmp_path, "import-csv", str(path))
    assert f"Imported {n_rows} readings (0 already stored)" in out.stdout
    again = cli(pg_url, tmp_path, "import-csv", str(path))
    assert f"Imported 0 readings ({n_rows} already stored)" in again.stdout
    assert count(factory, Measurement) == n_rows
    with factory() as s:
        total = s.scalar(
            select(func.sum(EnergyRollup.consumption_wh)).where(
                EnergyRollup.resolution == "day", EnergyRollup.entity_kind == "house"
            )
        )
    assert total == pytest.approx(250.0 * n_rows)


def test_bad_csv_changes_nothing_and_names_the_lines(world, pg_url, tmp_path, factory):
    rows = [
        "H1-MAIN,2026-02-01T00:00:00Z,1000,250,230",
        "H1-MAIN,2026-02-01T00:15:00,1000,250,230",  # naive timestamp
        "H1-MAIN,2026-02-01T00:30:00Z,lots,250,230",  # not a number
        "H1-MAIN,2026-02-01T00:45:00Z,1000,250,2300",  # voltage out of range
    ]
    result = cli(pg_url, tmp_path, "import-csv", str(write_csv(tmp_path / "bad.csv", rows)), check=False)
    assert result.returncode == 2
    assert "'line': 3" in result.stderr and "'line': 4" in result.stderr and "'line': 5" in result.stderr
    unknown = write_csv(
        tmp_path / "unknown.csv",
        ["H1-MAIN,2026-02-01T00:00:00Z,1,1,230", "NOPE,2026-02-01T00:00:00Z,1,1,230"],
    )
    assert cli(pg_url, tmp_path, "import-csv", str(unknown), check=False).returncode == 2
    assert count(factory, Measurement) == 0
    assert count(factory, EnergyRollup) == 0


def test_backtest_prints_per_lead_errors_beside_the_baselines(app, pg_url, tmp_path, factory):
    from datetime import UTC, datetime

    from dashboard.seed import seed_demo

    seed_demo(
        factory, "Europe/Athens", houses=4, days=40, end=datetime(2026, 6, 20, tzinfo=UTC), progress=False
    )
    out = cli(pg_url, tmp_path, "backtest", "--target", "consumption", "--product", "short-term", "--horizon", "8",
              "--origins", "3", "--as-of", "2026-06-20T00:00:00Z", "--models", "xgboost:direct").stdout  # fmt: skip
    assert "xgboost direct: MAPE" in out and "weekly naive" in out
    leads = [line.split()[0] for line in out.splitlines() if line[:4].strip().isdigit()]
    assert leads == [str(i) for i in range(1, 9)]
