"""Scoring a model on labelled frames: variants and runners, mergeable tallies and results, the HTML report and
the `eval`/`compare` commands. The metrics themselves are pure and live in core/metrics.py."""
