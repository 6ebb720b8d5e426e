"""Great Expectations suites for a labelled image dataset, and the tables they validate.

Images are summarised, a shard at a time, into small tables GX validates as pandas batches: one
row per image (label, pixel range and mean, shape, missing pixels) and one row per class (count,
share). Each table
row carries an `id` (image index or class name) so a failure names what offended. The suites
are run, and their failures described, by imagepipe.validation.runner.
"""

from collections.abc import Iterable

import great_expectations as gx
import numpy as np
import pandas as pd

from imagepipe.core.sections import ImageParams, ValidateParams

E = gx.expectations
PIXEL_RANGE = (0, 255)
# Images summarised at a time: bounds the temporaries of the pixel statistics.
TABLE_ROWS = 4096


def image_table(images: np.ndarray, labels: np.ndarray, first_id: int = 0) -> pd.DataFrame:
    """One row per image of a batch (N×H×W×C): its label, pixel range and mean, shape, and
    missing (NaN) pixels; ids count on from first_id, so a split's batches make one table."""
    flat = images.reshape(len(images), -1)
    _, height, width, channels = images.shape
    if not flat.size:
        low = high = mean = missing = np.zeros(len(flat))
    elif np.issubdtype(flat.dtype, np.integer):  # no NaN, and no float copy of the pixels
        low, high, mean, missing = flat.min(axis=1), flat.max(axis=1), flat.mean(axis=1), np.zeros(len(flat), int)
    else:
        low, high, mean, missing = np.nanmin(flat, 1), np.nanmax(flat, 1), np.nanmean(flat, 1), np.isnan(flat).sum(1)
    return pd.DataFrame(
        {
            "id": np.arange(first_id, first_id + len(flat)),
            "label": labels,
            "pixel_min": low,
            "pixel_max": high,
            "pixel_mean": mean,
            "missing_pixels": missing,
            "height": height,
            "width": width,
            "channels": channels,
        }
    )


def split_table(batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """image_table of a whole split, built a batch (a shard) at a time: the table is a few numbers
    per image, so memory holds one batch of pixels whatever the split's size."""
    tables, first_id = [], 0
    for images, labels in batches:
        for start in range(0, len(labels), TABLE_ROWS):
            tables.append(image_table(images[start : start + TABLE_ROWS], labels[start : start + TABLE_ROWS], first_id))
            first_id += len(labels[start : start + TABLE_ROWS])
    return (
        pd.concat(tables, ignore_index=True) if tables else image_table(np.zeros((0, 1, 1, 1), np.uint8), np.zeros(0))
    )


def class_table(labels: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    counts = np.bincount(labels[(labels >= 0) & (labels < len(class_names))], minlength=len(class_names))
    shares = counts / max(len(labels), 1)
    return pd.DataFrame({"id": class_names, "count": counts, "share_ratio": shares * len(class_names)})


def image_suite(name: str, num_classes: int, image: ImageParams) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            E.ExpectTableRowCountToBeBetween(min_value=1, description="the split has images"),
            *label_expectations(num_classes),
            *pixel_expectations(),
            *shape_expectations(image),
        ],
    )


def label_expectations(num_classes: int) -> list[gx.expectations.Expectation]:
    return [
        E.ExpectColumnValuesToNotBeNull(column="label", description="every image has a label"),
        E.ExpectColumnValuesToBeInSet(
            column="label",
            value_set=list(range(num_classes)),
            description=f"labels are class indices 0..{num_classes - 1}",
        ),
    ]


def pixel_expectations() -> list[gx.expectations.Expectation]:
    low, high = PIXEL_RANGE
    return [
        *(
            E.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=low,
                max_value=high,
                description=f"pixel values within [{low}, {high}]",
            )
            for column in ("pixel_min", "pixel_max", "pixel_mean")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="missing_pixels",
            value_set=[0],
            description="no missing (NaN) pixels",
        ),
    ]


def shape_expectations(image: ImageParams) -> list[gx.expectations.Expectation]:
    return [
        E.ExpectColumnValuesToBeInSet(
            column=column,
            value_set=[size],
            description=f"image {column} is {size}",
        )
        for column, size in (("height", image.height), ("width", image.width), ("channels", image.channels))
    ]


def class_suite(name: str, checks: ValidateParams) -> gx.ExpectationSuite:
    low, high = checks.min_class_share_ratio, checks.max_class_share_ratio
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            E.ExpectColumnValuesToBeBetween(
                column="count",
                min_value=checks.min_images_per_class,
                description=f"every class has at least {checks.min_images_per_class} images",
            ),
            E.ExpectColumnValuesToBeBetween(
                column="share_ratio",
                min_value=low,
                max_value=high,
                description=f"every class's share is {low}..{high} times the uniform share",
            ),
        ],
    )


def shift_suite(train_labels: np.ndarray, num_classes: int, checks: ValidateParams) -> gx.ExpectationSuite:
    weights = np.bincount(
        train_labels[(train_labels >= 0) & (train_labels < num_classes)],
        minlength=num_classes,
    )
    partition = {
        "values": list(range(num_classes)),
        "weights": (weights / max(weights.sum(), 1)).tolist(),
    }
    return gx.ExpectationSuite(
        name="test_vs_train",
        expectations=[
            E.ExpectColumnKLDivergenceToBeLessThan(
                column="label",
                partition_object=partition,
                threshold=checks.max_kl_divergence,
                description=f"test label distribution is within KL divergence {checks.max_kl_divergence} of train's",
            ),
        ],
    )


def suites_and_tables(
    tables: dict[str, pd.DataFrame],
    class_names: list[str],
    checks: ValidateParams,
    image: ImageParams,
) -> dict[str, tuple[gx.ExpectationSuite, pd.DataFrame]]:
    """Each batch to validate, by name: the suite and the table it is run on. tables: each
    split's image table ("train" and "test", from split_table)."""
    batches = {}
    for split_name, table in tables.items():
        batches[f"{split_name}_images"] = (image_suite(f"{split_name}_images", len(class_names), image), table)
        batches[f"{split_name}_classes"] = (
            class_suite(f"{split_name}_classes", checks),
            class_table(table["label"].to_numpy(), class_names),
        )
    batches["test_vs_train"] = (
        shift_suite(tables["train"]["label"].to_numpy(), len(class_names), checks),
        tables["test"][["id", "label"]],
    )
    return batches
