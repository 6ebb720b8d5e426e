"""Validation: the Great Expectations suites and their verdicts."""
