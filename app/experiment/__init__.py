"""Experiments: the same questions under several variants, run on the batch engine and reported side by side."""
