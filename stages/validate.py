"""validate: the Great Expectations gate between `data/raw/` and everything after it.

The raw shards are read one at a time into a table of a few numbers per image (label, shape,
pixel min/max/mean), which the suites validate with the class counts. Writes the full GX result
(`result.json`), the GX Data Docs (`docs/index.html`, self-contained: their browser assets are
copied in from `--assets`, so they open offline; `docs/label_distribution.html` charts each
class's share of each split against the allowed band; `docs/results.html` is a plain index
without JavaScript), the label distribution as a DVC plot (`--plot`, a CSV)
and a small, deterministic `summary.json` that later stages depend on. When any expectation fails
the stage exits non-zero with one line per failure, so DVC records nothing and runs nothing after it.
"""

import argparse
import html
import logging
import shutil
from pathlib import Path

import pandas as pd

from imagepipe.core.cli import run_stage
from imagepipe.core.files import replace_whole, write_json
from imagepipe.core.params import load_params
from imagepipe.core.sections import ValidateParams
from imagepipe.data.storage import open_raw
from imagepipe.validation.datadocs import link_from_index, localize, require_assets
from imagepipe.validation.expectations import split_table
from imagepipe.validation.label_distribution import PAGE, chart_page, label_distribution
from imagepipe.validation.runner import Report, validate_dataset
from imagepipe.validation.summary import ValidationFailed, summarize

logger = logging.getLogger(__name__)


def write_offline_index(docs: Path, report: Report) -> Path:
    """A plain HTML list of the validation pages: GX's own index builds its table with
    JavaScript from public CDNs, so it is empty on a machine without internet."""
    rows = []
    for page in sorted(docs.glob("validations/*/**/*.html")):
        batch = page.relative_to(docs / "validations").parts[0]
        verdict = "passed" if report.result.get(batch, {}).get("success") else "FAILED"
        rows.append(f'<li><a href="{page.relative_to(docs).as_posix()}">{html.escape(batch)}</a>: {verdict}</li>')
    failures = "".join(f"<li>{html.escape(line)}</li>" for line in report.failures) or "<li>none</li>"
    index = docs / "results.html"
    index.write_text(
        "<!doctype html><title>Data validation</title><h1>Data validation</h1>"
        f"<h2>Failures</h2><ul>{failures}</ul>"
        f"<h2>Validation results</h2><ul>{''.join(rows)}</ul>\n"
    )
    return index


def write_docs(docs: Path, report: Report, distribution: pd.DataFrame, checks: ValidateParams, assets: Path) -> None:
    """Beside GX's pages: the label distribution page and the plain index, linked from GX's
    index; then every page made to load its assets from the docs folder."""
    (docs / PAGE).write_text(chart_page(distribution, checks))
    write_offline_index(docs, report)
    link_from_index(docs, {PAGE: "Label distribution", "results.html": "Results without JavaScript"})
    localize(docs, assets)


def write_distribution(path: Path, distribution: pd.DataFrame) -> None:
    """The DVC plot: a row per split and class (dvc.yaml draws it with the template
    .dvc/plots/label_distribution.json, the band behind the bars)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_whole(path, lambda scratch: distribution.to_csv(scratch, index=False, float_format="%.6g"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True, help="download's output, e.g. data/raw")
    parser.add_argument("--out", type=Path, required=True, help="output directory, e.g. data/validation")
    parser.add_argument("--assets", type=Path, required=True, help="e.g. vendor/datadocs/node_modules (make setup)")
    parser.add_argument("--plot", type=Path, required=True, help="e.g. plots/validation/label_distribution.csv")
    args = parser.parse_args()
    require_assets(args.assets)  # before reading any data, not after validating it
    params = load_params(args.params)
    splits, class_names = open_raw(args.raw)
    tables = {name: split_table(split.iter_shards()) for name, split in splits.items()}
    labels = {name: table["label"].to_numpy() for name, table in tables.items()}
    # Results are written before judging so a failed run can be inspected in the Data Docs.
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    report = validate_dataset(tables, class_names, params.validation, params.image, docs_dir=args.out / "docs")
    distribution = label_distribution(labels, class_names, params.validation)
    write_docs(args.out / "docs", report, distribution, params.validation, args.assets)
    write_distribution(args.plot, distribution)
    write_json(args.out / "result.json", report.result)
    write_json(args.out / "summary.json", summarize(report, labels, class_names))
    if not report.success:
        details = "\n  ".join(report.failures)
        raise ValidationFailed(
            f"data validation failed ({len(report.failures)} expectation(s)); "
            f"see {args.out / 'docs' / 'index.html'}:\n  {details}"
        )
    logger.info("all expectations met on %s images", {name: len(table) for name, table in tables.items()})


if __name__ == "__main__":
    run_stage(main)
