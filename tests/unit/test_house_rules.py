"""Rules of the house that a linter does not check: no private name crosses a module boundary, and no
app module grows past 450 lines (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = ("dashboard", "callbacks", "pages", "jobs", "models")
MAX_LINES = 450


def app_modules() -> list[Path]:
    files = [ROOT / "app.py", ROOT / "wsgi.py"]
    for package in APP_PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return files


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_no_private_name_is_imported_from_another_module():
    """Neither `from module import _name` nor `module._name` on an imported app module."""
    crossings = []
    for path in app_modules() + list((ROOT / "scripts").glob("*.py")):
        tree = ast.parse(path.read_text())
        modules = set()  # local names bound to app modules
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in APP_PACKAGES:
                for alias in node.names:
                    if private(alias.name):
                        crossings.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}")
                    elif is_module(f"{node.module}.{alias.name}"):
                        modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                modules |= {a.asname for a in node.names if a.asname and a.name.split(".")[0] in APP_PACKAGES}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
            ):
                if private(node.attr):
                    crossings.append(f"{path.relative_to(ROOT)}: {node.value.id}.{node.attr}")
    assert crossings == []


def test_no_app_module_is_over_450_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in app_modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
