"""Helpers shared by the stages: params, fetching, array storage, data checks."""
