"""Great Expectations suites for a labelled image dataset, and a short report of what failed.

Images are summarised into small tables GX validates as pandas batches: one row per image
(label, pixel range, shape, missing pixels) and one row per class (count, share). Each table
row carries an `id` (image index or class name) so a failure names what offended.
"""

from dataclasses import dataclass
from pathlib import Path

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

from imagepipe.core.params import ImageParams, ValidateParams
from imagepipe.data.storage import Split

E = gx.expectations
PIXEL_RANGE = (0, 255)
RESULT_FORMAT = {"result_format": "SUMMARY", "unexpected_index_column_names": ["id"]}


@dataclass
class Report:
    success: bool
    failures: list[str]
    result: dict


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
    low, high = PIXEL_RANGE
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            E.ExpectTableRowCountToBeBetween(min_value=1, description="the split has images"),
            E.ExpectColumnValuesToNotBeNull(column="label", description="every image has a label"),
            E.ExpectColumnValuesToBeInSet(
                column="label",
                value_set=list(range(num_classes)),
                description=f"labels are class indices 0..{num_classes - 1}",
            ),
            E.ExpectColumnValuesToBeBetween(
                column="pixel_min",
                min_value=low,
                max_value=high,
                description=f"pixel values within [{low}, {high}]",
            ),
            E.ExpectColumnValuesToBeBetween(
                column="pixel_max",
                min_value=low,
                max_value=high,
                description=f"pixel values within [{low}, {high}]",
            ),
            E.ExpectColumnValuesToBeInSet(
                column="missing_pixels",
                value_set=[0],
                description="no missing (NaN) pixels",
            ),
            E.ExpectColumnValuesToBeInSet(
                column="height",
                value_set=[image.height],
                description=f"image height is {image.height}",
            ),
            E.ExpectColumnValuesToBeInSet(
                column="width",
                value_set=[image.width],
                description=f"image width is {image.width}",
            ),
            E.ExpectColumnValuesToBeInSet(
                column="channels",
                value_set=[image.channels],
                description=f"image channels is {image.channels}",
            ),
        ],
    )


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


def validate_dataset(
    splits: dict[str, Split],
    class_names: list[str],
    checks: ValidateParams,
    image: ImageParams,
    docs_dir: Path | None = None,
) -> Report:
    """Run every suite on every split; build GX Data Docs into docs_dir when given."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # The ephemeral context's default site writes to a fresh temporary directory on every run.
    context.delete_data_docs_site("local_site")
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="validation",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    source = context.data_sources.add_pandas("arrays")
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
    results, failures = {}, []
    for name, (suite, table) in batches.items():
        definition = gx.ValidationDefinition(
            name=name,
            suite=context.suites.add(suite),
            data=source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole"),
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[context.validation_definitions.add(definition)],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs_dir else [],
                result_format=RESULT_FORMAT,
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": table})
        results[name] = outcome.describe_dict()
        failures += [
            describe_failure(name, result)
            for run in outcome.run_results.values()
            for result in run.results
            if not result.success
        ]
    return Report(success=not failures, failures=failures, result=results)


def describe_failure(batch: str, result) -> str:
    """One line: which batch, what was expected, and the offending values or ids."""
    config, found = result.expectation_config, result.result
    if result.exception_info.get("raised_exception"):
        return (
            f"{batch}: {config.description}: could not be evaluated ({result.exception_info.get('exception_message')})"
        )
    if "observed_value" in found:
        return f"{batch}: {config.description}: observed {_short(found['observed_value'])}"
    column, rows = (
        config.kwargs["column"],
        found.get("partial_unexpected_index_list", []),
    )
    count, total = found.get("unexpected_count"), found.get("element_count")
    if all(isinstance(row["id"], str) for row in rows):
        offenders = ", ".join(f"{row['id']}={_short(row[column])}" for row in rows)
    else:
        values = ", ".join(
            f"{_short(item['value'])} ({item['count']}x)" for item in found.get("partial_unexpected_counts", [])
        )
        offenders = f"{column} values {values}; first image indices {', '.join(str(row['id']) for row in rows[:5])}"
    return f"{batch}: {config.description}: {count} of {total} rows fail ({offenders})"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
