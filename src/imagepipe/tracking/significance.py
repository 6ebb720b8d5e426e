"""Whether a new model beats the champion beyond noise: paired comparisons on one test set.

Both models are scored on the same test images, so the comparison is paired: what varies from
one test set to another is which images are hard, and both models meet the same ones. A gain is
the new model's improvement (positive: better) with a bootstrap percentile interval; the gate
promotes only when the whole interval lies above a margin.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from imagepipe.models.gan_quality import frechet_distance

# A metric from per-example rows and a weight per row (how often a resample drew it).
Statistic = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Gain:
    """The new model's improvement over the champion, its interval, and (for accuracy) the
    p-value of McNemar's exact test that both make as many errors."""

    value: float
    low: float
    high: float
    p_value: float | None = None

    def beyond(self, margin: float) -> bool:
        return self.low > margin


def accuracy_interval(correct: np.ndarray, confidence: float, resamples: int, seed: int) -> tuple[float, float]:
    """Bootstrap interval of the accuracy of per-image correctness. Resampling n images and
    counting the correct ones draws from Binomial(n, accuracy), so that is what is drawn."""
    correct = _flags(correct)
    draws = np.random.default_rng(seed).binomial(len(correct), correct.mean(), resamples) / len(correct)
    return _percentiles(draws, confidence)


def paired_accuracy(
    new_correct: np.ndarray,
    champion_correct: np.ndarray,
    confidence: float,
    resamples: int,
    seed: int,
) -> Gain:
    """Accuracy gain of the new model on images both classified. Per image the gain is +1 (only
    the new one is right), -1 (only the champion) or 0; resampling the images draws the counts of
    the three from a multinomial, which is drawn directly: exact, and cheap for any test set."""
    new_correct, champion_correct = _flags(new_correct), _flags(champion_correct)
    if new_correct.shape != champion_correct.shape:
        raise ValueError(
            f"paired scores need the same test images: {len(new_correct)} vs {len(champion_correct)} results"
        )
    count = len(new_correct)
    wins = int(np.sum(new_correct & ~champion_correct))
    losses = int(np.sum(~new_correct & champion_correct))
    shares = np.array([wins, losses, count - wins - losses]) / count
    draws = np.random.default_rng(seed).multinomial(count, shares, resamples)
    low, high = _percentiles((draws[:, 0] - draws[:, 1]) / count, confidence)
    p_value = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    return Gain((wins - losses) / count, low, high, float(p_value))


def paired_fid(
    real: np.ndarray,
    new: np.ndarray,
    champion: np.ndarray,
    confidence: float,
    resamples: int,
    seed: int,
) -> Gain:
    """FID drop (champion's FID minus the new generator's) of two generators' features, generated
    from the same noise, against the same real features. Each resample draws real images and
    noise vectors with replacement and scores both generators on the same draws."""
    if new.shape != champion.shape:
        raise ValueError(f"paired FIDs need samples from the same noise: {new.shape} vs {champion.shape}")
    rng, draws = np.random.default_rng(seed), np.empty(resamples)
    for index in range(resamples):
        real_draw, noise_draw = rng.integers(0, len(real), len(real)), rng.integers(0, len(new), len(new))
        draws[index] = frechet_distance(real[real_draw], champion[noise_draw]) - frechet_distance(
            real[real_draw], new[noise_draw]
        )
    low, high = _percentiles(draws, confidence)
    return Gain(frechet_distance(real, champion) - frechet_distance(real, new), low, high)


def fid_interval(
    real: np.ndarray, generated: np.ndarray, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Bootstrap interval of the FID of generated features against real ones."""
    rng, draws = np.random.default_rng(seed), np.empty(resamples)
    for index in range(resamples):
        real_draw, generated_draw = (
            rng.integers(0, len(real), len(real)),
            rng.integers(0, len(generated), len(generated)),
        )
        draws[index] = frechet_distance(real[real_draw], generated[generated_draw])
    return _percentiles(draws, confidence)


def statistic_interval(
    items: np.ndarray, statistic: Statistic, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Bootstrap interval of statistic over the test examples (the rows of items)."""
    weights = _resample_weights(len(items), resamples, seed)
    return _percentiles(np.array([statistic(items, row) for row in weights]), confidence)


def paired_statistic(
    new: np.ndarray,
    champion: np.ndarray,
    statistic: Statistic,
    higher_is_better: bool,
    confidence: float,
    resamples: int,
    seed: int,
) -> Gain:
    """Gain of the new model in statistic (any metric computed from per-example rows, e.g. mean
    IoU from per-scene confusion counts, mAP from per-scene detections, AUROC from per-image
    scores), both models scored on each resample of the same test examples."""
    if len(new) != len(champion):
        raise ValueError(f"paired scores need the same test examples: {len(new)} vs {len(champion)} rows")
    sign = 1.0 if higher_is_better else -1.0
    weights = _resample_weights(len(new), resamples, seed)
    draws = np.array([sign * (statistic(new, row) - statistic(champion, row)) for row in weights])
    low, high = _percentiles(draws, confidence)
    ones = np.ones(len(new))
    return Gain(sign * (statistic(new, ones) - statistic(champion, ones)), low, high)


def _resample_weights(count: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of count examples is drawn in each bootstrap resample: multinomial counts."""
    if count == 0:
        raise ValueError("a bootstrap needs at least one test example")
    return np.random.default_rng(seed).multinomial(count, np.full(count, 1 / count), resamples).astype(np.float64)


def _flags(correct: np.ndarray) -> np.ndarray:
    correct = np.asarray(correct)
    if correct.ndim != 1 or not len(correct) or correct.dtype != bool:
        raise ValueError(
            f"per-image correctness must be a non-empty 1-D bool array, got {correct.dtype} {correct.shape}"
        )
    return correct


def _percentiles(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)
