"""The validation verdict: a summary of class counts per split, and the error that stops the pipeline."""

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.validation.expectations import Report


class ValidationFailed(StageError):
    """The data broke at least one expectation."""


def summarize(report: Report, splits: dict, class_names: list[str]) -> dict:
    """The facts a reader (and DVC) needs, without timestamps or run ids."""
    counts = {
        name: dict(
            zip(
                class_names,
                np.bincount(split.labels.clip(0), minlength=len(class_names)).tolist(),
            )
        )
        for name, split in splits.items()
    }
    return {
        "success": report.success,
        "failures": report.failures,
        "num_classes": len(class_names),
        "class_counts": counts,
    }
