"""Synthetic driving data for tests, demos and benchmarks.

A procedural world (world, sampling), its camera views with exact labels (canvas, render, labels, scenes) and
recorded drives written as bags (drive_bag). Imports core/ and bag/, never the other way round.
"""
