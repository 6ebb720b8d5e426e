"""The set-up every training stage shares: resume state keyed by what the run depends on,
inside the stage's MLflow run, tagged with where it runs."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow

from imagepipe.tracking.provenance import dvc_hash
from imagepipe.tracking.runs import training_run
from imagepipe.training.state import TrainingState


@dataclass(frozen=True)
class TrainingSetup:
    """What a training stage's run depends on. inputs: name -> DVC-tracked path (e.g. "data":
    "data/processed"); their DVC hashes, the section's params and the seed make the fingerprint."""

    stage: str
    state_dir: Path
    monitor: str
    mode: str
    section: dict
    seed: int
    inputs: dict[str, str]

    def fingerprint(self) -> dict:
        return {
            "params": self.section,
            "seed": self.seed,
            **{name: dvc_hash(path) for name, path in self.inputs.items()},
        }


@contextmanager
def training_session(setup: TrainingSetup, tags: dict[str, str]) -> Iterator[TrainingState]:
    """The stage's TrainingState (discarded when the fingerprint changed: other params, seed or
    data) inside its MLflow run (resumed after a crash), with the params logged and tags set."""
    state = TrainingState(setup.state_dir, setup.monitor, setup.mode, setup.fingerprint())
    params = {setup.stage: setup.section, "seed": setup.seed}
    with training_run(setup.stage, state.directory, params, list(setup.inputs.values())):
        mlflow.set_tags(tags)
        yield state
