"""Batch scoring: new images read and validated, predicted by a task's champion, and checked for drift."""
