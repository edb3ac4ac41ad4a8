"""The README's role table is generated from the code; this keeps the two equal."""

from pathlib import Path

from dashboard.config import load_settings
from dashboard.policy import role_table_markdown
from dashboard.server import create_server

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_role_table_matches_the_role_matrix(tmp_path):
    table = role_table_markdown(create_server(load_settings({"DATA_DIR": str(tmp_path), "DEMO_DATA": "0"})))
    assert table in README.read_text(), "README role table is stale: run python scripts/role_table.py"


def test_readme_shows_the_two_commands():
    text = README.read_text()
    assert "make run" in text and "make test" in text
