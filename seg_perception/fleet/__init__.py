"""Cluster execution (Ray) of `process` and `eval`: imports bag/, pipeline and evaluation, never the reverse."""
