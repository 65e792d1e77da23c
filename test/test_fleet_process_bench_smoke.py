"""`bench-fleet` runs end to end on a real local Ray: its JSON schema and exact frame counts (never timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seg_perception import cli


def test_bench_fleet_reports_both_worker_counts_with_exact_frames(
    tmp_path: Path, spec_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fleet.json"
    argv = ["bench-fleet", "--json", str(out), "--bags", "2", "--frames", "3", "--size", "96x64"]
    assert cli.main([*argv, "--model", str(spec_path)]) == 0
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report  # printed as written
    assert sorted(report) == [
        "backend",
        "benchmark",
        "efficiency",
        "machine",
        "model",
        "ray",
        "runs",
        "schema_version",
        "settings",
    ]
    assert (report["schema_version"], report["benchmark"], report["ray"]) == (1, "fleet_process", "local")
    assert report["settings"] == {
        "bags": 2,
        "frames_per_bag": 3,
        "size": "96x64",
        "storage": "mcap",
        "threads_per_worker": 1,
        "cpus_per_worker": 1,
    }
    assert [(r["workers"], r["bags"], r["bags_done"], r["frames"]) for r in report["runs"]] == [
        (1, 2, 2, 6),
        (2, 2, 2, 6),
    ]
    for run in report["runs"]:
        assert sorted(run) == ["bags", "bags_done", "fps", "frames", "seconds", "workers"]
        assert run["seconds"] > 0 and run["fps"] == pytest.approx(run["frames"] / run["seconds"], rel=1e-3)
    fps1, fps2 = (r["fps"] for r in report["runs"])
    assert report["efficiency"] == pytest.approx(fps2 / (2 * fps1), abs=1e-4)
    assert report["backend"].startswith("onnxruntime")
