"""MLflow faults: a terminated stage's run ends FAILED and resumes; an abandoned run ends
KILLED; a champion whose files are gone is never kept; a tracking server that does not
answer fails a stage before it trains."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import psutil
import pytest
import yaml
from mlflow import MlflowClient

from imagepipe.core.errors import StageError
from imagepipe.tracking.registry import CHAMPION, Policy, promote_if_better
from imagepipe.tracking.runs import training_run
from imagepipe.tracking.significance import Gain
from imagepipe.tracking.store import check_server
from imagepipe.training.state import TrainingState
from tests.helpers.data import ROOT, write_processed
from tests.helpers.servers import free_port
from tests.tracking.test_registry import candidate, champion_version, register_version

pytestmark = pytest.mark.faults


def delete_model_files(store: Path, name: str, version: str) -> None:
    model_id = (
        MlflowClient(f"sqlite:///{store / 'mlflow.db'}").get_model_version(name, version).source.rsplit("/", 1)[1]
    )
    shutil.rmtree(store / "mlartifacts" / "models" / model_id / "artifacts")


def test_a_version_without_model_files_never_becomes_champion(mlflow_store, tmp_path):
    first, second, third = (register_version(tmp_path) for _ in range(3))
    policy, worse = Policy(0.0, 0.95), Gain(-0.1, -0.12, -0.08)
    delete_model_files(tmp_path, "cnn", second)
    refused = promote_if_better(candidate(second, 0.99), lambda _: Gain(0.2, 0.1, 0.3), policy)
    assert not refused.promoted and refused.reason == "its model files are missing from the registry's artifact store"
    assert promote_if_better(candidate(first, 0.80), lambda _: worse, policy).promoted
    # The champion loses its files: a worse but loadable version replaces it.
    delete_model_files(tmp_path, "cnn", first)
    assert promote_if_better(candidate(third, 0.70), lambda _: worse, policy).promoted
    assert champion_version() == third
    loaded = mlflow.pyfunc.load_model(f"models:/cnn@{CHAMPION}")
    assert loaded.metadata.run_id == MlflowClient().get_model_version("cnn", third).run_id


def test_an_interrupted_run_whose_state_is_discarded_ends_killed(mlflow_store, tmp_path):
    client = MlflowClient(mlflow_store)
    state = TrainingState(tmp_path / "state", "val_accuracy", "max", {"epochs": 3})
    with training_run("train_cnn", state.directory, {}, []) as run:
        interrupted = run.info.run_id
    client.update_run(interrupted, "RUNNING")  # what a kill -9 leaves
    assert client.get_run(interrupted).info.status == "RUNNING"
    state = TrainingState(tmp_path / "state", "val_accuracy", "max", {"epochs": 4})  # other params
    with training_run("train_cnn", state.directory, {}, []) as run:
        assert run.info.run_id != interrupted
    assert client.get_run(interrupted).info.status == "KILLED"


def test_a_server_that_does_not_answer_fails_fast_without_its_credentials():
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://alice:s3cret@127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(
            StageError, match=r"the MLflow tracking server http://\*\*\*@127.0.0.1:\d+ does not answer \(ReadTimeout\)"
        ) as error:
            check_server(uri, timeout=1)
    assert time.monotonic() - start < 10 and "s3cret" not in str(error.value)


def stage_command(tmp_path: Path, epochs: int) -> list[str]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train_cnn"] |= {"epochs": epochs, "batch_size": 16, "warmup_epochs": 0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    data = write_processed(tmp_path / "processed")
    return [
        sys.executable,
        "-m",
        "stages.train_cnn",
        "--params",
        "params.yaml",
        "--data",
        str(data),
        "--model-dir",
        "models/cnn",
        "--plots",
        "plots/cnn",
    ]


def stage_env(uri: str) -> dict:
    return {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT)}


def test_an_unreachable_tracking_server_fails_the_stage_before_training(tmp_path):
    uri = f"http://alice:s3cret@127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = subprocess.run(
        stage_command(tmp_path, 3), cwd=tmp_path, env=stage_env(uri), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and time.monotonic() - start < 60
    port = uri.rsplit(":", 1)[1]
    assert (
        f"error: the MLflow tracking server http://***@127.0.0.1:{port} does not answer (ConnectionError)"
        in result.stderr
    )
    assert "s3cret" not in result.stdout + result.stderr
    assert not (tmp_path / ".state/cnn/backup").exists() and not (tmp_path / "models").exists()


def test_a_stage_whose_parent_is_killed_stops_its_run_failed_and_resumes_it(tmp_path):
    """kill -9 of `dvc repro` (here: a plain parent process): the stage gets SIGTERM, its MLflow
    run ends FAILED, and the next run resumes that run from the last finished epoch."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command, env = stage_command(tmp_path, 40), stage_env(uri)
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])", *command], cwd=tmp_path, env=env
    )
    history = tmp_path / ".state/cnn/history.csv"
    deadline = time.monotonic() + 180
    while not (history.exists() and len(history.read_text().splitlines()) > 2):
        assert parent.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    stage = psutil.Process(parent.pid).children()[0]
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    stage.wait(timeout=30)  # not a child of this process: its exit status is not ours to read
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("imagepipe").experiment_id])
    assert run.info.status == "FAILED"

    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (resumed,) = client.search_runs([client.get_experiment_by_name("imagepipe").experiment_id])
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    epochs = [line.split(",")[0] for line in (tmp_path / "plots/cnn/history.csv").read_text().splitlines()[1:]]
    assert epochs == [str(epoch) for epoch in range(40)]
