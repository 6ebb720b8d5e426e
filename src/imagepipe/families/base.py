"""What a model family is to the pipeline: how it trains, what it is scored by, what it draws
and how it is served. `stages/train_family.py` and `stages/evaluate_family.py` run any family
through the same steps as the CNN: resume state, MLflow run, best checkpoint, registered model,
test metrics, the registry gate and pictures.

Each family is a package `imagepipe.families.<name>` whose `FAMILY` is a `Family`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np
import pandas as pd

from imagepipe.core.params import Params
from imagepipe.core.sections import InputsParams, Section
from imagepipe.tracking.tasks import Task
from imagepipe.training.state import TrainingState


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on its test set.

    metrics: JSON-ready, written to metrics/<family>.json; its float values go to MLflow too.
    items: one row per test example (first axis), what `Family.statistic` needs to compute the
    champion metric again on a resample of the test set; the same rows for two models on the
    same test set make the gate's comparison paired.
    """

    metrics: dict[str, Any]
    items: np.ndarray


@dataclass(frozen=True)
class Serving:
    """What the registered pyfunc model is logged with (tracking.publish.log_keras_model).

    example: a raw input batch, as a user sends it; output: what the served model returns for
    it; config: the model_config the serving code reads (its `kind` chooses how it answers);
    artifacts: other files the served model loads, by name.
    """

    example: np.ndarray
    output: np.ndarray | pd.DataFrame
    config: dict[str, Any]
    artifacts: dict[str, Path] = field(default_factory=dict)


# fit() under the family's TrainingState: train(data, section, seed, state, callbacks, inputs).
Train = Callable[[Path, Any, int, TrainingState, list, InputsParams], None]


@dataclass(frozen=True)
class Family:
    """A model family.

    data: which data it learns from, `images` (data/processed) or `scenes` (data/scenes).
    monitor, mode: the validation metric the best checkpoint is kept by (ModelCheckpoint's).
    metric: the champion metric's key in Evaluation.metrics; higher_is_better says which way.
    section: the family's params section, from all params.
    train: fit the model; the best epoch is kept in the state.
    evaluate: (model, data, params) -> Evaluation on the test set.
    statistic: (items, weights) -> the champion metric of items weighted per row (a bootstrap
    resample's counts); with all weights 1, metrics[metric].
    pictures: (model, data, plots directory, params) -> the picture files it wrote.
    serving: (model, data, params) -> what the registered model is logged with.
    task: the task of its data (class names, input shape, test fingerprint).
    """

    name: str
    data: Literal["images", "scenes"]
    monitor: str
    mode: Literal["min", "max"]
    metric: str
    higher_is_better: bool
    section: Callable[[Params], Section]
    train: Train
    evaluate: Callable[[keras.Model, Path, Params], Evaluation]
    statistic: Callable[[np.ndarray, np.ndarray], float]
    pictures: Callable[[keras.Model, Path, Path, Params], list[Path]]
    serving: Callable[[keras.Model, Path, Params], Serving]
    task: Callable[[Path], Task]
