"""pane.connectors.testing itself: it loads nothing of pane's web or database layers, and the
contract it holds fails connectors that break it, each in a pytest session of its own, as a
third party's suite would run it (no pane conftest, pytest-asyncio in strict mode)."""

from __future__ import annotations

import pytest

from pane.connectors.testing import ConnectorContract, leaked_modules
from tests.third_party_connector.connector import DealDesk

CONTRACT_TESTS = sorted(name for name in dir(ConnectorContract) if name.startswith("test_"))


def _run(pytester: pytest.Pytester, source: str, *nodes: str) -> dict[str, pytest.TestReport]:
    """Run the tests ``nodes`` of a module ``test_case.py`` holding ``source``, in a session
    configured as a third party's could be; their reports by test name."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_case=source)
    paths = [f"test_case.py::{node}" for node in nodes]
    result = pytester.inline_run(*paths, "-p", "no:cacheprovider", "-W", "error")
    return {
        report.nodeid.rsplit("::", 1)[-1]: report
        for report in result.getreports("pytest_runtest_logreport")
        if report.when == "call" or report.outcome != "passed"
    }


def _case(name: str) -> str:
    return f"from tests.broken_connectors import {name}\n"


def test_the_contract_module_loads_no_web_or_database_layer():
    assert leaked_modules("pane.connectors.testing") == []


def test_a_connector_that_keeps_the_contract_passes_it_in_a_suite_of_its_own(pytester):
    reports = _run(pytester, _case("TestKeepsTheContract"), "TestKeepsTheContract")
    assert {name: report.outcome for name, report in reports.items()} == dict.fromkeys(
        CONTRACT_TESTS, "passed"
    )


@pytest.mark.parametrize(
    ("case", "test", "complaint"),
    [
        ("TestStreamsNamedByText", "test_declares_streams_and_actions", "not a pane Stream"),
        ("TestKeyInClear", "test_marks_secret_credentials_secret", "no credential is marked"),
        ("TestUnrenderableConfig", "test_describes_its_link_form_as_json_schema", "_Proxy"),
        ("TestSecretInConfig", "test_a_stored_config_reads_back_the_same", "**********"),
        (
            "TestCheckAcceptsAnything",
            "test_check_refuses_links_with_the_declared_error_and_a_reason",
            "check() accepted a link the vendor refuses",
        ),
        (
            "TestCheckBlamesCredentials",
            "test_check_refuses_links_with_the_declared_error_and_a_reason",
            "wait for new credentials",
        ),
        (
            "TestCheckWithoutReason",
            "test_check_refuses_links_with_the_declared_error_and_a_reason",
            "CredentialsRejected without a reason",
        ),
        (
            "TestNoCredentialsRefusal",
            "test_check_refuses_links_with_the_declared_error_and_a_reason",
            "no refusal shows credentials the vendor rejects",
        ),
        ("TestCheckHangs", "test_check_passes_with_the_working_link", "did not finish within"),
        ("TestEndlessPages", "test_reads_every_stream_to_an_end", "more than 100 pages"),
        (
            "TestRecordsOfAnotherStream",
            "test_records_are_the_streams_normalized_records",
            "a LeadRecord, not a DealRecord",
        ),
        (
            "TestUnvalidatedRecords",
            "test_records_are_the_streams_normalized_records",
            "is not a valid DealRecord",
        ),
        ("TestRepeatedRecords", "test_external_ids_are_unique_per_stream", "read more than once"),
        ("TestCursorBackwards", "test_cursors_only_move_forward", "is behind"),
        ("TestCursorDropped", "test_cursors_only_move_forward", "drops the cursor"),
        ("TestCursorNotSent", "test_cursors_only_move_forward", "read all 7 records again"),
        ("TestCursorWithAMargin", "test_cursors_only_move_forward", "more than the boundary"),
        ("TestDatabaseInRead", "test_reads_every_stream_to_an_end", "opened a database connection"),
    ],
)
def test_the_contract_fails_a_connector_that_breaks_it(pytester, case, test, complaint):
    [report] = _run(pytester, _case(case), f"{case}::{test}").values()
    assert report.failed, report.outcome
    assert complaint in report.longreprtext


def test_a_connector_module_that_loads_the_database_layer_fails(pytester):
    leaky = (
        "import sqlalchemy\n"
        "from tests.broken_connectors import Contract, DealDesk\n"
        "class Leaky(DealDesk):\n"
        "    pass\n"
        "class TestLeaky(Contract):\n"
        "    connector_class = Leaky\n"
    )
    [report] = _run(
        pytester, leaky, "TestLeaky::test_loads_nothing_of_the_database_or_web_layers"
    ).values()
    assert report.failed
    assert "importing test_case loads sqlalchemy" in report.longreprtext


def test_a_contract_names_its_connector_and_vendor():
    with pytest.raises(TypeError, match="must set connector_class"):
        type("TestNothing", (ConnectorContract,), {})
    with pytest.raises(TypeError, match="must provide a vendor fixture"):
        type("TestNoVendor", (ConnectorContract,), {"connector_class": DealDesk})
