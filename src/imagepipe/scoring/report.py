"""The scoring report in Markdown: what was scored with which model, where the predictions are,
and the drift tests' verdicts with their thresholds. Shown as a Prefect artifact, logged to MLflow."""

from dataclasses import dataclass

import numpy as np

from imagepipe.core.sections import ScoreParams
from imagepipe.scoring.drift import ClassDrift, FeatureDrift


@dataclass(frozen=True)
class Scored:
    model: str
    version: str
    source: str
    images: int
    skipped: int
    predictions: str


def verdict(classes: ClassDrift, features: FeatureDrift) -> str:
    drifted = [name for name, test in (("predicted classes", classes), ("features", features)) if test.drifted]
    return f"**Drift** in the {' and the '.join(drifted)}" if drifted else "**No drift**"


def scoring_report(
    scored: Scored,
    class_names: tuple[str, ...],
    label_counts: np.ndarray,
    classes: ClassDrift,
    features: FeatureDrift,
    limits: ScoreParams,
) -> str:
    """The report of a scored batch; label_counts: the training labels' counts, shown beside the
    champion's predictions on training images (the class test's reference) and on the new ones."""
    lines = [
        f"# Scoring {scored.source}",
        "",
        f"{verdict(classes, features)} against the training data of `{scored.model}` v{scored.version}.",
        "",
        f"- Images scored: {scored.images}; files skipped (not images): {scored.skipped}",
        f"- Predictions: `{scored.predictions}`",
        "",
        "| test | statistic | p-value | drift when | drifted |",
        "|---|---|---|---|---|",
        f"| predicted classes, vs the champion's on training images | total variation {classes.total_variation:.4f} "
        f"(chi-square {classes.chi_square:.4g}) | {classes.p_value:.4g} | "
        f"TV > {limits.max_class_total_variation} and p < {limits.class_p_value} | {_yes(classes.drifted)} |",
        f"| features (MMD, {features.sample_size} new vs {features.reference_size} training images) | "
        + (f"MMD² {features.mmd2:.4f} | {features.p_value:.4g} | " if features.sample_size > 1 else "not tested | | ")
        + f"MMD² > {limits.min_feature_mmd2} and p < {limits.feature_p_value} | {_yes(features.drifted)} |",
        "",
        "| class | training labels | predicted on training images | predicted here |",
        "|---|---|---|---|",
        *(
            f"| {_cell(name)} | {label:.1%} | {reference:.1%} | {observed:.1%} |"
            for name, label, reference, observed in zip(
                class_names,
                label_counts / label_counts.sum(),
                classes.reference_shares,
                classes.observed_shares,
                strict=True,
            )
        ),
    ]
    return "\n".join(lines) + "\n"


def invalid_report(source: str, model: str, version: str, shape: tuple[int, ...], failures: list[str]) -> str:
    """The report of images that failed validation: one line per failure (validation.runner.Report),
    then what the model takes and the ways out."""
    listed = "\n".join(f"- {_cell(line)}" for line in failures)
    height, width, channels = shape
    return (
        f"# Scoring {source}\n\n**Not scored**: the images failed validation for `{model}` v{version} "
        f"(Great Expectations suite `new_images`).\n\n{listed}\n\n"
        f"`{model}` takes readable images with pixels in 0..255, stored at {height}×{width} with {channels} "
        "channel(s). Images of this task at another size: set `score.resize: true` to fit them as `download` "
        "does. Images of another task: score them with that task's model (`model: <task>-cnn`).\n"
    )


def _yes(drifted: bool) -> str:
    return "**yes**" if drifted else "no"


def _cell(text: str) -> str:
    """text safe in a Markdown table cell or list item."""
    return text.replace("|", "\\|").replace("\n", " ")
