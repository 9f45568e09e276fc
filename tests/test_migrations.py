"""Migrations import no live application code: what an old migration does must not change when
pane's code does, so each one carries what it needs (or takes it from a third-party library)."""

from __future__ import annotations

import ast
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def _pane_imports(source: str) -> list[str]:
    """The modules of pane (or relative ones) that ``source`` imports, wherever it does."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
    return [name for name in found if name.startswith(".") or name.split(".")[0] == "pane"]


def test_no_migration_imports_pane() -> None:
    versions = sorted((MIGRATIONS / "versions").glob("*.py"))
    assert len(versions) >= 4
    imports = {path.name: _pane_imports(path.read_text()) for path in versions}
    assert {name: modules for name, modules in imports.items() if modules} == {}


def test_the_environment_imports_only_the_models() -> None:
    """Autogenerate compares with the models' metadata; nothing else of pane is needed."""
    assert _pane_imports((MIGRATIONS / "env.py").read_text()) == ["pane.models"]


def test_the_import_check_finds_every_spelling() -> None:
    source = """
import uuid_utils
import pane.ids
from pane.db import rls
from . import helpers


def upgrade():
    from pane.db.rls import vendor_rows
"""
    assert _pane_imports(source) == ["pane.ids", "pane.db", ".", "pane.db.rls"]
