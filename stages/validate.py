"""validate: the Great Expectations gate between `data/raw/` and everything after it.

The raw shards are read one at a time into a table of a few numbers per image (label, shape,
pixel min/max/mean), which the suites validate with the class counts. Writes the full GX result
(`result.json`), the GX Data Docs (`docs/index.html`, with `docs/results.html` as a plain index
that works offline) and a small, deterministic `summary.json` that later stages depend on. When
any expectation fails the stage exits non-zero with one line per failure, so DVC records nothing
and runs nothing after it.
"""

import argparse
import html
import logging
import shutil
from pathlib import Path

from imagepipe.core.cli import run_stage
from imagepipe.core.files import write_json
from imagepipe.core.params import load_params
from imagepipe.data.storage import open_raw
from imagepipe.validation.expectations import split_table
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True, help="download's output, e.g. data/raw")
    parser.add_argument("--out", type=Path, required=True, help="output directory, e.g. data/validation")
    args = parser.parse_args()
    params = load_params(args.params)
    splits, class_names = open_raw(args.raw)
    tables = {name: split_table(split.iter_shards()) for name, split in splits.items()}
    # Results are written before judging so a failed run can be inspected in the Data Docs.
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    report = validate_dataset(tables, class_names, params.validation, params.image, docs_dir=args.out / "docs")
    write_offline_index(args.out / "docs", report)
    write_json(args.out / "result.json", report.result)
    write_json(
        args.out / "summary.json",
        summarize(report, {name: table["label"].to_numpy() for name, table in tables.items()}, class_names),
    )
    if not report.success:
        details = "\n  ".join(report.failures)
        raise ValidationFailed(
            f"data validation failed ({len(report.failures)} expectation(s)); "
            f"see {args.out / 'docs' / 'index.html'}:\n  {details}"
        )
    logger.info("all expectations met on %s images", {name: len(table) for name, table in tables.items()})


if __name__ == "__main__":
    run_stage(main)
