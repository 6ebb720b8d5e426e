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


def scale_results(peaks: tuple[float, float], decode: tuple[float, float], incremental_seconds: float) -> dict:
    def size(images: int, peak: float) -> dict:
        stages = [
            {"stage": name, "seconds": 100.0, "images_per_s": images / 100, "peak_memory_mib": peak}
            for name in ("scan", "download", "validate", "preprocess")
        ]
        return {"images": images, "stages": stages, "processed_mib": images * 0.15}

    again = [
        {"stage": name, "seconds": incremental_seconds, "images_per_s": 1.0, "peak_memory_mib": peaks[1]}
        for name in ("scan", "download", "validate", "preprocess")
    ]
    return {
        "classes": 200,
        "photo": [100, 100],
        "image": {"height": 224, "width": 224, "channels": 3},
        "sizes": [size(5000, peaks[0]), size(80000, peaks[1])],
        "decode_images_per_s": {"1": decode[0], "2": decode[1]},
        "incremental": {"added": 800, "stages": again},
        "date": "2026-11-30 06:00",
        "machine": {"cpu": "test", "cores": 2},
    }


def scale_targets(results: dict) -> dict[str, str]:
    table = render(results).split("## Targets (issue 13)")[1]
    rows = [line.strip("|").split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return {row[0].strip(): row[2].strip() for row in rows[1:]}


def test_scale_targets_follow_the_figures():
    flat = scale_targets(RECORDED | {"scale": scale_results((1000.0, 1100.0), (150.0, 290.0), 5.0)})
    assert set(flat.values()) == {"yes"}, flat
    grown = scale_targets(RECORDED | {"scale": scale_results((1000.0, 3500.0), (150.0, 160.0), 50.0)})
    assert set(grown.values()) == {"**no**"}, grown
