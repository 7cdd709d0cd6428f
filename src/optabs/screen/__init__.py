"""Screening and active learning: figures of merit with ensemble uncertainty, acquisition rules,
out-of-distribution flags, the ranking of uncomputed candidates and the rounds that feed DFT."""
