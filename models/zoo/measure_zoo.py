"""Dev-only: the README's zoo table. Per family: label agreement with the library reference on the
committed frames, and frames per second at 1280x720 on ONNX Runtime (CPU) for both upsampling methods.

    .venv/bin/python models/zoo/measure_zoo.py > zoo_figures.json

Timings on a shared machine are noisy: medians of --runs calls after a warm-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from seg_perception.core.model_spec import UpsamplingSpec
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import OutputSelection, Segmenter

ZOO = Path(__file__).resolve().parent


def _frames() -> list[np.ndarray]:
    return [cv2.imread(str(p))[..., ::-1].copy() for p in sorted((ZOO / "frames").glob("*.png"))]


def measure(family: str, method: str, runs: int, threads: int) -> dict[str, Any]:
    spec = load_model_spec(ZOO / family / "spec.yaml")
    if method != spec.upsampling.method:
        spec = dataclasses.replace(spec, upsampling=UpsamplingSpec(method))
    reference = np.load(ZOO / family / "reference.npz")["labels"]
    big = cv2.resize(_frames()[0], (1280, 720), interpolation=cv2.INTER_LINEAR)
    with Segmenter(spec, backend="onnxruntime", threads=threads) as seg:
        agreement = [
            float(np.mean(seg.segment(f, "RGB", OutputSelection(drivable=False)).labels == r))
            for f, r in zip(_frames(), reference, strict=True)
        ]
        seg.segment(big)
        ms = []
        for _ in range(runs):
            start = time.perf_counter()
            seg.segment(big)
            ms.append((time.perf_counter() - start) * 1e3)
    median = statistics.median(ms)
    return {
        "family": family,
        "upsampling": method,
        "agreement_min": min(agreement),
        "agreement_mean": sum(agreement) / len(agreement),
        "ms_per_frame_1280x720": round(median, 2),
        "fps_1280x720": round(1e3 / median, 1),
        "batch": seg.batch_mode,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for spec_path in sorted(ZOO.glob("*/spec.yaml")):
        family = spec_path.parent.name
        methods = ["labels_nearest", "logits_bilinear"]
        if load_model_spec(spec_path).heads[0].kind == "labels":
            methods = ["labels_nearest"]  # nothing to interpolate
        rows += [measure(family, m, args.runs, args.threads) for m in methods]
    json.dump(rows, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
