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


def test_readme_layer_table_names_every_module_folder_and_dashboard_module():
    """A new module gets a place in the README's layer table (and a floor in .importlinter)."""
    text = README.read_text()
    table = text[text.index("| layer | folders and modules |") : text.index("Beside the code:")]
    root = README.parent
    folders = [
        p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists() and p.name != "tests"
    ]
    assert sorted(f for f in folders if f"`{f}/" not in table) == []
    modules = [p.name for p in (root / "dashboard").glob("*.py") if p.name != "__init__.py"]
    modules += [
        p.name + "/" for p in (root / "dashboard").iterdir() if p.is_dir() and not p.name.startswith("__")
    ]
    named = [m for m in modules if f"`{m}`" in table or f"`dashboard/{m}`" in table]
    analytics = [m for m in modules if m.startswith("analytics") and "`analytics*.py`" in table]
    assert sorted(set(modules) - set(named) - set(analytics)) == []
