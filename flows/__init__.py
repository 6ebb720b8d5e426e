"""Prefect 3 orchestration of the `dvc.yaml` pipeline (see the README's Prefect section)."""
