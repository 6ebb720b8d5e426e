"""Prefect 3 orchestration of the `dvc.yaml` pipeline (docs/orchestration.md)."""
