"""The project's own pipeline under Prefect: `prefect deploy`, process workers on two "hosts"
(two clones on loopback) sharing a DVC remote and an MLflow tracking server."""

import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import psutil
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.helpers.dvc import up_to_date
from tests.helpers.prefect import BIN, mlflow_server, worker
from tests.helpers.vendor import copy_datadocs_vendor, link_datadocs_assets
from tests.test_pipeline import QUICK, set_params

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def dvc(repo: Path, *args: str) -> str:
    return subprocess.run([BIN / "dvc", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def project_repo(path: Path, **params) -> Path:
    """A git + DVC repo holding the project's pipeline code and config, committed."""
    for folder in ("stages", "src", "flows"):
        shutil.copytree(ROOT / folder, path / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", "params.yaml", "search.yaml", "prefect.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, path / name)
    copy_datadocs_vendor(path)
    set_params(path, **params)
    git(path, "init", "-q")
    dvc(path, "init", "-q")
    dvc(path, "config", "core.analytics", "false")
    git(path, "add", "-A")
    git(path, "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", "pipeline")
    return path


def host(origin: Path, path: Path, remote: Path) -> Path:
    """Another host's clone of the project, with the shared DVC remote configured."""
    git(origin.parent, "clone", "-q", str(origin), str(path))
    link_datadocs_assets(path)
    dvc(path, "remote", "add", "--local", "--default", "shared", str(remote))
    git(path, "config", "user.name", "test")
    git(path, "config", "user.email", "test@localhost")
    return path


def artifacts(server, flow_run) -> dict[str, str]:
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
    return {artifact.key: artifact.data for artifact in found}


def overlap(first, second) -> bool:
    return first.start_time < second.end_time and second.start_time < first.end_time


def most_at_once(runs: list) -> int:
    """The most of these task runs that were running at one moment."""
    # At equal times an end sorts before a start: runs that only touch do not overlap.
    edges = sorted([(run.start_time, 1) for run in runs] + [(run.end_time, -1) for run in runs])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def gpus_seen_by(process: subprocess.Popen) -> list[str]:
    """The GPUs visible_gpus() finds in this worker's environment: those its flow runs hand out
    to training stages, one stage per GPU (flows/pipeline.py)."""
    script = "from imagepipe.orchestration.gpus import visible_gpus; print(' '.join(visible_gpus()))"
    environment = psutil.Process(process.pid).environ()
    result = subprocess.run([BIN / "python", "-c", script], env=environment, check=True, capture_output=True, text=True)
    return result.stdout.split()


def assert_training_shares_the_gpus(runs: dict, gpus: list[str]) -> None:
    """Without GPUs every training stage starts at once on the CPU, so independent ones overlap;
    with one GPU they take turns; with several, at most one runs per GPU. (Which stages share
    a moment then depends on who gets a free GPU first, so only the count is checked.)"""
    training = [run for name, run in runs.items() if name.startswith("train_")]
    if len(gpus) == 1:
        assert most_at_once(training) == 1, "two training stages ran at once on the host's one GPU"
    elif gpus:
        assert 2 <= most_at_once(training) <= len(gpus), (most_at_once(training), gpus)
    else:
        assert overlap(runs["train_gan"], runs["train_transfer"]), "independent training stages ran one after the other"
        families = [name for name in runs if name.startswith(("train_image_model@", "train_scene_model@"))]
        assert len(families) == 5 and any(
            overlap(runs[name], runs[other])
            for name in families
            for other in runs
            if other.startswith("train_") and other != name
        ), "the families' training ran one stage at a time"


def test_two_hosts_share_a_dvc_remote_and_an_mlflow_server(prefect_server, tmp_path):
    origin = project_repo(tmp_path / "origin", **QUICK)
    host_a, host_b = (host(origin, tmp_path / name, tmp_path / "dvc-remote") for name in ("host-a", "host-b"))
    shared = {"share_through_dvc_remote": True}
    with mlflow_server(tmp_path / "mlflow") as tracking_uri:
        tracking = {"MLFLOW_TRACKING_URI": tracking_uri}
        prefect_server.deploy(host_a)
        with worker(prefect_server, "gpu", host_a, tracking) as gpu_worker:
            gpus = gpus_seen_by(gpu_worker)
            first = prefect_server.run("pipeline/full-run", shared)
            again = prefect_server.run("pipeline/full-run", shared)
        assert first.state.is_completed(), prefect_server.logs(first)
        runs = prefect_server.task_runs(first)
        first_states = {name: run.state_name for name, run in runs.items()}
        assert set(first_states.values()) == {"Completed"} and len(runs) == 24, first_states
        assert_training_shares_the_gpus(runs, gpus)
        # scan runs every time; download finds its snapshot unchanged, and nothing else runs.
        states = {name: run.state_name for name, run in prefect_server.task_runs(again).items()}
        assert states.pop("scan") == "Completed" and set(states.values()) == {"Skipped"}, states
        assert up_to_date(dvc(host_a, "status"))

        shown = artifacts(prefect_server, first)
        cnn_run = json.loads((host_a / "models/cnn/mlflow.json").read_text())["run_id"]
        assert (
            "test_accuracy" in shown["pipeline-metrics"]
            and f"{tracking_uri}/#/runs/{cnn_run}" in shown["pipeline-metrics"]
        )
        assert "data:image/png;base64," in shown["gt-vs-pr-cnn"]
        assert "![segmentation of unet](data:image/png;base64," in shown["pictures-unet"]

        with worker(prefect_server, "gpu", host_b, tracking):
            on_b = prefect_server.run("pipeline/full-run", shared)
            lock_on_b = (host_b / "dvc.lock").read_text()
            tuned = prefect_server.run(
                "pipeline/full-run", {"set_params": ["train_transfer.epochs=2"], "experiment_name": "transfer-2-epochs"}
            )
            rejected = prefect_server.run("pipeline/full-run", {"set_params": ["train_cnn.epochs=0"]})
        assert on_b.state.is_completed(), prefect_server.logs(on_b)
        assert "Stage 'train_cnn' is cached - skipping run" in prefect_server.logs(on_b)
        assert lock_on_b == (host_a / "dvc.lock").read_text()
        assert (host_b / "models/cnn/best.keras").read_bytes() == (host_a / "models/cnn/best.keras").read_bytes()

        assert tuned.state.is_completed(), prefect_server.logs(tuned)
        ran = {name for name, run in prefect_server.task_runs(tuned).items() if run.state_name == "Completed"}
        assert ran == {"scan", "train_transfer", "evaluate@transfer", "visualize@transfer"}
        experiments = json.loads(dvc(host_b, "exp", "show", "--json"))
        names = [exp["name"] for baseline in experiments for exp in baseline.get("experiments") or []]
        assert "transfer-2-epochs" in names, experiments
        # A client, not mlflow.set_tracking_uri: that also sets MLFLOW_TRACKING_URI for every later test.
        client = mlflow.MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name("imagepipe").experiment_id
        assert len(client.search_runs([experiment], "tags.stage = 'train_cnn'")) == 1
        newest = client.search_runs(
            [experiment], "tags.stage = 'train_transfer'", order_by=["attributes.start_time DESC"]
        )[0]
        assert newest.data.params["train_transfer.epochs"] == "2"
        assert json.loads(newest.data.tags["param_overrides"]) == ["train_transfer.epochs=2"]
        assert newest.data.tags["prefect_flow_run_id"] == str(tuned.id)

        assert rejected.state.is_failed() and "train_cnn.epochs" in rejected.state.message
        assert (
            yaml.safe_load((host_b / "params.yaml").read_text())["train_cnn"]["epochs"] == QUICK["train_cnn"]["epochs"]
        )


def test_failed_validation_fails_the_flow_run_with_the_expectations(prefect_server, tmp_path, skewed_image_folder):
    repo = project_repo(tmp_path / "repo", data={"dataset": "image_folder", "source": str(skewed_image_folder)})
    prefect_server.deploy(repo)
    with worker(prefect_server, "cpu", repo):
        flow_run = prefect_server.run("pipeline/validate-data")
    assert flow_run.state.is_failed()
    assert (
        "every class's share is 0.5..2.0 times the uniform share" in flow_run.state.message
        and "(dogs=0.35" in flow_run.state.message
    )
    runs = prefect_server.task_runs(flow_run)
    assert (
        runs["scan"].state_name == "Completed"
        and runs["download"].state_name == "Completed"
        and runs["validate"].state_name == "Failed"
        and runs["validate"].run_count == 1
    )
    assert set(runs) == {"scan", "download", "validate"}
    assert "validate" not in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
