"""Time the fused graph's front (resize, pad, mean/std) per 1280x720 frame for every input.interpolation,
on ONNX Runtime CPU: `PYTHONPATH=$PWD .venv/bin/python tools/measure_resize_cost.py` (figures for the README).

`--stages` instead splits the demo model's 1280x720 pipeline into what it costs beyond the bare model, in
interleaved rounds (a change of machine speed hits every stage alike), beside the memory-traffic floor:
numpy copies of the same sizes (the camera frame read once, the labels written once) and the bandwidth
they measure. Prints the medians of the round medians and their spread (min-max of the rounds)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))
from tiny_models import spec_dict

from seg_perception.core.graph_preprocess import input_geometry, preprocess_graph
from seg_perception.core.graph_resize import INTERPOLATIONS
from seg_perception.core.model_spec import default_spec_path, parse_model_spec
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


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def stages(rounds: int, repeats: int, width: int = 1280, height: int = 720) -> None:
    import cv2

    from seg_perception.bench.bench import _pipeline_runner, _pure_runner
    from seg_perception.core import image_codec
    from seg_perception.core.spec_loader import load_model_spec
    from seg_perception.pipeline import Segmenter, drivable_range, drivable_table

    spec = load_model_spec(default_spec_path())
    frame = generate_scene(1, width, height).image
    payload = frame.tobytes()
    seg = Segmenter(spec, backend="onnxruntime")
    seg.warm_up(width, height)
    backend = seg.backend_for(width, height, "RGB")
    batch = frame[np.newaxis]
    labels = np.array(backend.infer(batch)["labels"][0])
    pure, _ = _pure_runner(spec, 0)
    pre_graph = preprocess_graph(spec, input_geometry(spec, width, height), "RGB", 1, 17, 8, "x")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    pre = ort.InferenceSession(pre_graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    lut, lut_out = drivable_table(spec), np.empty_like(labels)
    first, last = drivable_range(spec) or (0, -1)
    small = cv2.resize(labels, (spec.input.width, spec.input.height), interpolation=cv2.INTER_NEAREST)
    up_out = np.empty_like(labels)
    frame_copy, labels_copy = np.empty_like(frame), np.empty_like(labels)
    steps: dict[str, Callable[[], object]] = {
        "pure inference (bare model, ready tensor)": pure,
        "fused graph (uint8 frame -> labels)": lambda: backend.infer(batch),
        "pipeline (decode + fused graph + drivable)": _pipeline_runner(seg, (width, height), [payload]),
        "graph front alone (uint8 read, cast, resize, mean/std)": lambda: pre.run(None, {"image": batch}),
        "decode (serialized rgb8 -> numpy view)": lambda: image_codec.to_inference_frame(
            "rgb8", height, width, width * 3, 0, payload
        ),
        "drivable lookup (cv2.LUT, dst=)": lambda: cv2.LUT(labels, lut, dst=lut_out),
        "drivable as one id range (cv2.inRange, dst=: the pipeline's)": lambda: cv2.inRange(
            labels, first, last, dst=lut_out
        ),
        "labels nearest upsampling in cv2 (dst=)": lambda: cv2.resize(
            small, (width, height), dst=up_out, interpolation=cv2.INTER_NEAREST
        ),
        f"floor: copy the camera frame ({frame.nbytes} B)": lambda: np.copyto(frame_copy, frame),
        f"floor: copy the labels ({labels.nbytes} B)": lambda: np.copyto(labels_copy, labels),
    }
    per_round: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            per_round[name].append(_median_ms(fn, repeats))
    med = {name: float(np.median(v)) for name, v in per_round.items()}
    for name, v in per_round.items():
        sys.stdout.write(f"{name:58s} {med[name]:7.3f} ms  (rounds {min(v):.3f}-{max(v):.3f})\n")
    names = list(steps)
    pure_ms, fused_ms, pipeline_ms, front_ms = (med[n] for n in names[:4])
    copy_frame_ms = med[names[-2]]
    bandwidth = 2 * frame.nbytes / copy_frame_ms / 1e6  # read + write, GB/s
    floor = (frame.nbytes + 2 * labels.nbytes + labels.nbytes) / bandwidth / 1e6  # frame read, labels, LUT r+w
    sys.stdout.write(
        f"pipeline - pure {pipeline_ms - pure_ms:.2f} ms; fused graph - pure {fused_ms - pure_ms:.2f} ms, of which "
        f"the front {front_ms:.2f} ms and the rest (model-resolution argmax, nearest upsampling to the camera) "
        f"{fused_ms - pure_ms - front_ms:.2f} ms; outside the graph {pipeline_ms - fused_ms:.2f} ms.\n"
        f"copy bandwidth {bandwidth:.1f} GB/s (read + write); memory floor of the camera-sized traffic "
        f"(frame read, labels written, drivable read + written) {floor:.2f} ms\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", action="store_true", help="the pipeline's stages against the memory floor")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    cli = parser.parse_args()
    if cli.stages:
        stages(cli.rounds, cli.repeats)
    else:
        main()
