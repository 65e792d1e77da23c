"""Time the fused graph's front (resize, pad, mean/std) per 1280x720 frame for every input.interpolation,
on ONNX Runtime CPU: `PYTHONPATH=$PWD .venv/bin/python tools/measure_resize_cost.py` (figures for the README)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))
from tiny_models import spec_dict

from seg_perception.core.graph_preprocess import input_geometry, preprocess_graph
from seg_perception.core.graph_resize import INTERPOLATIONS
from seg_perception.core.model_spec import parse_model_spec
from seg_perception.synthetic.scenes import generate_scene


def main() -> None:
    frame = generate_scene(1, 1280, 720).image[np.newaxis]
    for keys in ({"resize": "shorter_side", "shorter_side": 520}, {"width": 512, "height": 512}):
        for interpolation in INTERPOLATIONS:
            spec = parse_model_spec(spec_dict("m.onnx", ["a", "b"], interpolation=interpolation, **keys), Path("."))
            pre = preprocess_graph(spec, input_geometry(spec, 1280, 720), "RGB", 1, 17, 8, "x")
            options = ort.SessionOptions()
            options.intra_op_num_threads = 2
            session = ort.InferenceSession(pre.SerializeToString(), options, providers=["CPUExecutionProvider"])
            times = []
            for _ in range(30):
                start = time.perf_counter()
                session.run(None, {"image": frame})
                times.append((time.perf_counter() - start) * 1e3)
            size = "924x520" if "shorter_side" in keys else "512x512"
            median, p90 = np.median(times), np.percentile(times, 90)
            sys.stdout.write(f"{size} {interpolation:17s} median {median:6.2f} ms  p90 {p90:6.2f} ms\n")


if __name__ == "__main__":
    main()
