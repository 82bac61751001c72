"""Datasets: the JSONL manifest format, the VADER text-score data, rendered scenes and the calibration set."""
