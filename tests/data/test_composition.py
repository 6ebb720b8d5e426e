import numpy as np
import pytest

from imagepipe.data import composition
from imagepipe.data.composition import compose_scenes, generator, render, resize
from imagepipe.data.placement import Layout


@pytest.fixture
def params(make_params):
    def make(**values):
        return make_params(compose_scenes=values).compose_scenes

    return make


def blobs(count: int, size: int = 28, channels: int = 1, num_classes: int = 3, seed: int = 0):
    """Items as inputs in [0, 1]: a bright band (where depends on the class) on black."""
    labels = np.random.default_rng(seed).integers(0, num_classes, count)
    images = np.zeros((count, size, size, channels), np.float32)
    for index, label in enumerate(labels):
        images[index, label * size // num_classes : (label + 1) * size // num_classes, 4:-4] = 0.8
    return images, labels


def compose(images, labels, count, section, seed=0, reads=None):
    def read_items(indices):
        if reads is not None:
            reads.append(indices)
        return images[indices]

    return compose_scenes(read_items, labels, images.shape[1:], count, section, generator(seed, "train"))


def test_scenes_are_seeded_and_follow_the_format(params):
    images, labels = blobs(200)
    section = params(background_contrast=0.3)
    scenes = compose(images, labels, 50, section)
    assert scenes.images.shape == (50, 64, 64, 1) and scenes.images.dtype == np.uint8
    assert scenes.masks.shape == (50, 64, 64) and scenes.masks.dtype == np.uint8
    assert scenes.boxes.shape == (50, 4, 4) and scenes.boxes.dtype == np.float32
    assert scenes.labels.dtype == np.int32 and set(np.unique(scenes.labels)) <= {-1, 0, 1, 2}
    assert scenes.masks.max() <= 3
    assert scenes.images[scenes.masks == 0].max() <= round(0.3 * 255)  # the background's contrast
    again, other = compose(images, labels, 50, section), compose(images, labels, 50, section, seed=1)
    assert all(np.array_equal(getattr(scenes, name), getattr(again, name)) for name in ("images", "masks", "boxes"))
    assert not np.array_equal(scenes.images, other.images)


def test_every_mask_pixel_lies_in_a_box_of_its_class(params):
    scenes = compose(*blobs(200), 50, params())
    for index in range(scenes.count):
        boxes, labels = scenes.items(index)
        covered = np.zeros((64, 64), bool)
        for (x_min, y_min, x_max, y_max), label in zip(boxes.astype(int), labels, strict=True):
            covered[y_min:y_max, x_min:x_max] |= scenes.masks[index, y_min:y_max, x_min:x_max] == label + 1
            assert (scenes.masks[index, y_min:y_max, x_min:x_max] == label + 1).any()
        assert np.array_equal(covered, scenes.masks[index] > 0)


def test_later_items_paint_over_earlier_ones_and_boxes_are_tight(params):
    items = np.zeros((2, 10, 10, 3), np.float32)
    items[0, ..., 0] = 0.5  # dark red all over
    items[1, 2:6, 3:9, 1] = 1.0  # green; foreground: rows 2..5, columns 3..8
    layout = Layout(np.array([[0, 1]]), np.array([[[0, 0, 10, 10], [4, 5, 14, 15]]]))
    section = params(canvas_size=20, min_items=1, max_items=2, min_item_size=10, max_item_size=10)
    scenes = render(layout, lambda indices: items[indices], np.array([2, 0]), section, np.random.default_rng(0))
    assert scenes.labels.tolist() == [[2, 0]]
    assert scenes.boxes[0].tolist() == [[0, 0, 10, 10], [7, 7, 13, 11]]
    assert scenes.masks[0, 8, 8] == 1 and scenes.images[0, 8, 8].tolist() == [0, 255, 0]  # the later item on top
    assert scenes.masks[0, 2, 2] == 3 and scenes.images[0, 2, 2].tolist() == [128, 0, 0]
    # The later item's dark surround leaves the earlier one visible.
    assert scenes.masks[0, 5, 5] == 3 and scenes.images[0, 5, 5].tolist() == [128, 0, 0]
    assert scenes.masks[0, 15:, 15:].max() == 0


def test_items_are_read_sorted_a_chunk_at_a_time(params, monkeypatch):
    monkeypatch.setattr(composition, "CHUNK_SCENES", 8)
    images, labels = blobs(300, size=32, channels=3)
    reads: list[np.ndarray] = []
    scenes = compose(images, labels, 30, params(), reads=reads)
    assert scenes.images.shape == (30, 64, 64, 3)
    assert len(reads) == 4 and all(len(chunk) <= 8 * 4 for chunk in reads)
    assert all((np.diff(chunk) > 0).all() for chunk in reads)


def test_resize_keeps_levels():
    flat = np.full((2, 28, 28, 3), 0.25, np.float32)
    np.testing.assert_allclose(resize(flat, 20, 13), 0.25, rtol=1e-6)
    ramp = np.arange(8, dtype=np.float32).reshape(1, 1, 8, 1).repeat(8, 1)
    np.testing.assert_array_equal(resize(ramp, 8, 8), ramp)  # same size: unchanged
