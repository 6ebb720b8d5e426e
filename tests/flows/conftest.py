"""A real Prefect server on loopback for the flow tests, with process workers started per test."""

import subprocess

import pytest

from tests.helpers.prefect import PrefectServer, assert_listens_on_loopback_only
from tests.helpers.servers import ServerLog, free_port, stop, wait_until_up


@pytest.fixture
def prefect_server(prefect_server_process) -> PrefectServer:
    """The session's Prefect server; the test fails if the server logged a traceback meanwhile."""
    yield prefect_server_process
    prefect_server_process.log.assert_no_tracebacks()


@pytest.fixture(scope="session")
def prefect_server_process(tmp_path_factory) -> PrefectServer:
    """`prefect server start` on a free loopback port with its own PREFECT_HOME; stopped afterwards."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home, ServerLog(home / "server.log"))
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(f"{server.api_url}/health", process, home / "server.log")
        assert_listens_on_loopback_only(port)
        for pool in ("cpu", "gpu"):
            server.cli(home, "work-pool", "create", pool, "--type", "process", "--overwrite")
        yield server
    finally:
        stop(process)
        log.close()
