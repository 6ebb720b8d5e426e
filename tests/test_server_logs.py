"""The server log check of tests/helpers/servers.py: service tracebacks fail a test, offline noise does not."""

import pytest

from tests.helpers.servers import ServerLog, service_tracebacks, tracebacks

# A backslash at the end of a line joins it to the next: the log keeps the server's long lines.
SCHEDULER_FAILURE = """01:53:25.590 | ERROR   | docket.dependencies - schedule_recent_deployments()
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/prefect/server/services/scheduler.py", line 348, \
in schedule_recent_deployments
    inserted_runs = await models.deployments._insert_scheduled_flow_runs(
  File "/venv/lib/python3.11/site-packages/sqlalchemy/ext/hybrid.py", line 1851, in prop
    raise exc.InvalidRequestError(
sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement; please supply a bulk_dml decorated function
01:53:30.636 | INFO    | uvicorn - 127.0.0.1 "GET /api/health" 200
"""
TELEMETRY_OFFLINE = """Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/mlflow/telemetry/client.py", line 120, in _send
    response = requests.post(self.url, json=records, timeout=3)
requests.exceptions.ConnectionError: HTTPSConnectionPool(host='config.mlflow-telemetry.io', port=443)
"""
CHAINED = """Traceback (most recent call last):
  File "/venv/app.py", line 3, in handle
KeyError: 'run'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/venv/app.py", line 5, in handle
ValueError: no such run
after
"""


def test_a_chained_traceback_is_one_and_ends_at_its_exception_line():
    (found,) = tracebacks("before\n" + CHAINED)
    assert found.startswith("Traceback") and found.endswith("ValueError: no such run")


def test_offline_telemetry_is_noise_and_a_service_failure_is_not():
    found = service_tracebacks(TELEMETRY_OFFLINE + SCHEDULER_FAILURE)
    assert len(tracebacks(TELEMETRY_OFFLINE + SCHEDULER_FAILURE)) == 2
    assert len(found) == 1 and "Can't evaluate bulk DML statement" in found[0]


HEARTBEAT_LOCKED = """Traceback (most recent call last):
  File "/venv/prefect/server/utilities/worker_channel.py", line 813, in _persist_worker_channel_heartbeat
  File "/venv/prefect/server/models/workers.py", line 1035, in worker_heartbeat
sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked
"""


def test_sqlite_lock_contention_is_noise_and_other_database_errors_are_not():
    assert service_tracebacks(HEARTBEAT_LOCKED) == []
    missing_table = HEARTBEAT_LOCKED.replace("database is locked", "no such table: worker")
    assert len(service_tracebacks(missing_table)) == 1


def test_opentelemetry_frames_are_not_mistaken_for_telemetry():
    traced = SCHEDULER_FAILURE.replace("/sqlalchemy/ext/hybrid.py", "/opentelemetry/sdk/trace/__init__.py")
    assert len(service_tracebacks(traced)) == 1


def test_each_check_reads_what_the_server_wrote_since_the_last(tmp_path):
    path = tmp_path / "server.log"
    path.write_text("started\n")
    log = ServerLog(path)
    log.assert_no_tracebacks()
    with path.open("a") as server:
        server.write(SCHEDULER_FAILURE)
    with pytest.raises(AssertionError, match="(?s)1 traceback.*bulk DML"):
        log.assert_no_tracebacks()
    log.assert_no_tracebacks()  # reported once, by the test during which it was written
