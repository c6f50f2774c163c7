"""Executors: where batch and experiment rows run — this process, worker processes, or Ray actors.

The driver (feeder, results writer, resume, stats, progress, signals) is the same for all three;
an executor only supplies the row runner it feeds.
"""
