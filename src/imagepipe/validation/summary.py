"""The validation verdict: a summary of class counts per split, and the error that stops the pipeline."""

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.validation.runner import Report


class ValidationFailed(StageError):
    """The data broke at least one expectation."""


def summarize(report: Report, splits: dict, class_names: list[str]) -> dict:
    """The facts a reader (and DVC) needs, without timestamps or run ids."""
    # Labels past the last class (bad data the label expectation reports) make bincount longer
    # than class_names; zip leaves them out, as they name no class.
    counts = {
        name: dict(
            zip(
                class_names,
                np.bincount(split.labels.clip(0), minlength=len(class_names)).tolist(),
                strict=False,
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
