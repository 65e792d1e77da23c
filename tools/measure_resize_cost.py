"""Time the fused graph's front (resize, pad, mean/std) per 1280x720 frame for every input.interpolation,
on ONNX Runtime CPU: `PYTHONPATH=$PWD .venv/bin/python tools/measure_resize_cost.py` (figures for the README).

`--stages` instead splits the demo model's 1280x720 pipeline into what it costs beyond the bare model, in
interleaved rounds (a change of machine speed hits every stage alike), beside the memory-traffic floor:
numpy copies of the same sizes (the camera frame read once, the labels written once) and the bandwidth
they measure. Prints the medians of the round medians and their spread (min-max of the rounds).

`--stages --against REV` adds, in the same rounds, the fused graph and its front and back as the graph
modules (core/graph_preprocess.py, core/graph_postprocess.py) of git revision REV build them: old graph
against new in one process, interleaved, with their outputs compared."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))
from tiny_models import spec_dict

from seg_perception.core.graph_preprocess import input_geometry, preprocess_graph
from seg_perception.core.graph_resize import INTERPOLATIONS
from seg_perception.core.model_spec import ModelSpec, default_spec_path, parse_model_spec
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


def _graph_modules(rev: str | None) -> tuple[types.ModuleType, types.ModuleType]:
    """graph_preprocess and graph_postprocess as they are now, or as git revision `rev` has them."""
    from seg_perception.core import graph_postprocess, graph_preprocess

    if rev is None:
        return graph_preprocess, graph_postprocess
    root = Path(__file__).resolve().parent.parent
    loaded = []
    for name in ("graph_preprocess", "graph_postprocess"):
        path = f"seg_perception/core/{name}.py"
        source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{path}"], check=True, capture_output=True)
        module = types.ModuleType(f"{name}_at_{rev}")
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(source.stdout, f"{rev}:{path}", "exec"), module.__dict__)
        loaded.append(module)
    return loaded[0], loaded[1]


def _graphs(spec: ModelSpec, width: int, height: int, rev: str | None) -> dict[str, onnx.ModelProto]:
    """The labels-only fused graph at one camera size, its front alone and its back alone (model logits in)."""
    from seg_perception.core import graph_compiler
    from seg_perception.core.onnx_checks import graph_io, load_onnx

    pre_module, post_module = _graph_modules(rev)
    saved = graph_compiler.preprocess_graph, graph_compiler.postprocess_graph
    graph_compiler.preprocess_graph, graph_compiler.postprocess_graph = (  # type: ignore[assignment]
        pre_module.preprocess_graph,
        post_module.postprocess_graph,
    )
    try:
        fused = graph_compiler.compile_fused_graph(spec, width, height, confidence=False)
    finally:
        graph_compiler.preprocess_graph, graph_compiler.postprocess_graph = saved
    geo = input_geometry(spec, width, height)
    front = pre_module.preprocess_graph(spec, geo, "RGB", 1, 17, 8, "x")
    head = spec.heads[0]
    info = graph_io(load_onnx(spec.onnx_path))[1][head.name]
    hw = (spec.input.height, spec.input.width)
    back = post_module.postprocess_graph(spec, geo, [("logits", info.elem_type, info.rank, hw)], "input", 1, 17, 8)
    back = onnx.utils.Extractor(back).extract_model(["logits"], ["labels"])
    return {"fused": fused, "front": front, "back": back}


def _session(graph: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])


def stages(
    rounds: int, repeats: int, width: int = 1280, height: int = 720, against: str | None = None, threads: int = 0
) -> None:
    import cv2

    from seg_perception.backends.onnxruntime_backend import OnnxRuntimeBackend
    from seg_perception.bench.bench import _pipeline_runner, _pure_runner
    from seg_perception.core import image_codec
    from seg_perception.core.spec_loader import load_model_spec
    from seg_perception.pipeline import Segmenter, drivable_range, drivable_table

    spec = load_model_spec(default_spec_path())
    frame = generate_scene(1, width, height).image
    payload = frame.tobytes()
    seg = Segmenter(spec, backend="onnxruntime", threads=threads)
    seg.warm_up(width, height)
    backend = seg.backend_for(width, height, "RGB")
    batch = frame[np.newaxis]
    labels = np.array(backend.infer(batch)["labels"][0])
    pure, _ = _pure_runner(spec, threads)
    graphs = _graphs(spec, width, height, None)
    pre, post = _session(graphs["front"], threads), _session(graphs["back"], threads)
    model_input = pre.run(None, {"image": batch})[0]
    logits = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"]).run(
        None, {spec.input.name: model_input}
    )[0]
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
        "graph back alone (logits in: argmax, labels to the camera)": lambda: post.run(None, {"logits": logits}),
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
    if against is not None:
        old = _graphs(spec, width, height, against)
        old_fused = OnnxRuntimeBackend(old["fused"], threads=threads)
        old_pre, old_post = _session(old["front"], threads), _session(old["back"], threads)
        same = np.array_equal(old_fused.infer(batch)["labels"], backend.infer(batch)["labels"])
        gap = np.abs(old_pre.run(None, {"image": batch})[0] - model_input).max()
        sys.stdout.write(
            f"against {against}: labels {'identical' if same else 'DIFFERENT'}; model input max abs diff {gap:.3g}\n"
        )
        steps[f"[{against}] fused graph"] = lambda: old_fused.infer(batch)
        steps[f"[{against}] graph front alone"] = lambda: old_pre.run(None, {"image": batch})
        steps[f"[{against}] graph back alone"] = lambda: old_post.run(None, {"logits": logits})
    per_round: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            per_round[name].append(_median_ms(fn, repeats))
    med = {name: float(np.median(v)) for name, v in per_round.items()}
    for name, v in per_round.items():
        sys.stdout.write(f"{name:58s} {med[name]:7.3f} ms  (rounds {min(v):.3f}-{max(v):.3f})\n")
    names = list(steps)
    pure_ms, fused_ms, pipeline_ms, front_ms, back_ms = (med[n] for n in names[:5])
    copy_frame_ms = med[f"floor: copy the camera frame ({frame.nbytes} B)"]
    bandwidth = 2 * frame.nbytes / copy_frame_ms / 1e6  # read + write, GB/s
    floor = (frame.nbytes + 2 * labels.nbytes + labels.nbytes) / bandwidth / 1e6  # frame read, labels, LUT r+w
    sys.stdout.write(
        f"pipeline - pure {pipeline_ms - pure_ms:.2f} ms; fused graph - pure {fused_ms - pure_ms:.2f} ms, of which "
        f"the front {front_ms:.2f} ms, the back {back_ms:.2f} ms (model-resolution argmax, labels to the camera) "
        f"and the rest {fused_ms - pure_ms - front_ms - back_ms:.2f} ms; outside the graph "
        f"{pipeline_ms - fused_ms:.2f} ms.\n"
        f"copy bandwidth {bandwidth:.1f} GB/s (read + write); memory floor of the camera-sized traffic "
        f"(frame read, labels written, drivable read + written) {floor:.2f} ms\n"
    )
    if against is not None:
        for part, now in (("fused graph", names[1]), ("graph front alone", names[3]), ("graph back alone", names[4])):
            then = f"[{against}] {part}"
            saved = np.array(per_round[then]) - np.array(per_round[now])
            sys.stdout.write(
                f"{part}: {against} {med[then]:.3f} ms -> now {med[now]:.3f} ms, saved per round "
                f"median {np.median(saved):.3f} ms (rounds {saved.min():.3f} to {saved.max():.3f})\n"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", action="store_true", help="the pipeline's stages against the memory floor")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: one per core)")
    parser.add_argument("--against", metavar="REV", help="with --stages: also time REV's graph modules, interleaved")
    cli = parser.parse_args()
    if cli.stages:
        stages(cli.rounds, cli.repeats, against=cli.against, threads=cli.threads)
    else:
        main()
