"""Orchestration helpers for the Prefect flow: the DAG from dvc.yaml, dvc commands, GPUs, workspaces."""
