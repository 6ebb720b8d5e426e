"""Scale: image folders as users bring them, at several sizes, through the data stages and one
capped training epoch, each stage's seconds, images/s and peak memory; the decode's scaling with
cores; and what adding 1% new images to the largest folder costs.

The folders hold 100×100 RGB JPEGs (the size of the course's fruits-360 photos) in 200 classes (`--scale-classes`),
read at 224×224×3 (the course's InceptionV3 input). The smaller folders are hard links to the
first photos of each class of the largest, and each size gets an empty decode cache.
"""

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from bench.pipeline import DVC, clean_clone, environment, timed
from imagepipe.data.sources.decode import decode_files

PHOTO = (100, 100)
IMAGE = {"height": 224, "width": 224, "channels": 3}
DATA_STAGES = ("scan", "download", "validate", "preprocess")


def write_photo(path: Path, rng: np.random.Generator) -> None:
    """A smooth colour field (a JPEG of the size and compression of a photo, unlike noise)."""
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize(PHOTO, Image.Resampling.BICUBIC).save(path, quality=90)


def write_folder(root: Path, classes: int, per_class: int, seed: int = 0, prefix: str = "photo") -> None:
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = root / f"class {label:03d} (fruit)"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            write_photo(folder / f"{prefix} {index:05d}.jpg", rng)
    (root / "class 000 (fruit)" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 not an image")


def linked_subset(source: Path, destination: Path, per_class: int) -> None:
    for folder in sorted(path for path in source.iterdir() if path.is_dir()):
        (destination / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:per_class]:
            os.link(photo, destination / folder.name / photo.name)


def project_for(root: Path, workspace: Path, folder: Path) -> Path:
    clean_clone(root, workspace)
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["data"].update({"dataset": "image_folder", "source": str(folder)})
    params["image"] = IMAGE
    # 200 classes at 5,000 images leave 5 test images a class.
    params["validate"]["min_images_per_class"] = 5
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workspace


def run_stages(workspace: Path, env: dict[str, str], images: int) -> list[dict]:
    results = []
    for stage in DATA_STAGES:
        timing = timed([*DVC, "repro", "--single-item", stage], workspace, env)
        results.append(
            {
                "stage": stage,
                "seconds": timing["seconds"],
                "images_per_s": images / timing["seconds"],
                "peak_memory_mib": timing["peak_memory_mib"],
            }
        )
    return results


def training_epoch(workspace: Path, env: dict[str, str]) -> dict:
    timing = timed([sys.executable, "-m", "bench.transfer_epoch", "--data", "data/processed"], workspace, env)
    figures = json.loads(timing["output"].strip().splitlines()[-1])
    return figures | {
        "stage": "transfer epoch",
        "wall_seconds": timing["seconds"],
        "peak_memory_mib": timing["peak_memory_mib"],
    }


def decode_scaling(folder: Path, scratch: Path, count: int = 3000) -> dict:
    """Images/s decoding the same files into an empty decode cache (as download does) with 1
    worker and with every core."""
    paths = sorted(folder.rglob("*.jpg"))[:count]
    size = (IMAGE["height"], IMAGE["width"], IMAGE["channels"])
    rates = {}
    for workers in sorted({1, len(os.sched_getaffinity(0))}):
        cache = scratch / f"decode-cache-{workers}"
        start = time.perf_counter()
        for _ in decode_files(paths, size, cache, workers=workers):
            pass
        rates[str(workers)] = count / (time.perf_counter() - start)
        shutil.rmtree(cache)
    return rates


def disk_mib(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 2**20


def measure_scale(root: Path, scratch: Path, sizes: tuple[int, ...], classes: int, log) -> dict:
    largest = scratch / "photos"
    log.info("writing %d photos", max(sizes))
    write_folder(largest, classes, max(sizes) // classes)
    results: dict = {"classes": classes, "photo": list(PHOTO), "image": IMAGE, "sizes": []}
    results["decode_images_per_s"] = decode_scaling(largest, scratch)
    for size in sorted(sizes):
        folder = largest
        if size != max(sizes):
            folder = scratch / f"photos-{size}"
            linked_subset(largest, folder, size // classes)
        workspace = project_for(root, scratch / f"project-{size}", folder)
        env = environment(XDG_CACHE_HOME=str(scratch / f"cache-{size}"))
        log.info("data stages on %d images", size)
        stages = run_stages(workspace, env, size)
        log.info("transfer epoch on %d images", size)
        stages.append(training_epoch(workspace, env))
        results["sizes"].append(
            {"images": size, "stages": stages, "processed_mib": disk_mib(workspace / "data" / "processed")}
        )
        if size != max(sizes):  # the disk: three copies of each image (decode cache, raw, processed)
            for path in (workspace, folder, scratch / f"cache-{size}"):
                shutil.rmtree(path)
        if size == max(sizes):
            log.info("adding 1%% new photos to %d", size)
            per_class = max(1, size // classes // 100)
            write_folder(largest, classes, per_class, seed=1, prefix="new photo")
            results["incremental"] = {"added": classes * per_class, "stages": run_stages(workspace, env, size)}
    return results


def render_scale(scale: dict) -> list[str]:
    sizes = scale["sizes"]
    names = [stage["stage"] for stage in sizes[0]["stages"]]
    lines = [
        "## Scale: a user's image folder at three sizes",
        "",
        f"{scale['classes']} classes of {scale['photo'][0]}×{scale['photo'][1]} RGB JPEGs read at "
        f"{scale['image']['height']}×{scale['image']['width']}×{scale['image']['channels']}, each size in a clean "
        "clone with an empty decode cache; `dvc repro --single-item` per stage, so each figure includes DVC hashing "
        "the stage's outputs. The transfer epoch: InceptionV3 (weights from a file) fine-tuned for 5 steps of 16 "
        "images on data/processed, read as the training stages read it. Peak memory: the largest process of the stage.",
        "",
        "| stage | "
        + " | ".join(f"{size['images']:,} images: s / img/s / MiB" for size in sizes)
        + " | peak MiB, largest / smallest |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for index, name in enumerate(names):
        cells = []
        for size in sizes:
            stage = size["stages"][index]
            rate = stage.get("images_per_s", 0)
            cells.append(f"{stage['seconds']:.1f} / {rate:,.0f} / {stage['peak_memory_mib']:,.0f}")
        growth = sizes[-1]["stages"][index]["peak_memory_mib"] / sizes[0]["stages"][index]["peak_memory_mib"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {growth:.2f}× |")
    lines.append(
        "| data/processed on disk (MiB) | " + " | ".join(f"{size['processed_mib']:,.0f}" for size in sizes) + " | |"
    )
    decode = scale["decode_images_per_s"]
    cores = max(decode, key=int)
    lines += [
        "",
        f"Decoding 3,000 photos into an empty decode cache: {decode['1']:,.0f} img/s on 1 core, "
        f"{decode[cores]:,.0f} img/s on {cores} ({decode[cores] / decode['1']:.2f}×).",
    ]
    if "incremental" in scale:
        full = {stage["stage"]: stage["seconds"] for stage in sizes[-1]["stages"]}
        again = {stage["stage"]: stage["seconds"] for stage in scale["incremental"]["stages"]}
        share = (again["download"] + again["preprocess"]) / (full["download"] + full["preprocess"])
        lines += [
            "",
            f"Adding {scale['incremental']['added']:,} photos (1%) to the {sizes[-1]['images']:,}: download "
            f"{again['download']:.1f} s (was {full['download']:.1f} s), validate {again['validate']:.1f} s, preprocess "
            f"{again['preprocess']:.1f} s (was {full['preprocess']:.1f} s): download + preprocess take {share:.0%} of "
            "their first run.",
        ]
    return lines + [""]
