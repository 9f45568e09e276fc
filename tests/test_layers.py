"""The layers hold: the connector SDK loads nothing of the web or the database, services know
no HTTP, routers write no SQL, and every refusal a service raises has its one HTTP mapping."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pane import errors
from pane.api.problems import KINDS, kind_of

SRC = Path(__file__).resolve().parents[1] / "src" / "pane"
WEB = ("fastapi", "starlette", "sse_starlette", "uvicorn")
DATABASE = ("sqlalchemy", "asyncpg")


def _loaded_by(module: str, families: tuple[str, ...]) -> list[str]:
    """The modules of ``families`` that importing ``module`` loads, in a fresh interpreter."""
    probe = (
        f"import sys, {module}\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(families)!r})))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(found)


CONNECTOR_MODULES = [
    "pane.connectors",
    "pane.connectors.base",
    "pane.connectors.records",
    "pane.connectors.registry",
    "pane.connectors.http",
    "pane.connectors.opening",
    "pane.connectors.testing",
    "pane.connectors.csv_price_list",
    "pane.connectors.generic_rest",
    "pane.connectors.salesforce",
]


@pytest.mark.parametrize("module", CONNECTOR_MODULES)
def test_the_connector_sdk_loads_neither_the_web_nor_the_database(module):
    assert _loaded_by(module, WEB + DATABASE) == []


@pytest.mark.parametrize(
    "module", ["pane.services.leads", "pane.services.changes", "pane.sync.engine", "pane.errors"]
)
def test_services_and_the_sync_engine_load_no_web_framework(module):
    assert _loaded_by(module, WEB) == []


def test_every_refusal_maps_to_exactly_one_problem_kind():
    refusals = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.DomainError)
    ]
    assert len(refusals) > 10
    for refusal in refusals:
        if refusal is errors.DomainError:
            continue
        assert refusal in KINDS, f"{refusal.__name__} has no problem kind in pane.api.problems"
        kind = kind_of(refusal("x") if refusal not in _WITH_RETRY else refusal("x", retry_after=1))
        assert kind is KINDS[refusal]
        assert 400 <= kind.status < 600


_WITH_RETRY = (errors.RateLimited,)
_SQL = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ")


@pytest.mark.parametrize(
    "path", sorted(p for p in (SRC / "api").glob("*.py") if p.name != "deps.py"), ids=str
)
def test_routers_write_no_sql(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        # problems.py names the database's outage exceptions, to answer them with 503
        if isinstance(node, ast.Import | ast.ImportFrom) and path.name != "problems.py":
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
            )
            assert not any(name.split(".")[0] in DATABASE for name in names), (
                f"{path.name} imports {names}: routers call services"
            )
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not any(keyword in node.value.upper() for keyword in _SQL), (
                f"{path.name} holds SQL: {node.value[:60]!r}"
            )


def _sources_containing(pattern: str) -> list[str]:
    return sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if pattern.lower() in path.read_text().lower()
    )


def test_one_writer_inserts_into_the_change_log():
    assert _sources_containing("INSERT INTO events") == ["services/events.py"]


def test_work_after_a_commit_goes_through_the_outbox_not_background_tasks():
    assert _sources_containing("BackgroundTask") == []
    assert _sources_containing("enqueue_job(") == ["services/outbox.py", "services/sync.py"]
