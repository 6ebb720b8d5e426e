import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imagepipe.data.sources.raw import ArraySplit
from imagepipe.data.storage import save_raw
from imagepipe.validation.expectations import image_table, split_table
from imagepipe.validation.runner import validate_dataset
from tests.helpers.data import balanced_labels

ROOT = Path(__file__).resolve().parents[2]
NAMES = [f"class {i}" for i in range(10)]


def split(labels, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    return ArraySplit(rng.integers(0, 256, (len(labels), 28, 28, 1)).astype(dtype), np.asarray(labels, np.int64))


def check(make_params, train, test, **validate):
    params = make_params(validate=validate) if validate else make_params()
    tables = {name: image_table(split.images, split.labels) for name, split in (("train", train), ("test", test))}
    return validate_dataset(tables, NAMES, params.validation, params.image)


def test_split_table_streams_batches_into_one_table():
    data = split(balanced_labels(10, 30))
    whole = image_table(data.images, data.labels)
    batches = ((data.images[i : i + 7], data.labels[i : i + 7]) for i in range(0, 300, 7))
    streamed = split_table(batches)
    assert streamed["id"].tolist() == list(range(300))
    assert streamed.equals(whole)
    assert whole["pixel_mean"].iloc[3] == data.images[3].mean()


def test_balanced_data_passes(make_params):
    report = check(make_params, split(balanced_labels(10, 30)), split(balanced_labels(10, 12), seed=1))
    assert report.success, report.failures
    assert set(report.result) == {"train_images", "train_classes", "test_images", "test_classes", "test_vs_train"}


def test_labels_outside_class_set(make_params):
    labels = balanced_labels(10, 30)
    labels[[3, 7]] = [10, -1]
    report = check(make_params, split(labels), split(balanced_labels(10, 12)))
    assert not report.success
    (failure,) = [f for f in report.failures if f.startswith("train_images")]
    assert "labels are class indices 0..9: 2 of 300 rows fail" in failure
    assert "10 (1x)" in failure and "-1 (1x)" in failure and "first image indices 3, 7" in failure


def test_skewed_class_distribution_names_classes(make_params):
    labels = np.r_[np.repeat(np.arange(9), 20), np.full(120, 9)]
    report = check(make_params, split(labels), split(labels, seed=1), max_kl_divergence=1.0)
    failures = "\n".join(report.failures)
    assert (
        "train_classes: every class's share is 0.5..2.0 times the uniform share: 1 of 10 rows fail (class 9=4)"
        in failures
    )
    assert "test_classes" in failures


def test_empty_class_fails_minimum_count(make_params):
    labels = np.repeat(np.arange(9), 30)
    report = check(make_params, split(labels), split(balanced_labels(10, 12)), min_class_share_ratio=0.0)
    assert any("every class has at least 10 images: 1 of 10 rows fail (class 9=0)" in f for f in report.failures)


def test_train_test_shift_fails_kl(make_params):
    test_labels = np.r_[np.repeat(np.arange(10), 10), np.repeat([0, 1], 25)]
    report = check(make_params, split(balanced_labels(10, 30)), split(test_labels), max_class_share_ratio=3.0)
    (failure,) = report.failures
    assert failure.startswith(
        "test_vs_train: test label distribution is within KL divergence 0.05 of train's: observed 0."
    )


def test_nan_and_out_of_range_pixels_and_wrong_shape(make_params):
    train = split(balanced_labels(10, 30), dtype=np.float32)
    train.images[5, 0, 0, 0] = np.nan
    train.images[6, 0, 0, 0] = 300.0
    test = split(balanced_labels(10, 12))
    test = ArraySplit(test.images[:, :27], test.labels)
    failures = "\n".join(check(make_params, train, test).failures)
    assert (
        "train_images: no missing (NaN) pixels: 1 of 300 rows fail "
        "(missing_pixels values 1 (1x); first image indices 5)" in failures
    )
    assert "train_images: pixel values within [0, 255]" in failures and "300 (1x)" in failures
    assert "test_images: image height is 28: 120 of 120 rows fail" in failures


def run_validate(tmp_path: Path, assets: Path = ROOT / "vendor/datadocs/node_modules") -> subprocess.CompletedProcess:
    """`python -m stages.validate` on tmp_path/raw, as dvc.yaml runs it, into tmp_path/validation and
    tmp_path/plots/label_distribution.csv."""
    return subprocess.run(
        [
            *(sys.executable, "-m", "stages.validate", "--params", str(ROOT / "params.yaml")),
            *("--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "validation")),
            *("--assets", str(assets), "--plot", str(tmp_path / "plots" / "label_distribution.csv")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def validate_with_a_stray_label(tmp_path: Path) -> subprocess.CompletedProcess:
    """The stage on a train split whose first label, 42, names no class."""
    labels = balanced_labels(10, 30)
    labels[0] = 42
    splits = {"train": split(labels), "test": split(balanced_labels(10, 12))}
    save_raw(tmp_path / "raw", splits, (28, 28, 1), NAMES, {})
    return run_validate(tmp_path)


def test_stage_fails_with_report_and_keeps_docs(tmp_path):
    out = tmp_path / "validation"
    result = validate_with_a_stray_label(tmp_path)
    assert result.returncode == 1
    assert "error: data validation failed (1 expectation(s))" in result.stderr
    assert "labels are class indices 0..9" in result.stderr and "42 (1x)" in result.stderr
    assert (out / "docs" / "index.html").exists()
    offline_index = (out / "docs" / "results.html").read_text()
    assert (
        "train_images</a>: FAILED" in offline_index
        and "test_images</a>: passed" in offline_index
        and "42 (1x)" in offline_index
    )
    assert json.loads((out / "summary.json").read_text())["success"] is False
    index = (out / "docs" / "index.html").read_text()
    assert '<a href="label_distribution.html">Label distribution</a>' in index and "cdn.jsdelivr.net" not in index
    assert "static/vendor/vega/build/vega.min.js" in (out / "docs" / "label_distribution.html").read_text()
    # The plot: a row per split and class; the label 42 is in no class, but in train's size.
    plot = pd.read_csv(tmp_path / "plots" / "label_distribution.csv")
    train, test = (plot[plot["split"] == name] for name in ("train", "test"))
    assert train["class"].tolist() == NAMES and train["count"].sum() == 299 and test["share"].sum() == pytest.approx(1)
    assert train["lower"].unique().tolist() == [0.05] and test["upper"].unique().tolist() == [0.2]


def test_dvc_draws_the_label_distribution_over_the_allowed_band(tmp_path):
    """`dvc plots show` with the project's template: a shaded band from lower to upper behind a
    bar per class and split, from the plot the stage writes."""
    validate_with_a_stray_label(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(tmp_path / "plots" / "label_distribution.csv", repo / "plots.csv")
    dvc = [str(Path(sys.executable).parent / "dvc")]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=repo, check=True)
    (repo / ".dvc" / "plots").mkdir()
    shutil.copy(ROOT / ".dvc/plots/label_distribution.json", repo / ".dvc/plots")
    shown = subprocess.run(
        [*dvc, "plots", "show", "plots.csv", "--template", "label_distribution", "--show-vega"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    band, bars = json.loads(shown.stdout)["layer"]
    assert (band["encoding"]["x"]["field"], band["encoding"]["x2"]["field"]) == ("lower", "upper")
    assert (bars["encoding"]["x"]["field"], bars["encoding"]["yOffset"]["field"]) == ("share", "split")
    values = json.loads(shown.stdout)["data"]["values"]
    assert len(values) == 20 and {row["class"] for row in values} == set(NAMES)


def test_stage_without_the_assets_says_how_to_install_them_before_validating(tmp_path):
    result = run_validate(tmp_path, assets=tmp_path / "node_modules")  # and no raw data: it stops first
    assert result.returncode == 1
    assert "error: the Data Docs' browser assets are not installed in" in result.stderr
    assert "run `make setup` (or `npm ci --prefix vendor/datadocs`)" in result.stderr
    assert not (tmp_path / "validation").exists()
