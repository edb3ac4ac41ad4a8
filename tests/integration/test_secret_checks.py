"""Start-up refuses unsafe keys outside the embedded demo: a short SECRET_KEY, a malformed
MODEL_ENCRYPTION_KEY (run as the real processes: `python app.py` and `gunicorn wsgi:server`)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.config import load_settings
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
GENERATE = "secrets.token_urlsafe(48)"


def start(command: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = os.environ | {"DATA_DIR": str(tmp_path), "PORT": "1", "SECRET_KEY": TEST_SECRET} | env
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "command", [[sys.executable, "app.py"], [sys.executable, "-m", "gunicorn", "-b", "127.0.0.1:1", "wsgi:server"]],
    ids=["app.py", "gunicorn"],
)  # fmt: skip
def test_a_short_secret_key_refuses_to_start_on_postgresql(command, pg_url, tmp_path):
    done = start(command, tmp_path, DATABASE_URL=pg_url, SECRET_KEY="x" * 31)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "SECRET_KEY is 31 bytes" in output and "at least 32" in output and GENERATE in output


@pytest.mark.parametrize("command", [["app.py"], ["-m", "dashboard", "init-db"]], ids=["app.py", "cli"])
def test_app_py_and_the_cli_say_what_to_do_without_a_traceback(command, tmp_path):
    # SQLite, but without demo data: not the embedded demo either
    done = start([sys.executable, *command], tmp_path, SECRET_KEY="x", DEMO_DATA="0")
    assert done.returncode != 0
    assert done.stderr.startswith("Configuration error: SECRET_KEY is 1 bytes") and GENERATE in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "aggregator.db").exists()  # refused before touching the database


@pytest.mark.parametrize("key", ["abc", base64.b64encode(b"16 bytes only!!!").decode(), "not base64 !" * 4])
def test_a_malformed_model_encryption_key_refuses_to_start(key, tmp_path):
    done = start([sys.executable, "app.py"], tmp_path, MODEL_ENCRYPTION_KEY=key, DEMO_DATA="0")
    assert done.returncode != 0
    assert "MODEL_ENCRYPTION_KEY must be 32 bytes" in done.stderr and "base64" in done.stderr


def test_only_the_embedded_demo_on_loopback_tolerates_a_short_secret(tmp_path, caplog):
    demo = {"DATA_DIR": str(tmp_path), "SECRET_KEY": "short"}
    assert load_settings(demo).secret_key == "short"  # SQLite, demo data, 127.0.0.1: a warning
    assert "SECRET_KEY is 5 bytes" in caplog.text
    for other in ({"HOST": "0.0.0.0"}, {"DEMO_DATA": "0"}, {"DATABASE_URL": "postgresql://u@h/db"}):
        with pytest.raises(ValueError, match="SECRET_KEY is 5 bytes"):
            load_settings(demo | other)
    # left unset, the embedded secret is generated long enough
    assert len(load_settings({"DATA_DIR": str(tmp_path / "fresh")}).secret_key) >= 32
    good = base64.b64encode(os.urandom(32)).decode()
    assert load_settings(demo | {"MODEL_ENCRYPTION_KEY": good}).model_encryption_key == good
