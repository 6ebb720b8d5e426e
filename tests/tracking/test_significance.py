import numpy as np
import pytest

from imagepipe.tracking.significance import (
    accuracy_interval,
    fid_interval,
    paired_accuracy,
    paired_fid,
    paired_statistic,
    statistic_interval,
)


def correct(count: int, accuracy: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(count) < accuracy


def test_the_accuracy_interval_covers_the_accuracy_and_narrows_with_more_images():
    small, large = correct(500, 0.9, 0), correct(20000, 0.9, 0)
    (small_low, small_high), (large_low, large_high) = (accuracy_interval(c, 0.95, 4000, 0) for c in (small, large))
    assert small_low < small.mean() < small_high and large_low < large.mean() < large_high
    # The normal approximation's half width, 1.96 * sqrt(p (1 - p) / n): 0.0042 for 20,000 images.
    assert (large_high - large_low) / 2 == pytest.approx(1.96 * np.sqrt(0.09 / 20000), rel=0.1)
    assert small_high - small_low > 5 * (large_high - large_low)


def test_a_paired_gain_within_noise_straddles_zero_and_a_clear_one_does_not():
    champion = correct(2000, 0.9, 0)
    wrong, right = np.flatnonzero(~champion), np.flatnonzero(champion)
    noisy = champion.copy()
    noisy[wrong[:12]], noisy[right[:10]] = True, False
    gain = paired_accuracy(noisy, champion, 0.95, 4000, 0)
    assert gain.value == pytest.approx(2 / 2000) and gain.low < 0 < gain.high and not gain.beyond(0)
    assert gain.p_value == pytest.approx(0.832, abs=0.001)  # McNemar exact: 12 vs 10 discordant
    clear = champion.copy()
    clear[wrong[:60]], clear[right[:10]] = True, False
    gain = paired_accuracy(clear, champion, 0.95, 4000, 0)
    assert gain.value == pytest.approx(50 / 2000) and gain.beyond(0) and gain.p_value < 1e-8
    assert not gain.beyond(0.03)


def test_identical_models_gain_exactly_nothing():
    champion = correct(100, 0.7, 1)
    gain = paired_accuracy(champion, champion, 0.95, 100, 0)
    assert (gain.value, gain.low, gain.high, gain.p_value) == (0, 0, 0, 1.0) and not gain.beyond(0)


def test_unpaired_or_empty_scores_are_refused():
    with pytest.raises(ValueError, match="the same test images: 10 vs 9"):
        paired_accuracy(np.ones(10, bool), np.ones(9, bool), 0.95, 10, 0)
    with pytest.raises(ValueError, match="non-empty 1-D bool array"):
        accuracy_interval(np.array([0.9, 0.8]), 0.95, 10, 0)
    with pytest.raises(ValueError, match="samples from the same noise"):
        paired_fid(np.zeros((5, 2)), np.zeros((5, 2)), np.zeros((4, 2)), 0.95, 10, 0)


def test_a_generator_closer_to_the_real_features_drops_the_fid_beyond_noise():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((400, 8))
    noise = rng.standard_normal((400, 8))
    champion, close, same = noise + 1.0, noise + 0.1, noise + 1.0
    gain = paired_fid(real, close, champion, 0.95, 50, 0)
    assert gain.value > 0 and gain.beyond(0) and gain.p_value is None
    tie = paired_fid(real, same, champion, 0.95, 50, 0)
    assert tie.value == 0 and tie.low == tie.high == 0 and not tie.beyond(0)
    low, high = fid_interval(real, close, 0.95, 50, 0)
    assert 0 <= low < high


def weighted_mean(items: np.ndarray, weights: np.ndarray) -> float:
    return float(np.average(items, weights=weights))


def test_a_statistic_of_rows_has_a_bootstrap_interval_around_it():
    rows = np.random.default_rng(0).random(2000)
    low, high = statistic_interval(rows, weighted_mean, 0.95, 1000, 0)
    # The mean of U(0, 1) draws: standard error sqrt(1/12 / 2000) = 0.0065.
    assert low < rows.mean() < high
    assert (high - low) / 2 == pytest.approx(1.96 * np.sqrt(1 / 12 / 2000), rel=0.15)


def test_a_paired_statistic_sees_a_small_consistent_gain_that_unpaired_intervals_would_not():
    rng = np.random.default_rng(1)
    hardness = rng.random(1000)  # what varies from example to example, shared by both models
    champion, new = hardness, hardness + 0.01
    gain = paired_statistic(new, champion, weighted_mean, True, 0.95, 500, 0)
    assert gain.value == pytest.approx(0.01) and gain.beyond(0) and gain.p_value is None
    low, high = statistic_interval(champion, weighted_mean, 0.95, 500, 0)
    assert high - low > 0.02  # each model's own interval is wider than the gain
    # Lower is better (an error): the same rows are a loss, and a drop is a gain.
    assert paired_statistic(new, champion, weighted_mean, False, 0.95, 500, 0).high < 0
    assert paired_statistic(champion, new, weighted_mean, False, 0.95, 500, 0).beyond(0)


def test_a_paired_statistic_needs_the_same_rows():
    with pytest.raises(ValueError, match="the same test examples: 10 vs 9 rows"):
        paired_statistic(np.ones(10), np.ones(9), weighted_mean, True, 0.95, 10, 0)
    with pytest.raises(ValueError, match="at least one test example"):
        statistic_interval(np.ones(0), weighted_mean, 0.95, 10, 0)
