"""Scoring a model on labelled frames: ground-truth matching, variants and runners, mergeable tallies and results,
and the HTML report (the `eval`/`compare` commands are in fleet/eval_commands.py, as they can run on Ray). The
metrics themselves are pure and live in core/metrics.py."""
