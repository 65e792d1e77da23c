"""The memory figures tell a one-time RSS step from steady growth on synthetic series (flat, step,
slope), and the /proc readers behind them see this very process's threads and descriptors."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from seg_perception.bench.memory_figures import add_phase_memory, classify, count_figures, rss_figures
from seg_perception.bench.process_stats import ProcessSample, ProcessTrace, open_fd_targets, thread_names

TIMES = np.arange(0.0, 600.0, 2.0)  # ten minutes sampled every 2 s
WARMUP_S = 60.0
LOAD_ENDS_S = 540.0  # where a series has an idle tail, the load stops here
GONE_PID = 2**22 + 12345  # above the kernel's largest pid (pid_max is at most 2**22)
NOISE = np.random.default_rng(0).normal(0.0, 0.05, len(TIMES))  # allocator jitter, well under a MB


def _series(after_warmup: np.ndarray) -> np.ndarray:
    """300 MB after a 60 MB warm-up step, plus `after_warmup` over the measured span."""
    return 240.0 + 60.0 * (TIMES >= WARMUP_S) + after_warmup + NOISE


def test_flat_series_is_flat_and_the_warmup_step_is_its_own_figure() -> None:
    f = rss_figures(TIMES, _series(np.zeros(len(TIMES))), WARMUP_S, tolerance_mb=5.0)
    assert f["verdict"] == "flat"
    assert f["samples"] == len(TIMES) and f["measured_s"] == pytest.approx(600.0 - 2.0 - WARMUP_S)
    assert f["warmup_step_mb"] == pytest.approx(60.0, abs=0.3)
    assert f["rss_mb_after_warmup"] == pytest.approx(300.0, abs=0.3)
    assert abs(f["growth_mb"]) < 0.5 and abs(f["rise_mb"]) < 0.5
    assert f["rss_mb_peak"] == pytest.approx(float(_series(np.zeros(len(TIMES))).max()))


def test_a_step_early_in_the_measured_span_is_one_time_not_growth() -> None:
    step = 30.0 * (TIMES >= 120.0)  # the overload phase's larger buffers, allocated once
    f = rss_figures(TIMES, _series(step), WARMUP_S, tolerance_mb=5.0)
    assert f["verdict"] == "one_time"
    assert f["rise_mb"] == pytest.approx(30.0, abs=0.3)
    assert abs(f["growth_mb"]) < 0.5
    assert f["one_time_mb"] == pytest.approx(30.0, abs=0.5)
    assert f["one_time_mb"] + f["growth_mb"] == pytest.approx(f["rise_mb"])


def test_a_steady_slope_is_growth_over_the_whole_measured_span() -> None:
    leak = 1.0 * np.clip(TIMES - WARMUP_S, 0.0, None) / 60.0  # 1 MB per minute from the end of warm-up
    f = rss_figures(TIMES, _series(leak), WARMUP_S, tolerance_mb=5.0)
    assert f["verdict"] == "growth"
    assert f["steady_slope_mb_per_min"] == pytest.approx(1.0, rel=0.02)
    assert f["growth_mb"] == pytest.approx(f["measured_s"] / 60.0, rel=0.02)
    assert abs(f["one_time_mb"]) < 0.5
    assert f["second_half_rise_mb"] == pytest.approx(f["measured_s"] / 120.0, rel=0.05)


def test_a_slow_leak_under_a_big_step_is_still_growth() -> None:
    """What end points cannot show: a 20 MB step and a 6 MB leak read as one 26 MB rise."""
    leak = 6.0 * np.clip(TIMES - WARMUP_S, 0.0, None) / (TIMES[-1] - WARMUP_S)
    f = rss_figures(TIMES, _series(20.0 * (TIMES >= 100.0) + leak), WARMUP_S, tolerance_mb=5.0)
    assert f["verdict"] == "growth"
    assert f["growth_mb"] == pytest.approx(6.0, rel=0.1)
    assert f["one_time_mb"] == pytest.approx(20.0, abs=1.0)


def test_frames_in_flight_swing_rss_but_do_not_read_as_growth() -> None:
    """A busy node holds several 2.8 MB frames at a time, in arenas given back late: RSS swings by tens
    of MB, and the last sample may land on a swing. The floor does not move, so neither does growth."""
    rng = np.random.default_rng(1)
    swings = np.zeros(len(TIMES))
    for start in rng.choice(np.arange(30, len(TIMES) - 10), 12, replace=False):
        swings[start : start + rng.integers(3, 9)] = rng.uniform(10.0, 40.0)
    swings[-6:] = 35.0  # the run ends in a swing
    f = rss_figures(TIMES, _series(swings), WARMUP_S, tolerance_mb=5.0)
    assert abs(f["growth_mb"]) < 0.5, f
    assert f["rise_mb"] == pytest.approx(35.0, abs=0.3) and f["verdict"] == "one_time"
    assert f["rss_mb_peak"] >= 335.0


def test_the_idle_tail_after_the_load_counts_in_the_rise_not_in_the_steady_rate() -> None:
    """Idle before the load, a 12 MB working set while frames are in flight, idle again after it: a
    1 MB/min leak during the load is growth, the working set is neither, the end figures are idle."""
    leak = 1.0 * np.clip(TIMES - WARMUP_S, 0.0, None) / 60.0
    working_set = 12.0 * ((TIMES > WARMUP_S) & (TIMES <= LOAD_ENDS_S))
    f = rss_figures(TIMES, _series(leak + working_set), WARMUP_S, tolerance_mb=5.0, steady_until_s=LOAD_ENDS_S)
    assert f["measured_s"] == pytest.approx(LOAD_ENDS_S - WARMUP_S)
    assert f["steady_slope_mb_per_min"] == pytest.approx(1.0, rel=0.02)
    assert f["rise_mb"] == pytest.approx(leak[-1], abs=0.3) and f["rss_mb_peak"] >= 300.0 + 12.0 + 7.9
    assert f["verdict"] == "growth" and f["growth_mb"] == pytest.approx(8.0, rel=0.03)


def test_growth_is_at_most_what_stayed() -> None:
    """Under load the floor may drift up by chance; a run that ends (idle) where it began kept nothing."""
    drift = 6.0 * ((TIMES > 400.0) & (TIMES <= LOAD_ENDS_S))
    f = rss_figures(TIMES, _series(drift), WARMUP_S, tolerance_mb=5.0, steady_until_s=LOAD_ENDS_S)
    assert f["steady_slope_mb_per_min"] > 1.0 and abs(f["rise_mb"]) < 0.3
    assert f["growth_mb"] <= max(0.0, f["rise_mb"]) and f["verdict"] == "flat"


def test_memory_given_back_is_no_growth() -> None:
    f = rss_figures(TIMES, _series(-0.5 * np.clip(TIMES - WARMUP_S, 0.0, None) / 60.0), WARMUP_S, 5.0)
    assert f["steady_slope_mb_per_min"] == pytest.approx(-0.5, rel=0.05)
    assert f["growth_mb"] == 0.0 and f["one_time_mb"] == f["rise_mb"] and f["verdict"] == "flat"


def test_classify_orders_growth_over_one_time_over_flat() -> None:
    assert classify(growth_mb=0.0, rise_mb=0.0, tolerance_mb=5.0) == "flat"
    assert classify(growth_mb=4.9, rise_mb=4.9, tolerance_mb=5.0) == "flat"
    assert classify(growth_mb=0.1, rise_mb=30.0, tolerance_mb=5.0) == "one_time"
    assert classify(growth_mb=5.0, rise_mb=30.0, tolerance_mb=5.0) == "growth"
    assert classify(growth_mb=-8.0, rise_mb=-8.0, tolerance_mb=5.0) == "flat"  # memory given back


def test_a_series_of_one_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="at least two samples"):
        rss_figures([0.0], [300.0], 0.0, 5.0)


def test_count_figures_show_a_transient_that_end_points_hide() -> None:
    assert count_figures([24, 24, 27, 24]) == {"start": 24, "end": 24, "min": 24, "max": 27}


def test_phase_memory_reads_the_phase_window_of_a_trace() -> None:
    """add_phase_memory takes the phase's own samples (its handshake as warm-up) and drops its marker."""
    trace = ProcessTrace(GONE_PID)  # a process that is gone: the samples are ours, take() adds none
    base = time.monotonic() - 100.0
    for i, rss in enumerate([900.0, 250.0, 250.0, 290.0, 290.0, 290.0, 290.0]):  # the first is before the phase
        trace.monotonic_s.append(base - 1.0 + i)
        trace.samples.append(ProcessSample(rss, 20 + (i == 4), 30, float(i)))
    phase = {"rate_hz": 30.0, "measured_monotonic_s": [base + 2.0, base + 5.0]}
    add_phase_memory(phase, trace, since=base, tolerance_mb=5.0)
    assert "measured_monotonic_s" not in phase
    rss = phase["rss"]
    assert rss["samples"] == 6 and rss["rss_mb_start"] == 250.0 and rss["rss_mb_end"] == 290.0
    assert rss["warmup_step_mb"] == 40.0 and rss["rise_mb"] == 0.0 and rss["verdict"] == "flat"
    assert rss["threads"] == {"start": 20, "end": 20, "min": 20, "max": 21}
    assert rss["open_fds"] == {"start": 30, "end": 30, "min": 30, "max": 30}
    assert rss["series"] == {"t_s": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "rss_mb": [250.0, 250.0] + [290.0] * 4}
    failed = {"rate_hz": 30.0, "error": "no answers"}
    add_phase_memory(failed, trace, since=base, tolerance_mb=5.0)
    assert "rss" not in failed


def test_process_trace_samples_a_live_process_until_stopped() -> None:
    trace = ProcessTrace(os.getpid(), interval_s=0.01).start()
    deadline = time.monotonic() + 30.0
    while len(trace.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    trace.stop()
    trace.stop()  # idempotent
    n = len(trace.samples)
    assert n >= 4  # the first, at least two from the thread, and the last at stop()
    assert trace.monotonic_s == sorted(trace.monotonic_s)
    assert all(s.rss_mb > 1.0 and s.threads >= 1 for s in trace.samples)
    times, samples = trace.window(trace.monotonic_s[1], trace.monotonic_s[-1])
    assert len(samples) == n - 1 and times[0] == 0.0


def test_thread_names_and_fd_targets_see_this_process(tmp_path: Path) -> None:
    before_threads = thread_names(os.getpid())
    release = threading.Event()
    worker = threading.Thread(target=release.wait)  # Python 3.11 names no native thread: count them
    worker.start()
    try:
        assert len(thread_names(os.getpid())) == len(before_threads) + 1
    finally:
        release.set()
        worker.join()
    before = open_fd_targets(os.getpid())
    with (tmp_path / "held").open("w"):
        assert len(open_fd_targets(os.getpid())) == len(before) + 1
        assert str(tmp_path / "held") in open_fd_targets(os.getpid())
    assert thread_names(GONE_PID) == [] and open_fd_targets(GONE_PID) == []
