"""A bench that load cannot fool: the verdict on whether a run's timing can be trusted, and what the summary
and markdown then say. Pure: built from timing sets, no measurement."""

from __future__ import annotations

from typing import Any

from seg_perception.bench.bench_report import NOISY, SPREAD_BOUND, TIMING_TARGETS, markdown, noise_reasons, summarise


def _rounds(pure: list[float], pipeline: list[float]) -> dict[str, Any]:
    return {"pure_round_medians_ms": pure, "pipeline_round_medians_ms": pipeline}


STEADY = _rounds([7.6, 7.5, 7.7, 7.6, 7.6], [9.6, 9.5, 9.8, 9.6, 9.7])


def test_a_steady_quiet_run_is_trusted() -> None:
    assert noise_reasons(STEADY, (0.3, 0.5, 0.4), 2) == []


def test_pure_slower_than_the_pipeline_is_noise() -> None:
    """The loaded run of the issue: pure inference 44 ms, the pipeline that contains it 35.6 ms."""
    reasons = noise_reasons(_rounds([44.0, 43.0, 45.0], [35.6, 35.0, 36.0]), (1.0,), 2)
    assert reasons == ["pure inference measured slower than the pipeline that contains it"]


def test_round_medians_that_spread_are_noise() -> None:
    wobbly = _rounds([7.6, 7.5, 7.7, 7.6, 7.6], [9.6, 9.5, 14.0, 9.6, 9.7])  # one round 46 % slower
    reasons = noise_reasons(wobbly, (0.5,), 2)
    assert reasons == [f"pipeline round medians spread 47%, above {SPREAD_BOUND:.0%}"]
    just_inside = _rounds([10.0, 10.0, 10.0 * (1 + SPREAD_BOUND)], [20.0, 20.0, 20.0])
    assert noise_reasons(just_inside, (0.5,), 2) == []


def test_load_above_the_cores_is_noise_even_when_the_rounds_agree() -> None:
    assert noise_reasons(STEADY, (1.2, 2.4, 1.9), 2) == ["load average 2.4 above the 2 cores"]
    assert noise_reasons(STEADY, (2.0,), 2) == []  # at the cores, not above
    assert noise_reasons(None, (8.0,), 2) == ["load average 8.0 above the 2 cores"]


def _measurements() -> list[dict[str, Any]]:
    row = {"unit": "ms", "p10": 1.0, "p90": 1.0, "repeats": 5}
    return [
        {"name": "pure_inference", "size": "64x48", "median": 30.0, **row},  # ignored: interleaved wins
        {"name": "pipeline", "size": "320x180", "median": 99.0, **row},
        {"name": "pipeline_overlay", "size": "320x180", "median": 12.0, **row},
        {"name": "straightforward", "size": "320x180", "median": 40.0, **row},
    ]


def test_the_interleaved_medians_are_the_figures_of_record_and_noise_marks_every_timing_target() -> None:
    trusted = summarise(_measurements(), {}, (320, 180), STEADY, [])
    assert (trusted["pure_ms"], trusted["pipeline_ms"]) == (7.6, 9.6)
    assert trusted["targets"]["pipeline_le_1.15x_pure_plus_2ms"] is True  # 9.6 <= 1.15 * 7.6 + 2
    assert trusted["noise"] == []
    reasons = ["load average 7.4 above the 2 cores"]
    noisy = summarise(_measurements(), {}, (320, 180), STEADY, reasons)
    assert noisy["targets"] == {k: NOISY for k in trusted["targets"]}
    assert set(noisy["targets"]) <= set(TIMING_TARGETS)
    assert noisy["noise"] == reasons


def test_the_markdown_says_noisy_and_why_instead_of_met_or_missed() -> None:
    reasons = ["pure inference measured slower than the pipeline that contains it"]
    report = {
        "machine": {"cpu": "test cpu", "cores": 2, "onnxruntime": "1.32.0"},
        "model": "m",
        "settings": {"frames": 5, "node_seconds": 0, "sizes": ["320x180"]},
        "measurements": _measurements(),
        "conditions": {"load_average_1min": [7.4, 8.1, 7.9], "cores": 2},
        "summary": summarise(_measurements(), {}, (320, 180), STEADY, reasons),
    }
    text = markdown(report)
    assert "Load average (1 min) over the run: 7.4, 8.1, 7.9 on 2 cores." in text
    assert "**Noisy run**: the timing targets below are neither met nor missed: " + reasons[0] in text
    assert "| pipeline_le_1.15x_pure_plus_2ms | noisy |" in text
    assert "| pipeline_le_1.15x_pure_plus_2ms | yes |" not in text
