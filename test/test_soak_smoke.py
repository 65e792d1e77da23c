"""A short soak run: every measured frame is answered, warm-up counts in no figure, and the resource
figures the README reports (RSS rise split into growth and one-time step, threads, open descriptors,
the trace they come from) exist, add up and have sane values."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
from tiny_models import conv_logits_model, spec_dict, write_spec

from seg_perception.bench.memory_figures import VERDICTS
from seg_perception.bench.process_stats import ProcessSample, thread_names
from seg_perception.bench.soak import MAX_NOTED_CHANGES, note_count_change, run_soak, soak_summary


def test_soak_smoke(tmp_path: Path) -> None:
    conv_logits_model(tmp_path / "m.onnx", 3, 48, 64)
    spec = write_spec(tmp_path / "m.yaml", spec_dict("m.onnx", ["road", "sidewalk", "car"]))
    # A generous per-frame deadline: this checks that no frame is lost, not how fast it comes back.
    result: dict[str, Any] = run_soak(
        frames=150, width=160, height=96, warmup=20, model=str(spec), answer_timeout_s=30.0
    )
    assert result["frames"] == 150 and result["warmup_frames"] == 20
    assert result["answered"] == 150, result  # answers to the 150 measured frames, warm-up excluded
    assert result["unanswered_within_timeout"] == 0
    assert result["node_alive_at_end"] is True and result["exit_code"] == 0
    summary = soak_summary(result)  # what `soak` prints on stdout (--json gets the figures)
    assert summary.startswith("soak: 150 of 150 frames answered (160x96, 20 warm-up frames before)")
    assert f"RSS {result['start']['rss_mb']:.1f} -> {result['end']['rss_mb']:.1f} MB" in summary
    assert "node alive at the end, exit code 0" in summary and "{" not in summary
    assert len(summary.splitlines()) == 4
    for when in ("start", "end"):
        figures = result[when]
        assert set(figures) == {"rss_mb", "threads", "open_fds", "cpu_s"}
        assert 20.0 < figures["rss_mb"] < 4096.0, figures  # a Python node with ONNX Runtime and rclpy
        assert figures["threads"] >= 2 and figures["open_fds"] >= 3, figures
    assert result["end"]["cpu_s"] > result["start"]["cpu_s"]  # it did work between the samples
    rss = result["rss"]
    assert rss["rss_mb_after_warmup"] == result["start"]["rss_mb"] and rss["rss_mb_end"] == result["end"]["rss_mb"]
    assert result["rss_rise_mb"] == rss["rise_mb"] == result["end"]["rss_mb"] - result["start"]["rss_mb"]
    assert math.isfinite(result["rss_rise_mb"]) and abs(result["rss_rise_mb"]) < 64.0
    assert result["rss_growth_mb"] == rss["growth_mb"] >= 0.0
    assert result["rss_one_time_mb"] == pytest.approx(rss["rise_mb"] - rss["growth_mb"])
    assert rss["verdict"] in VERDICTS and rss["rss_mb_peak"] >= max(rss["rss_mb_start"], rss["rss_mb_end"])
    assert rss["warmup_step_mb"] == rss["rss_mb_after_warmup"] - rss["rss_mb_start"]
    # One sample per frame at this length (warm-up included) and one after the last answer.
    rows = result["trace"]["rows"]
    assert result["trace"]["columns"] == ["frame", "t_s", "rss_mb", "threads", "open_fds"]
    assert [r[0] for r in rows] == [*range(170), 170] and rss["samples"] == 171
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    for name, column in (("threads", 3), ("open_fds", 4)):
        measured = [r[column] for r in rows[20:]]
        assert result[name] == {"start": measured[0], "end": measured[-1], "min": min(measured), "max": max(measured)}
        assert result["targets"][f"{name}_flat"] is (min(measured) == max(measured))
    assert result["thread_growth"] == 0 == result["threads"]["end"] - result["threads"]["start"]
    assert result["fd_growth"] == 0 == result["open_fds"]["end"] - result["open_fds"]["start"]
    assert result["targets"]["rss_growth_lt_5mb"] is (result["rss_growth_mb"] < 5.0)
    # A count that moved names what moved; the start is recorded to compare with.
    assert len(result["at_start"]["thread_names"]) == result["start"]["threads"]
    assert len(result["at_start"]["fd_targets"]) <= result["start"]["open_fds"]
    assert len(result["count_changes"]) == min(20, sum((r[3], r[4]) != (rows[20][3], rows[20][4]) for r in rows[21:-1]))
    assert set(result["latency_ms"]) == {"p50", "p99", "max"}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["max"]


def test_a_count_that_moves_is_named_and_the_notes_are_bounded() -> None:
    start = ProcessSample(300.0, 24, 26, 1.0)
    changes: list[dict[str, Any]] = []
    note_count_change(changes, 100, os.getpid(), ProcessSample(300.0, 24, 26, 2.0), start)
    assert changes == []  # nothing moved
    note_count_change(changes, 200, os.getpid(), ProcessSample(301.0, 27, 28, 3.0), start)
    assert [(c["frame"], c["threads"], c["open_fds"]) for c in changes] == [(200, 27, 28)]
    assert changes[0]["thread_names"] == thread_names(os.getpid()) and changes[0]["fd_targets"]
    for frame in range(300, 300 + 2 * MAX_NOTED_CHANGES):
        note_count_change(changes, frame, os.getpid(), ProcessSample(301.0, 24, 27, 3.0), start)
    assert len(changes) == MAX_NOTED_CHANGES and changes[-1]["frame"] == 300 + MAX_NOTED_CHANGES - 2
