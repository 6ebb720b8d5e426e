"""BENCHMARKS.md from the raw figures: tables with ratios, and the issue's targets met or missed."""

from bench.families import render_families
from bench.scale import render_scale
from bench.scoring import render_scoring
from bench.search import render_search


def render(r: dict) -> str:
    course, project, peak = r["course_cnn"], r["project_cnn"], r["matmul_peak"]["gflops"]
    stages = {stage["stage"]: stage for stage in r["full_repro"]}
    total = sum(stage["seconds"] for stage in r["full_repro"])
    course_gflops = course["training_mflops_per_image"] * 1e6 * course["img_per_s"] / 1e9
    course_to_target = course["fit_s"] if course["test_acc"] >= project["target"] else None
    # seed_cnn.py reports test accuracy only at its end: its time to the target is at most its
    # fit time when it got there, and more than that when it did not.
    if course_to_target is None:
        course_time = f"> {course['fit_s']:.0f} s (not reached in {course['epochs']:.0f} epochs)"
        time_ratio = (
            "n/a"
            if project["seconds_to_target"] is None
            else f"< {project['seconds_to_target'] / course['fit_s']:.2f}× the time"
        )
    else:
        course_time = f"≤ {course_to_target:.0f} s"
        time_ratio = ratio(project["seconds_to_target"], course_to_target)
    augmentation = r["course_augmentation"]
    augment_ratio = r["project_augmentation"]["img_per_s"] / augmentation["imagedatagenerator_img_per_s"]
    up_to_date = r["up_to_date"]
    dvc_seconds = up_to_date["dvc_repro"]["median_seconds"]
    flow_seconds = up_to_date["prefect_flow"]["median_seconds"]
    flow_extra = flow_seconds - dvc_seconds
    cnn_accuracy = r["pipeline_metrics"]["cnn"]["test_accuracy"]
    gan, gan_seconds = r["gan"], stages["train_gan"]["seconds"]
    project_epochs = len(project["epochs"])
    lines = [
        "# Benchmarks",
        "",
        f"`make bench` on {r['machine']['cpu']} ({r['machine']['cores']} cores), "
        f"TensorFlow {r['machine']['tensorflow']},",
        f"{r['date']}, commit {r['clone']['commit'][:10]}; {r['bench_seconds'] / 60:.1f} minutes in all. The course's",
        "recipes (`seed_cnn.py`, `seed_augment.py`) ran in the same run on the same machine. Raw figures:",
        "`benchmarks.json`.",
        "",
        "## CNN training: the course's recipe vs the project's default",
        "",
        f"Course: `seed_cnn.py {course['epochs']:.0f}` (batch 64, Adam). "
        "Project: `train_cnn`'s own code and the default",
        f"params, with the schedule fitted to {project_epochs} epochs "
        f"for the time to {project['target']:.0%}; the full default",
        f"({r['params']['train_cnn']['epochs']} epochs) is the pipeline's CNN below. "
        "Project seconds include each epoch's validation pass.",
        "",
        "| | course | project | ratio |",
        "|---|---|---|---|",
        f"| training images/s | {course['img_per_s']:,.0f} | {project['train_images_per_s']:,.0f} "
        f"| {project['train_images_per_s'] / course['img_per_s']:.2f}× |",
        f"| seconds to {project['target']:.0%} test accuracy | {course_time} "
        f"| {seconds(project['seconds_to_target'])} | {time_ratio} |",
        f"| test accuracy at the end "
        f"| {course['test_acc']:.2%} ({course['epochs']:.0f} epochs, {course['fit_s']:.0f} s) "
        f"| {project['test_accuracy']:.2%} ({project_epochs} epochs, {project['epochs'][-1]['seconds']:.0f} s) | |",
        f"| MFLOP per training image (conv + dense) | {course['training_mflops_per_image']:.1f} "
        f"| {project['training_mflops_per_image']:.1f} | |",
        f"| achieved GFLOP/s | {course_gflops:.0f} | {project['gflops']:.0f} "
        f"| {project['gflops'] / course_gflops:.2f}× |",
        f"| share of the matmul peak ({peak:.0f} GFLOP/s) | {course_gflops / peak:.0%} "
        f"| {project['gflops'] / peak:.0%} | |",
        f"| the pipeline's CNN, full default | "
        f"| {cnn_accuracy:.2%} test accuracy, {stages['train_cnn']['seconds']:.0f} s | |",
        "",
        "Project test accuracy after each epoch of the short run: "
        + ", ".join(f"{e['test_accuracy']:.2%} at {e['seconds']:.0f} s" for e in project["epochs"])
        + ".",
        "",
        "## Augmentation input pipeline (no model; 60,000 images, batch 256, the course's settings)",
        "",
        "| ImageDataGenerator | course's Keras layers in tf.data "
        "| project (one fused warp) | project / ImageDataGenerator |",
        "|---|---|---|---|",
        f"| {augmentation['imagedatagenerator_img_per_s']:,.0f} img/s "
        f"| {augmentation['tfdata_layers_img_per_s']:,.0f} img/s "
        f"| {r['project_augmentation']['img_per_s']:,.0f} img/s | {augment_ratio:.1f}× |",
        "",
        "## The pipeline up to date (median of 3 runs, each a fresh process)",
        "",
        "| `dvc repro` | Prefect flow (`pipeline()`, local server) | flow − dvc |",
        "|---|---|---|",
        f"| {dvc_seconds:.2f} s | {flow_seconds:.2f} s | {flow_extra:.2f} s |",
        "",
        "## Full default `dvc repro` from a clean clone, stage by stage",
        "",
        "Peak memory: the largest process of the stage (its Python, under DVC).",
        "",
        "| stage | seconds | peak memory (MiB) |",
        "|---|---|---|",
        *(
            f"| {stage['stage']} | {stage['seconds']:.1f} | {stage['peak_memory_mib']:,.0f} |"
            for stage in r["full_repro"]
        ),
        f"| **total** | **{total:.0f} ({total / 60:.1f} min)** | |",
        "",
        "## Transfer: head training on cached features vs the frozen backbone every epoch",
        "",
        "| backbone | epochs | every epoch (s) | cached features (s) | speed-up "
        "| best val accuracy (every epoch / cached) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {t['backbone']} | {t['epochs']} | {t['every_epoch']:.1f} | {t['cached']:.1f} "
            f"| {t['every_epoch'] / t['cached']:.1f}× "
            f"| {t['every_epoch_val_accuracy']:.2%} / {t['cached_val_accuracy']:.2%} |"
            for t in r["transfer"]
        ),
        "",
        "pipeline_cnn is the pipeline's trained CNN. mobilenet_v2 has random weights (no ImageNet",
        "weights offline), so its accuracy is chance: only its seconds count here.",
        "",
        "## GAN",
        "",
        f"{gan['images']:,} images × {gan['epochs']} epochs, batch {gan['batch_size']}: "
        f"{gan_seconds:.0f} s for the stage,",
        f"{gan_seconds / gan['epochs']:.0f} s per epoch including its per-epoch FID; "
        f"test FID {r['pipeline_metrics']['gan']['test_fid']:.1f}.",
        "",
        "## Targets (issue 5)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        target(
            "time to 91% ≤ 1/5 of the course's",
            time_ratio,
            project["seconds_to_target"] is not None and project["seconds_to_target"] <= course["fit_s"] / 5,
        ),
        target(
            "throughput ≥ 2.5× the course's at equal or better accuracy",
            f"{project['train_images_per_s'] / course['img_per_s']:.2f}×",
            project["train_images_per_s"] >= 2.5 * course["img_per_s"]
            and project["test_accuracy"] >= course["test_acc"],
        ),
        target("≥ 60% of the matmul peak", f"{project['gflops'] / peak:.0%}", project["gflops"] >= 0.6 * peak),
        target("default pipeline CNN ≥ 94.0%", f"{cnn_accuracy:.2%}", cnn_accuracy >= 0.94),
        target("whole default `dvc repro` from clean ≤ 10 min", f"{total / 60:.1f} min", total <= 600),
        target("augmentation ≥ 5× ImageDataGenerator", f"{augment_ratio:.1f}×", augment_ratio >= 5),
        target(
            "`dvc repro` up to date ≤ 2 s",
            f"{dvc_seconds:.2f} s",
            dvc_seconds <= 2,
        ),
        target("the Prefect flow ≤ 5 s more", f"{flow_extra:.2f} s", flow_extra <= 5),
        "",
    ]
    if "scale" in r:
        lines += render_scale(r["scale"]) + scale_targets(r["scale"])
    if "scoring" in r:
        lines += render_scoring(r["scoring"]) + scoring_targets(r["scoring"])
    if "families" in r:
        lines += render_families(r["families"])
    if "search" in r:
        lines += render_search(r["search"])
    return "\n".join(lines)


def scale_targets(scale: dict) -> list[str]:
    sizes = scale["sizes"]
    smallest, largest = sizes[0]["stages"], sizes[-1]["stages"]
    growth = max(
        big["peak_memory_mib"] / small["peak_memory_mib"] for small, big in zip(smallest, largest, strict=True)
    )
    peak = max(stage["peak_memory_mib"] for size in sizes for stage in size["stages"])
    decode = scale["decode_images_per_s"]
    cores = max(decode, key=int)
    speedup = decode[cores] / decode["1"]
    lines = [
        f"## Targets (issue 13), measured {scale['date']} on {scale['machine']['cpu']} "
        f"({scale['machine']['cores']} cores)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        target(
            "every stage's peak memory at the largest size ≤ 1.25× the smallest's",
            f"{growth:.2f}× at most",
            growth <= 1.25,
        ),
        target("every stage's peak memory < 3 GiB", f"{peak / 1024:.2f} GiB at most", peak < 3 * 1024),
        target(f"decoding scales with cores ({cores})", f"{speedup:.2f}×", speedup >= 0.8 * int(cores)),
    ]
    if "incremental" in scale:
        full = {stage["stage"]: stage["seconds"] for stage in largest}
        again = {stage["stage"]: stage["seconds"] for stage in scale["incremental"]["stages"]}
        share = (again["download"] + again["preprocess"]) / (full["download"] + full["preprocess"])
        lines.append(target("1% new images: download + preprocess < 10% of the full time", f"{share:.0%}", share < 0.1))
    return lines + [""]


def scoring_targets(scoring: dict) -> list[str]:
    runs = scoring["runs"]
    small, large = runs[0], max(runs, key=lambda run: run["images"])
    growth = large["peak_memory_mib"] / small["peak_memory_mib"]
    states = [
        target(f"{run['folder']} ends {run['expected']}", run["state"], run["state"] == run["expected"])
        for run in runs
        if run["expected"]
    ]
    memory = f"peak memory at {large['images']:,} images ≤ 1.25× at {small['images']:,}"
    return [
        "### Targets (issue 14)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *states,
        target(memory, f"{growth:.2f}×", growth <= 1.25),
        "",
    ]


def seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.0f} s"


def ratio(ours: float | None, theirs: float | None) -> str:
    return "n/a" if ours is None or theirs is None else f"{ours / theirs:.2f}× the time"


def target(name: str, measured: str, met: bool) -> str:
    return f"| {name} | {measured} | {'yes' if met else '**no**'} |"
