"""A short soak run: every measured frame is answered, warm-up counts in no figure, and the resource
figures the README reports (RSS, threads, open descriptors) exist with sane values."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tiny_models import conv_logits_model, spec_dict, write_spec

from seg_perception.bench.soak import run_soak


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
    for when in ("start", "end"):
        figures = result[when]
        assert set(figures) == {"rss_mb", "threads", "open_fds", "cpu_s"}
        assert 20.0 < figures["rss_mb"] < 4096.0, figures  # a Python node with ONNX Runtime and rclpy
        assert figures["threads"] >= 2 and figures["open_fds"] >= 3, figures
    assert result["end"]["cpu_s"] > result["start"]["cpu_s"]  # it did work between the samples
    assert result["rss_growth_mb"] == result["end"]["rss_mb"] - result["start"]["rss_mb"]
    assert math.isfinite(result["rss_growth_mb"]) and abs(result["rss_growth_mb"]) < 64.0
    assert result["thread_growth"] == 0
    assert result["fd_growth"] == 0
    assert set(result["latency_ms"]) == {"p50", "p99", "max"}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["max"]
