"""A short soak run: the figures the README reports come out with the right shape and sane values."""

from __future__ import annotations

from pathlib import Path

from tiny_models import conv_logits_model, spec_dict, write_spec

from seg_perception.bench.soak import run_soak


def test_soak_smoke(tmp_path: Path) -> None:
    conv_logits_model(tmp_path / "m.onnx", 3, 48, 64)
    spec = write_spec(tmp_path / "m.yaml", spec_dict("m.onnx", ["road", "sidewalk", "car"]))
    result = run_soak(frames=150, width=160, height=96, warmup=20, model=str(spec))
    assert result["answered"] == 150
    assert result["unanswered_within_1s"] == 0
    assert result["node_alive_at_end"] is True and result["exit_code"] == 0
    assert {"rss_mb", "threads", "open_fds", "cpu_s"} <= set(result["start"])  # type: ignore[arg-type]
    assert result["thread_growth"] == 0
    assert result["fd_growth"] == 0
