import copy
import json

from bench.report import render
from tests.helpers.data import ROOT

RECORDED = json.loads((ROOT / "benchmarks.json").read_text())


def targets(results: dict) -> dict[str, str]:
    """The targets table of the rendered report: target -> met ("yes" or "**no**")."""
    table = render(results).split("## Targets")[1]
    rows = [line.strip("|").split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return {row[0].strip(): row[2].strip() for row in rows[1:]}


def test_targets_follow_the_figures():
    results = copy.deepcopy(RECORDED)
    results["course_cnn"] |= {"img_per_s": 4000.0, "fit_s": 150.0, "test_acc": 0.91}
    results["project_cnn"] |= {"train_images_per_s": 10_000.0, "seconds_to_target": 29.0, "test_accuracy": 0.915}
    met = targets(results)
    assert met["time to 91% ≤ 1/5 of the course's"] == "yes"
    assert met["throughput ≥ 2.5× the course's at equal or better accuracy"] == "yes"
    results["project_cnn"] |= {"seconds_to_target": None, "test_accuracy": 0.90}
    met = targets(results)
    assert met["time to 91% ≤ 1/5 of the course's"] == "**no**"
    assert met["throughput ≥ 2.5× the course's at equal or better accuracy"] == "**no**"  # faster, but less accurate


def test_a_course_run_short_of_the_target_is_a_lower_bound():
    results = copy.deepcopy(RECORDED)
    results["course_cnn"] |= {"fit_s": 100.0, "test_acc": 0.90, "epochs": 10.0}
    results["project_cnn"] |= {"seconds_to_target": 50.0}
    assert "| > 100 s (not reached in 10 epochs) | 50 s | < 0.50× the time |" in render(results)
