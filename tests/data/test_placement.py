import numpy as np
import pytest

from imagepipe.data.placement import CompositionError, intersections, item_sizes, plan_layout


@pytest.fixture
def params(make_params):
    def make(**values):
        return make_params(compose_scenes=values).compose_scenes

    return make


def test_layout_counts_sizes_and_overlap(params):
    section = params(min_items=2, max_items=4, min_item_size=12, max_item_size=20, max_overlap=0.1)
    layout = plan_layout(500, 5000, (28, 14, 1), section, np.random.default_rng(0))
    present = layout.sources >= 0
    assert set(present.sum(1)) == {2, 3, 4}
    assert (present == (np.arange(4) < present.sum(1)[:, None])).all()
    assert len(np.unique(layout.sources[present])) == present.sum()  # drawn without replacement
    width, height = (layout.boxes[..., 2:] - layout.boxes[..., :2]).transpose(2, 0, 1)
    assert (height[present] >= 12).all() and (height[present] <= 20).all()
    assert (np.abs(width[present] - height[present] / 2) <= 0.5).all()  # aspect kept
    assert (layout.boxes[~present] == 0).all()
    assert (layout.boxes[..., :2] >= 0).all() and (layout.boxes[..., 2:] <= 64).all()
    for slot in range(1, 4):
        covered = intersections(layout.boxes[:, slot : slot + 1], layout.boxes[:, :slot]).sum(-1)[:, 0]
        assert (covered <= 0.1 * width[:, slot] * height[:, slot]).all()


def test_items_repeat_only_when_the_split_is_too_small(params):
    layout = plan_layout(20, 5, (8, 8, 1), params(), np.random.default_rng(0))
    assert set(layout.sources[layout.sources >= 0]) == set(range(5))


def test_a_canvas_too_small_for_the_items_is_refused(params):
    section = params(canvas_size=40, max_items=4, min_item_size=20, max_item_size=28)
    with pytest.raises(CompositionError, match=r"40x40 canvas cannot hold 4 items of 28x28 .* raise compose_scenes"):
        plan_layout(10, 100, (28, 28, 1), section, np.random.default_rng(0))


def test_items_that_cannot_be_placed_are_an_error(params):
    # Two 20x20 items fit in a 30x30 canvas by area, but not side by side without overlap.
    section = params(canvas_size=30, min_items=2, max_items=2, min_item_size=20, max_item_size=20, max_overlap=0.0)
    with pytest.raises(CompositionError, match=r"could not place .* \(such as 20x20, 20x20\) on a 30x30 canvas"):
        plan_layout(10, 100, (28, 28, 1), section, np.random.default_rng(0))


def test_item_sizes_keep_the_aspect():
    assert item_sizes(np.array([20, 28]), (32, 16, 3)).tolist() == [[20, 10], [28, 14]]
    assert item_sizes(np.array([5]), (2, 40, 1)).tolist() == [[1, 5]]  # never thinner than a pixel
