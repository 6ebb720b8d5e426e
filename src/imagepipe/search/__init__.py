"""Hyperparameter search: searches declared in search.yaml, Optuna studies shared by hosts, trial reporting."""
