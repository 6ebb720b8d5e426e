"""A real Prefect server on loopback for the flow tests, with process workers started per test."""

import pytest

from tests.helpers.prefect import PrefectServer, started_server


@pytest.fixture
def prefect_server(prefect_server_process) -> PrefectServer:
    """The session's Prefect server; the test fails if the server logged a traceback meanwhile."""
    yield prefect_server_process
    prefect_server_process.log.assert_no_tracebacks()


@pytest.fixture(scope="session")
def prefect_server_process(tmp_path_factory) -> PrefectServer:
    """`prefect server start` on a free loopback port with its own PREFECT_HOME; stopped afterwards."""
    with started_server(tmp_path_factory.mktemp("prefect-home")) as server:
        yield server
