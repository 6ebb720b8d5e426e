"""Seeded, stratified subsets and splits of a labelled set, by index."""

import numpy as np
from sklearn.model_selection import train_test_split

from imagepipe.core.errors import StageError


class SplitError(StageError):
    """The requested subset or split cannot keep every class represented."""


def stratified_split(labels: np.ndarray, held_out: float | int, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out), each with the class proportions of labels."""
    indices = np.arange(len(labels))
    try:
        kept, held = train_test_split(indices, test_size=held_out, stratify=labels, random_state=seed)
    except ValueError as error:
        classes, sizes = np.unique(labels, return_counts=True)
        counts = dict(zip(classes, sizes, strict=True))
        raise SplitError(f"cannot split {what} by class ({error}); images per class: {counts}") from None
    return np.sort(kept), np.sort(held)


def stratified_subset(labels: np.ndarray, size: int | None, seed: int, what: str) -> np.ndarray:
    """Indices of a class-balanced subset of at most size items (all of them when size is None)."""
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    kept, _ = stratified_split(labels, len(labels) - size, seed, what)
    return kept
