"""The drift statistics on samples whose answer is known: one distribution twice, a shifted one."""

import numpy as np
import pytest

from imagepipe.scoring.drift import class_drift, feature_drift

COUNTS = np.array([600, 600, 600, 600, 600])


def gaussian(rng, count, shift=0.0, dims=16):
    return rng.normal(0, 1, (count, dims)) + shift


def test_two_samples_of_one_distribution_do_not_drift():
    rng = np.random.default_rng(0)
    result = feature_drift(gaussian(rng, 400), gaussian(rng, 200), 200, 0.01, 0.01, rng)
    assert not result.drifted and result.p_value > 0.05
    assert abs(result.mmd2) < 0.01 and (result.reference_size, result.sample_size) == (400, 200)


def test_a_shifted_sample_drifts():
    rng = np.random.default_rng(1)
    result = feature_drift(gaussian(rng, 400), gaussian(rng, 200, shift=1.0), 200, 0.01, 0.01, rng)
    assert result.drifted and result.p_value < 0.01 and result.mmd2 > 0.1


def test_a_significant_but_tiny_shift_is_not_drift():
    # Many images make a small shift significant; below min_mmd2 it is not worth a retraining.
    rng = np.random.default_rng(2)
    result = feature_drift(gaussian(rng, 1000), gaussian(rng, 1000, shift=0.15), 100, 0.05, 0.05, rng)
    assert result.p_value < 0.05 and not result.drifted


def test_predicted_classes_in_the_training_shares_do_not_drift():
    rng = np.random.default_rng(3)
    predicted = np.bincount(rng.integers(0, 5, 500), minlength=5)
    result = class_drift(predicted, COUNTS, 0.1, 0.01)
    assert not result.drifted and result.total_variation < 0.1
    np.testing.assert_allclose(result.reference_shares, 0.2)


def test_predictions_piling_on_one_class_drift():
    result = class_drift(np.array([400, 25, 25, 25, 25]), COUNTS, 0.1, 0.01)
    assert result.drifted and result.total_variation == pytest.approx(0.6) and result.p_value < 1e-6


def test_few_images_need_more_than_a_large_distance():
    # Ten images: a total variation of 0.3 is well within chance, so no drift.
    result = class_drift(np.array([4, 1, 2, 2, 1]), COUNTS, 0.1, 0.01)
    assert result.total_variation > 0.1 and result.p_value > 0.01 and not result.drifted


def test_a_class_the_reference_lacks_is_drift():
    result = class_drift(np.array([100, 100, 100, 100, 100]), np.array([600, 600, 600, 600, 0]), 0.1, 0.01)
    assert result.drifted and result.p_value < 1e-6 and result.total_variation == pytest.approx(0.2)


@pytest.mark.parametrize(
    "reference, sample, message",
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), "features differ in shape"),
        (np.zeros((1, 3)), np.zeros((10, 3)), "a reference of at least 2 images"),
    ],
)
def test_feature_drift_refuses_features_it_cannot_compare(reference, sample, message):
    with pytest.raises(ValueError, match=message):
        feature_drift(reference, sample, 10, 0.01, 0.0, np.random.default_rng(0))


def test_one_new_image_is_not_tested_for_feature_drift():
    rng = np.random.default_rng(4)
    result = feature_drift(gaussian(rng, 100), gaussian(rng, 1, shift=5.0), 50, 0.05, 0.0, rng)
    assert not result.drifted and np.isnan(result.mmd2) and result.sample_size == 1


def test_class_drift_refuses_counts_of_other_classes_or_none():
    with pytest.raises(ValueError, match="differ in shape"):
        class_drift(np.array([1, 2, 3]), COUNTS, 0.1, 0.01)
    with pytest.raises(ValueError, match="at least one image"):
        class_drift(np.zeros(5), COUNTS, 0.1, 0.01)
