"""Running the expectations' suites through GX checkpoints, and a short report of what failed.

An ephemeral GX context runs each batch (suite and table) as one checkpoint; when asked, the
checkpoints also build GX Data Docs into a given folder.
"""

from dataclasses import dataclass
from pathlib import Path

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.checkpoint.checkpoint import CheckpointDescriptionDict
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.datasource.fluent import PandasDatasource

from imagepipe.core.sections import ImageParams, ValidateParams
from imagepipe.validation.expectations import suites_and_tables

RESULT_FORMAT = {"result_format": "SUMMARY", "unexpected_index_column_names": ["id"]}


@dataclass
class Report:
    success: bool
    failures: list[str]
    result: dict


def validate_dataset(
    tables: dict[str, pd.DataFrame],
    class_names: list[str],
    checks: ValidateParams,
    image: ImageParams,
    docs_dir: Path | None = None,
) -> Report:
    """Run every suite on every split's image table (expectations.split_table); build GX Data
    Docs into docs_dir when given."""
    context = quiet_context(docs_dir)
    source = context.data_sources.add_pandas("arrays")
    results, failures = {}, []
    for name, (suite, table) in suites_and_tables(tables, class_names, checks, image).items():
        results[name], failed = run_batch(context, source, name, suite, table, build_docs=docs_dir is not None)
        failures += failed
    return Report(success=not failures, failures=failures, result=results)


def quiet_context(docs_dir: Path | None) -> AbstractDataContext:
    """An ephemeral GX context without progress bars, whose only Data Docs site is docs_dir."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # The ephemeral context's default site writes to a fresh temporary directory on every run.
    context.delete_data_docs_site("local_site")
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="validation",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def run_batch(
    context: AbstractDataContext,
    source: PandasDatasource,
    name: str,
    suite: gx.ExpectationSuite,
    table: pd.DataFrame,
    build_docs: bool,
) -> tuple[CheckpointDescriptionDict, list[str]]:
    """Validate table against suite as checkpoint name: (GX's result, one line per failure)."""
    definition = gx.ValidationDefinition(
        name=name,
        suite=context.suites.add(suite),
        data=source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole"),
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[context.validation_definitions.add(definition)],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if build_docs else [],
            result_format=RESULT_FORMAT,
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": table})
    failures = [
        describe_failure(name, result)
        for run in outcome.run_results.values()
        for result in run.results
        if not result.success
    ]
    return outcome.describe_dict(), failures


def describe_failure(batch: str, result) -> str:
    """One line: which batch, what was expected, and the offending values or ids."""
    config, found = result.expectation_config, result.result
    if result.exception_info.get("raised_exception"):
        return (
            f"{batch}: {config.description}: could not be evaluated ({result.exception_info.get('exception_message')})"
        )
    if "observed_value" in found:
        return f"{batch}: {config.description}: observed {_short(found['observed_value'])}"
    column, rows = (
        config.kwargs["column"],
        found.get("partial_unexpected_index_list", []),
    )
    count, total = found.get("unexpected_count"), found.get("element_count")
    if all(isinstance(row["id"], str) for row in rows):
        offenders = ", ".join(f"{row['id']}={_short(row[column])}" for row in rows)
    else:
        values = ", ".join(
            f"{_short(item['value'])} ({item['count']}x)" for item in found.get("partial_unexpected_counts", [])
        )
        offenders = f"{column} values {values}; first image indices {', '.join(str(row['id']) for row in rows[:5])}"
    return f"{batch}: {config.description}: {count} of {total} rows fail ({offenders})"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
