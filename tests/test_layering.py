"""Layers: adapters never touch the database; the database module imports no feature module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = sorted((ROOT / "channels").glob("*.py"))
DATABASE = ("sqlalchemy", "briefcast.db", "briefcast.ledger", "briefcast.tables", "briefcast.leas")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", ADAPTERS, ids=[p.stem for p in ADAPTERS])
def test_no_adapter_imports_the_database_or_the_ledger(path):
    reached = {n for n in imported(path) if n.startswith(DATABASE)}
    assert reached == set(), f"{path.name} imports {sorted(reached)}"


def test_the_database_module_imports_neither_the_ledger_nor_the_subscribers():
    features = "('briefcast.ledger', 'briefcast.subscribers')"
    probe = f"import sys, briefcast.db; print(sorted(m for m in {features} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_planning_a_mailing_list_imports_no_renderer():
    """The second process that plans a big list starts without the renderers' imports
    (twitter-text's patterns, the card layout): only the placeholders."""
    modules = "briefcast.subscribers, briefcast.channels.sendgrid_mail, briefcast.plan_process"
    probe = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.startswith(("
    probe += "'briefcast.render.edition', 'briefcast.render.x_posts', 'twitter_text'))))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
