"""A 10-frame smoke run of `seg-perception bench`: the JSON report keeps its documented schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tiny_models import conv_logits_model, spec_dict, write_spec

SUMMARY_KEYS = {
    "size",
    "pure_ms",
    "pipeline_ms",
    "pipeline_overlay_ms",
    "straightforward_ms",
    "speedup_vs_straightforward",
    "node_p50_ms",
    "node_p99_ms",
    "overload_p99_ms",
    "dropped_overload",
    "rss_growth_mb",
    "targets",
}


def test_bench_smoke_schema(tmp_path: Path) -> None:
    conv_logits_model(tmp_path / "m.onnx", 3, 48, 64)
    spec = write_spec(tmp_path / "m.yaml", spec_dict("m.onnx", ["road", "sidewalk", "car"]))
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    cmd = [
        sys.executable,
        "-m",
        "seg_perception.cli",
        "bench",
        "--model",
        str(spec),
        "--frames",
        "10",
        "--sizes",
        "320x180",
        "--node-seconds",
        "1.5",
        "--json",
        str(out),
        "--plot",
        str(png),
        "--markdown",
        str(tmp_path / "perf.md"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["schema_version"] == 1
    assert report["settings"]["sizes"] == ["320x180", "1280x720"]
    names = {(m["name"], m["size"]) for m in report["measurements"]}
    for size in ("320x180", "1280x720"):
        assert {("pipeline", size), ("pipeline_overlay", size), ("straightforward", size)} <= names
    assert ("pure_inference", "64x48") in names
    for m in report["measurements"]:
        assert m["repeats"] == 10 and m["p10"] <= m["median"] <= m["p90"]
    assert set(report["summary"]) >= SUMMARY_KEYS
    for phase in ("30hz", "overload"):
        node = report["node"][phase]
        assert node["answered"] > 0 and node["sent"] >= node["answered"]
        assert set(node["latency_ms"]) == {"p50", "p95", "p99", "max"}
    # The baseline computes the same labels (up to uint8-vs-float resize rounding on a few edge pixels).
    assert all(a >= 0.99 for a in report["label_agreement_straightforward"].values())
    assert png.stat().st_size > 10_000
    text = (tmp_path / "perf.md").read_text()
    assert "| 1280x720 |" in text and "node over DDS" in text
    assert [m["cameras"] for m in report["multi_camera"]] == [1, 2, 4]
    assert all(m["throughput_ratio"] > 0 for m in report["multi_camera"])
