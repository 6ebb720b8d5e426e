import json

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from imagepipe.core.errors import StageError
from imagepipe.data.scenes import Scenes, save_scenes
from imagepipe.families.detector.average_precision import SceneBoxes, scene_rows, weighted_ap50
from imagepipe.families.detector.coco import coco_scores
from imagepipe.families.detector.grid import encode_targets, grid_shape
from imagepipe.families.detector.model import detection_loss, detector
from imagepipe.tracking.serving import detections
from stages import evaluate_family, train_family
from tests.helpers.stages import run_main

NAMES = ["cat", "dog", "bird"]
CONFIG = {"stride": 8, "class_names": NAMES, "score_threshold": 0.05, "nms_iou": 0.5}
TINY = {
    "stride": 8,
    "filters": 4,
    "score_threshold": 0.05,
    "nms_iou": 0.5,
    "epochs": 1,
    "batch_size": 8,
    "learning_rate": 0.01,
}


def confident(targets: np.ndarray) -> np.ndarray:
    """The raw grid a perfect model would give for targets: sure logits, the boxes as encoded."""
    raw = targets.copy()
    raw[..., 0] = np.where(targets[..., 0] > 0, 20.0, -20.0)
    raw[..., 5:] = targets[..., 5:] * 20
    return raw


def scene(boxes, labels, scores=None) -> SceneBoxes:
    return SceneBoxes(
        np.asarray(boxes, np.float64).reshape(-1, 4),
        np.asarray(labels, np.int64),
        None if scores is None else np.asarray(scores, np.float64),
    )


def test_encoded_targets_decode_back_to_the_boxes():
    boxes = np.array([[[3, 4, 25, 30], [30, 33, 58, 55], [0, 0, 0, 0]], [[40, 2, 62, 24], [0, 0, 0, 0]] + [[0] * 4]])
    labels = np.array([[2, 0, -1], [1, -1, -1]])
    table = detections(confident(encode_targets(boxes, labels, (64, 64, 1), 8, 3)), CONFIG)
    assert table.columns.tolist() == ["image", "class", "score", "x_min", "y_min", "x_max", "y_max"]
    assert table["image"].tolist() == [0, 0, 1] and table["class"].tolist() == ["bird", "cat", "dog"]
    expected = [[3, 4, 25, 30], [30, 33, 58, 55], [40, 2, 62, 24]]
    np.testing.assert_allclose(table[["x_min", "y_min", "x_max", "y_max"]].to_numpy(), expected, atol=1e-4)
    assert (table["score"] > 0.99).all()


def test_items_get_the_cells_around_their_centre_that_their_boxes_hold():
    boxes = np.array([[[1, 1, 23, 23], [26, 26, 30, 62]]], np.float32)  # a square; a bar one cell wide
    targets = encode_targets(boxes, np.array([[0, 1]]), (64, 64, 1), 8, 2)
    square, bar = [[r, c] for r in range(3) for c in range(3)], [[4, 3], [5, 3], [6, 3]]
    assert np.argwhere(targets[0, ..., 0]).tolist() == square + bar
    assert targets[0, 5, 3, 5:].tolist() == [0, 1] and targets[0, 0, 0, 1:3] == pytest.approx([1, 1])


def test_two_centres_in_one_cell_go_to_the_smaller_item():
    boxes = np.array([[[0, 0, 30, 30], [9, 9, 21, 21]]], np.float32)  # both centres at (15, 15)
    targets = encode_targets(boxes, np.array([[0, 1]]), (32, 32, 1), 8, 2)
    assert targets[0, 1, 1, 5:].tolist() == [0, 1] and np.exp(targets[0, 1, 1, 3]) * 8 == pytest.approx(12)
    assert targets[0, 0, 0, 5:].tolist() == [1, 0] and targets[..., 0].sum() == 9


def test_non_maximum_suppression_keeps_the_best_box_of_a_class():
    raw = np.full((1, 4, 4, 5 + 3), -20.0)
    raw[0, 1, 1, :6] = [3.0, 0.4, 0.4, np.log(2), np.log(2), 20]  # a cat, 7.2..23.2 both ways
    raw[0, 1, 2, :6] = [1.0, -0.6, 0.4, np.log(2), np.log(2), 20]  # the same cat from the next cell, weaker
    raw[0, 2, 2, :8] = [1.0, -0.5, -0.5, np.log(2), np.log(2), -20, -20, 20]  # a bird at 8..24, overlapping
    table = detections(raw, CONFIG | {"nms_iou": 0.5})
    assert table["class"].tolist() == ["cat", "bird"]
    assert table["score"].iloc[0] == pytest.approx(1 / (1 + np.exp(-3)), rel=1e-5)
    assert len(detections(raw, CONFIG | {"nms_iou": 1.0})) == 3
    assert len(detections(raw, CONFIG | {"max_detections": 1})) == 1


def test_empty_grids_give_an_empty_table():
    table = detections(np.full((2, 8, 8, 8), -20.0), CONFIG)
    assert table.empty and table.columns.tolist()[:3] == ["image", "class", "score"]


TRUTH = [scene([[0, 0, 20, 20], [30, 30, 60, 60]], [0, 1]), scene([[10, 10, 40, 30]], [0])]
CASES = {
    "perfect": [scene([[0, 0, 20, 20], [30, 30, 60, 60]], [0, 1], [0.9, 0.8]), scene([[10, 10, 40, 30]], [0], [0.7])],
    "a miss": [scene([[0, 0, 20, 20], [30, 30, 60, 60]], [0, 1], [0.9, 0.8]), scene([], [], [])],
    "a false positive": [
        scene([[0, 0, 20, 20], [30, 30, 60, 60], [40, 0, 60, 20]], [0, 1, 0], [0.9, 0.8, 0.95]),
        scene([[10, 10, 40, 30]], [0], [0.6]),
    ],
    "two classes, swapped and shifted": [
        scene([[2, 1, 21, 22], [30, 30, 60, 60], [0, 0, 20, 20]], [0, 0, 1], [0.5, 0.9, 0.4]),
        scene([[12, 10, 40, 33], [10, 10, 40, 30]], [0, 1], [0.3, 0.8]),
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_numpy_ap50_equals_pycocotools(case):
    found = CASES[case]
    expected = coco_scores(found, TRUTH, NAMES, (64, 64))["test_map50"]
    assert weighted_ap50(scene_rows(found, TRUTH, 3), np.ones(2)) == pytest.approx(expected, abs=1e-12)
    if case == "perfect":
        assert expected == pytest.approx(1.0)


def test_numpy_ap50_equals_pycocotools_on_random_scenes():
    rng = np.random.default_rng(0)
    truth, found = [], []
    for _ in range(40):
        corners = rng.uniform(0, 40, (3, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(8, 24, (3, 2))], axis=1)
        truth.append(scene(boxes, rng.integers(0, 3, 3)))
        guesses = np.concatenate([boxes, boxes + rng.normal(0, 4, boxes.shape)])
        found.append(scene(guesses, rng.integers(0, 3, 6), rng.uniform(0, 1, 6)))
    metrics = coco_scores(found, truth, NAMES, (64, 64))
    items = scene_rows(found, truth, 3)
    assert weighted_ap50(items, np.ones(40)) == pytest.approx(metrics["test_map50"], abs=1e-12)
    assert 0 < metrics["test_map50_95"] < metrics["test_map50"] < 1
    weights = rng.integers(0, 3, 40)
    repeated = np.repeat(items, weights, axis=0)  # a resample, as whole copies of scenes
    assert weighted_ap50(items, weights) == pytest.approx(weighted_ap50(repeated, np.ones(len(repeated))))


def test_no_detections_score_zero():
    found = [scene([], [], []), scene([], [], [])]
    metrics = coco_scores(found, TRUTH, NAMES, (64, 64))
    assert metrics["test_map50"] == 0 == metrics["test_map50_95"]
    assert metrics["per_class_ap50"] == {"cat": 0.0, "dog": 0.0, "bird": None}
    assert weighted_ap50(scene_rows(found, TRUTH, 3), np.ones(2)) == 0.0


def test_bad_items_are_refused():
    with pytest.raises(ValueError, match="scene rows"):
        weighted_ap50(np.zeros((3, 5)), np.ones(2))


@pytest.mark.parametrize(("shape", "grid"), [((64, 64, 1), (8, 8)), ((32, 32, 3), (4, 4))])
def test_the_detector_maps_a_canvas_to_its_grid(shape, grid):
    model = detector(shape, 3, 8, 4)
    assert model.output_shape == (None, *grid, 5 + 3)
    targets = encode_targets(np.array([[[2, 2, 20, 20]]]), np.array([[1]]), shape, 8, 3)
    loss = float(detection_loss(targets, model.predict(np.zeros((1, *shape), np.float32), verbose=0)))
    assert np.isfinite(loss) and loss > 0


def test_a_canvas_that_the_stride_does_not_divide_is_refused():
    with pytest.raises(StageError, match="60×64 pixels does not divide into cells of stride 8"):
        detector((60, 64, 1), 3, 8, 4)
    with pytest.raises(StageError, match="power of two"):
        grid_shape((64, 64), 6)


def tiny_scenes(directory, seed=0):
    """Scenes of 32×32 with a bright square (cat), a mid-grey bar (dog) or both."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    for split, count in (("train", 24), ("val", 8), ("test", 8)):
        images = rng.integers(0, 40, (count, 32, 32, 1)).astype(np.uint8)
        boxes, labels = np.zeros((count, 2, 4), np.float32), np.full((count, 2), -1, np.int32)
        for index in range(count):
            for slot, (label, size, value) in enumerate(((0, 10, 250), (1, 12, 150))[: 1 + index % 2]):
                x, y = 2 + 16 * slot + rng.integers(0, 3), rng.integers(2, 32 - size - 2)
                images[index, y : y + size, x : x + size // 2 + 3 * label] = value
                boxes[index, slot], labels[index, slot] = [x, y, x + size // 2 + 3 * label, y + size], label
        masks = np.zeros((count, 32, 32), np.uint8)
        save_scenes(directory, split, Scenes(images, masks, boxes, labels))
    (directory / "classes.json").write_text(json.dumps(["cat", "dog"]))
    (directory / "summary.json").write_text(json.dumps({"success": True}))
    return directory


def test_stages_train_evaluate_and_serve_the_detector(mlflow_store, tmp_path, monkeypatch, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params | {"train_detector": TINY}))
    tiny_scenes(tmp_path / "scenes")
    places = ["--model-dir", "models/detector", "--plots", "plots/detector", "--family", "detector"]
    run_main(train_family, monkeypatch, "--data", "scenes", *places)
    run_main(
        evaluate_family,
        monkeypatch,
        *places,
        "--data",
        "scenes",
        "--validation",
        "scenes/summary.json",
        "--metrics",
        "metrics/detector.json",
    )
    metrics = json.loads((tmp_path / "metrics/detector.json").read_text())
    assert metrics["num_test_scenes"] == 8 and set(metrics["per_class_ap50"]) == {"cat", "dog"}
    low, high = metrics["test_map50_ci"]
    assert 0 <= low <= metrics["test_map50"] <= high <= 1 and 0 <= metrics["test_map50_95"] <= 1
    assert (tmp_path / "plots/detector/pictures/detections.png").exists()
    name = f"{raw_params['data']['dataset']}-detector"
    champion = MlflowClient(mlflow_store).get_model_version_by_alias(name, "champion")
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    table = served.predict(np.full((2, 32, 32, 1), 30, np.float32))
    assert str(champion.version) == "1" and table.columns.tolist()[:3] == ["image", "class", "score"]
    assert served.model_config["stride"] == 8 and served.model_config["class_names"] == ["cat", "dog"]
