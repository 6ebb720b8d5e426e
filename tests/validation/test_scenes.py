import dataclasses

import numpy as np
import pytest

from imagepipe.data.composition import compose_scenes, generator
from imagepipe.data.scenes import Scenes
from imagepipe.validation.scenes import item_class_table, split_tables, stray_mask_classes, validate_scenes

NAMES = ["a", "b", "c"]


@pytest.fixture
def section(make_params):
    return make_params(compose_scenes={"train_scenes": 40, "val_scenes": 20, "test_scenes": 20}).compose_scenes


@pytest.fixture
def scenes(section) -> tuple[Scenes, np.ndarray]:
    """40 composed scenes of 300 items of classes a, b, c (balanced), and the items' labels."""
    labels = np.repeat(np.arange(3), 100)
    images = np.zeros((300, 28, 28, 1), np.float32)
    images[:, 6:22, 6:22] = 0.9
    scenes = compose_scenes(lambda indices: images[indices], labels, (28, 28, 1), 40, section, generator(0, "train"))
    return scenes, labels


def test_composed_scenes_pass(scenes, section):
    report = validate_scenes({"train": split_tables(*scenes, NAMES)}, NAMES, section)
    assert report.success, report.failures
    assert set(report.result) == {"train_scenes", "train_items", "train_classes"}


def test_broken_scenes_name_what_failed(scenes, section):
    good, source_labels = scenes
    labels, boxes, masks = good.labels.copy(), good.boxes.copy(), good.masks.copy()
    labels[0, 0] = 7
    boxes[1, 0] = [60, 0, 70, 10]
    masks[2, :2, :2] = 9
    broken = dataclasses.replace(good, labels=labels, boxes=boxes, masks=masks)
    report = validate_scenes({"train": split_tables(broken, source_labels, NAMES)}, NAMES, section)
    failures = "\n".join(report.failures)
    assert not report.success
    items = (broken.labels >= 0).sum()
    assert f"train_items: labels within 0..2: 1 of {items} rows fail (scene 0 item 0=7)" in failures
    assert (
        f"train_items: boxes inside the 64x64 canvas (x_max within 0..64): 1 of {items} rows fail (scene 1 item 0=70)"
        in failures
    )
    assert (
        "train_scenes: mask values within 0..3: 1 of 40 rows fail (mask_max values 9 (1x); first image indices 2)"
        in (failures)
    )
    assert "train_scenes: the mask paints only the classes of the scene's items" in failures  # scenes 0 and 2
    assert "every item shows pixels of its class in its box" in failures  # scene 0 item 0: no class 7 pixels


def test_counts_and_classes_are_checked(scenes, make_params):
    section = make_params(compose_scenes={"train_scenes": 41}).compose_scenes
    source_labels = np.r_[scenes[1], [3] * 100]  # a class the items never show
    names = [*NAMES, "d"]
    report = validate_scenes({"train": split_tables(scenes[0], source_labels, names)}, names, section)
    failures = "\n".join(report.failures)
    assert "train_scenes: 41 scenes, as compose_scenes asks: observed 40" in failures
    assert "train_classes: every class appears among items: 1 of 4 rows fail (d=0)" in failures


def test_class_shares_are_against_the_source_split():
    table = item_class_table(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 1, 2, 2]), NAMES)
    assert table["count"].tolist() == [3, 1, 0]
    np.testing.assert_allclose(table["share_ratio"], [1.5, 1.5, 0.0])


def test_stray_mask_classes_counts_classes_without_an_item():
    masks = np.zeros((2, 4, 4), np.uint8)
    masks[0, 0, 0], masks[1, 0, 0], masks[1, 1, 1] = 1, 2, 3
    scenes = Scenes(np.zeros((2, 4, 4, 1), np.uint8), masks, np.zeros((2, 2, 4)), np.array([[0, -1], [1, -1]]))
    assert stray_mask_classes(scenes).tolist() == [0, 1]
