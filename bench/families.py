"""The course's other model families in the default pipeline: a clean clone's whole `dvc repro`
stage by stage, and each family's test metrics against its target (issue 15)."""

import tempfile
import time
from pathlib import Path

from bench import pipeline
from imagepipe.core.files import read_json
from imagepipe.core.params import load_params

# The target of each family's metric, and the CNN's accuracy for the recurrent classifier.
TARGETS = {
    "unet": ("test_mean_iou", 0.85, "U-Net mean IoU on held-out scenes"),
    "detector": ("test_map50", 0.80, "detector mAP@0.5 on held-out scenes"),
    "autoencoder": ("test_anomaly_auroc", 0.80, "autoencoder anomaly AUROC on the held-out class"),
    "rnn": ("test_accuracy", 0.89, "recurrent classifier test accuracy"),
}
MAX_REPRO_SECONDS = 15 * 60


def measure_families(root: Path) -> dict:
    """Clone root's committed project, run its whole default pipeline, read every family's metrics."""
    with tempfile.TemporaryDirectory(prefix="bench-families-") as scratch:
        clone = Path(scratch) / "project"
        started = time.perf_counter()
        cloned = pipeline.clean_clone(root, clone)
        result = of_pipeline(clone, cloned, pipeline.full_repro(clone))
        return result | {"seconds": time.perf_counter() - started}


def of_pipeline(clone: Path, cloned: dict, full_repro: list[dict]) -> dict:
    """The families' part of a clone's whole dvc repro: its stages and every family's metrics."""
    families = load_params(clone / "params.yaml").families
    names = ["cnn", *families.images, *families.scenes]
    metrics = {name: read_json(clone / "metrics" / f"{name}.json") for name in names}
    return {"clone": cloned, "full_repro": full_repro, "metrics": metrics}


def render_families(families: dict) -> list[str]:
    stages = families["full_repro"]
    total = sum(stage["seconds"] for stage in stages)
    metrics = families["metrics"]
    return [
        "## The course's other model families",
        "",
        f"`{families['command']}` on {families['machine']['cpu']} ({families['machine']['cores']} cores), "
        f"{families['date']}, commit {families['clone']['commit'][:10]}: the whole default `dvc repro` of a "
        "clean clone, stage by stage, then the metrics it wrote.",
        "",
        "| stage | seconds | peak memory (MiB) |",
        "|---|---|---|",
        *(f"| {stage['stage']} | {stage['seconds']:.1f} | {stage['peak_memory_mib']:,.0f} |" for stage in stages),
        f"| **total** | **{total:.0f} ({total / 60:.1f} min)** | |",
        "",
        "| family | metric | value | 95% interval |",
        "|---|---|---|---|",
        *(_metric_row(name, values) for name, values in metrics.items()),
        "",
        "### Targets (issue 15)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(_target_row(name, metrics[name]) for name in TARGETS if name in metrics),
        _row(
            "whole default `dvc repro` from a clean clone ≤ 15 min",
            f"{total / 60:.1f} min",
            total <= MAX_REPRO_SECONDS,
        ),
        "",
    ]


CHAMPION_METRICS = ("test_accuracy", "test_mean_iou", "test_map50", "test_anomaly_auroc")


def _metric_row(name: str, values: dict) -> str:
    key = next(key for key in CHAMPION_METRICS if key in values)
    low, high = values.get(f"{key}_ci", [float("nan"), float("nan")])
    extra = f"; mAP@0.5:0.95 {values['test_map50_95']:.3f}" if "test_map50_95" in values else ""
    return f"| {name} | {key}{extra} | {values[key]:.4f} | [{low:.4f}, {high:.4f}] |"


def _target_row(name: str, values: dict) -> str:
    key, goal, what = TARGETS[name]
    return _row(f"{what} ≥ {goal:g}", f"{values[key]:.4f}", values[key] >= goal)


def _row(name: str, measured: str, met: bool) -> str:
    return f"| {name} | {measured} | {'yes' if met else '**no**'} |"
