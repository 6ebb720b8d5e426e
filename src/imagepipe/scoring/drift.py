"""Drift statistics: do new images look like the training data? Pure numpy and scipy.

Two tests, each needing both a significant difference and a large one, because neither alone
suits a batch of any size: a few dozen images give noisy estimates that only a p-value guards,
while tens of thousands make any test significant for differences too small to matter.

- The predicted classes' distribution against a reference one (the champion's predictions on
  a sample of its training images; see imagepipe.scoring.champion): Pearson's chi-square test of
  homogeneity on the two samples' counts, and the total variation distance (half the L1
  distance of the shares: the share of images that would have to change class) as the effect
  size. Predictions are compared with predictions, not with labels, so that a champion's own
  bias (predicting one class less often than it occurs) is not taken for drift.
- The distribution of the classifier's features: the maximum mean discrepancy (MMD, Gretton
  et al., JMLR 2012) with a Gaussian kernel whose bandwidth is the median pairwise distance,
  and a permutation test for its p-value. One multivariate test on the whole feature vector,
  where per-feature KS tests would need a multiple-testing correction over a hundred or more
  correlated features and miss a shift that shows only in their joint distribution. The
  effect size is MMD² itself, which for this kernel lies in [0, 2].
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Images whose pairwise distances set the kernel's bandwidth: the median is stable long before.
BANDWIDTH_SAMPLE = 1000
# The unbiased MMD² estimate needs two images on each side.
MIN_IMAGES = 2


@dataclass(frozen=True)
class ClassDrift:
    reference_shares: np.ndarray  # the reference's share of each class
    observed_shares: np.ndarray  # the predicted classes' share of each class
    total_variation: float
    chi_square: float
    p_value: float
    drifted: bool


@dataclass(frozen=True)
class FeatureDrift:
    mmd2: float
    p_value: float
    bandwidth: float
    reference_size: int
    sample_size: int
    drifted: bool


def class_drift(
    predicted_counts: np.ndarray, reference_counts: np.ndarray, max_total_variation: float, alpha: float
) -> ClassDrift:
    """Whether the predicted classes' counts drifted from the reference's: the chi-square test's
    p-value is below alpha and the total variation distance above max_total_variation."""
    observed, reference = np.asarray(predicted_counts, float), np.asarray(reference_counts, float)
    if observed.shape != reference.shape or observed.ndim != 1:
        raise ValueError(f"class counts differ in shape: predicted {observed.shape}, reference {reference.shape}")
    if observed.sum() <= 0 or reference.sum() <= 0 or (observed < 0).any() or (reference < 0).any():
        raise ValueError("class counts must be non-negative with at least one image on each side")
    reference_shares, observed_shares = reference / reference.sum(), observed / observed.sum()
    total_variation = float(np.abs(observed_shares - reference_shares).sum() / 2)
    seen = (observed + reference) > 0  # a class neither side has adds nothing, and would divide by 0
    if seen.sum() < 2:  # one class on both sides: nothing can differ
        chi_square, p_value = 0.0, 1.0
    else:
        result = stats.chi2_contingency(np.stack([observed[seen], reference[seen]]), correction=False)
        chi_square, p_value = float(result.statistic), float(result.pvalue)
    drifted = p_value < alpha and total_variation > max_total_variation
    return ClassDrift(reference_shares, observed_shares, total_variation, chi_square, p_value, drifted)


def feature_drift(
    reference: np.ndarray,
    sample: np.ndarray,
    permutations: int,
    alpha: float,
    min_mmd2: float,
    rng: np.random.Generator,
) -> FeatureDrift:
    """Whether the sample's features drifted from the reference's: the permutation test's
    p-value is below alpha and MMD² above min_mmd2. reference, sample: (n, d) and (m, d).
    A sample of one image is not tested (MMD² and the bandwidth are NaN) and is not drift."""
    reference, sample = np.asarray(reference, np.float64), np.asarray(sample, np.float64)
    if reference.ndim != 2 or sample.ndim != 2 or reference.shape[1] != sample.shape[1]:
        raise ValueError(f"features differ in shape: reference {reference.shape}, sample {sample.shape}")
    if len(reference) < MIN_IMAGES:
        raise ValueError(f"the MMD test needs a reference of at least {MIN_IMAGES} images, got {len(reference)}")
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    if len(sample) < MIN_IMAGES:
        return FeatureDrift(math.nan, 1.0, math.nan, len(reference), len(sample), False)
    pooled = np.concatenate([reference, sample])
    bandwidth = median_distance(pooled, rng)
    kernel = np.exp(-squared_distances(pooled, pooled) / (2 * bandwidth**2))
    membership = np.zeros((len(pooled), permutations + 1), np.float64)
    membership[: len(reference), 0] = 1  # column 0: the real split; the others: random ones
    for column in range(1, permutations + 1):
        membership[rng.permutation(len(pooled))[: len(reference)], column] = 1
    statistics = _mmd2(kernel, membership, len(reference), len(sample))
    mmd2 = float(statistics[0])
    p_value = float((1 + np.sum(statistics[1:] >= mmd2)) / (1 + permutations))
    drifted = p_value < alpha and mmd2 > min_mmd2
    return FeatureDrift(mmd2, p_value, bandwidth, len(reference), len(sample), drifted)


def _mmd2(kernel: np.ndarray, membership: np.ndarray, n: int, m: int) -> np.ndarray:
    """The unbiased MMD² estimate for each column of membership (1: reference, 0: sample), with
    one matrix product for all of them: a'Ka, a'K(1-a) and (1-a)'K(1-a) from K@a and K@1."""
    row_sums = kernel.sum(axis=1)
    kernel_a = kernel @ membership
    within_reference = np.einsum("ij,ij->j", membership, kernel_a)
    across = membership.T @ row_sums - within_reference
    within_sample = row_sums.sum() - 2 * (membership.T @ row_sums) + within_reference
    # The kernel's diagonal is 1: the unbiased estimate leaves out each image's pair with itself.
    return (within_reference - n) / (n * (n - 1)) + (within_sample - m) / (m * (m - 1)) - 2 * across / (n * m)


def median_distance(points: np.ndarray, rng: np.random.Generator) -> float:
    """The median pairwise distance of (a sample of) points: the kernel bandwidth that makes the
    kernel neither flat nor a spike on these data (Gretton et al.'s median heuristic)."""
    chosen = points[rng.permutation(len(points))[:BANDWIDTH_SAMPLE]]
    distances = squared_distances(chosen, chosen)[np.triu_indices(len(chosen), k=1)]
    positive = distances[distances > 0]
    return float(np.sqrt(np.median(positive))) if len(positive) else 1.0


def squared_distances(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    squared = (left**2).sum(1)[:, None] + (right**2).sum(1)[None, :] - 2 * left @ right.T
    return np.maximum(squared, 0)
