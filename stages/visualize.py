"""visualize: the course's ground truth vs prediction grid, the confusion matrix, the curves, and the model card.

Writes `gt_vs_pr.png` (rows × columns test images titled `GT: <class> / PR: <class>`, wrong
predictions in red with a red frame), `confusion_matrix.png` and `training_curves.png` into
`plots/<model>/`, and logs them to the training stage's MLflow run. Then it publishes the
registered version's model card (after evaluate's gate has decided): the version's description,
and `model_card/model_card.md` and `.html` on the run (docs: Tracking and registry).
"""

import argparse
import csv
import logging
from pathlib import Path

import mlflow
import numpy as np
from matplotlib.figure import Figure

from imagepipe.core.cli import run_stage
from imagepipe.core.params import load_params
from imagepipe.tracking.card_publish import publish_classifier_card
from imagepipe.tracking.runs import resumed_run
from imagepipe.training.classification import confusion_figure, gt_vs_pr_grid
from imagepipe.training.inputs import load_class_names, load_split

logger = logging.getLogger(__name__)


def read_predictions(path: Path) -> tuple[list[str], list[str]]:
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["actual"] for row in rows], [row["predicted"] for row in rows]


def curves_figure(history_csv: Path) -> Figure:
    with Path(history_csv).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = [key for key in rows[0] if key != "epoch" and not key.startswith("val_")]
    figure = Figure(figsize=(5 * len(keys), 3.5))
    axes = figure.subplots(1, len(keys), squeeze=False)
    epochs = [int(row["epoch"]) + 1 for row in rows]
    for axis, key in zip(axes.flat, keys, strict=True):
        for name in (key, f"val_{key}"):
            if name in rows[0]:
                axis.plot(epochs, [float(row[name]) for row in rows], marker="o", label=name)
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend()
    figure.tight_layout()
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="the model's preprocessed data")
    parser.add_argument("--model-dir", type=Path, required=True, help="e.g. models/cnn (for its MLflow run)")
    parser.add_argument(
        "--plots", type=Path, required=True, help="e.g. plots/cnn: predictions.csv and history.csv in, PNGs out"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="evaluate's metrics, e.g. metrics/cnn.json")
    parser.add_argument("--validation", type=Path, required=True, help="validate's summary.json for that data")
    args = parser.parse_args()
    params = load_params(args.params)
    test = load_split(args.data, "test")
    actual, predicted = read_predictions(args.plots / "predictions.csv")
    count = min(params.visualize.rows * params.visualize.columns, len(actual))
    chosen = np.sort(np.random.default_rng(params.seed).choice(len(actual), count, replace=False))
    figures = {
        "gt_vs_pr.png": gt_vs_pr_grid(
            test.images(chosen),
            [actual[i] for i in chosen],
            [predicted[i] for i in chosen],
            params.visualize.rows,
            params.visualize.columns,
        ),
        "confusion_matrix.png": confusion_figure(actual, predicted, load_class_names(args.data)),
        "training_curves.png": curves_figure(args.plots / "history.csv"),
    }
    with resumed_run(args.model_dir / "mlflow.json"):
        for name, figure in figures.items():
            figure.savefig(args.plots / name, dpi=100)
            mlflow.log_figure(figure, f"plots/{name}")
        publish_classifier_card(
            args.model_dir, args.metrics, args.validation, args.plots, params.registry.confidence, (actual, predicted)
        )
    logger.info("wrote %s and the model card", ", ".join(str(args.plots / name) for name in figures))


if __name__ == "__main__":
    run_stage(main)
