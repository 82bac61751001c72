"""Datasets: the JSONL manifest format, the VADER text-score data and rendered scenes."""
