import json
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT

from imagepipe.tracking.provenance import GIT_DIRTY, orchestration_tags, provenance
from imagepipe.tracking.runs import training_run


def test_orchestration_tags_show_no_credentials(monkeypatch):
    overrides = ["data.source=https://u:s3cret@mirror.example/mnist/", "train_cnn.epochs=2"]
    monkeypatch.setenv("IMAGEPIPE_PARAM_OVERRIDES", json.dumps(overrides))
    monkeypatch.setenv("IMAGEPIPE_FLOW_RUN_ID", "5f1c0d2e")
    assert orchestration_tags() == {
        "prefect_flow_run_id": "5f1c0d2e",
        "param_overrides": '["data.source=https://***@mirror.example/mnist/", "train_cnn.epochs=2"]',
    }


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@localhost"]
    return subprocess.run(
        ["git", *identity, *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_training_run_carries_mlflows_commit_tag_for_head_and_whether_the_tree_was_dirty(mlflow_store, tmp_path):
    """MLflow resolves the commit itself for a run started as the stages are (`python -m stages.<stage>`),
    and provenance names the same one; it names HEAD too where MLflow would not: a run started
    in-process (here, from pytest) and a run resumed after another commit, with a change not yet committed."""
    git(tmp_path, "init", "-q")
    (tmp_path / "probe.py").write_text(
        "import mlflow\nfrom imagepipe.tracking.provenance import provenance\n"
        "with mlflow.start_run() as run:\n"
        f"    print(run.data.tags[{MLFLOW_GIT_COMMIT!r}], provenance('probe', [])[{MLFLOW_GIT_COMMIT!r}])\n"
    )
    git(tmp_path, "add", "probe.py")
    git(tmp_path, "commit", "-qm", "probe")
    probe = subprocess.run([sys.executable, "-m", "probe"], cwd=tmp_path, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-3000:]
    head = git(tmp_path, "rev-parse", "HEAD")
    assert probe.stdout.split() == [head, head]

    with training_run("train_cnn", tmp_path / ".state", {}, []) as run:
        run_id = run.info.run_id
    tags = MlflowClient().get_run(run_id).data.tags
    assert (tags[MLFLOW_GIT_COMMIT], tags[GIT_DIRTY]) == (head, "false") and "git_commit" not in tags

    (tmp_path / "probe.py").write_text("# changed\n")
    git(tmp_path, "commit", "-qam", "second")
    (tmp_path / "probe.py").write_text("# changed again, not committed\n")
    with training_run("train_cnn", tmp_path / ".state", {}, []) as run:
        assert run.info.run_id == run_id
    tags, second = MlflowClient().get_run(run_id).data.tags, git(tmp_path, "rev-parse", "HEAD")
    assert second != head and (tags[MLFLOW_GIT_COMMIT], tags[GIT_DIRTY]) == (second, "true")


def test_outside_a_git_repository_no_commit_is_claimed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance("train_cnn", []) == {"stage": "train_cnn"}
