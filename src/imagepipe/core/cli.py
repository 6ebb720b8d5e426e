"""The command-line edge shared by every stage: logging set-up and user-facing errors."""

import logging
import os
import sys
from collections.abc import Callable

from imagepipe.core.errors import StageError
from imagepipe.core.lifecycle import die_with_caller, stop_on_sigterm


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(); a StageError ends it with its message and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    stop_on_sigterm()
    die_with_caller()
    logging.getLogger(__name__).info("stage started as process %d", os.getpid())
    try:
        main()
    except StageError as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(1)
