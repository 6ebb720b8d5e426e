"""What a search trial tells the stage it reproduces, through one environment variable.

The trial flow starts the stage through DVC, so it cannot pass arguments; the stage finds the
study (to report each epoch to the pruner) and the names that link its MLflow run to the
search's parent run and to the trial's DVC experiment here.
"""

import json
import os
from dataclasses import asdict, dataclass

VARIABLE = "IMAGEPIPE_TRIAL"


@dataclass(frozen=True)
class TrialContext:
    storage: str  # the study's storage URL (may hold credentials: never logged)
    study: str
    number: int
    monitor: str  # the per-epoch value the pruner judges
    pruner: dict  # the search's pruner settings (Optuna does not store a study's pruner)
    experiment: str  # the DVC experiment the trial is saved as
    parent_run_id: str | None  # the search's MLflow run

    def to_env(self) -> dict[str, str]:
        return {VARIABLE: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls) -> "TrialContext | None":
        value = os.environ.get(VARIABLE)
        return cls(**json.loads(value)) if value else None

    def tags(self) -> dict[str, str]:
        """MLflow tags: `mlflow.parentRunId` nests the run under the search's run in the MLflow UI."""
        tags = {"optuna_study": self.study, "optuna_trial": str(self.number), "dvc_experiment": self.experiment}
        return tags | ({"mlflow.parentRunId": self.parent_run_id} if self.parent_run_id else {})
