"""`make bench`: the course's recipes and the project's stages, measured in one run on this machine.

Writes BENCHMARKS.md (tables with ratios) and benchmarks.json (the raw figures). The pipeline
figures come from a clean clone of the committed project, so commit what you want measured.
"""

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import tensorflow as tf

from bench import pipeline
from bench.augment import augmentation_throughput
from bench.cnn import time_to_accuracy
from bench.compute import matmul_peak, training_flops
from bench.families import measure_families, of_pipeline
from bench.peers import FASHION_MNIST, course_augmentation, course_cnn
from bench.report import render
from bench.scale import measure_scale
from bench.scoring import measure_scoring
from bench.search import measure_search
from bench.transfer import head_training
from imagepipe.core.files import read_json
from imagepipe.core.params import load_params
from imagepipe.models.cnn import ARCHITECTURES

ROOT = Path(__file__).resolve().parents[1]
TARGET_ACCURACY = 0.91


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "tensorflow": tf.__version__, "python": platform.python_version()}


def measure(args: argparse.Namespace, log: logging.Logger) -> dict:
    params = load_params(ROOT / "params.yaml")
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
    log.info("matmul peak")
    results["matmul_peak"] = matmul_peak()
    log.info("course CNN, %d epochs", args.course_epochs)
    # seed_cnn.py's layers are train_cnn's `course` architecture: count its arithmetic there.
    course_mflops = training_flops(ARCHITECTURES["course"]((28, 28, 1), 10, 0.0)) / 1e6
    results["course_cnn"] = course_cnn(args.course_epochs, args.data) | {"training_mflops_per_image": course_mflops}
    log.info("course augmentation")
    results["course_augmentation"] = course_augmentation(args.data)
    log.info("project augmentation")
    results["project_augmentation"] = augmentation_throughput(args.data, params.seed)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        clone = Path(scratch) / "project"
        results["clone"] = pipeline.clean_clone(ROOT, clone)
        log.info("full dvc repro in %s", clone)
        results["full_repro"] = pipeline.full_repro(clone)
        results["pipeline_metrics"] = {
            name: read_json(clone / "metrics" / f"{name}.json") for name in ("cnn", "gan", "transfer")
        }
        results["pipeline_metrics"]["transfer"] |= read_json(clone / "models" / "transfer" / "comparison.json")
        results["gan"] = {
            "epochs": params.train_gan.epochs,
            "images": params.train_gan.max_images,
            "batch_size": params.train_gan.batch_size,
        }
        log.info("project CNN, %d epochs", args.cnn_epochs)
        results["project_cnn"] = time_to_accuracy(
            clone / "data" / "processed", params, args.cnn_epochs, TARGET_ACCURACY
        )
        log.info("transfer head")
        results["transfer"] = head_training(
            clone / "data" / "transfer",
            clone / "models" / "cnn" / "best.keras",
            params.train_transfer,
            params.seed,
            ("pipeline_cnn", "mobilenet_v2"),
        )
        log.info("up-to-date pipeline")
        results["up_to_date"] = pipeline.up_to_date(clone)
        results |= measure_scoring_part(clone, log)
        families = of_pipeline(clone, results["clone"], results["full_repro"])
        stamp = {"date": results["date"], "machine": results["machine"], "command": "make bench"}
        results["families"] = families | stamp
    results |= measure_search_part(log)
    results["params"] = {"train_cnn": params.train_cnn.model_dump(), "train_gan": params.train_gan.model_dump()}
    return results | measure_scale_part(args, log)


def measure_scale_part(args: argparse.Namespace, log: logging.Logger) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.scratch) as scratch:
        started = time.perf_counter()
        scale = measure_scale(ROOT, Path(scratch), tuple(args.scale_sizes), args.scale_classes, log)
    scale |= {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "seconds": time.perf_counter() - started}
    return {"scale": scale}


def measure_families_part(log: logging.Logger) -> dict:
    log.info("model families: the whole default dvc repro of a clean clone")
    families = measure_families(ROOT)
    command = " ".join(["python -m bench", *sys.argv[1:]])
    return {"families": families | {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "command": command}}


def measure_search_part(log: logging.Logger) -> dict:
    log.info("hyperparameter search on one worker and on two")
    search = measure_search(ROOT)
    command = " ".join(["python -m bench", *sys.argv[1:]])
    return {"search": search | {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "command": command}}


def measure_scoring_part(project: Path, log: logging.Logger) -> dict:
    log.info("batch scoring with %s's champion", project)
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as scratch:
        started = time.perf_counter()
        scoring = measure_scoring(project, Path(scratch), log)
    command = " ".join(["python -m bench", *sys.argv[1:]])
    scoring |= {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "command": command}
    return {"scoring": scoring | {"seconds": time.perf_counter() - started}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=FASHION_MNIST, help="Fashion-MNIST IDX files for the course recipes"
    )
    parser.add_argument("--course-epochs", type=int, default=10, help="the course's own budget (91.0%% in its README)")
    parser.add_argument("--cnn-epochs", type=int, default=5, help="the project recipe's short budget for time to 91%%")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks.json")
    parser.add_argument(
        "--scale-sizes",
        type=int,
        nargs="+",
        default=[5000, 20000, 40000],
        help="image folder sizes of the scale table (at 224×224×3, each image takes 147 KiB three times: the decode "
        "cache, data/raw and data/processed, so 40,000 images take 18 GiB of disk)",
    )
    parser.add_argument("--scale-classes", type=int, default=200, help="classes of the scale table's folders")
    parser.add_argument("--scratch", type=Path, default=None, help="where the scale table's folders go (tens of GB)")
    parser.add_argument(
        "--only-scale", action="store_true", help="measure the scale table alone, into the existing benchmarks.json"
    )
    parser.add_argument(
        "--only-families",
        action="store_true",
        help="measure the model families alone (a clean clone's whole dvc repro), into the existing benchmarks.json",
    )
    parser.add_argument(
        "--only-search",
        action="store_true",
        help="measure the hyperparameter search alone (one worker, then two), into the existing benchmarks.json",
    )
    parser.add_argument(
        "--only-scoring",
        action="store_true",
        help="measure batch scoring alone with this workspace's champion (its MLflow store receives the scoring "
        "runs), into the existing benchmarks.json",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench: %(message)s")
    log, started = logging.getLogger("bench"), time.perf_counter()
    if args.only_scale or args.only_scoring or args.only_families or args.only_search:
        results = read_json(args.json)
        if args.only_search:
            results |= measure_search_part(log)
        if args.only_families:
            results |= measure_families_part(log)
        if args.only_scale:
            results |= measure_scale_part(args, log)
        if args.only_scoring:
            results |= measure_scoring_part(ROOT, log)
    else:
        results = measure(args, log)
        results["bench_seconds"] = time.perf_counter() - started
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.write_text(render(results))
    print(args.markdown.read_text())


if __name__ == "__main__":
    main()
