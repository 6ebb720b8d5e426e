"""Dataset sources: the datasets known by name, fetching from URLs and mirrors, archives, image folders, IDX files."""
