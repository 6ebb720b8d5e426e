"""`kill -9` of every stage of the real pipeline, one after another, then `dvc repro` again:
the pipeline completes, training resumes from its last finished epoch, and DVC, MLflow and
the outputs stay consistent."""

import csv
import json
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
from mlflow import MlflowClient

from tests.helpers.dvc import up_to_date
from tests.helpers.servers import served_model
from tests.test_pipeline import (
    QUICK,
    assert_champion_served_on_raw_pixels,
    make_repo,
    repro,
    run,
    set_params,
    tool_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.faults]
FAMILIES = ("rnn", "autoencoder", "vae", "unet", "detector")
# Each stage once; the generic family stages once per family (`train_family@rnn`).
STAGES = {
    "download",
    "validate",
    "preprocess",
    "train_cnn",
    "train_gan",
    "evaluate_gan",
    "prepare_transfer",
    "train_transfer",
    "evaluate",
    "visualize",
    "compose_scenes",
    *(f"{module}@{family}" for module in ("train_family", "evaluate_family") for family in FAMILIES),
}
# Long enough for a backup to be written mid-training (BackupAndRestore deletes it at the end).
EPOCHS = {
    "train_cnn": {"epochs": 3},
    "train_gan": {"epochs": 2},
    "train_transfer": {"epochs": 2, "fine_tune_epochs": 2},
    **{f"train_{family}": {"epochs": 2} for family in FAMILIES},
}
# A training stage is killed once it has a backup of a finished epoch; any other as it logs
# that its work starts (imagepipe.core.cli.run_stage, after the stage's imports). Both are
# signals from the stage itself, not a time: on a faster machine the kill lands at the same point.
STARTED = re.compile(r"imagepipe\.core\.cli: stage started as process (\d+)$")


def stage_of(process: psutil.Process) -> str | None:
    """`python -m stages.<module> ...` -> module; `... --family <family>` -> module@family."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return None
    module = next((word.removeprefix("stages.") for word in command if word.startswith("stages.")), None)
    if module and "--family" in command:
        return f"{module}@{command[command.index('--family') + 1]}"
    return module


class StartWatch:
    """Reads `dvc repro`'s output as it comes (so that the pipe never fills up) and SIGKILLs the
    first stage, neither spared nor training, as it logs its start. The kill is sent from the
    reading thread, not at the next poll: the quickest stages have only 0.1 s of work left."""

    def __init__(self, stream, spared: set[str]):
        self.spared = spared
        self.lines: list[str] = []
        self.killed: str | None = None
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)
            if self.killed is None and (started := STARTED.search(line.rstrip())):
                self._kill_if_due(int(started.group(1)))

    def _kill_if_due(self, pid: int) -> None:
        try:
            process = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return  # it ended before its line was read; the test then finds the stage missing
        stage = stage_of(process)
        if stage and stage not in self.spared and not stage.startswith("train_"):
            process.send_signal(signal.SIGKILL)
            self.killed = stage

    def text(self) -> str:
        """All of the output, once the command has ended."""
        self._reader.join(timeout=60)
        return "".join(self.lines)


def training_stage(dvc: subprocess.Popen, spared: set[str]) -> tuple[psutil.Process | None, str]:
    """The running training stage that is not spared, if any, and its name."""
    for process in psutil.Process(dvc.pid).children(recursive=True):
        if (stage := stage_of(process)) and stage.startswith("train_") and stage not in spared:
            return process, stage
    return None, ""


def kill_one_stage(repo: Path, spared: set[str]) -> str | None:
    """Run `dvc repro` and SIGKILL the first stage not in spared (see StartWatch, and a training
    stage once it has a backup); returns the stage's name, or None when dvc repro completed."""
    dvc = subprocess.Popen(
        ["dvc", "repro"], cwd=repo, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    watch, victim, stage, killed = StartWatch(dvc.stdout, spared), None, "", None
    while dvc.poll() is None and watch.killed is None and killed is None:
        if victim is None or not victim.is_running():
            victim, stage = training_stage(dvc, spared)
        elif any(repo.glob(".state/*/backup/training_metadata.json")):
            victim.send_signal(signal.SIGKILL)
            killed = stage
        time.sleep(0.02)
    dvc.wait(timeout=120)
    if killed := killed or watch.killed:
        assert dvc.returncode != 0, watch.text()
        return killed
    assert dvc.returncode == 0, watch.text()
    return None


def outs(repo: Path, stages: tuple[str, ...]) -> dict[str, list]:
    """The recorded hashes of the stages' outs, from dvc.lock."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {stage: lock[stage]["outs"] for stage in stages}


def epochs_in(history: Path) -> list[int]:
    with history.open() as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def recovered(tmp_path_factory) -> tuple[Path, list[str]]:
    """The quick pipeline with every stage killed once, in turn, then run to completion;
    returns the repo and the stages killed, in order."""
    repo = make_repo(tmp_path_factory.mktemp("killed") / "repo")
    set_params(repo, **QUICK)
    set_params(repo, **EPOCHS)
    killed: list[str] = []
    # scan runs first in every `dvc repro` and rewrites its one small file whole each time.
    while (module := kill_one_stage(repo, {"scan", *killed})) is not None:
        killed.append(module)
    return repo, killed


def test_the_recovered_champion_is_served_on_raw_pixels(recovered):
    assert_champion_served_on_raw_pixels(recovered[0], "digits-cnn")


def invocations(url: str, inputs: np.ndarray) -> object:
    request = urllib.request.Request(
        f"{url}/invocations", json.dumps({"inputs": inputs.tolist()}).encode(), {"Content-Type": "application/json"}
    )
    return json.load(urllib.request.urlopen(request, timeout=60))["predictions"]


def test_the_recovered_scene_champions_are_served_as_masks_and_boxes(recovered):
    """`mlflow models serve` of the U-Net and detector champions: raw scene pixels in, a class
    index per pixel out, and a table of named, scored boxes inside the canvas."""
    repo = recovered[0]
    with np.load(repo / "data/scenes/test.npz") as arrays:
        scenes = arrays["images"][:2].astype(np.float32)
    env = {**tool_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"}
    with served_model("models:/digits-unet@champion", repo, env) as url:
        masks = np.array(invocations(url, scenes))
    assert masks.shape == scenes.shape[:3] and 0 <= masks.min() and masks.max() <= 10
    with served_model("models:/digits-detector@champion", repo, env) as url:
        boxes = invocations(url, scenes)
    names = [str(digit) for digit in range(10)]
    for box in boxes:
        assert set(box) == {"image", "class", "score", "x_min", "y_min", "x_max", "y_max"}
        assert box["image"] in (0, 1) and box["class"] in names and 0 <= box["score"] <= 1
        assert (
            0 <= box["x_min"] < box["x_max"] <= scenes.shape[2] and 0 <= box["y_min"] < box["y_max"] <= scenes.shape[1]
        )


def test_a_pipeline_killed_in_every_stage_completes_consistently(recovered):
    repo, killed = recovered
    assert set(killed) == STAGES, killed

    assert up_to_date(run(repo, "dvc", "status").stdout)
    assert list(repo.glob("data/.*.partial-*")) == [] and list(repo.rglob("partial-*")) == []
    assert not (repo / ".state").exists() or not any((repo / ".state").iterdir())
    # Resumed, not restarted: every epoch once in the published histories.
    assert epochs_in(repo / "plots/cnn/history.csv") == [0, 1, 2]
    assert epochs_in(repo / "plots/gan/history.csv") == [0, 1]
    for family in FAMILIES:
        assert epochs_in(repo / f"plots/{family}/history.csv") == [0, 1], family
    # MLflow: one run per training stage, none left RUNNING, each champion's files present.
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    training_stages = ["train_cnn", "train_gan", "train_transfer", *(f"train_{family}" for family in FAMILIES)]
    assert sorted(r.data.tags["stage"] for r in runs) == sorted(training_stages)
    assert {r.info.status for r in runs} == {"FINISHED"}
    # QUICK: data.dataset digits
    for name in ("digits-cnn", "digits-gan", "digits-transfer", *(f"digits-{family}" for family in FAMILIES)):
        version = client.get_model_version_by_alias(name, "champion")
        assert version.status == "READY"

    # The deterministic stages, rerun from scratch, give byte-identical outputs. (validate's
    # data docs carry the time they were built, so its outs differ by design.)
    deterministic = ("download", "preprocess", "prepare_transfer", "compose_scenes")
    before = outs(repo, deterministic)
    repro(repo, "--force", "--single-item", *deterministic)
    assert outs(repo, deterministic) == before
    assert up_to_date(run(repo, "dvc", "status").stdout)
