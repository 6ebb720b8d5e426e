"""Great Expectations suites for a labelled image dataset, and the tables they validate.

Images are summarised into small tables GX validates as pandas batches: one row per image
(label, pixel range, shape, missing pixels) and one row per class (count, share). Each table
row carries an `id` (image index or class name) so a failure names what offended. The suites
are run, and their failures described, by imagepipe.validation.runner.
"""

import great_expectations as gx
import numpy as np
import pandas as pd

from imagepipe.core.sections import ImageParams, ValidateParams
from imagepipe.data.storage import Split

E = gx.expectations
PIXEL_RANGE = (0, 255)


def image_table(split: Split) -> pd.DataFrame:
    flat = split.images.reshape(len(split.images), -1)
    numeric = flat.astype(np.float32, copy=False)
    _, height, width, channels = split.images.shape
    return pd.DataFrame(
        {
            "id": np.arange(len(flat)),
            "label": split.labels,
            "pixel_min": np.nanmin(numeric, axis=1) if flat.size else [],
            "pixel_max": np.nanmax(numeric, axis=1) if flat.size else [],
            "missing_pixels": np.isnan(numeric).sum(axis=1),
            "height": height,
            "width": width,
            "channels": channels,
        }
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
            for column in ("pixel_min", "pixel_max")
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
    splits: dict[str, Split],
    class_names: list[str],
    checks: ValidateParams,
    image: ImageParams,
) -> dict[str, tuple[gx.ExpectationSuite, pd.DataFrame]]:
    """Each batch to validate, by name: the suite and the table it is run on."""
    batches = {}
    for split_name, split in splits.items():
        batches[f"{split_name}_images"] = (
            image_suite(f"{split_name}_images", len(class_names), image),
            image_table(split),
        )
        batches[f"{split_name}_classes"] = (
            class_suite(f"{split_name}_classes", checks),
            class_table(split.labels, class_names),
        )
    batches["test_vs_train"] = (
        shift_suite(splits["train"].labels, len(class_names), checks),
        image_table(splits["test"])[["id", "label"]],
    )
    return batches
