"""How much faster ONNX Runtime's integer kernels can make a frame on this CPU: the ceiling of the INT8 CPU variant.

`PYTHONPATH=$PWD .venv/bin/python tools/measure_int8_ceiling.py [--int8 demo_cpu.onnx] > ceiling.json`

Prints one JSON object. Everything runs in one process, one intra-op thread (kernel against kernel, not
thread scaling), in interleaved rounds (fp32, int8, fp32, int8, ...) so a change of machine load hits both
alike; each figure is a kernel time from ONNX Runtime's profiler (``SessionOptions.enable_profiling``, the
node's ``kernel_time``: no layout reorders, no session overhead), the fastest of the rounds: on a shared,
loaded machine a kernel's wall time includes the slices other processes took, and the fastest run is the
one least disturbed (the same estimate for fp32 and int8).

1. GEMM: ``MatMulInteger`` (uint8 x int8 and uint8 x uint8, int32 out: MLAS's integer GEMM) against
   ``MatMul`` (fp32, MLAS SGEMM) on a large square product and on the demo model's largest conv as a GEMM.
2. The model's own convolutions, one graph per layer at the shapes the fused graph runs (camera size
   ``--size``, default 1280x720): ``Conv`` fp32 (ONNX Runtime turns it into its NCHWc kernel, as in the
   model) against ``QLinearConv`` (com.microsoft, channels_last: the NHWC form the CPU variant runs), uint8
   activations with int8 per-channel weights (u8s8) and with uint8 weights (u8u8).
3. Amdahl on the fused fp32 frame (profiled the same way): the share of the frame in pre-/post-processing
   (``seg_pre/``, ``seg_post/``), which INT8 never touches, and in the model's other ops; the best frame ratio
   (a) with every conv at its measured u8s8 time and every other op as fast as in fp32, (b) with the whole
   model part at the best GEMM ratio, (c) with the model part free. With ``--int8 GRAPH`` (a CPU-variant
   graph from ``quantize --target onnxruntime --out``) the same split of that graph and the measured ratio.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from seg_perception.core.graph_compiler import INPUT_NAME, compile_fused_graph
from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.synthetic.scenes import generate_scene

RNG = np.random.default_rng(0)
PRE, POST = "seg_pre/", "seg_post/"


def _session(model: onnx.ModelProto, profile_dir: str, name: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as OnnxRuntimeBackend
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(profile_dir) / name)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _kernel_times(session: ort.InferenceSession, warmup: int) -> dict[str, list[float]]:
    """Per node (name, op type) the kernel microseconds of each run after `warmup`, from the profile file."""
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    start = runs[warmup]["ts"] if len(runs) > warmup else 0
    times: dict[str, list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
            times[f"{e['name'][: -len('_kernel_time')]}|{e['args']['op_name']}"].append(float(e["dur"]))
    return times


def _interleaved(graphs: dict[str, tuple[onnx.ModelProto, dict[str, np.ndarray]]], rounds: int, tmp: str) -> Any:
    """Run the graphs in turn `rounds` times (after a warm-up); per graph the kernel times of every node."""
    sessions = {k: (_session(m, tmp, k), feed) for k, (m, feed) in graphs.items()}
    warmup = 3
    for _ in range(warmup):
        for session, feed in sessions.values():
            session.run(None, feed)
    for _ in range(rounds):
        for session, feed in sessions.values():
            session.run(None, feed)
    return {k: _kernel_times(s, warmup) for k, (s, _) in sessions.items()}


def _op_us(times: dict[str, list[float]], *ops: str) -> float:
    """Microseconds per run of all kernels of these op types (sum over nodes of each node's fastest run)."""
    return float(sum(min(v) for k, v in times.items() if k.split("|")[1] in ops))


def _one_node(
    node: onnx.NodeProto, inputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto], out_type: int
) -> Any:
    out = helper.make_tensor_value_info(node.output[0], out_type, None)
    graph = helper.make_graph([node], "k", inputs, [out], inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def _scalar(name: str, value: float | int, dtype: Any) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def conv_pair(c_in: int, c_out: int, k: int, stride: int, h: int, w: int) -> dict[str, Any]:
    """fp32 Conv, u8s8 and u8u8 QLinearConv of one layer shape: graphs and inputs."""
    pad = k // 2
    attrs: dict[str, Any] = {"kernel_shape": [k, k], "strides": [stride, stride], "pads": [pad] * 4}
    weight = RNG.standard_normal((c_out, c_in, k, k)).astype(np.float32)
    fp32 = _one_node(
        helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, h, w])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.zeros(c_out, np.float32), "b")],
        TensorProto.FLOAT,
    )
    x_u8 = RNG.integers(0, 256, (1, h, w, c_in), dtype=np.uint8)  # NHWC, as the CPU variant's chain runs
    graphs: dict[str, Any] = {"fp32": (fp32, {"x": RNG.standard_normal((1, c_in, h, w)).astype(np.float32)})}
    for name, w_type, w_zero in (("u8s8", np.int8, 0), ("u8u8", np.uint8, 128)):
        low, high = (-127, 128) if w_type is np.int8 else (0, 256)
        w_q = RNG.integers(low, high, (c_out, c_in, k, k)).astype(w_type)
        inits = [
            _scalar("xs", 0.02, np.float32),
            _scalar("xz", 0, np.uint8),
            numpy_helper.from_array(w_q, "w"),
            numpy_helper.from_array(np.full(c_out, 0.01, np.float32), "ws"),  # per output channel
            numpy_helper.from_array(np.full(c_out, w_zero, w_type), "wz"),
            _scalar("ys", 0.05, np.float32),
            _scalar("yz", 0, np.uint8),
            numpy_helper.from_array(np.zeros(c_out, np.int32), "b"),
        ]
        node = helper.make_node(
            "QLinearConv",
            ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
            ["y"],
            domain="com.microsoft",
            channels_last=1,
            **attrs,
        )
        x = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, h, w, c_in])
        graphs[name] = (_one_node(node, [x], inits, TensorProto.UINT8), {"x": x_u8})
    return graphs


def gemm_graphs(m: int, k: int, n: int) -> dict[str, Any]:
    """fp32 MatMul against MatMulInteger (u8s8, u8u8) of [m, k] x [k, n]."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])
    fp32 = _one_node(
        helper.make_node("MatMul", ["a", "b"], ["y"]),
        [a],
        [numpy_helper.from_array(RNG.standard_normal((k, n)).astype(np.float32), "b")],
        TensorProto.FLOAT,
    )
    graphs: dict[str, Any] = {"fp32": (fp32, {"a": RNG.standard_normal((m, k)).astype(np.float32)})}
    a_u8 = RNG.integers(0, 256, (m, k), dtype=np.uint8)
    for name, w_type in (("u8s8", np.int8), ("u8u8", np.uint8)):
        low, high = (-127, 128) if w_type is np.int8 else (0, 256)
        b = numpy_helper.from_array(RNG.integers(low, high, (k, n)).astype(w_type), "b")
        node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
        inits = [b, _scalar("az", 0, np.uint8), _scalar("bz", 0 if w_type is np.int8 else 128, w_type)]
        a_q = helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])
        graphs[name] = (_one_node(node, [a_q], inits, TensorProto.INT32), {"a": a_u8})
    return graphs


def model_convs(fused: onnx.ModelProto) -> list[dict[str, Any]]:
    """The model part's Conv layers with the shapes they run at in the fused graph."""
    inferred = onnx.shape_inference.infer_shapes(fused)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    weights = {i.name: list(i.dims) for i in fused.graph.initializer}
    layers = []
    for node in fused.graph.node:
        if node.op_type != "Conv" or node.name.startswith((PRE, POST)) or node.input[1] not in weights:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("group", 1) != 1:
            continue
        c_out, c_in, k, _ = weights[node.input[1]]
        _, _, h, w = shapes[node.input[0]]
        stride = attrs.get("strides", [1, 1])[0]
        layers.append({"name": node.name, "c_in": c_in, "c_out": c_out, "k": k, "stride": stride, "h": h, "w": w})
    return layers


def frame_split(times: dict[str, list[float]]) -> dict[str, float]:
    """Microseconds per run (each node's fastest) of the fused graph's pre-processing, model part, post-processing."""
    split = {"pre_us": 0.0, "model_us": 0.0, "post_us": 0.0, "model_conv_us": 0.0}
    for key, values in times.items():
        name, op = key.split("|")
        us = min(values)
        part = "pre_us" if name.startswith(PRE) else "post_us" if name.startswith(POST) else "model_us"
        split[part] += us
        if part == "model_us" and op in ("Conv", "FusedConv", "QLinearConv"):
            split["model_conv_us"] += us
    return {k: round(v, 1) for k, v in split.items()}


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted(f for f in flags if f.startswith(("avx", "fma", "f16c")) or "vnni" in f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1280x720", help="camera WIDTHxHEIGHT of the fused graph")
    parser.add_argument("--rounds", type=int, default=40, help="interleaved runs per measurement (40)")
    parser.add_argument("--int8", type=Path, default=None, help="a CPU-variant QDQ graph of the same size")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    fused = compile_fused_graph(load_model_spec(default_spec_path()), width, height, batch=None)
    result: dict[str, Any] = {
        "onnxruntime": ort.__version__,
        "cpu_flags": _cpu_flags(),
        "cpus": os.cpu_count(),
        "threads": 1,
        "rounds": args.rounds,
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="int8_ceiling_") as tmp:
        gemms = []
        # a large square product; the demo model's 3x3 convs 32->32 at 48x80 and 64->64 at 24x40 as im2col GEMMs
        for m, k, n in ((1024, 1024, 1024), (3840, 288, 32), (960, 576, 64)):
            times = _interleaved(gemm_graphs(m, k, n), args.rounds, tmp)
            us = {v: _op_us(t, "MatMul", "MatMulInteger") for v, t in times.items()}
            gemms.append(
                {
                    "m": m,
                    "k": k,
                    "n": n,
                    **{f"{v}_us": round(t, 1) for v, t in us.items()},
                    "u8s8_speedup": round(us["fp32"] / us["u8s8"], 2),
                    "u8u8_speedup": round(us["fp32"] / us["u8u8"], 2),
                }
            )
        result["gemm"] = gemms
        layers = []
        for layer in model_convs(fused):
            shape = {k: layer[k] for k in ("c_in", "c_out", "k", "stride", "h", "w")}
            times = _interleaved(conv_pair(**shape), args.rounds, tmp)
            us = {v: _op_us(t, "Conv", "FusedConv", "QLinearConv") for v, t in times.items()}
            layers.append(
                {
                    **layer,
                    **{f"{v}_us": round(t, 1) for v, t in us.items()},
                    "u8s8_speedup": round(us["fp32"] / us["u8s8"], 2),
                }
            )
        result["model_convs"] = layers
        frame = generate_scene(1, width, height).image[np.newaxis]
        graphs = {"fp32": (fused, {INPUT_NAME: frame})}
        if args.int8 is not None:
            graphs["int8"] = (onnx.load(str(args.int8)), {INPUT_NAME: frame})
        times = _interleaved(graphs, args.rounds, tmp)
    splits = {k: frame_split(t) for k, t in times.items()}
    fp32 = splits["fp32"]
    fixed = fp32["pre_us"] + fp32["post_us"]
    total = fixed + fp32["model_us"]
    conv32 = sum(layer["fp32_us"] for layer in layers)
    conv8 = sum(min(layer["fp32_us"], layer["u8s8_us"]) for layer in layers)  # a slower layer would stay fp32
    best_gemm = max(g["u8s8_speedup"] for g in gemms)
    result["frame"] = splits
    result["profile_by_op"] = {
        k: {op: round(us, 1) for op, us in sorted(_by_op(t).items(), key=lambda i: -i[1]) if us >= 20}
        for k, t in times.items()
    }
    result["ceiling"] = {
        "fp32_frame_us": round(total, 1),
        "pre_post_share": round(fixed / total, 3),
        "model_convs_u8s8_speedup": round(conv32 / conv8, 2),
        "frame_with_convs_at_u8s8": round(total / (total - conv32 + conv8), 2),
        "best_gemm_u8s8_speedup": best_gemm,
        "frame_with_model_at_best_gemm": round(total / (fixed + fp32["model_us"] / best_gemm), 2),
        "frame_with_model_free": round(total / fixed, 2),
    }
    if "int8" in splits:
        int8 = splits["int8"]
        int8_total = int8["pre_us"] + int8["model_us"] + int8["post_us"]
        result["measured"] = {
            "model_speedup": round(fp32["model_us"] / int8["model_us"], 2),
            "frame_speedup": round(total / int8_total, 2),
        }
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")


def _by_op(times: dict[str, list[float]]) -> dict[str, float]:
    """Microseconds per run (each node's fastest) per op type, pre-/post-processing ops prefixed with their part."""
    by_op: dict[str, float] = collections.defaultdict(float)
    for key, values in times.items():
        name, op = key.split("|")
        part = "pre:" if name.startswith(PRE) else "post:" if name.startswith(POST) else ""
        by_op[part + op] += min(values)
    return by_op


if __name__ == "__main__":
    main()
