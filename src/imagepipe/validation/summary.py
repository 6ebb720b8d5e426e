"""The validation verdict: a summary of class counts per split, and the error that stops the pipeline."""

import numpy as np

from imagepipe.core.errors import StageError
from imagepipe.validation.runner import Report


class ValidationFailed(StageError):
    """The data broke at least one expectation."""


def summarize(report: Report, labels: dict[str, np.ndarray], class_names: list[str]) -> dict:
    """The facts a reader (and DVC) needs, without timestamps or run ids. labels: each split's."""
    # Labels outside 0..num_classes-1 (bad data the label expectation reports) name no class.
    counts = {
        name: dict(
            zip(
                class_names,
                np.bincount(values[(values >= 0) & (values < len(class_names))], minlength=len(class_names)).tolist(),
                strict=True,
            )
        )
        for name, values in labels.items()
    }
    return {
        "success": report.success,
        "failures": report.failures,
        "num_classes": len(class_names),
        "class_counts": counts,
    }
