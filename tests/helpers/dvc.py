"""Reading what `dvc status` says of the project's pipeline."""

# `scan` is `always_changed` (it is how DVC sees a change inside an image folder outside the
# repository), so a pipeline with nothing to do reports that stage alone.
UP_TO_DATE = (["Data", "and", "pipelines", "are", "up", "to", "date."], ["scan:", "always", "changed"])


def up_to_date(status_output: str) -> bool:
    """Whether `dvc status` printed that nothing but `scan` would run."""
    return status_output.split() in UP_TO_DATE
