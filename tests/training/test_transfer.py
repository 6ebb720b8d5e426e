"""The pure core of the transfer comparison: seeds and their summary."""

import pytest

from imagepipe.core.errors import StageError
from imagepipe.training.transfer import flat_metrics, summarize_seeds, training_seeds


def test_training_seeds_start_at_the_pipeline_seed():
    assert training_seeds(42, 3) == [42, 43, 44]


def test_summary_is_mean_and_sample_sd_over_seeds_with_the_gain_paired_by_seed():
    summary = summarize_seeds(
        {
            1: {"transfer_test_accuracy": 0.8, "scratch_test_accuracy": 0.7},
            2: {"transfer_test_accuracy": 0.9, "scratch_test_accuracy": 0.6},
            3: {"transfer_test_accuracy": 0.7, "scratch_test_accuracy": 0.5},
        }
    )
    assert summary["seeds"] == 3
    assert summary["transfer_test_accuracy_mean"] == pytest.approx(0.8)
    assert summary["transfer_test_accuracy_sd"] == pytest.approx(0.1)  # ddof=1
    assert summary["scratch_test_accuracy_mean"] == pytest.approx(0.6)
    assert summary["scratch_test_accuracy_sd"] == pytest.approx(0.1)
    # Gains 0.1, 0.3, 0.2: paired, so their sd is not the two models' sds combined.
    assert summary["transfer_gain_mean"] == pytest.approx(0.2)
    assert summary["transfer_gain_sd"] == pytest.approx(0.1)
    assert summary["per_seed"]["2"] == {"transfer_test_accuracy": 0.9, "scratch_test_accuracy": 0.6}
    metrics = flat_metrics(summary)
    assert "per_seed" not in metrics and metrics["seeds"] == 3.0 and len(metrics) == 7


@pytest.mark.parametrize(
    "accuracies, message",
    [
        ({1: {"transfer_test_accuracy": 0.8, "scratch_test_accuracy": 0.7}}, "has 1 seed.*at least 2"),
        (
            {1: {"transfer_test_accuracy": 0.8, "scratch_test_accuracy": 0.7}, 2: {"transfer_test_accuracy": 0.9}},
            r"seed 2 has accuracies \['transfer_test_accuracy'\]; expected",
        ),
    ],
)
def test_summary_refuses_too_few_seeds_or_a_missing_model(accuracies, message):
    with pytest.raises(StageError, match=message):
        summarize_seeds(accuracies)
