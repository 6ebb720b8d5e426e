"""The small core: params, errors, process lifecycle, redaction, whole-file writes."""
