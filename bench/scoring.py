"""Batch scoring: the score flow as users run it (`python -m flows.score`), on held-out test images,
on the same images shifted three ways, and on a folder ten times larger: each run's end state,
drift statistics, wall seconds, images/s and peak memory.

The folders are PNGs of the project's test split (data/raw: held out from training, so from the
champion's drift reference too): a seeded 1,000; the same inverted (255 − x), rotated by 90° and
with Gaussian noise (σ = 0.1 of the range, clipped); and all 10,000. Each run is a fresh process
with no PREFECT_API_URL (Prefect starts a temporary server) on a scratch Prefect home, and logs its
scoring run in the project's MLflow store, as a user's run would.
"""

import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from PIL import Image

from bench.pipeline import BIN, environment, timed
from flows.score import LAST_RUN
from imagepipe.core.files import read_json
from imagepipe.core.params import load_params
from imagepipe.data.shards import open_split

SAMPLE = 1000
# Not params.seed: the flow draws a large folder's feature sample with it, and would draw exactly
# these 1,000 images out of the 10,000, so the two folders' feature tests would be one test.
SEED = 14
NOISE = 0.1  # σ of the Gaussian noise, as a share of the pixel range
# What each shift should give: held-out images no drift, the shifts drift (issue 14);
# the noise is measured without an expectation, to show where the thresholds sit.
SHIFTS: dict[str, tuple[Callable[[np.ndarray, np.random.Generator], np.ndarray], str | None]] = {
    "held-out": (lambda images, rng: images, "Completed"),
    "inverted": (lambda images, rng: 255 - images, "Drifted"),
    "rotated 90°": (lambda images, rng: np.rot90(images, axes=(1, 2)), "Drifted"),
    f"noise σ = {NOISE}": (
        lambda images, rng: np.clip(images + rng.normal(0, NOISE * 255, images.shape), 0, 255).round(),
        None,
    ),
}
ENDS = ("Completed", "Drifted")  # a scored run's states; any other is the benchmark's failure
STATE = re.compile(r'^\s*"state": "([^"]+)"', re.MULTILINE)  # from the JSON the flow's CLI prints


def write_pngs(images: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True)
    for index, image in enumerate(images.astype(np.uint8)):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / f"{index:05d}.png")


def score_folder(project: Path, folder: Path, output: Path, env: dict[str, str]) -> dict:
    """One `python -m flows.score` run over folder: its end state, timing and the MLflow run's figures."""
    command = [sys.executable, "-m", "flows.score", "--source", str(folder), "--output", str(output), "--rescore"]
    timing = timed(command, project, env, check=False)
    states = STATE.findall(timing["output"])
    if not states or states[-1] not in ENDS:
        raise RuntimeError(f"`{' '.join(command)}` did not score {folder}:\n{timing['output'][-3000:]}")
    run = MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(read_json(output / LAST_RUN)["mlflow_run_id"])
    return {
        "state": states[-1],
        "seconds": timing["seconds"],
        "peak_memory_mib": timing["peak_memory_mib"],
        "metrics": run.data.metrics,
        "model": run.data.tags["registered_model"],
        "version": run.data.tags["model_version"],
    }


def measure_scoring(project: Path, scratch: Path, log) -> dict:
    params = load_params(project / "params.yaml")
    test = open_split(project / "data" / "raw", "test")
    rng = np.random.default_rng(SEED)
    held_out = test.read(np.sort(rng.choice(test.count, SAMPLE, replace=False)))
    folders = {name: (shift(held_out, rng), expected) for name, (shift, expected) in SHIFTS.items()}
    folders[f"all {test.count:,} held-out"] = (test.read(np.arange(test.count)), "Completed")
    env = environment(
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
        PREFECT_HOME=str(scratch / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="0",
    )
    # A user's Prefect home holds the server's database from their first run on: create it
    # untimed, so each run's seconds are those of a later run (a first run adds ~8 s here).
    subprocess.run(
        [str(BIN / "prefect"), "server", "database", "upgrade", "-y"], env=env, check=True, capture_output=True
    )
    runs = []
    for number, (name, (images, expected)) in enumerate(folders.items()):
        folder = scratch / f"images-{number}"
        write_pngs(images, folder)
        log.info("scoring %d images: %s", len(images), name)
        scored = score_folder(project, folder, scratch / f"scores-{number}", env)
        runs.append({"folder": name, "images": len(images), "expected": expected} | scored)
    return {"runs": runs, "limits": params.score.model_dump()}


def render_scoring(scoring: dict) -> list[str]:
    runs, limits = scoring["runs"], scoring["limits"]
    lines = [
        "## Batch scoring",
        "",
        f"`{scoring['command']}`, {scoring['date']} on {scoring['machine']['cpu']} ({scoring['machine']['cores']} "
        f"cores): `python -m flows.score --source DIR --rescore` with `{runs[0]['model']}` v{runs[0]['version']}, a "
        "fresh process per folder against a temporary Prefect server (its database created beforehand, as after a "
        "user's first run), over PNGs of the test split (held out from "
        "training and from the drift reference): 1,000 seeded images, the same shifted, and all of them. Seconds "
        "are the whole command's (imports, the temporary server, the champion's download, validation, prediction, "
        "the drift tests, MLflow); peak memory is the largest process's.",
        "",
        "| folder | images | end state | predicted classes: TV (p) | features: MMD² (p) | seconds | img/s | peak MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        metrics = run["metrics"]
        lines.append(
            f"| {run['folder']} | {run['images']:,} | {run['state']} "
            f"| {metrics['drift.class_total_variation']:.3f} ({p_value(metrics['drift.class_p_value'])}) "
            f"| {metrics['drift.feature_mmd2']:.4f} ({p_value(metrics['drift.feature_p_value'])}) "
            f"| {run['seconds']:.1f} | {run['images'] / run['seconds']:,.0f} | {run['peak_memory_mib']:,.0f} |"
        )
    # Against the median of the 1,000-image runs: the same work, seconds apart from run to run.
    small, large = runs[0], max(runs, key=lambda run: run["images"])
    baseline = statistics.median(run["seconds"] for run in runs if run["images"] == small["images"])
    marginal = (large["images"] - small["images"]) / (large["seconds"] - baseline)
    lines += [
        "",
        f"Drift when TV > {limits['max_class_total_variation']} and p < {limits['class_p_value']}, or MMD² > "
        f"{limits['min_feature_mmd2']} and p < {limits['feature_p_value']} (`score` in params.yaml); "
        f"{limits['feature_permutations']} permutations make the smallest feature p-value "
        f"1/{limits['feature_permutations'] + 1} = {1 / (limits['feature_permutations'] + 1):.3f}. MMD² is the "
        "unbiased estimate, which falls slightly below 0 when two samples are alike. "
        f"Beyond the first {small['images']:,} images (the median of the {small['images']:,}-image runs: "
        f"{baseline:.1f} s), {marginal:,.0f} img/s.",
        "",
    ]
    return lines


def p_value(value: float) -> str:
    """A p-value; SciPy's chi-square tail underflows to 0 below about 1e-308."""
    return f"{value:.2g}" if value > 0 else "< 1e-300"
