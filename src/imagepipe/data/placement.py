"""Where the items of composed scenes go (imagepipe.data.composition), planned before any pixel is read.

Each scene gets min_items..max_items items of the split (drawn without replacement while the
split has enough, so no item is placed twice), each resized to a side drawn from
min_item_size..max_item_size (its longer side; the aspect is kept). The items are placed in
order by rejection: the boxes placed before an item may cover at most max_overlap of its box,
counted as the sum of its intersections with them (an upper bound of the area they cover); a
scene whose items do not all fit is drawn again.
Params that no scene, or not every scene, can meet are an error that says what to change.
"""

from dataclasses import dataclass

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.core.sections import ComposeScenesParams

# Positions tried at once for each item, and tries of a whole scene before giving up on it.
CANDIDATES = 32
SCENE_TRIES = 50
ADVICE = "raise compose_scenes.canvas_size or max_overlap, or lower max_items or max_item_size"


class CompositionError(StageError):
    """The items cannot be placed on the canvas as the params ask."""


@dataclass(frozen=True)
class Layout:
    """Where the items of n scenes go. sources: (n, max_items) each item's index in its split,
    -1 where a scene has fewer items; boxes: (n, max_items, 4) each item's placed box, int
    x_min, y_min, x_max, y_max as pixel edges, 0 where there is no item."""

    sources: np.ndarray
    boxes: np.ndarray

    def __getitem__(self, rows: slice) -> "Layout":
        return Layout(self.sources[rows], self.boxes[rows])


def plan_layout(
    count: int, num_items: int, item_shape: tuple[int, ...], params: ComposeScenesParams, rng: np.random.Generator
) -> Layout:
    """Item counts, items (indices of a split of num_items) and placed boxes of count scenes."""
    check_canvas(item_shape, params)
    if num_items < 1:
        raise CompositionError("the split has no items to compose scenes of")
    counts = rng.integers(params.min_items, params.max_items + 1, count)
    present = np.arange(params.max_items) < counts[:, None]
    total = int(present.sum())
    sources = np.full(present.shape, -1, np.int64)
    sources[present] = rng.choice(num_items, total, replace=total > num_items)
    return Layout(sources, place_boxes(present, item_shape, params, rng))


def item_sizes(sides: np.ndarray, item_shape: tuple[int, ...]) -> np.ndarray:
    """(..., 2) height and width of items of shape (h, w, ...) resized to longer side sides."""
    height, width = item_shape[:2]
    longer = max(height, width)
    return np.stack([np.maximum(1, np.rint(sides * side / longer)).astype(np.int64) for side in (height, width)], -1)


def check_canvas(item_shape: tuple[int, ...], params: ComposeScenesParams) -> None:
    """Refuse params whose largest scenes cannot fit: each item keeps at least 1 - max_overlap
    of its box uncovered by earlier ones, so the canvas must hold that much of every item."""
    height, width = item_sizes(np.array(params.max_item_size), item_shape)
    needed = params.max_items * height * width * (1 - params.max_overlap)
    if needed > params.canvas_size**2:
        raise CompositionError(
            f"a {params.canvas_size}x{params.canvas_size} canvas cannot hold {params.max_items} items of "
            f"{height}x{width} pixels with at most {params.max_overlap:.0%} of each covered by the others "
            f"(they need {needed:.0f} of its {params.canvas_size**2} pixels): {ADVICE}"
        )


def place_boxes(
    present: np.ndarray, item_shape: tuple[int, ...], params: ComposeScenesParams, rng: np.random.Generator
) -> np.ndarray:
    """(n, m, 4) boxes of the items present (n, m) in n scenes: sides drawn and items placed in
    order, each at the first of CANDIDATES random positions that fits. A scene some item of which
    fits nowhere is drawn again, sides and places (sides that fit are kept, so crowded draws are
    rarer than they would be), up to SCENE_TRIES times."""
    boxes = np.zeros((*present.shape, 4), np.int64)
    pending = np.arange(len(present))
    for _ in range(SCENE_TRIES):
        sides = rng.integers(params.min_item_size, params.max_item_size + 1, (len(pending), present.shape[1]))
        sizes = item_sizes(sides, item_shape) * present[pending, :, None]
        placed, fits = _place_once(sizes, params.canvas_size, params.max_overlap, rng)
        boxes[pending[fits]] = placed[fits]
        pending, crowded = pending[~fits], sizes[~fits]
        if not len(pending):
            return boxes
    items = ", ".join(f"{height}x{width}" for height, width in crowded[0] if height)
    raise CompositionError(
        f"could not place the items of {len(pending)} scene(s) (such as {items}) on a {params.canvas_size}x"
        f"{params.canvas_size} canvas with at most {params.max_overlap:.0%} of each item's box covered by earlier "
        f"ones in {SCENE_TRIES} tries: {ADVICE}"
    )


def _place_once(
    sizes: np.ndarray, canvas: int, max_overlap: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One try for every scene: each item at the first of CANDIDATES random positions that
    fits; (boxes, whether every item of the scene fitted)."""
    count, slots = sizes.shape[:2]
    boxes = np.zeros((count, slots, 4), np.int64)
    fits = np.ones(count, bool)
    for slot in range(slots):
        height, width = sizes[:, slot, :1], sizes[:, slot, 1:]
        x = rng.integers(0, canvas - width + 1, (count, CANDIDATES))
        y = rng.integers(0, canvas - height + 1, (count, CANDIDATES))
        candidates = np.stack([x, y, x + width, y + height], -1)
        covered = intersections(candidates, boxes[:, :slot]).sum(-1)
        allowed = covered <= max_overlap * height * width
        fits &= allowed.any(1)
        boxes[:, slot] = candidates[np.arange(count), allowed.argmax(1)]
    boxes[sizes[..., 0] == 0] = 0
    return boxes, fits


def intersections(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(n, k, j) areas shared by boxes (n, k, 4) and others (n, j, 4), x_min, y_min, x_max, y_max."""
    first, second = boxes[:, :, None], others[:, None]
    width = np.minimum(first[..., 2], second[..., 2]) - np.maximum(first[..., 0], second[..., 0])
    height = np.minimum(first[..., 3], second[..., 3]) - np.maximum(first[..., 1], second[..., 1])
    return np.clip(width, 0, None) * np.clip(height, 0, None)
