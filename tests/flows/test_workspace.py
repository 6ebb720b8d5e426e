import os

import pytest

from imagepipe.orchestration.workspace import enter_workspace


@pytest.fixture(autouse=True)
def keep_cwd():
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def test_the_pull_step_enters_the_hosts_clone(tmp_path, monkeypatch):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setenv("IMAGEPIPE_WORKSPACE", str(tmp_path))
    assert enter_workspace() == {"directory": str(tmp_path.resolve())}
    assert os.getcwd() == str(tmp_path.resolve())


def test_a_worker_without_a_workspace_is_told_what_to_set(monkeypatch):
    monkeypatch.delenv("IMAGEPIPE_WORKSPACE", raising=False)
    with pytest.raises(RuntimeError, match="IMAGEPIPE_WORKSPACE is not set on this worker: export it"):
        enter_workspace()


def test_a_workspace_that_is_not_a_clone_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_WORKSPACE", str(tmp_path))
    with pytest.raises(RuntimeError, match="has no dvc.yaml: point it at a clone of the project"):
        enter_workspace()
