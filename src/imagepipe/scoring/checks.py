"""The Great Expectations suite new images pass before they are scored: readable, shaped as the
model's input, pixels within 0..255.

The images are summarised into a table of a few numbers per file (imagepipe.scoring.images.image_stats),
which GX validates as a pandas batch through the same checkpoint runner as the training data's suites
(imagepipe.validation.runner); each row's `id` is the file's path, so a failure names the files.
"""

from dataclasses import asdict

import great_expectations as gx
import pandas as pd

from imagepipe.core.sections import ImageParams
from imagepipe.scoring.images import ImageStats
from imagepipe.validation.expectations import pixel_expectations, shape_expectations
from imagepipe.validation.runner import Report, quiet_context, run_batch

E = gx.expectations
SUITE = "new_images"


def stats_table(stats: list[ImageStats]) -> pd.DataFrame:
    columns = list(ImageStats.__dataclass_fields__)
    table = pd.DataFrame([asdict(row) for row in stats], columns=columns)
    return table.rename(columns={"path": "id"}).drop(columns="error")


def new_images_suite(shape: tuple[int, int, int], resize: bool) -> gx.ExpectationSuite:
    """Readable files with pixels in 0..255; and, unless images are to be fitted (resize), stored
    at the model's input shape (height, width, channels)."""
    height, width, channels = shape
    expectations = [
        E.ExpectTableRowCountToBeBetween(min_value=1, description="there are images to score"),
        E.ExpectColumnValuesToBeInSet(column="readable", value_set=[True], description="every image file decodes"),
        *pixel_expectations(),
    ]
    if not resize:
        expectations += shape_expectations(
            ImageParams.model_validate({"height": height, "width": width, "channels": channels})
        )
    return gx.ExpectationSuite(name=SUITE, expectations=expectations)


def validate_images(stats: list[ImageStats], shape: tuple[int, int, int], resize: bool) -> Report:
    """Run the suite on the images' statistics; the report lists each failed expectation with
    the files that broke it, and the decoding error of each unreadable file."""
    context = quiet_context(None)
    source = context.data_sources.add_pandas("new_images")
    result, failures = run_batch(context, source, SUITE, new_images_suite(shape, resize), stats_table(stats), False)
    unreadable = [f"{row.path}: {row.error}" for row in stats if not row.readable]
    # The pixel range is checked on three columns; a file out of range breaks them all alike.
    lines = list(dict.fromkeys(failures))
    return Report(success=not failures, failures=lines + unreadable[:20], result={SUITE: result})
