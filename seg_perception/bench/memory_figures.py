"""Memory figures that say what they mean: a one-time step in RSS told apart from steady growth.

A process's RSS rises once when it first meets a workload (allocator arenas, DDS buffers sized by the
first large samples, ONNX Runtime's memory pattern for a new input shape) and then stays flat; a leak
rises for as long as the workload runs. From the end points alone the two read the same. From an RSS
series they do not: the steady rate is the least-squares slope over the second half of the measured
span (after the warm-up), and `growth_mb` is that rate times the whole measured span, i.e. what the
run would have grown had it grown at its steady rate from the start. The rest of the rise from the
start of the measured span to its end is `one_time_mb`. Targets apply to `growth_mb`.

`classify` calls a series "flat" (rose under `tolerance_mb` and no growth), "one_time" (rose, but the
steady part does not grow) or "growth" (`growth_mb` at least `tolerance_mb`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Series = Sequence[float] | np.ndarray
VERDICTS = ("flat", "one_time", "growth")


def steady_slope_per_s(times_s: Series, values: Series) -> float:
    """Least-squares slope of the second half of the series (by time), in units per second."""
    t = np.asarray(times_s, np.float64)
    v = np.asarray(values, np.float64)
    if len(t) < 2 or t[-1] <= t[0]:
        return 0.0
    second_half = t >= t[0] + (t[-1] - t[0]) / 2.0
    ts, vs = t[second_half], v[second_half]
    if len(ts) < 2 or ts[-1] <= ts[0]:
        ts, vs = t[-2:], v[-2:]
    return float(np.polyfit(ts - ts[0], vs, 1)[0])


def classify(growth_mb: float, rise_mb: float, tolerance_mb: float) -> str:
    """One of VERDICTS: growth beats one-time beats flat."""
    if growth_mb >= tolerance_mb:
        return "growth"
    return "one_time" if rise_mb >= tolerance_mb else "flat"


def rss_figures(
    times_s: Series, rss_mb: Series, steady_from_s: float, tolerance_mb: float
) -> dict[str, Any]:
    """Figures of one RSS series sampled at `times_s` (seconds, rising); the measured (steady) span
    starts at the first sample at or after `steady_from_s` (the end of the warm-up)."""
    t = np.asarray(times_s, np.float64)
    rss = np.asarray(rss_mb, np.float64)
    if len(t) < 2 or len(t) != len(rss):
        raise ValueError(f"an RSS series needs at least two samples with a time each (got {len(t)}, {len(rss)})")
    first = min(int(np.searchsorted(t, steady_from_s)), len(t) - 2)
    steady_t, steady_rss = t[first:], rss[first:]
    span_s = float(steady_t[-1] - steady_t[0])
    slope = steady_slope_per_s(steady_t, steady_rss)
    rise = float(steady_rss[-1] - steady_rss[0])
    growth = slope * span_s
    return {
        "samples": len(t),
        "rss_mb_start": float(rss[0]),
        "rss_mb_after_warmup": float(steady_rss[0]),
        "rss_mb_end": float(rss[-1]),
        "rss_mb_peak": float(rss.max()),
        "warmup_step_mb": float(steady_rss[0] - rss[0]),
        "measured_s": span_s,
        "rise_mb": rise,
        "steady_slope_mb_per_min": slope * 60.0,
        "second_half_rise_mb": float(steady_rss[-1] - steady_rss[len(steady_rss) // 2]),
        "growth_mb": growth,
        "one_time_mb": rise - growth,
        "tolerance_mb": tolerance_mb,
        "verdict": classify(growth, rise, tolerance_mb),
    }


def count_figures(values: Sequence[int]) -> dict[str, int]:
    """Start, end, min and max of a count (threads, open descriptors): flat means all four equal."""
    a = np.asarray(values, np.int64)
    return {"start": int(a[0]), "end": int(a[-1]), "min": int(a.min()), "max": int(a.max())}
