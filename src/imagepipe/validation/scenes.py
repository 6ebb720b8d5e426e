"""Great Expectations suites for composed scenes (data/scenes), and the tables they validate.

Each split's scenes, as they are saved (imagepipe.data.scenes), become three small tables:

- scenes: one row per scene (its item count, whether its padding is in place, pixel and mask
  ranges, mask classes that no item of the scene has, its size);
- items: one row per item (label, box, and the pixels of its class inside its box);
- classes: one row per class (its items, and their share of the split's items against the
  class's share of the source split's images, so an imbalanced source is not a failure).

Rows carry an `id` (scene index, "scene 3 item 1", class name) so a failure names what offended;
the suites run through GX checkpoints as validate's do (imagepipe.validation.runner).
"""

import great_expectations as gx
import numpy as np
import pandas as pd

from imagepipe.core.sections import ComposeScenesParams
from imagepipe.data.composition import scene_counts
from imagepipe.data.scenes import SPLITS, Scenes
from imagepipe.validation.runner import Report, quiet_context, run_batch

E = gx.expectations
PIXEL_RANGE = (0, 255)
# Bounds of a class's share of a split's items, as a multiple of its share of the source split.
CLASS_SHARE_RATIO = (0.5, 2.0)
# Scenes or items summarised at a time: bounds the temporaries of the per-pixel checks.
ROWS_AT_ONCE = 1024
Tables = dict[str, pd.DataFrame]


def split_tables(scenes: Scenes, source_labels: np.ndarray, class_names: list[str]) -> Tables:
    """The tables of one split's scenes; source_labels: the labels of the split they came from."""
    items = item_table(scenes)
    return {
        "scenes": scene_table(scenes, len(class_names)),
        "items": items,
        "classes": item_class_table(items["label"].to_numpy(), source_labels, class_names),
    }


def scene_table(scenes: Scenes, num_classes: int) -> pd.DataFrame:
    present = scenes.labels >= 0
    counts = present.sum(1)
    packed = present == (np.arange(present.shape[1]) < counts[:, None])
    padding = (np.where(present[..., None], 0, scenes.boxes) == 0).all((1, 2)) & packed.all(1)
    pixels, masks = scenes.images.reshape(scenes.count, -1), scenes.masks.reshape(scenes.count, -1)
    return pd.DataFrame(
        {
            "id": np.arange(scenes.count),
            "item_count": counts,
            "padding_in_place": padding,
            "pixel_min": pixels.min(1, initial=PIXEL_RANGE[1]),
            "pixel_max": pixels.max(1, initial=PIXEL_RANGE[0]),
            "mask_max": masks.max(1, initial=0),
            "stray_mask_classes": stray_mask_classes(scenes),
            "height": scenes.images.shape[1],
            "width": scenes.images.shape[2],
            "mask_matches_image": scenes.masks.shape[:3] == scenes.images.shape[:3],
        }
    )


def stray_mask_classes(scenes: Scenes) -> np.ndarray:
    """Per scene, the values its mask paints that are neither the background nor a class of
    its items."""
    values = np.iinfo(np.uint8).max + 1
    owned = np.zeros((scenes.count, values), bool)
    owned[np.arange(scenes.count)[:, None], np.clip(scenes.labels + 1, 0, values - 1)] = True
    owned[:, 0] = True  # the background
    stray = np.zeros(scenes.count, np.int64)
    for start in range(0, scenes.count, ROWS_AT_ONCE):  # bounds the index temporaries
        part = slice(start, start + ROWS_AT_ONCE)
        masks = scenes.masks[part].reshape(len(stray[part]), -1)
        painted = np.zeros((len(masks), values), bool)
        painted[np.arange(len(masks))[:, None], masks] = True
        stray[part] = (painted & ~owned[part]).sum(1)
    return stray


def item_table(scenes: Scenes) -> pd.DataFrame:
    scene, slot = np.nonzero(scenes.labels >= 0)
    boxes, labels = scenes.boxes[scene, slot], scenes.labels[scene, slot]
    return pd.DataFrame(
        {
            "id": [f"scene {index} item {position}" for index, position in zip(scene, slot, strict=True)],
            "label": labels,
            "x_min": boxes[:, 0],
            "y_min": boxes[:, 1],
            "x_max": boxes[:, 2],
            "y_max": boxes[:, 3],
            "box_width": boxes[:, 2] - boxes[:, 0],
            "box_height": boxes[:, 3] - boxes[:, 1],
            "class_pixels": class_pixels(scenes, scene, boxes, labels),
        }
    )


def class_pixels(scenes: Scenes, scene: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The mask pixels of each item's class inside its box (scene, boxes, labels: one per item)."""
    height, width = scenes.masks.shape[1:]
    rows, columns = np.arange(height), np.arange(width)
    counts = np.zeros(len(scene), np.int64)
    for start in range(0, len(scene), ROWS_AT_ONCE):  # bounds the (items, height, width) temporaries
        part = slice(start, start + ROWS_AT_ONCE)
        box = boxes[part, :, None, None]
        inside = (
            (columns >= box[:, 0]) & (columns < box[:, 2]) & (rows[:, None] >= box[:, 1]) & (rows[:, None] < box[:, 3])
        )
        counts[part] = (inside & (scenes.masks[scene[part]] == (labels[part] + 1)[:, None, None])).sum((1, 2))
    return counts


def item_class_table(labels: np.ndarray, source_labels: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    num_classes = len(class_names)
    counts = np.bincount(labels[(labels >= 0) & (labels < num_classes)], minlength=num_classes)
    source = np.bincount(source_labels[(source_labels >= 0) & (source_labels < num_classes)], minlength=num_classes)
    shares = counts / max(len(labels), 1)
    source_shares = source / max(len(source_labels), 1)
    ratio = np.divide(shares, source_shares, out=np.zeros(num_classes), where=source_shares > 0)
    return pd.DataFrame({"id": class_names, "count": counts, "share_ratio": ratio})


def scene_suite(name: str, count: int, num_classes: int, params: ComposeScenesParams) -> gx.ExpectationSuite:
    low, high = PIXEL_RANGE
    fewest, most, size = params.min_items, params.max_items, params.canvas_size
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            E.ExpectTableRowCountToEqual(value=count, description=f"{count} scenes, as compose_scenes asks"),
            E.ExpectColumnValuesToBeBetween(
                column="item_count", min_value=fewest, max_value=most, description=f"{fewest}..{most} items a scene"
            ),
            E.ExpectColumnValuesToBeInSet(
                column="padding_in_place",
                value_set=[True],
                description="items come first, then label -1 with an all-zero box",
            ),
            *(
                E.ExpectColumnValuesToBeBetween(
                    column=column, min_value=low, max_value=high, description=f"pixel values within [{low}, {high}]"
                )
                for column in ("pixel_min", "pixel_max")
            ),
            E.ExpectColumnValuesToBeBetween(
                column="mask_max",
                min_value=0,
                max_value=num_classes,
                description=f"mask values within 0..{num_classes}",
            ),
            E.ExpectColumnValuesToBeInSet(
                column="stray_mask_classes",
                value_set=[0],
                description="the mask paints only the classes of the scene's items",
            ),
            *(
                E.ExpectColumnValuesToBeInSet(column=column, value_set=[size], description=f"scene {column} is {size}")
                for column in ("height", "width")
            ),
            E.ExpectColumnValuesToBeInSet(
                column="mask_matches_image", value_set=[True], description="masks have the images' size"
            ),
        ],
    )


def item_suite(name: str, num_classes: int, params: ComposeScenesParams) -> gx.ExpectationSuite:
    size = params.canvas_size
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            E.ExpectColumnValuesToBeInSet(
                column="label", value_set=list(range(num_classes)), description=f"labels within 0..{num_classes - 1}"
            ),
            *(
                E.ExpectColumnValuesToBeBetween(
                    column=column,
                    min_value=0,
                    max_value=size,
                    description=f"boxes inside the {size}x{size} canvas ({column} within 0..{size})",
                )
                for column in ("x_min", "y_min", "x_max", "y_max")
            ),
            *(
                E.ExpectColumnValuesToBeBetween(
                    column=column, min_value=1, description=f"boxes have a positive size ({column} at least 1)"
                )
                for column in ("box_width", "box_height")
            ),
            E.ExpectColumnValuesToBeBetween(
                column="class_pixels", min_value=1, description="every item shows pixels of its class in its box"
            ),
        ],
    )


def class_suite(name: str) -> gx.ExpectationSuite:
    low, high = CLASS_SHARE_RATIO
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            E.ExpectColumnValuesToBeBetween(column="count", min_value=1, description="every class appears among items"),
            E.ExpectColumnValuesToBeBetween(
                column="share_ratio",
                min_value=low,
                max_value=high,
                description=f"every class's share of the items is {low}..{high} times its share of the source split",
            ),
        ],
    )


def suites_and_tables(
    tables: dict[str, Tables], class_names: list[str], params: ComposeScenesParams
) -> dict[str, tuple[gx.ExpectationSuite, pd.DataFrame]]:
    """Each batch to validate, by name: the suite and its table. tables: split_tables by split."""
    counts = scene_counts(params)
    batches: dict[str, tuple[gx.ExpectationSuite, pd.DataFrame]] = {}
    for split in (split for split in SPLITS if split in tables):
        suites = {
            "scenes": scene_suite(f"{split}_scenes", counts[split], len(class_names), params),
            "items": item_suite(f"{split}_items", len(class_names), params),
            "classes": class_suite(f"{split}_classes"),
        }
        batches |= {f"{split}_{kind}": (suite, tables[split][kind]) for kind, suite in suites.items()}
    return batches


def validate_scenes(tables: dict[str, Tables], class_names: list[str], params: ComposeScenesParams) -> Report:
    """Run every suite on its table (suites_and_tables)."""
    context = quiet_context(None)
    source = context.data_sources.add_pandas("scenes")
    results, failures = {}, []
    for name, (suite, table) in suites_and_tables(tables, class_names, params).items():
        results[name], failed = run_batch(context, source, name, suite, table, build_docs=False)
        failures += failed
    return Report(success=not failures, failures=failures, result=results)


def summarize_scenes(report: Report, tables: dict[str, Tables]) -> dict:
    """summary.json: the verdict and the counts a reader (and DVC) needs, deterministic."""
    return {
        "success": report.success,
        "failures": report.failures,
        "scenes": {split: len(split_tables["scenes"]) for split, split_tables in tables.items()},
        "item_class_counts": {
            split: dict(zip(split_tables["classes"]["id"], split_tables["classes"]["count"].tolist(), strict=True))
            for split, split_tables in tables.items()
        },
    }
