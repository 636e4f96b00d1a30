"""Datasets: definitions, loaders, the canonical table, label distributions, prompts, statistics, generated data."""
