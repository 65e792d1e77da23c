"""Memory figures that say what they mean: a one-time step in RSS told apart from steady growth.

A process's RSS rises once when it first meets a workload (allocator arenas, DDS buffers sized by the
first large samples, ONNX Runtime's memory pattern for a new input shape) and then stays level; a leak
rises for as long as the workload runs. From two end points the two read the same; from an RSS series
they do not. On top of both, RSS swings by 10-20 MB while frames are in flight (a 1280x720 frame is
2.8 MB and a busy node holds several), so a sample taken under load is a sample of that swing.

So the figures compare like with like. `rise_mb` runs from the last sample before the load began to the
last sample, taken once the load has stopped (both idle). A leak also raises the floor of the swing:
the measured span is cut into FLOOR_WINDOWS windows, the floor of each is its lowest sample, and the
steady rate is the least-squares slope of the floors of the second half. `growth_mb` is that rate times
the measured span (what the run would have grown at its steady rate from the start), but never below 0
(memory given back is no growth) nor above the rise (a leak leaves its memory behind). The rest of the
rise is `one_time_mb`. Targets apply to `growth_mb`.

`classify` calls a series "growth" (`growth_mb` at least `tolerance_mb`), "one_time" (it rose by that
much, but the steady part does not grow) or "flat".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from seg_perception.bench.process_stats import ProcessTrace

Series = Sequence[float] | np.ndarray
VERDICTS = ("flat", "one_time", "growth")
FLOOR_WINDOWS = 8
MAX_SERIES_POINTS = 120  # of a node phase's RSS series kept in the bench report


def window_floors(times_s: Series, values: Series, windows: int = FLOOR_WINDOWS) -> tuple[np.ndarray, np.ndarray]:
    """The lowest sample of each of `windows` equal time windows (empty ones left out): times, values."""
    t = np.asarray(times_s, np.float64)
    v = np.asarray(values, np.float64)
    edges = np.linspace(t[0], t[-1], windows + 1)
    which = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, windows - 1)
    lowest = [np.flatnonzero(which == w) for w in range(windows)]
    picks = np.array([idx[np.argmin(v[idx])] for idx in lowest if len(idx)], np.int64)
    return t[picks], v[picks]


def steady_slope_per_s(times_s: Series, values: Series) -> float:
    """Least-squares slope of the window floors of the second half of the series, in units per second."""
    t = np.asarray(times_s, np.float64)
    if len(t) < 2 or t[-1] <= t[0]:
        return 0.0
    ft, fv = window_floors(t, values)
    ft, fv = (ft[len(ft) // 2 :], fv[len(fv) // 2 :]) if len(ft) >= 4 else (ft, fv)
    if len(ft) < 2 or ft[-1] <= ft[0]:
        return 0.0
    return float(np.polyfit(ft - ft[0], fv, 1)[0])


def classify(growth_mb: float, rise_mb: float, tolerance_mb: float) -> str:
    """One of VERDICTS: growth beats one-time beats flat."""
    if growth_mb >= tolerance_mb:
        return "growth"
    return "one_time" if rise_mb >= tolerance_mb else "flat"


def rss_figures(
    times_s: Series, rss_mb: Series, steady_from_s: float, tolerance_mb: float, steady_until_s: float | None = None
) -> dict[str, Any]:
    """Figures of one RSS series sampled at `times_s` (seconds, rising). The measured span runs from the
    last sample at or before `steady_from_s` (the end of the warm-up) to the last at or before
    `steady_until_s` (when the load stopped; default: the last sample); samples after it (the process
    idle again) count in the end figures and the rise, not in the steady rate."""
    t = np.asarray(times_s, np.float64)
    rss = np.asarray(rss_mb, np.float64)
    if len(t) < 2 or len(t) != len(rss):
        raise ValueError(f"an RSS series needs at least two samples with a time each (got {len(t)}, {len(rss)})")
    first = min(max(int(np.searchsorted(t, steady_from_s, side="right")) - 1, 0), len(t) - 2)
    last = len(t) if steady_until_s is None else int(np.searchsorted(t, steady_until_s, side="right"))
    last = max(last, first + 2)
    steady_t, steady_rss = t[first:last], rss[first:last]
    span_s = float(steady_t[-1] - steady_t[0])
    slope = steady_slope_per_s(steady_t, steady_rss)
    rise = float(rss[-1] - rss[first])
    growth = min(max(0.0, slope * span_s), max(0.0, rise))
    return {
        "samples": len(t),
        "rss_mb_start": float(rss[0]),
        "rss_mb_after_warmup": float(rss[first]),
        "rss_mb_end": float(rss[-1]),
        "rss_mb_peak": float(rss.max()),
        "warmup_step_mb": float(rss[first] - rss[0]),
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


def add_phase_memory(phase: dict[str, Any], trace: ProcessTrace, since: float, tolerance_mb: float) -> None:
    """Give a node phase its "rss" figures from `trace`: the samples from `since` (trace.take() when the
    phase began, its warm-up handshake included) to now (just after it ended); its measured span is
    what the phase left under "measured_monotonic_s" as [from, to]: from when sending began to when it
    ended (taken out here; a phase that failed before it measured has none and gets no figures)."""
    window = phase.pop("measured_monotonic_s", None)
    if window is None:
        return
    measured_from, measured_to = window
    until = trace.take()  # so that even a starved sampler leaves the phase a sample at each end
    times, samples = trace.window(since, until)
    if len(samples) < 2:
        return
    steady = (measured_from - since, measured_to - since)
    figures = rss_figures(times, [s.rss_mb for s in samples], steady[0], tolerance_mb, steady[1])
    measured = [s for t, s in zip(times, samples, strict=True) if t >= steady[0]] or samples[-1:]
    figures["threads"] = count_figures([s.threads for s in measured])
    figures["open_fds"] = count_figures([s.open_fds for s in measured])
    keep = np.unique(np.linspace(0, len(samples) - 1, min(len(samples), MAX_SERIES_POINTS)).astype(np.int64))
    figures["series"] = {
        "t_s": [round(times[i], 3) for i in keep],
        "rss_mb": [round(samples[i].rss_mb, 3) for i in keep],
    }
    phase["rss"] = figures
