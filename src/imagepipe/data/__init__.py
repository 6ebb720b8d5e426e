"""Data: sources, fetching, archives, image folders, IDX files, splits, storage."""
